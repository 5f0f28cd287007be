"""Strategies: pure ask/tell that maximise, replay identically, and learn a sphere.

The contract tests run over every declared strategy (``STRATEGIES``), built the way the
trainer builds them, from a config; a new strategy is tested by declaring it, and a strategy
file without a declaration fails the first test.
"""
import numpy as np
import pytest

from essa_hpc import checkpoint, config
from essa_hpc.config.strategies import STRATEGIES
from essa_hpc.strategies import build_strategy
from essa_hpc.strategies.cma_es import CMAES
from essa_hpc.strategies.shaping import centered_rank, z_score
from essa_hpc.strategies.snes import rank_utilities

DIM = 12
TARGET = np.linspace(-1, 1, DIM)
POPULATION = {"cma_es": 8}     # the others: 16
SIGMA0 = {"open_es": 0.1}      # the others: 0.3


def sphere_reward(x_n):  # higher is better; max 0 at TARGET
    return -np.sum((x_n - TARGET) ** 2, axis=1)


def make(case, seed=0, *extra):
    """``case``: 'kind' or 'kind:variant'; variants set a kind's options."""
    kind, _, variant = case.partition(":")
    overrides = [f"strategy.kind={kind}", f"strategy.population={POPULATION.get(kind, 16)}", *VARIANTS.get(case, []),
                 *extra]
    cfg = config.load(None, overrides)
    return build_strategy(cfg.strategy, np.zeros(DIM), SIGMA0.get(kind, 0.3), seed)


VARIANTS = {"cma_es:full": ["strategy.cma_es.covariance=full", "strategy.mirrored=false"],
            "cma_es:index_ties": ["strategy.cma_es.tie_weights=index"],
            "cma_es:antithetic": ["strategy.cma_es.mean_update=antithetic"],
            "cma_es:momentum": ["strategy.cma_es.momentum=0.8"],
            "cma_es:antithetic_momentum": ["strategy.cma_es.mean_update=antithetic", "strategy.cma_es.momentum=0.5"]}
KINDS = STRATEGIES.names() + list(VARIANTS)


