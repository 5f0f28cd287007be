"""Checkpoint + resume on one rank: preemption signals, kill -9 during a write, bad files."""
import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
from helpers import BIN, TINY, cli_env, essa, metrics
from resume_helpers import EXIT_PREEMPTED, GENS, assert_each_generation_once, final_sha, run_with_preemptions, train

from essa_hpc import checkpoint


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    train(run, None, resume="never")
    assert_each_generation_once(run)
    return final_sha(run)


def test_three_preemptions_resume_bit_identical(reference, tmp_path):
    run = tmp_path / "run"
    codes = run_with_preemptions(run, [None] * 4, ["1", "3", "4", ""])
    assert codes == [EXIT_PREEMPTED] * 3 + [0]
    assert final_sha(run) == reference
    assert_each_generation_once(run)


def test_real_sigterm_mid_run(reference, tmp_path):
    run = tmp_path / "run"
    env = cli_env(ESSA_TEST_SLOW_CKPT_S="0.3")  # slow the run down so the signal lands mid-run
    proc = subprocess.Popen([str(BIN / "essa-hpc"), "train", str(TINY), f"run.generations={GENS}",
                             "--run-dir", str(run)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").is_file() or len(metrics(run)) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, err.decode()[-2000:]
    assert len(metrics(run)) < GENS + 1
    train(run, None)
    assert final_sha(run) == reference
    assert_each_generation_once(run)


def test_kill_9_during_checkpoint_write(reference, tmp_path):
    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    env = cli_env(ESSA_TEST_SLOW_CKPT_S="3")
    proc = subprocess.Popen([str(BIN / "essa-hpc"), "train", str(TINY), f"run.generations={GENS}",
                             "--run-dir", str(run)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # wait for the second checkpoint's temp file: the first checkpoint is then complete
    while time.time() < deadline and not any(p.name.startswith("ckpt_000002.h5.tmp") for p in
                                             (ckpts.iterdir() if ckpts.is_dir() else [])):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert [p.name for p in checkpoint.list_checkpoints(ckpts)] == ["ckpt_000001.h5"]
    assert checkpoint.load(ckpts / "ckpt_000001.h5")["generation"] == 1
    train(run, None, resume="must")
    assert final_sha(run) == reference
    assert_each_generation_once(run)


@pytest.fixture(scope="module")
def preempted_after_four(tmp_path_factory):
    """A run preempted after generation 4, with checkpoints 2, 3 and 4; each test damages a copy."""
    run = tmp_path_factory.mktemp("preempted") / "run"
    train(run, None, preempt_at="3", check=False)
    return run


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_newest_checkpoint_falls_back(damage, reference, preempted_after_four, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(preempted_after_four, run)
    newest = checkpoint.list_checkpoints(run / "checkpoints")[-1]
    assert newest.name == "ckpt_000004.h5"
    if damage == "truncate":
        data = newest.read_bytes()
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        newest.write_bytes(os.urandom(4096))
    else:  # a readable file whose contents no longer match its checksum
        with h5py.File(newest, "r+") as f:
            f["adapter/vector"][0] += 1.0
    proc = train(run, None)
    assert "skipping checkpoint" in proc.stderr and "ckpt_000004.h5" in proc.stderr
    assert "resumed from ckpt_000003.h5" in proc.stderr
    assert final_sha(run) == reference
    assert_each_generation_once(run)


def test_resume_must_without_checkpoint_is_clear_error(tmp_path):
    proc = train(tmp_path / "empty", None, resume="must", check=False)
    assert proc.returncode == 2
    assert "--resume must: no valid checkpoint in" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_non_resumable_change_is_one_line_exit_2(tmp_path):
    # every non-resumable key is covered in-process (test_loop_in_process); this is the CLI's side
    run = tmp_path / "run"
    train(run, None, preempt_at="1", check=False)
    proc = train(run, None, "strategy.population=10", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "non-resumable settings changed (strategy.population: 8 -> 10)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_checkpoint_contents_and_keep(tmp_path):
    run = tmp_path / "run"
    train(run, None, "ckpt.keep=2")
    names = [p.name for p in checkpoint.list_checkpoints(run / "checkpoints")]
    assert names == ["ckpt_000005.h5", "ckpt_000006.h5"]
    found = checkpoint.load(run / "checkpoints" / names[-1])
    state = found["state"]
    assert found["config"]["strategy"]["population"] == 8
    assert {"strategy", "space", "sampler", "model", "adapter", "metrics"} <= set(state)
    assert state["sampler"]["generation"] == GENS
    assert state["adapter"]["sha256"] == final_sha(run)
    assert np.asarray(state["strategy"]["es.mean"]).shape == np.asarray(state["adapter"]["vector"]).shape
    with h5py.File(run / "checkpoints" / names[-1]) as f:
        assert f.attrs["format_version"] == checkpoint.FORMAT_VERSION and len(f.attrs["sha256"]) == 64
    assert all(isinstance(r.get("ckpt_s"), float) for r in metrics(run)[1:])
    out = essa(["inspect", str(run)]).stdout
    assert f"generation   {GENS} of {GENS}" in out and "es.sigma" in out and "heldout_reward" in out


def test_resume_bit_identical_when_cma_switches_to_tpa(tmp_path):
    # At dim >= 300 pycma adapts sigma by TPA, whose state lives outside CSA's arrays (the
    # SmolLM ESSA space is ~1,900 dims); 4 layers x 4 modules x 2 factors x rank 16 = 512.
    big = ("model.name=tiny-random:64x4", "space.rank=16")
    ref = tmp_path / "ref"
    train(ref, None, *big, resume="never")
    assert metrics(ref)[0]["sigma0"] > 0 and len(metrics(ref)) == GENS + 1
    run = tmp_path / "run"
    assert train(run, None, *big, preempt_at="3", check=False).returncode == EXIT_PREEMPTED
    train(run, None, *big)
    assert final_sha(run) == final_sha(ref)
    assert_each_generation_once(run)
