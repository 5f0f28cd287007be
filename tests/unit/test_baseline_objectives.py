"""The seeds' update rules, checked against numbers this file computes itself, on the tiny model:

- TR-DPO (arXiv 2404.09656): the reference policy moves by the paper's rules as the project runs them
  through TRL's ``sync_ref_model``. The paper writes a soft rule, ref <- alpha*theta + (1-alpha)*ref, and a
  hard rule, ref <- theta every tau steps; TRL runs one rule, ref <- alpha*theta + (1-alpha)*ref every tau
  steps, which is the soft rule at tau=1 and the hard rule at alpha=1. Each setting is replayed here in
  float64 from the recorded policy weights and compared with the reference TRL kept.
- ESO: the gradient of the trainer's loss equals the gradient of the objective as described,
  -(1/(B*L_max)) * sum_i (r_i - mean_group(r)) * log pi(y_i|x_i) + sft_weight * NLL(gold|x),
  written here from the model's logits and the task's own reward.

Each check also runs against a broken update (TRL's reference sync removed; ESO without its SFT term or
with GRPO's std-scaled advantages) and must then fail: the checks can tell.
"""
import numpy as np
import pytest
import torch

TOL = 1e-6  # float32 arithmetic against the float64 replay


# ------------------------------------------------------------------ TR-DPO's reference update

def trdpo_trajectory(cfg, tmp_path, alpha: float, tau: int, steps: int, remove_sync: bool = False):
    """Train TR-DPO for ``steps`` steps; return the policy and reference weights (float64) at the start
    and after every step, as the trainer holds them once its step-end callbacks have run."""
    from transformers import TrainerCallback
    from trl.trainer.callbacks import SyncRefModelCallback

    from essa_hpc.assemble import build_parts
    from essa_hpc.baselines.trdpo import build_trdpo

    cfg.baseline.steps, cfg.baseline.batch_size, cfg.baseline.learning_rate = steps, 2, 1e-3
    cfg.baseline.eval_every, cfg.task.heldout_size = 0, 4
    cfg.baseline.trdpo.alpha, cfg.baseline.trdpo.tau, cfg.baseline.trdpo.k = alpha, tau, 4
    cfg.baseline.trdpo.prompts = 16  # pairs enough for every step
    parts = build_parts(cfg, with_space=False)
    trainer, _, pairs = build_trdpo(cfg, parts, tmp_path)
    assert len(pairs) >= 2, "the tiny model's samples gave too few preference pairs to train on"
    if remove_sync:
        trainer.remove_callback(SyncRefModelCallback)

    def snapshot(model) -> list[np.ndarray]:
        return [p.detach().double().numpy().copy() for p in model.parameters()]

    policy, ref = [], []

    class Record(TrainerCallback):  # added after TRL's sync callback, so it sees the reference once moved
        def on_train_begin(self, args, state, control, **kw):
            policy.append(snapshot(trainer.model))
            ref.append(snapshot(trainer.ref_model))

        def on_step_end(self, args, state, control, **kw):
            policy.append(snapshot(trainer.model))
            ref.append(snapshot(trainer.ref_model))

    trainer.add_callback(Record())
    trainer.train()
    assert len(policy) == steps + 1
    return policy, ref


def replayed_reference(policy, alpha: float, tau: int) -> list[list[np.ndarray]]:
    """The paper's update, in float64: the reference starts as the starting policy and, after step s with
    s % tau == 0, becomes alpha * theta_s + (1 - alpha) * ref."""
    ref = [[w.copy() for w in policy[0]]]
    for s in range(1, len(policy)):
        prev = ref[-1]
        ref.append([alpha * t + (1 - alpha) * r for t, r in zip(policy[s], prev)] if s % tau == 0 else prev)
    return ref


def max_deviation(a, b) -> float:
    return max(float(np.abs(x - y).max()) for step_a, step_b in zip(a, b) for x, y in zip(step_a, step_b))


@pytest.mark.parametrize("alpha, tau", [(0.3, 1), (1.0, 2), (0.6, 2)], ids=["soft-every-step", "hard", "trl-mixed"])
def test_trdpo_reference_follows_the_papers_rule(tiny_cfg, tmp_path, alpha, tau):
    steps = 4
    policy, ref = trdpo_trajectory(tiny_cfg, tmp_path, alpha, tau, steps)
    expected = replayed_reference(policy, alpha, tau)
    assert max_deviation(ref, expected) < TOL
    # the check has something to see: the policy moved, and a reference frozen at the start is far off
    frozen = [policy[0]] * (steps + 1)
    assert max_deviation(expected, frozen) > 1000 * TOL
    if alpha == 1.0:  # the hard rule copies the policy at every tau-th step
        assert max_deviation([ref[tau]], [policy[tau]]) == 0.0


def test_trdpo_reference_check_fails_without_the_update(tiny_cfg, tmp_path):
    alpha, tau = 0.6, 2
    policy, ref = trdpo_trajectory(tiny_cfg, tmp_path, alpha, tau, steps=2, remove_sync=True)
    assert max_deviation(ref, replayed_reference(policy, alpha, tau)) > 1000 * TOL
    assert max_deviation(ref, [policy[0]] * 3) == 0.0  # nothing moved the reference


