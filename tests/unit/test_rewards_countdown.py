"""Countdown reward (ES-at-scale, arXiv 2509.24372): the paper's numbers, its regex
semantics without its regexes or eval, and the real data when ../shared/data is present."""
import random
import re
from pathlib import Path

import pytest

from essa_hpc.config import TaskConfig
from essa_hpc.tasks.countdown import CountdownTask, answer_score, format_score, paper_reward, solve
from essa_hpc.tasks.safe_expr import evaluate_arithmetic

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "countdown"
ITEM = {"numbers": [44, 19, 35], "target": 98.0}


def reward(completion, item=ITEM):
    return paper_reward(completion, item["numbers"], item["target"])


@pytest.mark.parametrize("completion, expected", [
    (" 44+19=63, 63+35=98</think>\n<answer>(44 + 19) + 35</answer>", 1.1),   # full format + correct
    ("</think>\n<answer>44 + 19 + 35</answer>\n", 1.1),                       # `$` allows one trailing newline
    ("</think>\n<answer>44 + 19 + 35</answer>\n\n", 0.06 + 1.0),              # not two: partial format
    ("</think><answer>44 + 19 + 35</answer>", 0.06 + 1.0),                    # no newline between blocks
    ("</think>\n<answer>44 + 19 - 35</answer>", 0.1),                         # wrong value
    ("</think>\n<answer>44 + 44 + 10</answer>", 0.1),                         # a number used twice, one missing
    ("</think>\n<answer>44 + 19 + 35 + 0</answer>", 0.1),                     # a number not given
    ("</think>\n<answer>44 + 19</answer>", 0.1),                              # a number left out
    ("</think>\n<answer>44 + 19 + 35 = 98</answer>", 0.1),                    # '=' is not allowed
    ("</think>\n<answer></answer>", 0.1),
    ("<answer>1</answer> then <answer>44 + 19 + 35</answer>", 0.05 + 1.0),    # the last answer counts
    ("<answer>44 + 19 + 35</answer> then <answer>1</answer>", 0.05),
    ("", 0.0), ("no tags at all", 0.0), ("</think>", 0.01),
    ("<answer>44 + 19 + 35", 0.0),                                            # unclosed
])
def test_paper_reward_values(completion, expected):
    assert reward(completion) == pytest.approx(expected)


def test_division_by_zero_scores_zero():
    assert answer_score("<answer>3 / (5 - 5)</answer>", [5, 5, 3], 1.0) == 0.0
    assert answer_score("<answer>(5 - 5) / 3</answer>", [5, 5, 3], 0.0) == 1.0


def test_answer_needs_exact_value_within_1e5():
    item = {"numbers": [98, 47, 47, 52], "target": 27.4}  # a real eval row with a fractional target
    assert answer_score("<answer>((98 / (47 - 52)) + 47)</answer>", **item) == 1.0
    assert answer_score("<answer>((98 / (47 - 52)) + 47)</answer>", item["numbers"], 27.40002) == 0.0


@pytest.mark.parametrize("expr", ["9**9**9", "2**10", "44//19+35", "__import__('os')", "[44,19,35]",
                                  "(99*99*99*99*99*99*99*99*99*99)", "1e5", "0x10", "1_000", "44 if 1 else 2"])
def test_evaluator_refuses_everything_but_arithmetic(expr):
    assert evaluate_arithmetic(expr) is None


def test_evaluator_values():
    assert evaluate_arithmetic(" ((44 + 19) + 35) ") == 98.0
    assert evaluate_arithmetic("-(3 - 5) * 7 / 2") == 7.0
    assert evaluate_arithmetic("1/0") is None
    assert evaluate_arithmetic("1" * 300) is None  # over the length cap


# --- the linear scans equal the paper's regexes ------------------------------------

def _paper_format(response):
    think = re.search(r"<think>.*?<\/think>", response, re.DOTALL)
    answer = re.search(r"<answer>.*?<\/answer>", response, re.DOTALL)
    if re.match(r"^<think>.*?<\/think>\n<answer>.*?<\/answer>$", response, re.DOTALL):
        return 1.0
    return (0.1 if think else 0.0) + (0.5 if answer else 0.0)


def test_format_and_last_answer_match_the_paper_regexes_on_random_strings():
    from essa_hpc.tasks.answers import last_tag

    tokens = ["<think>", "</think>", "<answer>", "</answer>", "\n", "1", " ", "+", "x"]
    gen = random.Random(0)
    for _ in range(3000):
        s = "".join(gen.choice(tokens) for _ in range(gen.randint(0, 9)))
        assert format_score(s) == _paper_format("<think>" + s), repr(s)
        found = re.findall(r"<answer>(.*?)<\/answer>", s, re.DOTALL)
        assert last_tag(s) == (found[-1] if found else None), repr(s)


# --- items ----------------------------------------------------------------------------

def test_generated_items_are_seeded_solvable_and_disjoint():
    cfg = TaskConfig(kind="countdown", heldout_size=50)
    a, b = CountdownTask(cfg, run_seed=0), CountdownTask(cfg, run_seed=7)
    assert [it["prompt"] for it in a.heldout()] == [it["prompt"] for it in b.heldout()]
    assert not {it["prompt"] for it in a.heldout()} & {it["prompt"] for it in a.train_pool()}
    for item in a.heldout() + a.train_pool()[:200]:
        assert item["chat"] is False and item["prompt"].endswith("<think>")
        assert 3 <= len(item["numbers"]) <= 4 and all(1 <= n <= 99 for n in item["numbers"])
        assert a.reward(item, a.sft_target(item)) == pytest.approx(1.1)
        assert a.score(item, a.sft_target(item)) == 1.0
    assert a.minibatch(3, 8) == CountdownTask(cfg, run_seed=0).minibatch(3, 8)


