"""EGGROLL space: the population's low-rank perturbations in one batch equal the dense
perturbed weights one candidate at a time; the update is the full-rank sum; restore is exact."""
import math

import numpy as np
import torch
from helpers import EGGROLL_SPACE, TINY

from essa_hpc import config
from essa_hpc.assemble import build_parts, build_search
from essa_hpc.evaluation import evaluate_candidates


def parts_for(*extra):
    cfg = config.load(TINY, [*EGGROLL_SPACE, *extra])
    return cfg, build_parts(cfg)


def last_logits(parts, items):
    input_ids, mask = parts.rollout._batch(items)
    with torch.no_grad():
        return parts.model(input_ids=input_ids, attention_mask=mask).logits[:, -1, :]


def test_batched_rows_equal_the_dense_perturbed_model_one_candidate_at_a_time():
    cfg, p = parts_for("space.rank=2")
    space, cands = p.space, build_search(cfg, p.space).ask()
    items = p.task.heldout()[:4]
    row_cand = np.repeat(np.arange(len(cands)), len(items))
    space.apply(cands, row_cand)
    batched = last_logits(p, [items[i % len(items)] for i in range(len(row_cand))])
    space.restore()
    gaps = []
    for c in range(len(cands)):
        with torch.no_grad():
            for t, layer in enumerate(space.layers):
                layer.base.weight.copy_(space.materialize(cands[c], t))
        dense = last_logits(p, items)
        # float32 sums in another order through a random model with O(1) weights: the gap is rounding,
        # far below what one candidate's perturbation changes (checked below)
        gap = (batched[c * len(items):(c + 1) * len(items)] - dense).abs().max()
        assert gap <= 1e-4 * dense.abs().max(), (c, float(gap), float(dense.abs().max()))
        gaps.append(float(gap))
    space.load_state_dict(space.state_dict())  # back to the masters
    between = (batched[: len(items)] - batched[len(items): 2 * len(items)]).abs().max()
    assert between > 100 * max(gaps)  # a candidate's perturbation moves the logits far more than rounding


def test_batched_rewards_equal_one_candidate_at_a_time():
    cfg, p = parts_for()
    cands = build_search(cfg, p.space).ask()
    items = p.task.minibatch(0, 6)
    together, _ = evaluate_candidates(p.rollout, p.space, p.rewarder, cands, items, max_rows=64)
    alone = [evaluate_candidates(p.rollout, p.space, p.rewarder, cands[c:c + 1], items, max_rows=64)[0][0]
             for c in range(len(cands))]
    assert np.array_equal(together, np.array(alone)) and len(set(together)) > 1


def test_update_is_the_full_rank_sum_and_restore_is_exact():
    cfg, p = parts_for()
    space, strategy = p.space, build_search(cfg, p.space)
    start = [m.clone() for m in space.master]
    weights_before = [layer.base.weight.clone() for layer in space.layers]
    cands = strategy.ask()
    for _ in range(20):  # perturb and restore many times: the base weights never change
        space.apply(cands, np.arange(len(cands)))
        space.restore()
    assert all(torch.equal(layer.base.weight, w) for layer, w in zip(space.layers, weights_before))
    rewards = np.linspace(0.0, 1.0, len(cands))
    strategy.tell(rewards)
    update = strategy.space_update()
    space.after_tell(cands, update)
    z = (rewards - rewards.mean()) / rewards.std()
    lr, n = cfg.strategy.open_es.learning_rate, len(cands)
    for t in (0, len(start) - 1):
        expected = start[t].clone()
        for m, (generation, k, scale) in enumerate(cands):
            a, b = space.noise(int(generation), int(k), t)
            expected += lr * z[m] / n * np.sign(scale) * (a @ b.T) / math.sqrt(space.rank)
        torch.testing.assert_close(space.master[t], expected, rtol=0, atol=1e-6)
        assert torch.linalg.matrix_rank(space.master[t] - start[t]) > space.rank  # the sum is full-rank
        assert torch.equal(space.layers[t].base.weight, space.master[t])


def test_export_is_a_plain_hf_model_with_the_trained_weights(tmp_path):
    from transformers import AutoModelForCausalLM

    cfg, p = parts_for()
    strategy = build_search(cfg, p.space)
    cands = strategy.ask()
    strategy.tell(np.arange(len(cands), dtype=float))
    p.space.after_tell(cands, strategy.space_update())
    items = p.task.heldout()[:3]
    ours = last_logits(p, items)
    p.space.export(strategy.mean, tmp_path / "model")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    input_ids, mask = p.rollout._batch(items)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=input_ids, attention_mask=mask).logits[:, -1, :], ours)
    assert type(p.model.get_submodule(p.space.names[0])).__name__ == "EggrollLinear"  # wrapped again


def test_a_chunk_that_splits_candidates_unevenly_gives_the_same_rows():
    cfg, p = parts_for()
    cands = build_search(cfg, p.space).ask()
    rows = [p.task.heldout()[0]] * 15  # one prompt: both batches have the same padding
    p.space.apply(cands, np.repeat([0, 1, 2], 5))
    even = last_logits(p, rows)
    p.space.apply(cands, np.repeat([0, 1, 2], [5, 5, 5])[3:])  # rows 3.. : counts 2, 5, 5
    uneven = last_logits(p, rows[3:])
    p.space.restore()
    torch.testing.assert_close(uneven, even[3:], rtol=1e-5, atol=1e-5)
