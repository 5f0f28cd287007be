"""Signals and failures under 1 and 2 ranks: a finished run stays finished, Ctrl-C checkpoints,
and no failure on any rank, at any stage, leaves another rank waiting.

Every run here has a timeout that fails the test instead of hanging it.
"""
import os
import signal
import subprocess
import time

import pytest
from helpers import ROOT, TINY, cli_env, essa, metrics, mpiexec, rank_pids, shas, train_cmd

GENS = 5
HANG = 60  # seconds: a run that has not ended by then is hung


def _popen(cmd, **env):
    return subprocess.Popen(cmd, env=cli_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def _wait_lines(run, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run / "metrics.jsonl").is_file() and len(metrics(run)) >= n:
            return
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"{run} did not reach {n} metrics lines")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    essa(["train", str(TINY), f"run.generations={GENS}", "--run-dir", str(run)])
    return shas(run)


@pytest.mark.parametrize("ranks", [None, 2])
def test_signals_after_the_last_generation_keep_exit_0(ranks, tmp_path):
    """Item 1: USR1/USR2/TERM rained on the ranks from the moment the adapter is exported until the
    processes are gone: Python's shutdown used to restore the default handlers, which killed them."""
    if ranks and not mpiexec():
        pytest.skip("no mpiexec")
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(run, f"run.generations={GENS}", ranks=ranks), env=cli_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    for line in proc.stderr:
        if "exported the adapter" in line or time.time() > deadline:
            break
    sent, cycle = 0, [signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM]
    while proc.poll() is None and time.time() < deadline:
        for pid in rank_pids(run):
            try:
                os.kill(pid, cycle[sent % 3])
                sent += 1
            except ProcessLookupError:
                pass
        time.sleep(0.002)
    proc.stderr.read()
    assert proc.wait(timeout=HANG) == 0
    assert sent > 0  # the storm really hit the exiting ranks
    assert len(metrics(run)) == GENS + 1 and (run / "adapter" / "adapter_config.json").is_file()


