"""GSM8K: answer extraction ('#### N' first, else the last number), both column layouts,
local json/parquet/save_to_disk loading, the hub path (faked, no network)."""
import json
from pathlib import Path

import pytest

from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.tasks.answers import final_number, number_after_marker, parse_number
from essa_hpc.tasks.gsm8k import GSM8KTask

SHARED = Path(__file__).parents[2].parent / "shared" / "data" / "gsm8k" / "train"
ORIGINAL = [  # the hub layout: reasoning with calculator annotations, then '#### N'
    {"question": f"Q{i}: Tom has {i} apples and buys 1,000 more. How many?",
     "answer": f"He has {i} + 1000 = <<{i}+1000={i + 1000}>>{i + 1000} apples.\n#### {i + 1000:,}"} for i in range(6)]
NUMERIC = [{"problem": f"P{i}: what is {i} times 3?", "answer": str(3 * i)} for i in range(6)]


def _write(tmp_path, rows, kind):
    import datasets
    ds = datasets.Dataset.from_list(rows)
    path = tmp_path / f"data.{kind}"
    if kind == "json":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif kind == "parquet":
        ds.to_parquet(str(path))
    else:
        path = tmp_path / "disk"
        ds.save_to_disk(str(path))
    return str(path)


@pytest.mark.parametrize("kind", ["json", "parquet", "disk"])
@pytest.mark.parametrize("rows", [ORIGINAL, NUMERIC], ids=["question-####", "problem-numeric"])
def test_local_files_both_layouts(tmp_path, kind, rows):
    task = GSM8KTask(TaskConfig(kind="gsm8k", data_path=_write(tmp_path, rows, kind), heldout_size=2), 0)
    train, heldout = task.train_pool(), task.heldout()
    assert len(train) == 4 and len(heldout) == 2
    assert heldout[0]["prompt"].startswith(rows[4].get("question", rows[4].get("problem")))
    assert "#### <number>" in heldout[0]["prompt"]
    for item in train + heldout:
        target = task.sft_target(item)
        assert task.score(item, target) == 1.0 and target.rstrip().split("\n")[-1].startswith("####")
        assert "<<" not in target
    assert heldout[1]["answer"] == (1005.0 if rows is ORIGINAL else 15.0)


def test_heldout_path_and_dedup(tmp_path):
    (tmp_path / "h").mkdir()
    held = _write(tmp_path / "h", NUMERIC[:2], "json")
    task = GSM8KTask(TaskConfig(kind="gsm8k", data_path=_write(tmp_path, NUMERIC, "parquet"),
                                heldout_path=held, heldout_size=5), 0)
    assert [it["answer"] for it in task.heldout()] == [0.0, 3.0]
    assert len(task.train_pool()) == 4  # the two held-out problems are dropped from training


@pytest.mark.parametrize("completion, expected", [
    ("3 + 4 = 7\n#### 7", 1.0), ("#### 7\nsome trailing text with 9", 1.0), ("The answer is 7.", 1.0),
    ("#### $7.00", 1.0), ("####7", 1.0), ("7 ####", 1.0), ("#### 8", 0.0), ("7 then 8", 0.0),
    ("#### 7,000", 0.0), ("", 0.0), ("#### seven", 0.0), ("#### -7", 0.0),
])
def test_score(completion, expected):
    task = GSM8KTask(TaskConfig(kind="gsm8k"), 0)
    assert task.score({"answer": 7.0}, completion) == expected


def test_dense_train_reward_and_exact_heldout():
    task = GSM8KTask(TaskConfig(kind="gsm8k", train_reward="dense"), 0)
    item = {"answer": 100.0}
    assert task.reward(item, "#### 90") == pytest.approx(0.45)
    assert task.score(item, "#### 90") == 0.0 and task.score(item, "#### 100") == 1.0