def test_solver():
    assert evaluate_arithmetic(solve([21, 68, 8, 36], 11.0)) == pytest.approx(11.0)
    assert solve([1, 1, 1], 1000.0) is None


# --- the paper's data ------------------------------------------------------------------

def _task(**kw):
    if not (DATA / "train").is_dir():
        pytest.skip(f"real Countdown data not present at {DATA} (only on machines with ../shared/data)")
    return CountdownTask(TaskConfig(kind="countdown", **kw), run_seed=0)


def test_real_data_solution_column_earns_full_marks():
    task = _task(data_path=str(DATA / "train"), heldout_path=str(DATA / "eval"), heldout_size=2000)
    train, heldout = task.train_pool(), task.heldout()
    assert len(train) == 200 and len(heldout) == 2000
    for item in train:
        assert task.reward(item, f"</think>\n<answer>{item['solution']}</answer>") == pytest.approx(1.1)
        assert task.reward(item, task.sft_target(item)) == pytest.approx(1.1)
        assert task.score(item, task.sft_target(item)) == 1.0
    # eval: a few rows have no solution (19) or one that reuses a number (15); sft_target solves those
    full = sum(task.reward(it, task.sft_target(it)) == pytest.approx(1.1) for it in heldout)
    assert full >= 1980


def test_real_data_prompt_gives_no_free_format_credit():
    task = _task(data_path=str(DATA / "train"), heldout_size=20)
    item = task.heldout()[0]
    assert item["chat"] is False and item["prompt"].endswith("<think>")
    assert task.reward(item, "") == 0.0
    # the HF path of the paper's code scored prompt + completion: its example tags gave 0.06
    assert paper_reward(item["prompt"], item["numbers"], item["target"]) == pytest.approx(0.06)


def test_real_data_json_file_loads_like_the_folder():
    if not (DATA / "countdown_paper.json").is_file():
        pytest.skip(f"{DATA / 'countdown_paper.json'} not present")
    task = _task(data_path=str(DATA / "countdown_paper.json"), heldout_size=2000)
    assert len(task.train_pool()) == 200 and task.train_pool()[0]["numbers"] == [44, 19, 35]


# --- against the reference implementation (ES-at-scale's countdown_task.py) ---------------

def _reference_answer(response, numbers, target):
    """The reference's answer reward, reproduced for comparison (regexes and a restricted eval)."""
    found = re.findall(r"<answer>(.*?)<\/answer>", response, re.DOTALL)
    if not found:
        return 0.0
    content = found[-1]
    if not content or not re.match(r"^[0-9+\-*/() ]+$", content):
        return 0.0
    if sorted(int(n) for n in re.findall(r"\d+", content)) != sorted(numbers):
        return 0.0
    try:
        return 1.0 if abs(float(eval(content, {"__builtins__": None}, {})) - float(target)) < 1e-5 else 0.0
    except Exception:  # noqa: BLE001 - the reference's own catch-all
        return 0.0


def test_answers_match_the_reference_including_whitespace():
    """Tabs, CR and several newlines inside <answer> score 0 as in the reference; one trailing newline
    is allowed (the reference's `$`). `**` and `//` are left out here: they are named deviations."""
    tokens = ["44", "19", "35", " ", "+", "-", "*", "/", "(", ")", "\t", "\n", "\r", "  "]
    gen = random.Random(1)
    agree = 0
    for _ in range(4000):
        content = "".join(gen.choice(tokens) for _ in range(gen.randint(1, 11)))
        if "**" in content.replace(" ", "") or "//" in content.replace(" ", ""):
            continue
        text = f"</think>\n<answer>{content}</answer>"
        assert answer_score(text, [44, 19, 35], 98.0) == _reference_answer(text, [44, 19, 35], 98.0), repr(content)
        agree += 1
    assert agree > 3000
    for content, expected in [("44 + 19 + 35", 1.0), ("44 + 19 + 35\n", 1.0), ("44 + 19 + 35\n\n", 0.0),
                              ("44\t+ 19 + 35", 0.0), ("44 + 19 + 35\r\n", 0.0), ("\n44 + 19 + 35", 0.0)]:
        text = f"<answer>{content}</answer>"
        assert answer_score(text, [44, 19, 35], 98.0) == expected == _reference_answer(text, [44, 19, 35], 98.0)


@pytest.mark.parametrize("content, numbers, target", [
    ("3 ** 2 * 1", [3, 2, 1], 9.0),                                   # 1. power
    ("7 // 2 * 1", [7, 2, 1], 3.0),                                   # 2. floor division
    ("(44 + 19 + 35)" + " " * 190, [44, 19, 35], 98.0),               # 3. over 200 characters
    ("99999999 * 99999999 * 1", [99999999, 99999999, 1], 9999999800000001.0),  # 4. a value over 1e12
])
def test_named_deviations_from_the_reference(content, numbers, target):
    """The four deviations the module docstring names: full marks there, 0 here."""
    text = f"<answer>{content}</answer>"
    assert _reference_answer(text, numbers, target) == 1.0
    assert answer_score(text, numbers, target) == 0.0