def test_every_strategy_file_is_declared_so_the_contract_tests_cover_it():
    """The declarations against an independent source, the files: a Strategy subclass without a
    declaration (as a kind or as a kind's seed-addressed form) would escape the tests below."""
    from helpers import classes_in_package

    from essa_hpc.strategies.base import Strategy

    defined = classes_in_package("essa_hpc.strategies", Strategy)
    declared = {s.target for s in STRATEGIES.specs()} | {s.get("seed_addressed") for s in STRATEGIES.specs()
                                                          if s.get("seed_addressed")}
    assert defined == declared
    assert set(STRATEGIES.names()) <= {case.partition(":")[0] for case in KINDS}
    assert type(make("cma_es:full")).__name__ == "CMAES" and make("cma_es:full").es.opts["CMA_diagonal"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_improves_on_sphere(kind):
    s = make(kind)
    start = sphere_reward(s.mean[None])[0]
    for _ in range(60):
        x = s.ask()
        s.tell(sphere_reward(x))
    end = sphere_reward(s.mean[None])[0]
    assert end > 0.1 * start, (start, end)  # rewards are <= 0: at least 90% of the gap closed


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_candidates_other_seed_differs(kind):
    a, b, c = make(kind, 0), make(kind, 0), make(kind, 1)
    for _ in range(5):
        xa, xb, xc = a.ask(), b.ask(), c.ask()
        assert np.array_equal(xa, xb)
        assert not np.allclose(xa, xc)
        a.tell(sphere_reward(xa)); b.tell(sphere_reward(xb)); c.tell(sphere_reward(xc))
    assert np.array_equal(a.mean, b.mean)


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_resume_is_bit_identical(kind):
    a = make(kind)
    for _ in range(7):
        a.tell(sphere_reward(a.ask()))
    b = make(kind)
    b.load_state_dict(a.state_dict())
    for _ in range(7):
        xa, xb = a.ask(), b.ask()
        assert np.array_equal(xa, xb)
        a.tell(sphere_reward(xa)); b.tell(sphere_reward(xb))
    assert np.array_equal(a.mean, b.mean)


def test_cma_mirrored_pairs():
    s = make("cma_es")
    x = s.ask() - s.mean
    assert np.allclose(x[0::2], -x[1::2])


@pytest.mark.parametrize("case", [("open_es", "strategy.open_es.optimizer=sgd"), ("snes", "strategy.mirrored=true")])
def test_mirrored_pairs_and_flat_fitness_gives_no_update(case):
    s = make(case[0], 0, case[1])
    x = s.ask() - s.mean
    assert np.allclose(x[:8], -x[8:])
    before = s.mean
    s.tell(np.full(16, 0.5))
    assert np.array_equal(s.mean, before)


def test_snes_utilities_rank_ties_and_nan():
    u = rank_utilities(np.array([3.0, 1.0, np.nan, 2.0]))
    assert np.isclose(u.sum(), 0) and np.argmax(u) == 0 and u[2] == u.min()
    assert u[0] > u[3] > u[1] >= u[2]
    assert np.allclose(rank_utilities(np.full(6, 0.5)), 0.0)
    tied = rank_utilities(np.array([1.0, 1.0, 0.0, 0.0]))
    assert tied[0] == tied[1] > tied[2] == tied[3]


def test_snes_adapts_step_sizes_per_coordinate():
    # only coordinate 0 matters: its step size must shrink near the optimum relative to the others
    s = make("snes")
    for _ in range(40):
        x = s.ask()
        s.tell(-(x[:, 0] - 0.5) ** 2)
    assert abs(s.mean[0] - 0.5) < 0.05
    assert s.sigma[0] < 0.5 * np.median(s.sigma[1:])


def test_nan_is_worst_and_maximising():
    r = np.array([1.0, np.nan, 3.0, 2.0])
    assert np.argmin(centered_rank(r)) == 1 and np.argmax(centered_rank(r)) == 2
    assert np.argmax(z_score(r)) == 2
    assert np.allclose(centered_rank(np.array([1.0, 1.0, 1.0])), 0.0)
    assert np.allclose(centered_rank(np.array([0.0, 1.0, 1.0, 2.0])), [-0.5, 0.0, 0.0, 0.5])


@pytest.mark.parametrize("covariance", ["separable", "full"])
def test_cma_flat_fitness_gives_no_update_but_new_candidates(covariance):
    s = CMAES(np.zeros(DIM), 8, 0.3, 0, covariance=covariance, mirrored=True, ties="skip")
    s.tell(sphere_reward(s.ask()))
    mean, sigma = s.mean, s.es.sigma
    first = s.ask()
    info = s.tell(np.full(8, 0.25))
    assert info["skipped_flat"] and np.array_equal(s.mean, mean) and s.es.sigma == sigma
    second = s.ask()
    assert not np.allclose(first, second)
    s.tell(sphere_reward(second))  # and the strategy goes on normally
    assert not np.array_equal(s.mean, mean)
    # pycma's own behaviour, for contrast: the mean random-walks on flat fitness
    r = CMAES(np.zeros(DIM), 8, 0.3, 0, covariance=covariance, mirrored=True, ties="rank")
    r.tell(sphere_reward(r.ask()))
    before = r.mean
    r.ask()
    r.tell(np.full(8, 0.25))
    assert not np.array_equal(r.mean, before)


@pytest.mark.parametrize("flat_before_save", [False, True])
def test_cma_resume_at_tpa_dimension(flat_before_save, tmp_path):
    # pycma switches to TPA step-size control at dim >= 300 (SmolLM's ESSA space is ~1,900):
    # its next mean-shift samples are prepared at the end of tell and must survive a restore,
    # also right after a tell that ties=skip undid.
    dim = 320
    target = np.linspace(-1, 1, dim)

    def reward(x):
        return -np.sum((x - target) ** 2, axis=1)

    a = CMAES(np.zeros(dim), 16, 0.3, 0, covariance="separable", mirrored=True)
    assert type(a.es.adapt_sigma).__name__ == "CMAAdaptSigmaTPA"
    for _ in range(5):
        a.tell(reward(a.ask()))
    if flat_before_save:
        a.ask()
        assert a.tell(np.zeros(16))["skipped_flat"]
    checkpoint.save(tmp_path, 6, {"strategy": a.state_dict()}, {}, keep=1)  # through HDF5, as on resume
    b = CMAES(np.zeros(dim), 16, 0.3, 0, covariance="separable", mirrored=True)
    b.load_state_dict(checkpoint.load(checkpoint.checkpoint_path(tmp_path, 6))["state"]["strategy"])
    for _ in range(5):
        xa, xb = a.ask(), b.ask()
        assert np.array_equal(xa, xb)
        a.tell(reward(xa)); b.tell(reward(xb))
    assert np.array_equal(a.mean, b.mean) and a.es.sigma == b.es.sigma


PAIR_TIED = np.repeat(np.arange(4.0), 2)  # each mirrored pair one reward, distinct across pairs


@pytest.mark.parametrize("rule, moves", [("average", False), ("index", True)])
def test_tied_candidates_get_equal_weight(rule, moves):
    """pycma ranks with an argsort: members of a tied mirrored pair got different weights in index order,
    and the mean moved along their difference (0.48 here, where sigma sqrt(n) is 2.1). With tie-aware
    weights the pairs average to the mean itself, so it must stay put; the old rule must fail that."""
    cfg = config.load(None, ["strategy.population=8", f"strategy.cma_es.tie_weights={rule}"])
    s = build_strategy(cfg.strategy, np.zeros(50), 0.3, 0)
    s.ask()
    before = s.mean
    s.tell(PAIR_TIED)
    moved = float(np.linalg.norm(s.mean - before))
    assert (moved > 0.1) if moves else (moved < 1e-12), moved


def test_tie_aware_update_does_not_depend_on_the_order_of_tied_candidates():
    """Swapping two tied candidates (and their rewards) leaves the tie-aware update unchanged."""
    from essa_hpc.strategies.mean_update import average_ties

    rng = np.random.default_rng(0)
    cands, rewards = rng.standard_normal((8, 5)), np.array([1.0, 0.0, 1.0, 2.0, 0.0, 1.0, 3.0, 0.0])
    swapped = cands.copy()
    swapped[[0, 2]] = cands[[2, 0]]
    assert np.array_equal(average_ties(cands, rewards), average_ties(swapped, rewards))
    distinct = np.arange(8.0)
    assert np.array_equal(average_ties(cands, distinct), cands)  # no ties: the candidates as asked


def test_antithetic_mean_update_moves_along_the_pairs_reward_differences():
    """With the step length taken from pycma, the mean moves exactly along sum_j (r+_j - r-_j) eps_j."""
    from essa_hpc.strategies.mean_update import antithetic_direction

    cfg = config.load(None, ["strategy.population=8", "strategy.cma_es.mean_update=antithetic"])
    s = build_strategy(cfg.strategy, np.zeros(20), 0.3, 0)
    x, before = s.ask(), s.mean
    rewards = -np.sum((x - 1.0) ** 2, axis=1)
    direction = antithetic_direction(x, rewards, before)
    s.tell(rewards)
    step = s.mean - before
    assert np.linalg.norm(step) > 0
    assert np.isclose(step @ direction / (np.linalg.norm(step) * np.linalg.norm(direction)), 1.0)


def test_momentum_averages_the_steps_and_resumes_exactly():
    from essa_hpc.strategies.mean_update import StepAverage

    avg = StepAverage(0.5, 2)
    first = avg(np.array([1.0, 0.0]))
    second = avg(np.array([-1.0, 0.0]))
    assert np.allclose(first, [1.0, 0.0])  # bias-corrected: the first step as it is
    assert np.allclose(second, [(0.5 * 0.5 - 0.5) / 0.75, 0.0])  # opposite noise cancels in part
    assert "momentum.v" in make("cma_es:momentum").state_dict()