@pytest.mark.parametrize("ranks", [None, 2])
def test_ctrl_c_checkpoints_then_resumes_identically(ranks, reference, tmp_path):
    """Item 2: SIGINT (to the single process, or to mpiexec, which forwards it) behaves like a
    preemption: every rank checkpoints at the generation boundary and exits 130; a rerun resumes."""
    if ranks and not mpiexec():
        pytest.skip("no mpiexec")
    run = tmp_path / "run"
    proc = _popen(train_cmd(run, f"run.generations={GENS}", ranks=ranks), ESSA_TEST_SLOW_CKPT_S="0.4")
    _wait_lines(run, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err, err[-3000:]
    assert len(metrics(run)) < GENS + 1
    assert _no_ranks_left(run)
    essa(["train", str(TINY), f"run.generations={GENS}", "--run-dir", str(run)], ranks=ranks)
    assert shas(run) == reference


def test_second_ctrl_c_stops_at_once(tmp_path):
    run = tmp_path / "run"
    proc = _popen(train_cmd(run, f"run.generations={GENS}"), ESSA_TEST_SLOW_CKPT_S="3")
    _wait_lines(run, 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 130 and time.time() - t0 < 2.5, err[-2000:]  # did not wait out the 3 s checkpoint
    assert "second interrupt" in err


def _no_ranks_left(run, within: float = 10.0) -> bool:
    """Ranks may still be exiting for an instant after mpiexec returns."""
    deadline = time.time() + within
    while rank_pids(run) and time.time() < deadline:
        time.sleep(0.1)
    return not rank_pids(run)


def _ends_fast_naming(cmd, needle, expect_code=None, env=None):
    t0 = time.time()
    proc = subprocess.run(cmd, env=env or cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    elapsed = time.time() - t0
    assert proc.returncode != 0, proc.stderr[-3000:]
    if expect_code is not None:
        assert proc.returncode == expect_code, proc.stderr[-3000:]
    assert needle in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 30 + 15, elapsed  # 30 s rule, plus interpreter start-up on a busy machine
    return proc


@pytest.mark.parametrize("ranks", [None, 2])
def test_run_dir_that_is_a_file_fails_in_one_line(ranks, tmp_path):
    if ranks and not mpiexec():
        pytest.skip("no mpiexec")
    target = tmp_path / "afile"
    target.write_text("x")
    proc = _ends_fast_naming(train_cmd(target, ranks=ranks), "is not a directory", expect_code=2)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("error") == 1  # one rank speaks


@pytest.mark.parametrize("ranks", [None, 2])
def test_read_only_run_dir_fails_in_one_line(ranks, tmp_path):
    if ranks and not mpiexec():
        pytest.skip("no mpiexec")
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        proc = _ends_fast_naming(train_cmd(ro / "run", ranks=ranks), "read-only filesystem", expect_code=2)
        assert "Traceback" not in proc.stderr
    finally:
        subprocess.run(["umount", str(ro)], check=False)


PLUGIN = '''
import os, sys
def exits_on_rank1(item, completion):
    if os.environ.get("PMI_RANK") == "1":
        sys.exit(3)
    return 0.0
def interrupts_on_rank1(item, completion):
    if os.environ.get("PMI_RANK", "1") == "1":  # one process: PMI_RANK is unset, so this one
        raise KeyboardInterrupt
    return 0.0
'''


@pytest.mark.parametrize("fn,ranks", [("exits_on_rank1", 2), ("interrupts_on_rank1", 2),
                                      ("interrupts_on_rank1", None)])
def test_a_base_exception_in_a_reward_on_one_rank_ends_every_rank(fn, ranks, tmp_path):
    """SystemExit or KeyboardInterrupt from an inline plug-in reward (not an Exception, so not
    scored 0): the rank names itself and MPI_Abort ends the job instead of leaving rank 0 in an Allreduce."""
    if ranks and not mpiexec():
        pytest.skip("no mpiexec")
    (tmp_path / "bad_plugin.py").write_text(PLUGIN)
    env = cli_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cmd = train_cmd(tmp_path / "run", "task.kind=custom", f"task.custom.reward_fn=bad_plugin:{fn}",
                    "task.reward_isolation=inline", "task.train_reward=exact", ranks=ranks)
    rank = 1 if ranks else 0
    _ends_fast_naming(cmd, f"rank {rank} of {ranks or 1} failed", env=env)
    assert _no_ranks_left(tmp_path / "run")


def _mpich_files_of(pids) -> set[str]:
    from pathlib import Path

    from essa_hpc.runtime.shm import _mapped_in
    found = set()
    for pid in pids:
        found |= {p for p in _mapped_in(Path(f"/proc/{pid}/maps")) if "mpich_shm_" in p}
    return found


def test_a_killed_run_leaves_no_shared_memory_once_the_next_run_starts(tmp_path):
    """kill -9 of a rank: MPICH's /dev/shm file outlives the job; the next run in the same place
    (here: the resume) removes it, and the resumed run's own file goes with MPI_Finalize."""
    if not mpiexec():
        pytest.skip("no mpiexec")
    from pathlib import Path
    run = tmp_path / "run"
    proc = _popen(train_cmd(run, f"run.generations={GENS}", ranks=2), ESSA_TEST_SLOW_CKPT_S="0.5")
    _wait_lines(run, 2, proc)
    pids = rank_pids(run)
    files = _mpich_files_of(pids)
    assert len(pids) == 2 and files, (pids, files)
    os.kill(max(pids), signal.SIGKILL)
    proc.communicate(timeout=HANG)
    assert proc.returncode != 0
    assert all(Path(f).exists() for f in files)  # the leftover is real
    time.sleep(2.5)  # older than shm.MIN_AGE_S
    essa(["train", str(TINY), f"run.generations={GENS}", "--run-dir", str(run)], ranks=2)
    assert not any(Path(f).exists() for f in files)


def test_a_failing_rank_removes_the_jobs_shared_memory(tmp_path):
    if not mpiexec():
        pytest.skip("no mpiexec")
    from essa_hpc.runtime.shm import SHM_DIR
    (tmp_path / "bad_plugin.py").write_text(PLUGIN)
    env = cli_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    before = set(SHM_DIR.glob("mpich_shm_*"))
    cmd = train_cmd(tmp_path / "run", "task.kind=custom", "task.custom.reward_fn=bad_plugin:exits_on_rank1",
                    "task.reward_isolation=inline", "task.train_reward=exact", ranks=2)
    _ends_fast_naming(cmd, "rank 1 of 2 failed", env=env)
    assert set(SHM_DIR.glob("mpich_shm_*")) <= before
