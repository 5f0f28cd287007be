"""Checksum resync under real mpiexec: a rank whose state silently differs from rank 0's is given
rank 0's state and the run goes on identically; a second difference within run.resync_window stops."""
import pytest
from helpers import TINY, cli_env, essa, metrics, mpiexec, shas

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")]
GENS = ["run.generations=6", "run.checksum_every=1"]


def test_a_perturbed_rank_is_resynced_and_the_run_ends_as_a_clean_one(tmp_path):
    essa(["train", str(TINY), *GENS, "--run-dir", str(tmp_path / "clean")], ranks=2)
    run = tmp_path / "perturbed"
    proc = essa(["train", str(TINY), *GENS, "--run-dir", str(run)], ranks=2, env=cli_env(ESSA_TEST_PERTURB="3:1"))
    assert "generation 3: adapter checksum of rank(s) [1] differed from rank 0; rank 0's state was broadcast" \
        in proc.stderr, proc.stderr[-3000:]
    assert [r.get("resynced_ranks") for r in metrics(run)] == [None, None, None, [1], None, None, None]
    assert shas(run) == shas(tmp_path / "clean")


def test_without_the_resync_the_perturbation_changes_the_run(tmp_path):
    """The hook's nudge is real: with resync off the run stops at the mismatch (as before resyncs)."""
    proc = essa(["train", str(TINY), *GENS, "run.resync_window=0", "--run-dir", str(tmp_path / "run")], ranks=2,
                env=cli_env(ESSA_TEST_PERTURB="3:1"), check=False)
    assert proc.returncode != 0 and "adapter checksum of rank(s) [1] differs from rank 0 at generation 3" in proc.stderr


def test_a_second_mismatch_within_the_window_stops_the_run(tmp_path):
    run = tmp_path / "run"
    proc = essa(["train", str(TINY), *GENS, "run.resync_window=3", "--run-dir", str(run)], ranks=2,
                env=cli_env(ESSA_TEST_PERTURB="2:1,4:1"), check=False)
    assert proc.returncode != 0
    assert "differs from rank 0 at generation 4 again, 2 generations after the resync at 2" in proc.stderr, \
        proc.stderr[-3000:]
    assert max(r["generation"] for r in metrics(run)) == 3  # generation 4 was never logged
