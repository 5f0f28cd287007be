"""The run directory belongs to one run: a lock, no silent overwrite, the task is part of the run,
and the demo continues where it stopped."""
import json
import subprocess
import sys
import time

import pytest
from helpers import BIN, ROOT, TINY, cli_env, essa, metrics, shas, train_cmd

from essa_hpc.checkpoint.manager import CheckpointManager
from essa_hpc.config import ConfigError
from essa_hpc.runtime.rundir import RunDirLock, remove_orphan_temps, set_aside

GENS = 4


def test_a_second_run_on_the_same_dir_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(train_cmd(run, "run.generations=6"), env=cli_env(ESSA_TEST_SLOW_CKPT_S="0.5"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not ((run / "metrics.jsonl").is_file() and len(metrics(run)) >= 2) and time.time() < deadline:
            time.sleep(0.05)
        second = essa(["train", str(TINY), "run.generations=6", "run.seed=1", "--run-dir", str(run)], check=False)
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and "in use by another run" in second.stderr, second.stderr
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    gens = [r["generation"] for r in metrics(run)]
    assert gens == list(range(7))  # the first run's metrics are whole, with no second run mixed in


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    run = tmp_path / "run"
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from essa_hpc.runtime.rundir import RunDirLock; "
            f"RunDirLock({str(run)!r}).acquire(); import os; os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (run / ".lock").is_file()
    lock = RunDirLock(run).acquire()  # the kernel dropped the dead holder's flock
    with pytest.raises(ConfigError, match="in use by another run"):
        RunDirLock(run).acquire()  # ... and this process's own lock still excludes others
    lock.release()


def test_resume_auto_refuses_to_overwrite_an_earlier_run(tmp_cfg_run):
    cfg, run = tmp_cfg_run
    (run / "metrics.jsonl").write_text('{"generation": 0}\n')
    with pytest.raises(ConfigError, match="holds an earlier run .*metrics.jsonl.*--resume never"):
        CheckpointManager(run).find_resume(cfg, "auto")
    (run / "metrics.jsonl").unlink()
    (run / "adapter").mkdir()
    with pytest.raises(ConfigError, match="adapter"):
        CheckpointManager(run).find_resume(cfg, "auto")
    assert CheckpointManager(run).find_resume(cfg, "never") is None


@pytest.fixture
def tmp_cfg_run(tmp_path, tiny_cfg):
    run = tmp_path / "run"
    run.mkdir()
    tiny_cfg.run.run_dir = str(run)
    return tiny_cfg, run


def test_resume_never_keeps_the_earlier_run_together(tmp_path):
    run = tmp_path / "run"
    essa(["train", str(TINY), f"run.generations={GENS}", "--run-dir", str(run)])
    before = shas(run)
    for ckpt in (run / "checkpoints").iterdir():
        ckpt.write_bytes(b"garbage")  # no checkpoint can be resumed now
    refused = essa(["train", str(TINY), f"run.generations={GENS}", "--run-dir", str(run)], check=False)
    assert refused.returncode == 2 and "--resume never" in refused.stderr
    assert shas(run) == before  # nothing was overwritten
    essa(["train", str(TINY), f"run.generations={GENS}", "run.seed=3", "--run-dir", str(run), "--resume", "never"])
    aside = [p for p in run.iterdir() if p.name.startswith("previous-")]
    assert len(aside) == 1
    kept = aside[0]
    assert shas(kept) == before and (kept / "adapter" / "adapter_config.json").is_file()
    assert (kept / "checkpoints").is_dir() and (kept / "config.yaml").is_file()
    assert shas(run) != before  # the new run's own metrics, from generation 0


@pytest.fixture(scope="module")
def two_generation_run(tmp_path_factory):
    """One finished 2-generation run; each test resumes a copy of it (training it once saves ~6 s a case)."""
    run = tmp_path_factory.mktemp("two_generations") / "run"
    essa(["train", str(TINY), "run.generations=2", "--run-dir", str(run)])
    return run


@pytest.mark.parametrize("override", ["task.arithmetic.digits=3", "task.arithmetic.operators=+-*", "task.kind=countdown",
                                      "task.heldout_size=50", "task.arithmetic.prompt_template={expr}="])
def test_resuming_with_another_task_is_refused(override, two_generation_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two_generation_run, run)
    extra = ["task.train_reward=exact"] if override == "task.kind=countdown" else []  # dense is numeric-only
    proc = essa(["train", str(TINY), "run.generations=4", override, *extra, "--run-dir", str(run)], check=False)
    assert proc.returncode == 2 and "non-resumable settings changed" in proc.stderr, proc.stderr
    assert override.split("=")[0] in proc.stderr


def test_orphan_temp_files_are_removed_on_start(tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    (ckpts / "ckpt_000003.h5.tmp4242").write_bytes(b"half")
    (ckpts / "ckpt_000002.h5").write_bytes(b"keep")
    assert remove_orphan_temps(ckpts) == ["ckpt_000003.h5.tmp4242"]
    assert [p.name for p in ckpts.iterdir()] == ["ckpt_000002.h5"]


def test_orphans_go_when_a_run_starts(tmp_path):
    run = tmp_path / "run"
    essa(["train", str(TINY), "run.generations=2", "--run-dir", str(run)])
    orphan = run / "checkpoints" / "ckpt_000003.h5.tmp999"
    orphan.write_bytes(b"x")
    proc = essa(["train", str(TINY), "run.generations=3", "--run-dir", str(run)])
    assert not orphan.exists() and "unfinished checkpoint" in proc.stderr


def test_set_aside_with_nothing_to_keep(tmp_path):
    assert set_aside(tmp_path) is None
    (tmp_path / "config.yaml").write_text("x")
    assert set_aside(tmp_path) is None  # a config alone is not a run


def test_interrupted_demo_continues_where_it_stopped(tmp_path):
    """`make demo` rerun after an interruption keeps the finished stages and resumes ES."""
    demo = [str(BIN / "python"), "tools/demo.py", "--config", str(TINY), "--ranks", "1", "--generations", "5",
            "--run-dir", str(tmp_path / "demo"), "sft.steps=2", "task.heldout_size=8"]
    first = subprocess.run(demo, cwd=ROOT, env=cli_env(ESSA_TEST_PREEMPT_AT="3"), capture_output=True, text=True,
                           timeout=600)
    assert first.returncode != 0 and "rerun `make demo`" in first.stderr, first.stderr[-2000:]
    es = tmp_path / "demo" / "essa"
    assert len(metrics(es)) == 5  # generations 0..4: preempted as generation 4 ran
    second = subprocess.run(demo, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "continuing the demo" in second.stdout and "ES at generation 4" in second.stdout, second.stdout
    assert "+ " + str(BIN / "essa-hpc") + " sft" not in second.stdout  # SFT was not redone
    assert [r["generation"] for r in metrics(es)] == list(range(6))
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["generations"] == 5 and summary["after_essa"] == metrics(es)[-1]["heldout_reward"]
