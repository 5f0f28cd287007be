"""`make demo` sizes its ES stage from one timed generation (tools/demo.py)."""
import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import demo  # noqa: E402

FIRST = {"step_s": 25.0, "heldout_s": 5.0, "ckpt_s": 0.1}  # generation 1, including one held-out pass


def test_the_chosen_count_fits_the_budget_and_the_next_one_would_not():
    g, estimate = demo.choose_generations(FIRST, 600, eval_every=10, startup_s=10)
    assert demo.MIN_GENERATIONS < g < demo.MAX_GENERATIONS
    assert estimate <= 600 < demo.choose_generations(FIRST, 10_000, 10, 10)[1]
    # one more generation costs 20.1 s, plus a held-out pass at generation 30
    assert estimate + 20.1 + 5.0 > 600


def test_the_count_stays_within_its_bounds():
    assert demo.choose_generations(FIRST, 30, 10, 10)[0] == demo.MIN_GENERATIONS
    assert demo.choose_generations({"step_s": 1.0}, 1e6, 10, 0)[0] == demo.MAX_GENERATIONS


def test_held_out_passes_are_counted_where_the_run_makes_them():
    # generations 2..20 evaluate at 10 and 20 (20 is also the last): 2 passes of 5 s
    cost_20 = 19 * 1.0 + 2 * 5.0
    g, estimate = demo.choose_generations({"step_s": 6.0, "heldout_s": 5.0}, cost_20, 10, 0)
    assert g == 20 and abs(estimate - cost_20) < 1e-9
