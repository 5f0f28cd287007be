"""The ES loop in-process, on fakes (tests/fakes.py): the real Trainer, strategies, rewards,
checkpoint manager and Comm byte counting, with no model and no subprocess. Ranks are
threads. These carry the determinism contract quickly; the MPI, subprocess and SLURM
tests stay as the thin top that proves the same on real launchers."""
import logging

import numpy as np
import pytest
from fakes import PreemptAt, fake_parts, run_ranks
from helpers import TINY

from essa_hpc import config
from essa_hpc.checkpoint.manager import CheckpointManager
from essa_hpc.config.strategies import STRATEGIES
from essa_hpc.runtime.preempt import EXIT_PREEMPTED
from essa_hpc.trainer import Trainer

GENS = 5


def make_cfg(run_dir, kind="cma_es", *extra):
    cfg = config.load(TINY, [f"run.generations={GENS}", f"strategy.kind={kind}", "run.checksum_every=2", *extra])
    cfg.run.run_dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def train(cfg, world: int, dim: int = 6, stop_at: int | None = None, resume: bool = False):
    """Run on ``world`` thread-ranks; returns (exit codes, rank 0's metrics records)."""
    found = CheckpointManager(cfg.run.run_dir).find_resume(cfg, "must") if resume else None

    def rank(comm):
        trainer = Trainer(cfg, comm, cfg.run.run_dir, fake_parts(cfg.run.seed, dim), found=found,
                          preempt=PreemptAt(stop_at) if stop_at else None)
        return trainer.run(), trainer.metrics.records

    results = run_ranks(world, rank)
    return [code for code, _ in results], results[0][1]


def shas(records):
    return [r["adapter_sha256"] for r in records]


# The CMA-ES mean-update options, which carry state of their own (momentum) or read the pairs.
CMA_OPTIONS = {"cma_es:antithetic_momentum": ["strategy.cma_es.mean_update=antithetic", "strategy.cma_es.momentum=0.7"],
               "cma_es:index_ties": ["strategy.cma_es.tie_weights=index"]}


@pytest.mark.parametrize("case", STRATEGIES.names() + list(CMA_OPTIONS))
def test_one_and_two_ranks_give_the_same_adapter_every_generation(case, tmp_path):
    kind, extra = case.partition(":")[0], CMA_OPTIONS.get(case, [])
    _, one = train(make_cfg(tmp_path / "one", kind, *extra), world=1)
    _, two = train(make_cfg(tmp_path / "two", kind, *extra), world=2)
    assert shas(one) == shas(two)
    assert len(set(shas(one))) == GENS + 1, "the adapter must move every generation"
    assert [r["reward_mean"] for r in one[1:]] == [r["reward_mean"] for r in two[1:]]


@pytest.mark.parametrize("stop_at", range(1, GENS))
@pytest.mark.parametrize("options", [[], CMA_OPTIONS["cma_es:antithetic_momentum"]], ids=["default", "antithetic_momentum"])
def test_preempt_at_every_generation_then_resume_on_another_world_size(stop_at, options, tmp_path):
    _, reference = train(make_cfg(tmp_path / "ref", "cma_es", *options), world=1)
    cfg = make_cfg(tmp_path / "run", "cma_es", *options)
    codes, _ = train(cfg, world=2, stop_at=stop_at)
    assert codes == [EXIT_PREEMPTED] * 2
    assert CheckpointManager(cfg.run.run_dir).latest()["generation"] == stop_at
    codes, resumed = train(cfg, world=1, resume=True)
    assert codes == [0]
    assert [r["generation"] for r in resumed] == list(range(GENS + 1))  # each line once
    assert shas(resumed) == shas(reference)


def test_resume_refuses_another_base_model(tmp_path):
    cfg = make_cfg(tmp_path / "run")
    train(cfg, world=1, stop_at=2)
    with pytest.raises(config.ConfigError, match="base model weights differ"):
        train(cfg, world=1, dim=7, resume=True)  # fake_parts(dim=7) has another fingerprint


def test_bytes_per_generation_are_scalars_only_and_do_not_grow_with_the_space(tmp_path):
    small = train(make_cfg(tmp_path / "small"), world=2, dim=6)[1]
    large = train(make_cfg(tmp_path / "large"), world=2, dim=6000)[1]
    lam = 8
    for a, b in zip(small[1:], large[1:]):
        assert a["bytes_sent"] == b["bytes_sent"]
        heldout = 8 + 8 * 4 if "heldout_reward" in a else 0  # one float and 4 fault counts
        checksum = 8 if a["generation"] % 2 == 0 else 0
        # the reward vector with the token count and 4 fault counts, then the stop code
        assert a["bytes_sent"] == 8 * (lam + 1 + 4) + 4 + checksum + heldout
        assert a["bytes_sent"] - heldout <= 16 * lam + 64
    assert np.isclose(sum(r["bytes_sent"] for r in small[1:]), sum(r["bytes_sent"] for r in large[1:]))


