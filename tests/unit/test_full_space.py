"""Full-parameter ES space: exact restore, per-tensor noise, the paper's update."""
import numpy as np
import pytest
import torch
from helpers import TINY

from essa_hpc import config
from essa_hpc.assemble import build_parts, build_search
from essa_hpc.config.validation import validate

FULL = ["space.kind=full", "strategy.kind=open_es", "strategy.open_es.shaping=z_score", "strategy.sigma_relative=false",
        "strategy.sigma0=0.01", "strategy.open_es.learning_rate=0.005", "strategy.mirrored=false",
        "strategy.population=6", "rollout.group_size=1"]


def full_parts(*extra):
    cfg = config.load(TINY, FULL + list(extra))
    validate(cfg)
    parts = build_parts(cfg)
    return cfg, parts, build_search(cfg, parts.space)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fifty_perturb_restore_cycles_are_bit_identical(dtype):
    cfg, p, strategy = full_parts(f"model.dtype={dtype}")
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    cands = strategy.ask()
    for i in range(50):
        p.space.apply(cands, np.full(3, i % len(cands)))
        assert any(not torch.equal(before[k], v) for k, v in p.model.state_dict().items())
        p.space.restore()
    for k, v in p.model.state_dict().items():
        assert torch.equal(before[k], v), k


def test_noise_differs_per_tensor_and_member():
    cfg, p, _ = full_parts()
    shapes = [m.shape for m in p.space.master]
    t0, t1 = [i for i, s in enumerate(shapes) if s == shapes[1]][:2]  # two tensors of one shape
    a, b = p.space.noise(0, 0, t0), p.space.noise(0, 0, t1)
    assert abs(float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])) < 0.1
    assert not torch.equal(p.space.noise(0, 0, t0), p.space.noise(0, 1, t0))
    assert torch.equal(p.space.noise(3, 2, t0), p.space.noise(3, 2, t0))


def test_update_is_alpha_mean_of_z_times_noise():
    cfg, p, strategy = full_parts()
    start = [m.clone() for m in p.space.master]
    cands = strategy.ask()
    rewards = np.array([0.0, 1.0, 0.5, 0.2, 0.9, 0.1])
    strategy.tell(rewards)
    p.space.after_tell(cands, strategy.space_update())
    z = (rewards - rewards.mean()) / rewards.std()
    for t in (0, len(start) - 1):
        expected = start[t] + sum(cfg.strategy.open_es.learning_rate / 6 * z[n] * p.space.noise(0, n, t) for n in range(6))
        torch.testing.assert_close(p.space.master[t], expected, rtol=0, atol=1e-6)
    # the model now holds the updated master exactly
    for (_, param), m in zip(p.space.params, p.space.master):
        assert torch.equal(param.detach(), m)


def test_mirrored_members_share_noise_with_opposite_signs():
    cfg, p, strategy = full_parts("strategy.mirrored=true")
    cands = strategy.ask()
    assert np.array_equal(cands[0::2, 1], cands[1::2, 1])
    assert np.array_equal(cands[0::2, 2], -cands[1::2, 2])
