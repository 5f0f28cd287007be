"""Rewards that misbehave: a hard time limit in a worker process, and every fault counted."""
import math
import os
import time

import numpy as np
import pytest
from helpers import TINY, cli_env, custom_task, essa, metrics

from essa_hpc import config
from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.config.tasks import reward_isolation as isolation_for
from essa_hpc.config.validation import validate
from essa_hpc.reward_worker import RewardWorker
from essa_hpc.rewards import FAULT_KINDS, RewardRunner, checked

PLUGIN = '''
import math
def stuck_in_c(item, completion):
    if completion == "hang":
        return sum(range(10**11))  # C code: SIGALRM cannot interrupt it
    return 1.0
def varied(item, completion):
    return {"nan": math.nan, "inf": math.inf, "str": "1.0", "none": None, "list": [1.0],
            "np": __import__("numpy").float32(0.5), "bool": True}.get(completion, 1.0)
def raises(item, completion):
    raise ValueError("bad completion")
def exits(item, completion):
    raise SystemExit(4)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "fault_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return tmp_path


def _worker_runner(fn: str, timeout: float = 1.0):
    cfg = custom_task(f"fault_plugin:{fn}", heldout_size=2)
    worker = RewardWorker(cfg, 0)
    return RewardRunner(None, timeout, worker=worker, method="reward"), worker


def test_worker_kills_a_reward_stuck_in_c_code(plugin):
    runner, worker = _worker_runner("stuck_in_c", timeout=0.5)
    try:
        t0 = time.monotonic()
        out = runner.rewards([{"prompt": "p", "answer": 1}] * 3, ["ok", "hang", "ok"])
        elapsed = time.monotonic() - t0
        assert out.tolist() == [1.0, 0.0, 1.0]  # the completions after the stuck one are still scored
        assert runner.faults.take() == {"raised": 0, "timeout": 1, "nonfinite": 0, "type": 0}
        assert worker.restarts == 1
        assert elapsed < 30  # sum(range(10**11)) alone takes minutes
    finally:
        worker.close()


def test_inline_sigalrm_cannot_stop_c_code_but_stops_python(plugin):
    """Why the worker exists: SIGALRM interrupts Python bytecode only."""
    def python_loop(item, completion):
        while True:
            pass
    runner = RewardRunner(python_loop, 0.2)
    assert runner.one({}, "x") == 0.0 and runner.timeouts == 1


def test_every_fault_kind_is_counted(plugin):
    runner, worker = _worker_runner("varied")
    try:
        texts = ["nan", "inf", "str", "none", "list", "np", "bool", "fine"]
        out = runner.rewards([{}] * len(texts), texts)
        assert out.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
        assert runner.faults.take() == {"raised": 0, "timeout": 0, "nonfinite": 2, "type": 3}
    finally:
        worker.close()
    raising = RewardRunner(lambda item, c: 1 / 0, 1.0)
    assert raising.rewards([{}] * 2, ["a", "b"]).tolist() == [0.0, 0.0]
    assert raising.faults.take()["raised"] == 2


def test_system_exit_in_a_worker_costs_one_completion(plugin):
    runner, worker = _worker_runner("exits")
    try:
        assert runner.rewards([{}] * 2, ["a", "b"]).tolist() == [0.0, 0.0]
        assert runner.faults.take()["raised"] == 2
    finally:
        worker.close()


def test_checked_values():
    assert checked(2) == (2.0, None) and checked(np.float64(0.25)) == (0.25, None)
    assert checked(np.array(0.5)) == (0.5, None)
    assert checked(math.nan) == (0.0, "nonfinite") and checked(-math.inf) == (0.0, "nonfinite")
    assert checked("1") == (0.0, "type") and checked(None) == (0.0, "type")


def test_isolation_defaults():
    assert isolation_for(TaskConfig(kind="custom")) == "process"
    assert isolation_for(TaskConfig(kind="math")) == "process"
    assert isolation_for(TaskConfig(kind="rg:gsm_symbolic")) == "process"
    assert isolation_for(TaskConfig(kind="arithmetic")) == "inline"
    assert isolation_for(TaskConfig(kind="custom", reward_isolation="inline")) == "inline"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_reward_timeout_must_be_a_positive_number(value):
    with pytest.raises(ConfigError, match="reward_timeout_s"):
        validate(config.load(TINY, [f"task.reward_timeout_s={value}"]))


def test_faults_reach_every_metrics_line_and_the_summary(plugin, tmp_path):
    """End to end: a plug-in stuck in C code on some completions; the run finishes, and the counts
    (summed over ranks) are in every metrics line and in summary.json."""
    (plugin / "c_stuck.py").write_text(
        "def reward(item, completion):\n"
        "    if item['answer'] % 7 == 0:\n"
        "        return sum(range(10**11))\n"
        "    return float('nan') if item['answer'] % 7 == 1 else 1.0\n")
    run = tmp_path / "run"
    t0 = time.monotonic()
    essa(["train", str(TINY), "run.generations=2", "task.kind=custom", "task.custom.reward_fn=c_stuck:reward", "task.train_reward=exact",
          "task.reward_timeout_s=0.3", "task.batch_size=4", "task.heldout_size=8", "--run-dir", str(run)],
         env=cli_env(PYTHONPATH=os.environ["PYTHONPATH"]), timeout=600)
    assert time.monotonic() - t0 < 300
    records = metrics(run)
    for rec in records[1:]:
        assert set(rec["reward_faults"]) == set(FAULT_KINDS)
    total = {k: sum(r.get("reward_faults", {}).get(k, 0) for r in records) for k in FAULT_KINDS}
    held = {k: sum(r.get("heldout_faults", {}).get(k, 0) for r in records) for k in FAULT_KINDS}
    assert total["timeout"] + held["timeout"] > 0 and total["nonfinite"] + held["nonfinite"] > 0
    import json
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reward_faults"] == total and summary["heldout_faults"] == held
