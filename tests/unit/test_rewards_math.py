"""MATH-style \\boxed{} grading with math-verify: extraction, equivalence, the bignum guards,
and coexistence with the RewardRunner's SIGALRM time limit."""
import json
import signal
import time
from pathlib import Path

import pytest

from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.rewards import RewardRunner
from essa_hpc.tasks.answers import last_boxed
from essa_hpc.tasks.math_task import MathTask, gold_answer, latex_too_big, math_equal

SHARED = Path(__file__).parents[2].parent / "shared" / "data" / "math_eval"
ROWS = [{"problem": f"Compute {i}+{i}.", "answer": str(2 * i)} for i in range(5)] + [
    {"problem": "Convert (0,3) to polar.", "answer": "\\left( 3, \\frac{\\pi}{2} \\right)"}]


def _task(tmp_path, rows=ROWS, **kw):
    path = tmp_path / "math.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return MathTask(TaskConfig(kind="math", data_path=str(path), heldout_size=2, **kw), 0)


@pytest.mark.parametrize("text, boxed", [
    ("so \\boxed{3}.", "3"), ("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{\\boxed{7}}", "7"), ("\\boxed{3} and \\boxed{4", "3"), ("\\fbox{5}", "5"),
    ("\\boxed {x^{2}}", "x^{2}"), ("no box 5", None), ("\\boxed{", None),
])
def test_last_boxed(text, boxed):
    assert last_boxed(text) == boxed


@pytest.mark.parametrize("gold, pred, equal", [
    ("18", "18", True), ("\\frac{1}{2}", "0.5", True), ("\\frac12", "\\dfrac{1}{2}", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True), ("\\sqrt{2}", "2^{\\frac{1}{2}}", True),
    ("x^2+1", "1+x^2", True), ("\\text{Evelyn}", "Evelyn", True), ("9.6", "9.6\n", True),
    ("2^{1009}", "2^{1009}", True), ("120", "5!", True), ("2", "\\sqrt[3]{8}", True),
    ("18", "19", False), ("\\frac{1}{2}", "\\frac{1}{3}", False), ("(1,2)", "(2,1)", False),
    ("3", "9^{9^{9}}", False), ("3", "10^{10^{6}} \\cdot 0", False), ("3", "((99^{99})^{99})^{99}", False),
    ("3", "\\binom{1000000}{500000}", False), ("3", "10000000!", False), ("3", "\\Gamma(10^{7})", False),
    ("3", "\\sum_{i=1}^{10^{9}} i", False), ("3", "\\sqrt[9^{9^9}]{2}", False), ("3", "__import__('os')", False),
])
def test_math_equal(gold, pred, equal):
    t0 = time.perf_counter()
    assert math_equal(gold, pred) is equal
    assert time.perf_counter() - t0 < 1.0


def test_latex_guard_keeps_ordinary_answers():
    for ok in ["2^{10}", "\\frac{x^2}{2}", "e^{-x^2}", "\\binom{10}{3}", "(3, \\frac{\\pi}{2})", "10^{5000}"]:
        assert not latex_too_big(ok), ok


def test_task_scores_boxed_answers(tmp_path):
    task = _task(tmp_path)
    polar = task.heldout()[1]
    assert polar["prompt"].endswith("\\boxed{}.") and len(task.train_pool()) == 4
    assert task.score(polar, "Thus $\\boxed{(3, \\frac{\\pi}{2})}$.") == 1.0
    assert task.score(polar, "(3, pi/2) without a box") == 0.0
    assert task.score(polar, "\\boxed{(3, \\pi)}") == 0.0
    assert task.reward(polar, task.sft_target(polar)) == 1.0


def test_reward_works_under_the_reward_runner(tmp_path):
    task = _task(tmp_path)
    item = task.train_pool()[1]  # answer 2
    runner = RewardRunner(task.reward, timeout_s=2.0)
    before = signal.getsignal(signal.SIGALRM)
    assert runner.one(item, "\\boxed{2}") == 1.0
    assert runner.one(item, "\\boxed{9^{9^{9}}}") == 0.0
    assert runner.timeouts == runner.errors == 0
    assert signal.getsignal(signal.SIGALRM) is before


def test_math_verify_leaves_an_armed_alarm_alone(tmp_path):
    """math-verify's own timeout calls signal.alarm(0) when it finishes, which would disarm the
    RewardRunner's timer; with it switched off, our timer keeps running through a grading call."""
    task = _task(tmp_path)
    previous = signal.signal(signal.SIGALRM, lambda *a: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert task.score(task.train_pool()[1], "\\boxed{\\frac{4}{2}}") == 1.0
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_gold_answer_layouts():
    assert gold_answer({"answer": ["9.6\n"]}, "r") == "9.6"
    assert gold_answer({"answer": "['$2^{1009}$']"}, "r") == "$2^{1009}$"
    assert gold_answer({"solution": "so \\boxed{\\frac{1}{2}}."}, "r") == "\\frac{1}{2}"
    assert gold_answer({"answer": 204}, "r") == "204"
    assert gold_answer({"answer": "[-2, 7]"}, "r") == "[-2, 7]"  # an interval stays an interval
    with pytest.raises(ConfigError, match="row 7: no usable answer"):
        gold_answer({"answer": []}, "row 7")


def test_solution_layout_sft_target(tmp_path):
    rows = [{"problem": f"p{i}", "solution": f"Since {i}+{i}={2 * i}, $\\boxed{{{2 * i}}}$."} for i in range(4)]
    task = _task(tmp_path, rows)
    item = task.heldout()[0]
    assert item["answer"] == "4" and task.sft_target(item) == rows[2]["solution"]
    assert task.score(item, task.sft_target(item)) == 1.0


def test_missing_data_column_is_a_config_error(tmp_path):
    from essa_hpc.config.tasks import check_task_config
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "x", "answer": "1"}))
    with pytest.raises(ConfigError, match="lacks column.*problem"):
        check_task_config(TaskConfig(kind="math", data_path=str(path)))


@pytest.mark.parametrize("name, n", [("math500", 500), ("minerva", 272), ("olympiad_bench", 675)])
def test_shared_eval_sets_grade_their_own_answers(name, n):
    if not (SHARED / name).is_dir():
        pytest.skip(f"real math data not present at {SHARED / name} (only on machines with ../shared/data)")
    task = MathTask(TaskConfig(kind="math", data_path=str(SHARED / "amc"),
                               heldout_path=str(SHARED / name), heldout_size=n), 0)
    items = task.heldout()[:40]
    assert len(task.heldout()) == n
    assert sum(task.score(it, task.sft_target(it)) for it in items) >= 0.95 * len(items)
