"""Named sub-streams: each is the stream its raw (purpose, key) form gave, and no two names collide."""
import itertools

from essa_hpc.runtime import seeding


def test_named_substreams_keep_their_streams():
    assert seeding.int_seed(3, "sft_minibatch", 5) == seeding.int_seed(3, "minibatch", 2**30 + 5)
    assert seeding.int_seed(0, "heldout_sampling", 0, 7) == seeding.int_seed(0, "sampling", 2**31, 7)
    assert seeding.int_seed(3, "trdpo_pairs", 0, 7) == seeding.int_seed(3, "sampling", 2**33 + 1, 7)
    assert seeding.int_seed(3, "sft_init") == seeding.int_seed(3, "init", 2**20)
    assert seeding.int_seed(3, "baseline_sampling") == seeding.int_seed(3, "sampling", 2**33)


def test_substreams_differ_from_each_other_and_from_generation_streams():
    seeds = {name: seeding.int_seed(0, name, 0) for name in seeding.SUBSTREAMS}
    seeds.update({f"{p}@{g}": seeding.int_seed(0, p, g) for p, g in itertools.product(seeding.PURPOSES, range(50))})
    assert len(set(seeds.values())) == len(seeds)