# ------------------------------------------------------------------ ESO's objective

def eso_batch(cfg, tmp_path, sft_weight: float, scale_rewards: str = "none"):
    """An ESOTrainer on the tiny model and one scored batch of 2 prompts x 4 samples (temperatures 0.7, 1.5)."""
    from essa_hpc.assemble import build_parts
    from essa_hpc.baselines.eso import ESOTrainer
    from essa_hpc.baselines.grpo import build_trainer, grpo_args

    cfg.baseline.steps, cfg.baseline.batch_size, cfg.baseline.num_generations = 1, 8, 4
    cfg.baseline.eso.temperatures, cfg.task.heldout_size = [0.7, 1.5], 4
    parts = build_parts(cfg, with_space=False)
    args = grpo_args(cfg, tmp_path, loss_type="dr_grpo", scale_rewards=scale_rewards, beta=0.0, temperature=1.0)
    trainer, _ = build_trainer(cfg, parts, tmp_path, "eso", trainer_cls=ESOTrainer, args=args,
                               temperatures=cfg.baseline.eso.temperatures, sft_weight=sft_weight,
                               sft_context=(parts.task, parts.rollout, parts.tokenizer))
    trainer.current_gradient_accumulation_steps = 1
    rows = [trainer.train_dataset[i] for i in (0, 1) for _ in range(4)]
    torch.manual_seed(0)
    inputs = trainer._generate_and_score_completions(rows)
    return trainer, parts, rows, inputs


def trainable(model) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def described_objective(trainer, parts, rows, inputs, sft_weight: float) -> torch.Tensor:
    """ESO's loss as described, from the model's logits: the sampled completions, re-scored by the task."""
    from essa_hpc.sft import collate, sft_examples

    model, tok, task = trainer.model, parts.tokenizer, parts.task
    items = [trainer.baseline_items[int(r["item_index"])] for r in rows]
    comp, cmask = inputs["completion_ids"], inputs["completion_mask"]
    texts = tok.batch_decode([c[m.bool()] for c, m in zip(comp, cmask)], skip_special_tokens=True)
    rewards = torch.tensor([task.reward(it, t) for it, t in zip(items, texts)], dtype=torch.float64)
    group = rewards.view(-1, 4)
    advantages = (group - group.mean(dim=1, keepdim=True)).view(-1)
    assert advantages.abs().max() > 0, "every sample of both prompts scored alike: nothing to check"
    ids = torch.cat([inputs["prompt_ids"], comp], dim=1)
    mask = torch.cat([inputs["prompt_mask"], cmask], dim=1)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, -comp.size(1) - 1:-1].double()
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)
    seq_logp = (token_logp * cmask).sum(dim=1)
    reinforce = -(advantages * seq_logp).sum() / (len(rows) * trainer.max_completion_length)
    distinct = list(dict.fromkeys(int(r["item_index"]) for r in rows))
    gold_ids, gold_mask, labels = collate(sft_examples(task, parts.rollout.prompts, tok,
                                                       [trainer.baseline_items[i] for i in distinct]), tok.pad_token_id)
    gold_logits = model(input_ids=gold_ids, attention_mask=gold_mask).logits[:, :-1].double()
    target = labels[:, 1:]
    keep = target != -100
    nll = -torch.log_softmax(gold_logits, dim=-1)[keep].gather(-1, target[keep].unsqueeze(-1)).mean()
    return reinforce + sft_weight * nll


def gradient_gap(trainer, parts, rows, inputs, described_weight: float) -> float:
    params = trainable(trainer.model)
    got = torch.autograd.grad(trainer.compute_loss(trainer.model, inputs), params)
    want = torch.autograd.grad(described_objective(trainer, parts, rows, inputs, described_weight), params)
    scale = max(float(w.abs().max()) for w in want)
    assert scale > 1e-6, "the described objective has no gradient here: nothing to compare"
    return max(float((g.double() - w).abs().max()) for g, w in zip(got, want)) / scale


@pytest.mark.parametrize("sft_weight", [0.5, 0.0], ids=["with-sft", "reinforce-alone"])
def test_eso_gradient_is_the_described_objective(tiny_cfg, tmp_path, sft_weight):
    """With SFT weight 0 the policy-gradient part is compared alone: beside the SFT term it is small here."""
    trainer, parts, rows, inputs = eso_batch(tiny_cfg, tmp_path, sft_weight=sft_weight)
    trainer.model.eval()
    assert gradient_gap(trainer, parts, rows, inputs, described_weight=sft_weight) < 1e-4


@pytest.mark.parametrize("broken", ["no-sft-term", "std-scaled-advantages"])
def test_eso_check_fails_on_a_broken_objective(tiny_cfg, tmp_path, broken):
    weight, scale, described = (0.0, "none", 0.5) if broken == "no-sft-term" else (0.0, "group", 0.0)
    trainer, parts, rows, inputs = eso_batch(tiny_cfg, tmp_path, sft_weight=weight, scale_rewards=scale)
    trainer.model.eval()
    assert gradient_gap(trainer, parts, rows, inputs, described_weight=described) > 1e-2
