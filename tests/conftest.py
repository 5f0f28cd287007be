import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("ESSA_NO_MPI", "1")  # in-process tests are single-rank; MPI tests use subprocesses
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# MPICH shared-memory files that were already stale before this session (the after_all tests in
# test_no_leftovers.py check that the tests add none).
SHM_AT_START = ({p.name for pattern in ("mpich_shm_*", "essa-vllm-*") for p in Path("/dev/shm").glob(pattern)}
                if Path("/dev/shm").is_dir() else set())


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch
    torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg():
    from helpers import TINY

    from essa_hpc import config
    return config.load(TINY)


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if anything loads a model (config errors must come first)."""
    def boom(*a, **k):
        raise AssertionError("a model was loaded before the config was validated")
    monkeypatch.setattr("essa_hpc.model.load_model", boom)  # assemble imports it when it builds


def pytest_collection_modifyitems(session, config, items):
    """Tests marked ``after_all`` run after every other test collected in this session, whatever
    their file names: they check what the others left behind."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)  # stable: order kept otherwise
