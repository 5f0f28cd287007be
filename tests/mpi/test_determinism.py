"""The determinism contract under real mpiexec: 1 and 2 ranks give the same adapter
at every generation, and only scalars cross ranks."""
import pytest
from helpers import EGGROLL_SPACE, FULL_SPACE, TINY, essa, metrics, mpiexec, shas, space_setup

from essa_hpc.config.spaces import SPACES

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed (pip install mpich)")]


FULL = FULL_SPACE
# A concentrated search (the top half of the B factors' singular values) with the antithetic, averaged mean update.
CONCENTRATED = ["space.svd_lora.factors=B", "space.alpha_fraction=0.5", "strategy.cma_es.mean_update=antithetic",
                "strategy.cma_es.momentum=0.5"]
SETUPS = {"svd_lora-cma_es": ["strategy.kind=cma_es"], "svd_lora-open_es": ["strategy.kind=open_es"],
          "lora-cma_es": ["space.kind=lora"], "full-open_es": FULL, "eggroll-open_es": EGGROLL_SPACE,
          "svd_lora_B_top-cma_es_antithetic_momentum": CONCENTRATED}


@pytest.mark.parametrize("setup", SETUPS)
def test_one_and_two_ranks_bit_identical(setup, tmp_path):
    runs = {}
    for n in (1, 2):
        run = tmp_path / f"n{n}"
        essa(["train", str(TINY), *SETUPS[setup], "run.generations=3", "--run-dir", str(run)], ranks=n)
        runs[n] = shas(run)
    assert len(runs[1]) == 4  # start + 3 generations
    assert runs[1] == runs[2]
    assert len(set(runs[1])) == 4  # the adapter really moved every generation


@pytest.mark.parametrize("space", SPACES.names())
def test_bytes_sent_bounded_and_independent_of_model_size(space, tmp_path):
    extra = space_setup(space)
    lam = 6 if space == "full" else 8
    sent = {}
    for name in ("tiny-random", "tiny-random:64x4"):
        run = tmp_path / name.replace(":", "_")
        essa(["train", str(TINY), *extra, f"model.name={name}", f"strategy.population={lam}", "run.generations=3",
              "--run-dir", str(run)], ranks=2)
        sent[name] = [r["bytes_sent"] for r in metrics(run)[1:]]
    assert all(b <= 16 * lam + 64 for b in sent["tiny-random"]), sent
    assert sent["tiny-random"] == sent["tiny-random:64x4"], sent
