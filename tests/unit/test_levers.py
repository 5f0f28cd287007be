"""Each learning lever does what its config help says (docs/LEARNING.md)."""
import numpy as np
import pytest
from helpers import TINY

from essa_hpc import config
from essa_hpc.assemble import build_parts, initial_sigma
from essa_hpc.config.validation import validate
from essa_hpc.tasks.answers import dense_reward, exact_reward


@pytest.mark.parametrize("gold", [0, 7, -36, 151, 1998])
def test_dense_reward_is_maximal_only_at_the_exact_answer(gold):
    assert dense_reward(f"The answer is {gold}", gold) == 1.0 == exact_reward(str(gold), gold)
    preds = [gold + d for d in (-100, -11, -10, -2, -1, 1, 2, 10, 11, 100, 1000)]
    scores = [dense_reward(str(p), gold) for p in preds]
    assert all(0.0 <= s <= 0.5 for s in scores)  # any wrong answer earns at most half
    assert dense_reward(str(gold + 1), gold) > dense_reward(str(gold + 10), gold) >= dense_reward(str(gold + 100), gold)
    assert dense_reward("no number here", gold) == 0.0


def test_sigma_relative_scales_by_mean_singular_value():
    cfg = config.load(TINY, ["strategy.sigma0=0.2"])
    p = build_parts(cfg)
    assert initial_sigma(cfg, p.space) == pytest.approx(0.2 * p.space.typical_scale())
    nonzero = p.space.base_s[p.space.base_s > 0]
    assert p.space.typical_scale() == pytest.approx(float(nonzero.abs().mean()))
    cfg.strategy.sigma_relative = False
    assert initial_sigma(cfg, p.space) == 0.2


def test_alpha_fraction_only_moves_the_top_singular_values():
    cfg = config.load(TINY, ["space.alpha_fraction=0.5"])
    p = build_parts(cfg)
    vec = np.ones(p.space.dim)
    s = p.space.singular_values(vec[None])[0]
    k = p.space.k
    assert k == 2
    assert np.allclose((s - p.space.base_s)[..., :k].numpy(), 1.0)
    assert np.allclose((s - p.space.base_s)[..., k:].numpy(), 0.0)


def test_prompt_template_and_raw_prompts():
    cfg = config.load(TINY, ["task.arithmetic.prompt_template={expr}=", "model.chat_template=false"])
    p = build_parts(cfg)
    item = p.task.heldout()[0]
    assert item["prompt"].endswith("=") and not item["prompt"].startswith("What")
    assert p.rollout.render(item) == item["prompt"]
    with pytest.raises(config.ConfigError, match="must contain"):
        validate(config.load(TINY, ["task.arithmetic.prompt_template=What is it?"]))


def test_tiebreak_reward_orders_only_candidates_with_equal_exact_scores():
    from essa_hpc.tasks.answers import numeric_train_reward

    gold = 57
    assert numeric_train_reward("tiebreak", 57, gold) == 1.0
    near, far = numeric_train_reward("tiebreak", 58, gold), numeric_train_reward("tiebreak", 90, gold)
    assert 0 < far < near < 0.001 and numeric_train_reward("tiebreak", None, gold) == 0.0
    # one more exact answer in a 500-prompt batch always beats any amount of partial credit
    one_more_exact = (1.0 + 499 * 0.0) / 500
    all_near = (0.0 + 499 * near + near) / 500
    assert one_more_exact > all_near
    assert numeric_train_reward("exact", 58, gold) == 0.0 and numeric_train_reward("dense", 58, gold) > 0.4
