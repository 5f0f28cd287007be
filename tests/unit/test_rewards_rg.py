"""reasoning-gym adapter: offline generation, its scorers, the eval guard, name validation."""
import builtins

import pytest

from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.config.tasks import check_task_config
from essa_hpc.tasks import build_task
from essa_hpc.tasks.safe_expr import looks_safe_to_eval

pytest.importorskip("reasoning_gym", reason="reasoning-gym is the optional 'tasks' extra")


@pytest.fixture(scope="module", params=["rg:gsm_symbolic", "rg:countdown"])
def task(request):
    cfg = TaskConfig(kind=request.param, heldout_size=8)
    check_task_config(cfg)
    return build_task(cfg, run_seed=0)


def test_loads_offline_and_scores_a_correct_answer_one(task):
    heldout = task.heldout()
    assert len(heldout) == 8 and len(task.train_pool()) > 1000
    for item in heldout + [task.train_pool()[i] for i in (0, 17, 999)]:
        assert item["prompt"].endswith("</answer> tags.") and "chat" not in item
        assert task.score(item, f"Thinking...\n<answer>{item['answer']}</answer>") == 1.0
        assert task.score(item, task.sft_target(item)) == 1.0
        assert task.score(item, "<answer>-12345</answer>") == 0.0
        assert task.score(item, f"{item['answer']} but no tags") == 0.0


def test_last_answer_counts_and_score_is_exact(task):
    item = task.heldout()[0]
    assert task.score(item, f"<answer>-1</answer> <answer>{item['answer']}</answer>") == 1.0
    assert task.score(item, f"<answer>{item['answer']}</answer> <answer>-1</answer>") == 0.0
    for completion in ["", "<answer></answer>", "<answer>-1</answer>", "x" * 1000]:
        assert task.score(item, completion) in (0.0, 1.0)
        assert 0.0 <= task.reward(item, completion) < 1.0


def test_heldout_is_fixed_and_kept_out_of_training(task):
    again = build_task(TaskConfig(kind=task.cfg.kind, heldout_size=8), run_seed=5)
    assert [it["prompt"] for it in again.heldout()] == [it["prompt"] for it in task.heldout()]
    held = {it["prompt"] for it in task.heldout()}
    assert not held & {task.train_pool()[i]["prompt"] for i in range(100)}
    assert task.minibatch(2, 4) == build_task(TaskConfig(kind=task.cfg.kind, heldout_size=8), 0).minibatch(2, 4)


@pytest.mark.parametrize("answer", ["__import__('os').system('echo hi')", "9**9**9", "2**10**10",
                                    "().__class__.__bases__", "open('/etc/passwd').read()", "'a'*10**9",
                                    "lambda: 1", "[0]*999999999", "exec('1')", "x" * 20_000])
def test_hostile_answers_never_reach_eval(task, answer, monkeypatch):
    seen = []
    real_eval = builtins.eval
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: seen.append(a[0]) or real_eval(*a, **k))
    assert task.reward(task.heldout()[0], f"<answer>{answer}</answer>") == 0.0
    assert seen == []


def test_guard_lets_ordinary_answers_through():
    for ok in ["94*4 - 61 - 6", "-896*x**4 + 2240*x**3 + 3584*x", "x**(1/2)", "[1, 2, 3]", "True", "cat dog",
               "sin(x)**2 + C", "(x**2)**3"]:
        assert looks_safe_to_eval(ok), ok
    assert not looks_safe_to_eval("cat dog", must_parse=True)


@pytest.mark.parametrize("kind, message", [
    ("rg:gsm_symbolc", "did you mean rg:gsm_symbolic"),
    ("rg:no_such_thing", "exist, e.g. rg:"),
    ("rg:", "no reasoning-gym dataset ''"),
])
def test_unknown_names_are_config_errors(kind, message):
    with pytest.raises(ConfigError, match=message):
        check_task_config(TaskConfig(kind=kind))


def test_any_registered_name_validates():
    from reasoning_gym.factory import DATASETS
    for name in ["basic_arithmetic", "puzzle24", "polynomial_multiplication", sorted(DATASETS)[-1]]:
        check_task_config(TaskConfig(kind=f"rg:{name}"))
    with pytest.raises(ConfigError, match="do not apply"):
        check_task_config(TaskConfig(kind="rg:countdown", data_path="x"))
