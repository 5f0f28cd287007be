"""Runs after every other test of the session (the ``after_all`` marker, ordered by conftest.py):
after every unit, MPI and SLURM test, no MPICH shared-memory file that a test's job left behind may
remain in /dev/shm. The project itself must clean up (essa_hpc/runtime/shm.py): this test removes
nothing."""
import time

import pytest
from conftest import SHM_AT_START

pytestmark = pytest.mark.after_all


def test_these_checks_run_after_every_other_test(request):
    items = request.session.items
    first = next(i for i, item in enumerate(items) if item.get_closest_marker("after_all"))
    assert all(item.get_closest_marker("after_all") for item in items[first:])
    assert all(not item.get_closest_marker("after_all") for item in items[:first])


def test_no_mpich_shared_memory_left_by_the_tests():
    from essa_hpc.runtime.shm import MIN_AGE_S, stale_files

    time.sleep(MIN_AGE_S)
    left = {p.name for p in stale_files()} - SHM_AT_START
    assert not left, f"MPI jobs of the tests left shared memory behind: {sorted(left)}"


def test_no_vllm_engine_directory_left_by_the_tests():
    from essa_hpc.runtime.shm import stale_engine_dirs

    left = {p.name for p in stale_engine_dirs()} - SHM_AT_START
    assert not left, f"vLLM backends of the tests left their tmpfs directories behind: {sorted(left)}"
