"""The levers for a fair tuning budget: a validation split disjoint from training and held-out,
best-on-validation selection that survives preemption, and a mini-batch that grows late."""
import json

import numpy as np
import pytest
from fakes import PreemptAt, fake_parts, run_ranks
from helpers import TINY

from essa_hpc import config
from essa_hpc.checkpoint.manager import CheckpointManager
from essa_hpc.config.validation import validate
from essa_hpc.errors import ConfigError
from essa_hpc.runtime.preempt import EXIT_PREEMPTED
from essa_hpc.selection import BestOnValidation
from essa_hpc.tasks import build_task
from essa_hpc.trainer import Trainer

GENS = 8


def make_cfg(run_dir, *extra):
    cfg = config.load(TINY, [f"run.generations={GENS}", "run.eval_every=1", "task.validation_size=10",
                             "strategy.kind=open_es", *extra])
    cfg.run.run_dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def train(cfg, world=1, stop_at=None, resume=False):
    found = CheckpointManager(cfg.run.run_dir).find_resume(cfg, "must") if resume else None

    def rank(comm):
        t = Trainer(cfg, comm, cfg.run.run_dir, fake_parts(cfg.run.seed, validation_size=cfg.task.validation_size),
                    found=found, preempt=PreemptAt(stop_at) if stop_at else None)
        return t.run(), t.metrics.records

    results = run_ranks(world, rank)
    return [c for c, _ in results], results[0][1]


def test_validation_is_disjoint_from_training_and_heldout_and_fixed_across_seeds():
    cfgs = [config.load(TINY, ["task.validation_size=40", f"run.seed={s}"]) for s in (0, 7)]
    tasks = [build_task(c.task, c.run.seed) for c in cfgs]
    key = lambda items: {it["prompt"] for it in items}  # noqa: E731
    val, train_items, held = key(tasks[0].validation()), key(tasks[0].training_items()), key(tasks[0].heldout())
    assert len(val) == 40 and not val & train_items and not val & held
    assert key(tasks[1].validation()) == val  # every seed and tuning arm is scored on the same items
    drawn = set().union(*(key(tasks[0].minibatch(g, 16)) for g in range(200)))
    assert not drawn & val and drawn <= train_items


def test_no_validation_set_leaves_the_minibatch_stream_as_it_was():
    cfg = config.load(TINY, [])
    task = build_task(cfg.task, 0)
    assert task.validation() == [] and task.training_items() == task.train_pool()


def test_best_on_validation_keeps_the_first_of_equal_scores_and_round_trips():
    best = BestOnValidation()
    assert best.offer(0, 0.5, np.ones(3)) and not best.offer(1, 0.5, np.zeros(3)) and best.offer(2, 0.6, np.zeros(3))
    copy = BestOnValidation()
    copy.load_state_dict(best.state_dict())
    assert (copy.generation, copy.score) == (2, 0.6) and np.array_equal(copy.vector, np.zeros(3))
    copy.load_state_dict({})  # a checkpoint from before selection existed
    assert copy.vector is None and copy.state_dict() == {"generation": -1}


def test_select_best_exports_the_best_validated_mean(tmp_path):
    cfg = make_cfg(tmp_path / "run", "run.select_best=true")
    codes, records = train(cfg)
    assert codes == [0]
    scores = [r["validation_reward"] for r in records]
    assert len(scores) == GENS + 1  # start and every generation (run.eval_every=1)
    best_gen = int(np.argmax(scores))  # argmax: the first of equal scores, as BestOnValidation keeps
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["selected_generation"] == best_gen == records[-1]["best_generation"]
    assert summary["selected_validation_reward"] == max(scores) == summary["validation_best"]
    assert summary["selected_adapter_sha256"] == records[best_gen]["adapter_sha256"]
    last = np.load(tmp_path / "run" / "adapter_last" / "vector.npy")
    chosen = np.load(tmp_path / "run" / "adapter" / "vector.npy")
    assert (best_gen == GENS) == np.array_equal(last, chosen)


@pytest.mark.parametrize("stop_at", [1, 3, 6])
def test_selection_survives_preemption_on_another_world_size(stop_at, tmp_path):
    _, reference = train(make_cfg(tmp_path / "ref", "run.select_best=true"))
    ref = json.loads((tmp_path / "ref" / "summary.json").read_text())
    cfg = make_cfg(tmp_path / "run", "run.select_best=true")
    assert train(cfg, world=2, stop_at=stop_at)[0] == [EXIT_PREEMPTED] * 2
    codes, resumed = train(cfg, world=1, resume=True)
    assert codes == [0] and [r["best_generation"] for r in resumed] == [r["best_generation"] for r in reference]
    got = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert got["selected_adapter_sha256"] == ref["selected_adapter_sha256"]


def test_the_minibatch_grows_from_the_configured_generation(tmp_path):
    cfg = make_cfg(tmp_path / "run", "task.batch_size=4", "task.late_batch_size=12", "task.late_batch_from=0.5")
    _, records = train(cfg)
    lam = cfg.strategy.population
    assert [r["samples"] // lam for r in records[1:]] == [4] * 4 + [12] * 4
    # a budgeted run has no known length: a whole number > 1 names the generation itself
    cfg = make_cfg(tmp_path / "run3", "task.batch_size=4", "task.late_batch_size=12", "task.late_batch_from=3")
    _, records = train(cfg)
    assert [r["samples"] // lam for r in records[1:]] == [4] * 2 + [12] * 6


@pytest.mark.parametrize("extra, message", [
    (["run.select_best=true", "task.validation_size=0"], "needs a validation set"),
    (["run.select_best=true", "space.kind=full", "strategy.kind=open_es"], "seed-addressed"),
    (["task.late_batch_from=1.5"], "task.late_batch_from must be a fraction in [0, 1]"),
    (["task.late_batch_from=-2"], "task.late_batch_from must be a fraction in [0, 1]"),
    (["task.validation_size=-1"], "task.validation_size must be >= 0"),
])
def test_bad_lever_settings_are_one_line_errors(extra, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(config.load(TINY, ["task.validation_size=10", *extra]))


def test_a_wall_time_budget_ends_the_run_early_on_every_rank_and_stays_finished(tmp_path):
    cfg = make_cfg(tmp_path / "run", "run.generations=10000", "run.budget_s=0.3", "run.eval_every=0")
    codes, records = train(cfg, world=2)
    assert codes == [0, 0]
    assert 1 <= records[-1]["generation"] < 10000 and records[-1]["budget_stop"]
    es = sum(r.get("step_s", 0.0) - r.get("heldout_s", 0.0) for r in records)
    assert es >= 0.3
    # stopped at the first step over budget, as the trainer counted it at each step's check (the
    # record's step_s is timed a little later, so its sum may pass 0.3 one step before the check did)
    used = [r["budget_used_s"] for r in records if "budget_used_s" in r]
    assert len(used) == len(records) - 1 and used == sorted(used)
    assert ([0.0] + used)[-2] < 0.3 <= used[-1]  # a loaded machine may spend the budget in generation 1
    assert "heldout_reward" in records[-1]  # the last generation is evaluated, as a finished run's is
    assert (tmp_path / "run" / "adapter" / "vector.npy").is_file()
    again_codes, again = train(cfg, world=1, resume=True)
    assert again_codes == [0] and again[-1]["generation"] == records[-1]["generation"]
