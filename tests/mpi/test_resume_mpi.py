"""Preemption and resume across ranks, including a change of world size."""
import pytest
from helpers import metrics, mpiexec, space_setup
from resume_helpers import EXIT_PREEMPTED, assert_each_generation_once, final_sha, run_with_preemptions, train

from essa_hpc.config.spaces import SPACES

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(mpiexec() is None, reason="mpiexec not installed")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref2") / "run"
    train(run, 2, resume="never")
    return final_sha(run)


def test_two_ranks_three_preemptions(reference, tmp_path):
    run = tmp_path / "run"
    codes = run_with_preemptions(run, [2, 2, 2, 2], ["0", "2", "4", ""])
    assert codes == [EXIT_PREEMPTED] * 3 + [0]
    assert final_sha(run) == reference
    assert_each_generation_once(run)


def test_preempt_on_two_ranks_resume_on_one(reference, tmp_path):
    run = tmp_path / "run"
    codes = run_with_preemptions(run, [2, None], ["2", ""])
    assert codes == [EXIT_PREEMPTED, 0]
    assert final_sha(run) == reference
    assert_each_generation_once(run)


CONCENTRATED = ["space.svd_lora.factors=B", "space.alpha_fraction=0.5", "strategy.cma_es.mean_update=antithetic",
                "strategy.cma_es.momentum=0.5"]


# The seed-addressed spaces (their parameters live in the space, not the strategy), and the concentrated
# search with the CMA-ES mean-update options (state of its own: momentum).
@pytest.mark.parametrize("space", SPACES.with_capability("seed_addressed") + ["svd_lora_B_antithetic_momentum"])
def test_space_and_update_options_preempt_and_resume_across_world_sizes(space, tmp_path):
    setup = CONCENTRATED if space == "svd_lora_B_antithetic_momentum" else space_setup(space)
    ref = tmp_path / "ref"
    train(ref, 2, *setup, resume="never")
    run = tmp_path / "run"
    for ranks, point in ((2, "2"), (None, "")):
        train(run, ranks, *setup, preempt_at=point, check=False)
    assert final_sha(run) == final_sha(ref)
    assert_each_generation_once(run)
    assert len(set(r["adapter_sha256"] for r in metrics(ref))) > 2  # the weights really moved