def test_extraction_helpers():
    assert number_after_marker("a #### 1,234.5 b") == 1234.5
    assert number_after_marker("no marker 5") is None and final_number("no marker 5") == 5.0
    assert final_number("#### \n") is None
    assert parse_number("30,000") == 30000.0 and parse_number("12.") == 12.0 and parse_number("1e5") is None
    assert parse_number(True) is None and parse_number(float("nan")) is None


def test_bad_rows_and_columns_name_the_problem(tmp_path):
    rows = NUMERIC[:3] + [{"problem": "bad", "answer": "about 5"}] + NUMERIC[3:]
    task = GSM8KTask(TaskConfig(kind="gsm8k", data_path=_write(tmp_path, rows, "json"), heldout_size=2), 0)
    with pytest.raises(ConfigError, match=r"row 3: cannot parse the answer 'about 5'"):
        task.train_pool()
    from essa_hpc.config.tasks import check_task_config
    (tmp_path / "x").mkdir()
    wrong = _write(tmp_path / "x", [{"text": "a", "label": 1}], "parquet")
    with pytest.raises(ConfigError, match="lacks column.*question.*has text, label"):
        check_task_config(TaskConfig(kind="gsm8k", data_path=wrong))


def test_hub_path_is_used_when_no_data_path(monkeypatch):
    import datasets
    calls = []

    def fake_load(repo, name=None, split=None, **kw):
        calls.append((repo, name, split))
        return datasets.Dataset.from_list(ORIGINAL[:4] if split == "train" else ORIGINAL[4:])
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    task = GSM8KTask(TaskConfig(kind="gsm8k", heldout_size=1), 0)
    assert len(task.train_pool()) == 4 and len(task.heldout()) == 1
    assert sorted(calls) == [("openai/gsm8k", "main", "test"), ("openai/gsm8k", "main", "train")]


def test_hub_unreachable_is_a_config_error(monkeypatch):
    import datasets

    def offline(*a, **kw):
        raise ConnectionError("offline")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ConfigError, match="set task.data_path"):
        GSM8KTask(TaskConfig(kind="gsm8k"), 0).heldout()


def test_shared_numeric_gsm8k():
    if not SHARED.is_dir():
        pytest.skip(f"real GSM8K data not present at {SHARED} (only on machines with ../shared/data)")
    task = GSM8KTask(TaskConfig(kind="gsm8k", data_path=str(SHARED)), 0)
    assert len(task.heldout()) == 100 and len(task.train_pool()) > 8000
    assert all(task.score(it, task.sft_target(it)) == 1.0 for it in task.heldout())


@pytest.mark.parametrize("gold, completion, expected", [
    (1_000_000.0, "#### 1000001", 0.0),      # a relative 1e-6 tolerance used to accept gold±1 here
    (109_200_000.0, "#### 109200109", 0.0),
    (109_200_000.0, "#### 109,200,000", 1.0),
    (1_000_000.0, "#### 1000000.0", 1.0),
    (7.0, "#### 7.0000001", 0.0),           # integers match exactly
    (0.5, "#### 0.5000001", 1.0),           # a non-integer gold: absolute 1e-6
    (0.5, "#### 0.501", 0.0),
])
def test_integer_answers_must_match_exactly(gold, completion, expected):
    task = GSM8KTask(TaskConfig(kind="gsm8k"), 0)
    assert task.score({"answer": gold}, completion) == expected


def test_shared_gsm8k_large_answers_accept_only_the_gold():
    """Every real GSM8K answer of a million or more: gold scores 1, gold+1 and gold-1 score 0."""
    if not SHARED.is_dir():
        pytest.skip(f"real GSM8K data not present at {SHARED} (only on machines with ../shared/data)")
    task = GSM8KTask(TaskConfig(kind="gsm8k", data_path=str(SHARED), heldout_size=10), 0)
    big = [it for it in task.train_pool() + task.heldout() if abs(it["answer"]) >= 1e6]
    assert big
    for it in big:
        gold = int(it["answer"])
        assert task.score(it, f"#### {gold}") == 1.0
        assert task.score(it, f"#### {gold + 1}") == task.score(it, f"#### {gold - 1}") == 0.0
