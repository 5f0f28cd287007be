"""CMA-ES through pycma (``cma``), the optimiser ESSA uses (arXiv 2507.04453, Alg. 1).

Why pycma rather than ``cmaes``: it is Hansen's reference implementation, it is
the only one with mirrored sampling (``CMA_mirrors``) and it combines mirrors with
a separable covariance; ``cmaes`` full covariance took 13-15 s a generation at
n=1,920 on a 2-core VM. pycma minimises, so rewards are negated in ``tell``.

Determinism: pycma's ``seed`` option reseeds numpy's global RNG, so instead we
pass a private generator through ``randn`` and ``seed=nan``; every rank builds
the same object from the same seed and replays the same tells. BLAS threads are
pinned to 1 around ask/tell because the full-covariance eigendecomposition is
not bit-identical across thread counts.

Equal rewards get equal weight (``tie_weights=average``), and the mean may move along the
mirrored pairs' antithetic estimate and by an average of its recent steps (``mean_update``,
``momentum``; ``mean_update.py`` says what each does to sigma and the covariance).

Checkpoints store arrays, never pickles; ``STATE_ATTRS`` names the private
pycma 4.5.0 attributes that a bit-identical continuation needs (pinned in
pyproject; a save/restore/compare test guards upgrades).
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from essa_hpc.config.options import choice, opt
from essa_hpc.errors import ConfigError
from essa_hpc.runtime import seeding
from essa_hpc.strategies.base import Strategy, rng_state, set_rng_state
from essa_hpc.strategies.mean_update import StepAverage, along, antithetic_direction, average_ties


@dataclass
class Options:
    """Keys under ``strategy.cma_es``."""
    covariance: str = opt("separable", "full | separable (diagonal; fast for large dim)", resumable=False)
    ties: str = opt("skip", "on all-equal rewards: skip (no update; pycma would random-walk the mean) "
                    "| rank (pycma's arbitrary order)")
    tie_weights: str = opt("average", "equal rewards get equal weight: average (each tied group's candidates "
                           "are replaced by their mean before pycma's tell, so the update does not depend on the "
                           "order of tied candidates; the rank-mu covariance term loses the group's spread) | index "
                           "(pycma's index order, as before this option existed)", resumable=False)
    mean_update: str = opt("cma", "how the mean moves: cma (pycma's weighted recombination) | antithetic (along "
                           "the mirrored pairs' sum (r+ - r-) eps, by the length of pycma's own step; sigma and the "
                           "covariance still adapt from pycma's update; needs strategy.mirrored)", resumable=False)
    momentum: float = opt(0.0, "beta in [0, 1): the mean moves by the bias-corrected average of its recent steps "
                          "(Adam's first moment), so signal shared across generations adds up; 0 = off",
                          resumable=False)


def check_config(cfg) -> None:
    o = cfg.strategy.cma_es
    choice(o.covariance, ["full", "separable"], "strategy.cma_es.covariance")
    choice(o.ties, ["skip", "rank"], "strategy.cma_es.ties")
    choice(o.tie_weights, ["average", "index"], "strategy.cma_es.tie_weights")
    choice(o.mean_update, ["cma", "antithetic"], "strategy.cma_es.mean_update")
    if o.mean_update == "antithetic" and not cfg.strategy.mirrored:
        raise ConfigError("strategy.cma_es.mean_update=antithetic estimates from mirrored pairs: set "
                          "strategy.mirrored=true")
    if not 0.0 <= o.momentum < 1.0:
        raise ConfigError(f"strategy.cma_es.momentum must be in [0, 1), got {o.momentum}")

STATE_ATTRS = ["mean", "sigma", "countiter", "countevals", "pc", "mean_old", "adapt_sigma.ps",
               "sigma_vec.scaling", "sigma_vec.is_identity", "sm.C", "sm.B", "sm.D",
               "sm._inverse_root_C", "sm.last_update", "sm.count_tell", "sm.count_eigen",
               "sm.updated_after_eigen", "_flgtelldone", "fit.fit", "fit.hist",
               "adapt_sigma.s", "adapt_sigma.delta"]  # TPA (dim >= 300); CSA keeps adapt_sigma.ps


def _get(obj, dotted: str):
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


def _set(obj, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for part in path:
        obj = getattr(obj, part)
    setattr(obj, last, value)


class CMAES(Strategy):
    def __init__(self, x0: np.ndarray, population: int, sigma0: float, run_seed: int,
                 covariance: str = "separable", mirrored: bool = True, ties: str = "skip",
                 tie_weights: str = "average", mean_update: str = "cma", momentum: float = 0.0):
        import cma

        self.population, self.dim, self.ties = population, len(x0), ties
        self.tie_weights, self.mean_update = tie_weights, mean_update
        self.steps = StepAverage(momentum, len(x0))
        self._rng = seeding.rng(run_seed, "strategy")
        opts = {
            "popsize": population, "seed": np.nan, "randn": lambda lam, n: self._rng.standard_normal((lam, n)),
            "CMA_diagonal": covariance == "separable",
            "CMA_mirrors": population // 2 if mirrored else 0, "CMA_mirrormethod": 0,
            "verb_log": 0, "verbose": -10, "verb_disp": 0,
            # The trainer decides when to stop; pycma's own criteria would end a long run silently.
            "tolfun": 0, "tolx": 0, "tolfunhist": 0, "tolstagnation": math.inf, "tolflatfitness": math.inf,
            "maxiter": math.inf, "maxfevals": math.inf, "tolconditioncov": math.inf, "tolupsigma": math.inf,
        }
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            self.es = cma.CMAEvolutionStrategy(np.asarray(x0, dtype=np.float64), sigma0, opts)
        self._asked: np.ndarray | None = None

    @classmethod
    def from_config(cls, strategy_cfg, x0: np.ndarray, sigma0: float, run_seed: int) -> "CMAES":
        o = strategy_cfg.cma_es
        return cls(x0, strategy_cfg.population, sigma0, run_seed, covariance=o.covariance,
                   mirrored=strategy_cfg.mirrored, ties=o.ties, tie_weights=o.tie_weights, mean_update=o.mean_update,
                   momentum=o.momentum)

    def ask(self) -> np.ndarray:
        with threadpool_limits(1):
            self._asked = np.asarray(self.es.ask(), dtype=np.float64)
        assert self._asked.shape == (self.population, self.dim)
        return self._asked

    def tell(self, rewards: np.ndarray) -> dict:
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.population,) and self._asked is not None
        worst = np.nanmin(rewards) - 1.0 if not np.isnan(rewards).all() else 0.0
        loss = -np.where(np.isnan(rewards), worst, rewards)  # pycma minimises
        # All-equal rewards carry no information, but pycma would still rank them in
        # arbitrary order and move the mean (a random walk). ties="skip" undoes such a step,
        # keeping only the advanced random stream so the next candidates are new ones.
        flat = self.ties == "skip" and np.ptp(loss) == 0
        before = self.state_dict() if flat else None
        mean_before = self.mean
        told = average_ties(self._asked, loss) if self.tie_weights == "average" else self._asked
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # flat-fitness notices; the trainer logs ties itself
            self.es.tell(list(told), list(loss))
        if flat:
            before["rng"] = self.state_dict()["rng"]
            self.load_state_dict({k: v for k, v in before.items() if k != "es._flgtelldone"})
        elif self.mean_update != "cma" or self.steps.beta:
            step = self.mean - mean_before  # pycma's own step
            if self.mean_update == "antithetic":
                step = along(antithetic_direction(self._asked, -loss, mean_before), float(np.linalg.norm(step)))
            self.es.mean = mean_before + self.steps(step)
            self._prepare_injections()
        self._asked = None
        return {"sigma": float(self.es.sigma), "skipped_flat": bool(flat)}

    def _prepare_injections(self) -> None:
        # pycma prepares the next ask's injected directions (TPA's mean-shift pair) at the end
        # of tell from mean - mean_old; rebuild them whenever the mean is set from outside
        # (a resume, undoing a flat tell, or a mean update of our own).
        self.es.pop_injection_directions, self.es.pop_injection_solutions = [], []
        if self.es.countiter > 0:
            self.es._prepare_injection_directions()

    @property
    def mean(self) -> np.ndarray:
        return np.array(self.es.mean, dtype=np.float64)

    def state_dict(self) -> dict:
        state = {"rng": json.dumps(rng_state(self._rng))}
        if self.steps.beta:
            state.update({f"momentum.{k}": v for k, v in self.steps.state_dict().items()})
        for attr in STATE_ATTRS:
            value = _get(self.es, attr)
            if value is not None:
                state["es." + attr] = value
        return state

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            if key.startswith("es."):
                attr = key[3:]
                current = _get(self.es, attr)
                if isinstance(current, np.ndarray):
                    value = np.array(value, dtype=current.dtype)
                elif isinstance(current, list):
                    value = list(np.asarray(value).tolist())
                elif np.ndim(value) == 0:
                    # the stored kind wins: a fresh object may hold int 0 where the run holds a float
                    value = np.asarray(value).item()
                _set(self.es, attr, value)
        if not hasattr(self.es, "timer"):  # pycma only creates its wall-clock timer on the first ask
            from cma.utilities.utils import ElapsedWCTime
            self.es.timer = ElapsedWCTime()
        self._prepare_injections()  # from the restored arrays, so a restore matches the state exactly
        if self.steps.beta:
            self.steps.load_state_dict({k[len("momentum."):]: v for k, v in state.items() if k.startswith("momentum.")})
        set_rng_state(self._rng, json.loads(state["rng"]))
        self._asked = None
