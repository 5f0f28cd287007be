"""Gradient baselines through TRL (`essa-hpc baseline grpo|trdpo|eso`) on the tiny model, one thread."""
import json

import pytest
import torch
from helpers import TINY, essa, metrics
from safetensors.torch import load_file

from essa_hpc.config.baselines import BASELINES

FAST = ["baseline.steps=3", "baseline.eval_every=2", "task.heldout_size=16"]


def check_metrics(run, method: str, steps: int = 3, completions_per_step: int | None = None) -> list[dict]:
    rows = metrics(run)
    assert [r["generation"] for r in rows] == list(range(steps + 1))
    assert {r["method"] for r in rows} == {method}
    assert rows[0]["wall_s"] == 0.0 and rows[0]["samples"] == 0 and 0.0 <= rows[0]["heldout_reward"] <= 1.0
    assert [r["generation"] for r in rows[1:] if "heldout_reward" in r] == [2, 3]  # eval_every=2 and the last step
    walls, samples = [r["wall_s"] for r in rows], [r["samples"] for r in rows]
    assert walls == sorted(walls) and walls[-1] > 0
    assert samples == sorted(samples) and samples[-1] > 0
    if completions_per_step is not None:  # every step generated exactly one batch of completions
        assert samples == [completions_per_step * g for g in range(steps + 1)]
    for r in rows[1:]:
        assert r["loss"] == r["loss"] and r["step_s"] > 0  # not NaN
        assert r["eval_wall_s"] <= r["wall_s"]
    assert (run / "config.yaml").is_file()
    return rows


@pytest.fixture(scope="module")
def sft_adapter(tmp_path_factory):
    """A deliberately large SFT step, so 'started from it' is visible in the weights."""
    out = tmp_path_factory.mktemp("sft") / "adapter"
    essa(["sft", str(TINY), "sft.steps=3", "sft.batch_size=4", "sft.learning_rate=0.05", "--out", str(out),
          "--no-eval"])
    return out


def lora_b(path) -> dict:
    return {k: v for k, v in load_file(str(path / "adapter_model.safetensors")).items() if "lora_B" in k}


