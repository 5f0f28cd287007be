"""The vLLM backend's engine start fails fast and cleans up when the engine process dies
before it listens (here: a "Python" that exits at once). Needs no vLLM."""
import time
from pathlib import Path

import pytest
from helpers import TINY

from essa_hpc import config
from essa_hpc.generation.vllm_rollout import VLLMRollout
from essa_hpc.model import load_model


def test_an_engine_that_dies_before_listening_is_an_error_not_a_hang():
    cfg = config.load(TINY, ["model.name=tiny-random:256x2", "rollout.backend=vllm", "rollout.vllm.python=/bin/false"])
    model, tok = load_model(cfg.model)
    before = set(Path("/dev/shm").glob("essa-vllm-*"))
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="vLLM engine exited before it listened"):
        VLLMRollout(model, tok, cfg)
    assert time.perf_counter() - t0 < 30
    assert set(Path("/dev/shm").glob("essa-vllm-*")) == before  # its tmpfs directory is gone too