def flatten_kind_options(cfg_dict: dict) -> dict:
    """The layout of configs saved before kinds had sub-sections: the keys that lived flat then are flat
    again, and the keys added since (ADDED_KEYS) are absent."""
    from essa_hpc.config.schema import ADDED_KEYS, MOVED_KEYS

    out = {k: {kk: dict(vv) if isinstance(vv, dict) else vv for kk, vv in v.items()} for k, v in cfg_dict.items()}
    for section, kind, key in ADDED_KEYS:
        out[section][kind].pop(key)
    for section, moved in MOVED_KEYS.items():
        for key, kind in moved.items():
            out[section][key] = out[section][kind].pop(key)
    return out


def test_a_checkpoint_with_the_earlier_flat_config_layout_resumes(tmp_path):
    """Such a checkpoint ran under the earlier tie rule (index), which it keeps: resumed with today's
    default config, it continues exactly under its own rule."""
    from essa_hpc import checkpoint

    earlier_rule = "strategy.cma_es.tie_weights=index"
    _, reference = train(make_cfg(tmp_path / "ref", "cma_es", earlier_rule), world=1)
    cfg = make_cfg(tmp_path / "run", "cma_es", earlier_rule)
    train(cfg, world=1, stop_at=3)
    path = checkpoint.checkpoint_path(tmp_path / "run" / "checkpoints", 3)
    saved = checkpoint.load(path)
    legacy = flatten_kind_options(saved["config"])
    assert "covariance" in legacy["strategy"] and "tie_weights" not in legacy["strategy"]["cma_es"]
    path.write_bytes(checkpoint.file_image(3, saved["state"], legacy))
    today = make_cfg(tmp_path / "run")  # tie_weights left at today's default, average
    codes, resumed = train(today, world=2, resume=True)
    assert codes == [0, 0] and shas(resumed) == shas(reference)
    assert today.strategy.cma_es.tie_weights == "index"  # the run went on under the rule it started with


def test_a_checkpoint_of_an_unknown_format_is_refused_in_one_line(tmp_path):
    import h5py

    cfg = make_cfg(tmp_path / "run")
    train(cfg, world=1, stop_at=2)
    for gen in (1, 2):
        with h5py.File(tmp_path / "run" / "checkpoints" / f"ckpt_{gen:06d}.h5", "r+") as f:
            f.attrs["format_version"] = 9
    with pytest.raises(config.ConfigError) as err:
        CheckpointManager(cfg.run.run_dir).find_resume(cfg, "must")
    assert "no valid checkpoint" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("change", ["strategy.population=10", "run.seed=5", "space.rank=2", "strategy.mirrored=false",
                                    "model.name=tiny-random:64x2", "strategy.cma_es.covariance=full",
                                    "task.arithmetic.digits=2"])
def test_a_non_resumable_change_is_refused_naming_the_key(change, tmp_path):
    train(make_cfg(tmp_path / "run"), world=1, stop_at=1)
    changed = make_cfg(tmp_path / "run", "cma_es", change)
    with pytest.raises(config.ConfigError, match=rf"non-resumable settings changed \({change.split('=')[0]}:"):
        CheckpointManager(changed.run.run_dir).find_resume(changed, "auto")


def test_resumable_changes_and_other_kinds_options_resume(tmp_path):
    train(make_cfg(tmp_path / "run"), world=1, stop_at=1)
    changed = make_cfg(tmp_path / "run", "cma_es", "strategy.sigma0=0.7", "strategy.open_es.learning_rate=0.9",
                       "run.eval_every=1", "strategy.cma_es.ties=rank")
    assert CheckpointManager(changed.run.run_dir).find_resume(changed, "auto")["generation"] == 1


def _noise_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "mostly noise" in r.getMessage()]


def test_a_tiny_sigma_run_warns_and_a_healthy_one_does_not(tmp_path, caplog):
    # 16 mirrored pairs in 6 dimensions: enough directions per update for the halves to agree above chance
    window = ["run.generations=12", "run.signal_window=8", "run.eval_every=0", "strategy.population=32"]
    with caplog.at_level(logging.WARNING, logger="essa_hpc.trainer"):
        _, tiny = train(make_cfg(tmp_path / "tiny", "cma_es", "strategy.sigma0=1e-9", *window), world=2)
    assert len(_noise_warnings(caplog)) == 1, _noise_warnings(caplog)  # rank 0 alone, once
    assert all(r["tied_fraction"] == 1.0 and r["update_snr"] is None for r in tiny[1:])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="essa_hpc.trainer"):
        _, healthy = train(make_cfg(tmp_path / "healthy", "cma_es", *window), world=2)
    assert _noise_warnings(caplog) == []
    for r in healthy[1:]:
        assert {"distinct_rewards", "tied_fraction", "mirror_ties", "update_snr"} <= r.keys()
        assert r["mirror_ties"] is not None and r["distinct_rewards"] > 1


def test_the_progress_line_shows_ties_and_keeps_the_last_heldout_score(tmp_path, capsys):
    train(make_cfg(tmp_path / "run", "cma_es", "run.progress=true", "run.eval_every=2"), world=1)
    err = capsys.readouterr().err
    assert "tied=" in err
    # generation 3 is not evaluated: its line still shows generation 2's score, with the generation
    lines = [part for part in err.replace("\r", "\n").splitlines() if " 3/5 " in part]
    assert lines and "@g2" in lines[-1], err[-2000:]
