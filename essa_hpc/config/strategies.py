"""The strategies: ``strategy.kind`` -> its declaration. Adding one: its file under
``essa_hpc/strategies/`` (a ``Strategy`` with ``from_config``, an ``Options`` dataclass and
``check_config(cfg)``, all pure numpy) plus one ``Spec`` here, or an entry point in the
group ``essa_hpc.strategies`` from another package."""
from __future__ import annotations

from essa_hpc.config.kinds import Kind, Spec

CAPABILITIES = {
    "always_mirrored": "samples +/- pairs whatever strategy.mirrored says (its estimator is the pairs), so the "
                       "population must be even",
    "seed_addressed": "'module:Class': the form it takes on a space whose candidates are seed addresses (the full "
                      "and eggroll spaces); without it the strategy cannot search such a space",
}

STRATEGIES = Kind("strategy.kind", "strategy", "essa_hpc.strategies", CAPABILITIES, [
    Spec("cma_es", "essa_hpc.strategies.cma_es:CMAES", "CMA-ES through pycma, ESSA's optimiser",
         "essa_hpc.strategies.cma_es:Options", "essa_hpc.strategies.cma_es:check_config"),
    Spec("open_es", "essa_hpc.strategies.open_es:OpenES", "OpenAI-ES: mirrored sampling, shaped fitness, SGD or "
         "Adam; ES at scale's rule on the full space", "essa_hpc.strategies.open_es:Options",
         "essa_hpc.strategies.open_es:check_config",
         caps={"always_mirrored": True, "seed_addressed": "essa_hpc.strategies.seed_es:SeedES"}),
    Spec("snes", "essa_hpc.strategies.snes:SNES", "separable NES: natural-gradient steps on the mean and on one "
         "step size per coordinate", "essa_hpc.strategies.snes:Options", "essa_hpc.strategies.snes:check_config"),
])