def test_grpo_from_sft_adapter_end_to_end(tmp_path, sft_adapter):
    run = tmp_path / "grpo"
    out = essa(["baseline", "grpo", str(TINY), *FAST, "baseline.batch_size=8", "baseline.num_generations=4",
                "baseline.learning_rate=1e-4", f"space.init={sft_adapter}", "--run-dir", str(run)])
    rows = check_metrics(run, "grpo", completions_per_step=8)
    assert all(0.0 <= r["reward_mean"] <= 1.0 for r in rows[1:])  # dense arithmetic reward
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["heldout_reward"] == rows[-1]["heldout_reward"]
    cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and set(cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    # it trained the SFT adapter: close to it (3 Adam steps of 1e-4), far from a fresh LoRA (B = 0)
    start, end = lora_b(sft_adapter), lora_b(run / "adapter")
    assert start.keys() == end.keys() and start
    assert max(float((end[k] - start[k]).abs().max()) for k in start) < 2e-3
    assert max(float(start[k].abs().max()) for k in start) > 0.05
    assert any(not torch.equal(end[k], start[k]) for k in start)
    # the exported PEFT adapter, reloaded by `essa-hpc eval`, scores what the run's last line reports
    scored = essa(["eval", str(TINY), "task.heldout_size=16", "--adapter", str(run / "adapter")])
    assert json.loads(scored.stdout)["heldout_reward"] == rows[-1]["heldout_reward"]


def test_grpo_stops_at_its_wall_time_budget_and_scores_validation(tmp_path):
    """Tuning arms at equal wall time: baseline.budget_s ends the run early, its last step evaluated."""
    run = tmp_path / "grpo"
    out = essa(["baseline", "grpo", str(TINY), "baseline.steps=10000", "baseline.eval_every=0", "task.heldout_size=8",
                "task.validation_size=8", "baseline.budget_s=1.5", "baseline.batch_size=8",
                "baseline.num_generations=4", "--run-dir", str(run)])
    rows = metrics(run)
    steps = rows[-1]["generation"]
    assert 1 <= steps < 10000 and rows[-1]["budget_stop"] and json.loads(out.stdout.splitlines()[-1])["steps"] == steps
    assert rows[-1]["wall_s"] - rows[-1]["eval_wall_s"] >= 1.5
    assert [r["generation"] for r in rows if "validation_reward" in r] == [0, steps]
    assert all(0.0 <= r["validation_reward"] <= 1.0 for r in rows if "validation_reward" in r)


def test_trdpo_pairs_ref_sync_and_full_model(tmp_path):
    from essa_hpc import config
    from essa_hpc.tasks import build_task

    run = tmp_path / "trdpo"
    essa(["baseline", "trdpo", str(TINY), *FAST, "baseline.batch_size=4", "baseline.trdpo.tau=2", "baseline.trdpo.k=4",
          "baseline.learning_rate=1e-3", "--run-dir", str(run)])
    rows = check_metrics(run, "trdpo")
    assert {r["samples"] for r in rows[1:]} == {3 * 4 * 4}  # steps x batch_size prompts x k, sampled up front
    # the reference moved at step tau=2 (soft update), not at step 1 or 3
    fp = {r["generation"]: r["ref_fingerprint"] for r in rows if "ref_fingerprint" in r}
    assert fp[0] != fp[2] and fp[2] == fp[3]
    # every pair prefers the completion with the higher task reward (re-scored here)
    task = build_task(config.load(TINY).task, 0)
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert pairs
    for p in pairs:
        chosen, rejected = task.reward(p["item"], p["chosen"]), task.reward(p["item"], p["rejected"])
        assert chosen > rejected
        assert (chosen, rejected) == (p["chosen_reward"], p["rejected_reward"])
    assert (run / "adapter" / "config.json").is_file() and (run / "adapter" / "model.safetensors").is_file()


def test_eso_end_to_end(tmp_path):
    run = tmp_path / "eso"
    essa(["baseline", "eso", str(TINY), *FAST, "baseline.batch_size=8", "baseline.num_generations=4",
          "baseline.eso.temperatures=[0.5,1.5]", "baseline.learning_rate=1e-3", "--run-dir", str(run)])
    rows = check_metrics(run, "eso", completions_per_step=8)
    assert all(r["sft_loss"] > 0 and "reward_mean" in r for r in rows[1:])
    assert (run / "adapter" / "adapter_config.json").is_file()


def test_eso_draws_each_group_over_its_temperatures(tmp_path, tiny_cfg):
    """Rows 0, 2 of a group of 4 at T~0 reproduce greedy decoding; rows 1, 3 at T=50 do not."""
    from essa_hpc.assemble import build_parts
    from essa_hpc.baselines.eso import ESOTrainer
    from essa_hpc.baselines.grpo import build_trainer, grpo_args

    cfg = tiny_cfg
    cfg.baseline.steps, cfg.baseline.batch_size, cfg.baseline.num_generations = 1, 8, 4
    cfg.baseline.eso.temperatures = [1e-4, 50.0]
    cfg.task.heldout_size = 4
    parts = build_parts(cfg, with_space=False)
    args = grpo_args(cfg, tmp_path, loss_type="dr_grpo", scale_rewards="none", temperature=1.0)
    trainer, _ = build_trainer(cfg, parts, tmp_path, "eso", trainer_cls=ESOTrainer, args=args,
                               temperatures=cfg.baseline.eso.temperatures, sft_weight=1.0,
                               sft_context=(parts.task, parts.rollout, parts.tokenizer))
    items = parts.task.train_pool()[:2]
    ids = [parts.rollout.token_ids(it) for it in items for _ in range(4)]
    out, _ = trainer._generate_single_turn(ids, None, {}, 4)
    texts = [parts.tokenizer.decode(c, skip_special_tokens=True) for c in out]
    greedy = parts.rollout.generate(items).texts
    for p in range(2):
        group = texts[4 * p: 4 * p + 4]
        assert group[0] == group[2] == greedy[p]
        assert not (group[1] == group[3] == greedy[p])
    assert trainer.generation_config.temperature == 1.0  # restored


def test_reward_adapter_scores_the_item_of_each_row(tiny_cfg):
    from essa_hpc.baselines.prompts import prompt_dataset
    from essa_hpc.baselines.task_reward import TaskReward, completion_text
    from essa_hpc.generation.rollout import HFRollout
    from essa_hpc.model import tiny_tokenizer
    from essa_hpc.rewards import RewardRunner
    from essa_hpc.tasks import build_task

    task = build_task(tiny_cfg.task, 0)
    items = task.train_pool()[:3]
    rollout = HFRollout(None, tiny_tokenizer(), tiny_cfg)
    ds = prompt_dataset(items, rollout.prompts)
    assert ds.column_names == ["prompt", "item_index"] and ds["item_index"] == [0, 1, 2]
    assert ds["prompt"] == [rollout.render(it) for it in items] and "<|im_start|>assistant" in ds["prompt"][0]
    # what GRPOTrainer passes: every column but `prompt`, one entry per completion, plus its own extras
    extras = dict(trainer_state=object(), log_extra=lambda *a: None, log_metric=lambda *a: None)
    completions = [str(items[0]["answer"]), "no number", [{"role": "assistant", "content": str(items[2]["answer"])}]]
    reward = TaskReward(RewardRunner(task.reward, 1.0), items)
    got = reward(ds["prompt"], completions, item_index=ds["item_index"], **extras)
    assert got == [task.reward(it, completion_text(c)) for it, c in zip(items, completions)]
    assert got[0] == 1.0 and got[1] < 1.0 and got[2] == 1.0
    # the item is the one item_index names: point every row at item 1, the reward follows
    answer = str(items[1]["answer"])
    assert reward(ds["prompt"], [answer] * 3, item_index=[1, 1, 1], **extras) == [1.0, 1.0, 1.0]
    assert reward.samples == 6 and reward.pop_mean() == pytest.approx((sum(got) + 3) / 6)
    assert reward.pop_mean() is None
    # a reward that raises scores 0 instead of stopping training
    boom = TaskReward(RewardRunner(lambda item, c: 1 / 0, 1.0), items)
    assert boom(ds["prompt"], ["1", "2", "3"], item_index=[0, 1, 2]) == [0.0, 0.0, 0.0]


def test_trdpo_samples_are_the_rollouts_own(tiny_cfg):
    """TR-DPO's pair samples are HFRollout.generate's, chunk j seeded by ("trdpo_pairs", 0, j): the same
    tokens for the same seed, ids cut after the first EOS, text the rollout's decoding of them."""
    from essa_hpc.assemble import build_parts
    from essa_hpc.baselines.trdpo import sample_completions
    from essa_hpc.runtime import seeding

    parts = build_parts(tiny_cfg, with_space=False)
    items, eos = parts.task.minibatch(0, 3), parts.tokenizer.eos_token_id
    samples = sample_completions(parts.rollout, items, 4, 1.0, 6, 5, seed=0)
    assert samples == sample_completions(parts.rollout, items, 4, 1.0, 6, 5, seed=0)
    assert [len(g) for g in samples] == [4, 4, 4]
    flat = [s for g in samples for s in g]
    chunk = parts.rollout.generate([it for it in items for _ in range(4)][5:10],
                                   sample_seed=seeding.int_seed(0, "trdpo_pairs", 0, 1), temperature=1.0,
                                   max_new_tokens=6)
    assert flat[5:10] == list(zip(chunk.token_ids, chunk.texts))
    for ids, text in flat:
        assert 0 < len(ids) <= 6 and (eos not in ids or ids.index(eos) == len(ids) - 1)
        assert text == parts.tokenizer.decode(ids, skip_special_tokens=True)
    assert sample_completions(parts.rollout, items, 4, 1.0, 6, 5, seed=1) != samples


@pytest.mark.parametrize("args, message", [
    (["baseline", "nope", str(TINY)], "baseline method='nope' is not one of: " + ", ".join(BASELINES.names())),
    (["baseline", "grpo", str(TINY), "baseline.batch_size=6", "baseline.num_generations=4"], "multiple of"),
    (["baseline", "trdpo", str(TINY), "baseline.trdpo.alpha=1.5"], "baseline.trdpo.alpha"),
    (["baseline", "grpo", str(TINY), "baseline.grpo.loss_type=ppo"], "baseline.grpo.loss_type"),
    (["baseline", "eso", str(TINY), "baseline.eso.temperatures=[0.5,1,2]", "baseline.num_generations=2",
      "baseline.batch_size=4"], "temperatures"),
    (["baseline", "trdpo", str(TINY), "model.quantize=nf4"], "baseline trdpo trains the full model"),
    (["baseline", "grpo", str(TINY), "model.quantize=int8"], "QLoRA: model.quantize must be one of nf4, "),
])
def test_bad_name_or_config_fails_fast_in_one_line(tmp_path, args, message):
    run = tmp_path / "never"
    proc = essa([*args, "--run-dir", str(run)], check=False, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("essa-hpc baseline: error:")
    assert not run.exists()  # nothing was written: it failed before logging, the run dir or the model
