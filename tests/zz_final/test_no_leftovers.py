"""Runs last (pytest collects tests/ in name order): after every unit, MPI and SLURM test, no MPICH
shared-memory file that a test's job left behind may remain in /dev/shm. The project itself must
clean up (essa_hpc/shm.py): this test removes nothing."""
import time

from conftest import SHM_AT_START


def test_no_mpich_shared_memory_left_by_the_tests():
    from essa_hpc.shm import MIN_AGE_S, stale_files

    time.sleep(MIN_AGE_S)
    left = {p.name for p in stale_files()} - SHM_AT_START
    assert not left, f"MPI jobs of the tests left shared memory behind: {sorted(left)}"


def test_no_vllm_engine_directory_left_by_the_tests():
    from essa_hpc.shm import stale_engine_dirs

    left = {p.name for p in stale_engine_dirs()} - SHM_AT_START
    assert not left, f"vLLM backends of the tests left their tmpfs directories behind: {sorted(left)}"
