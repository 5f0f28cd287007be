"""Data loading and config-time checks shared by the dataset tasks, and the custom plug-in task.
Every data problem is a one-line ConfigError that names the setting, the path, the column or the row."""
import json
import sys

import pytest
from helpers import custom_task

from essa_hpc import config
from essa_hpc.config import ConfigError, TaskConfig
from essa_hpc.config.tasks import TASKS, check_task_config
from essa_hpc.config.validation import validate
from essa_hpc.rewards import RewardRunner
from essa_hpc.tasks import build_task, data
from essa_hpc.tasks.countdown import CountdownTask

COUNTDOWN_ROWS = [{"id": i, "context": f"Using the numbers [{i} 2 3], make {i + 5}.\n<think>",
                   "numbers": f"[{i}, 2, 3]", "target": str(i + 5), "solution": f"({i} + 2) + 3"} for i in range(1, 7)]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def _one_line(err):
    assert "\n" not in str(err.value)
    return str(err.value)


def test_missing_path(tmp_path):
    with pytest.raises(ConfigError) as err:
        check_task_config(TaskConfig(kind="countdown", data_path=str(tmp_path / "nope.json")))
    assert _one_line(err).endswith("nope.json: no such file or directory")


def test_missing_columns_are_named(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [{"context": "x", "numbers": "[1]"}])
    with pytest.raises(ConfigError, match=r"lacks column\(s\) target: needs \(context, numbers, target\)") as err:
        check_task_config(TaskConfig(kind="countdown", data_path=path))
    _one_line(err)


@pytest.mark.parametrize("field, value, message", [
    ("target", "ninety", "row 2: cannot parse target 'ninety' as a number"),
    ("numbers", "[1, two]", "row 2: cannot parse numbers '\\[1, two\\]'"),
    ("context", "", "row 2: empty or non-text 'context'"),
])
def test_bad_row_is_named(tmp_path, field, value, message):
    rows = [dict(r) for r in COUNTDOWN_ROWS]
    rows[2][field] = value
    task = CountdownTask(TaskConfig(kind="countdown", data_path=_jsonl(tmp_path / "c.jsonl", rows), heldout_size=2), 0)
    with pytest.raises(ConfigError, match=message) as err:
        task.heldout()
    _one_line(err)


@pytest.mark.parametrize("fmt", ["jsonl", "json-list", "parquet", "disk", "glob"])
def test_formats_and_cheap_columns(tmp_path, fmt):
    import datasets
    ds = datasets.Dataset.from_list(COUNTDOWN_ROWS)
    if fmt == "jsonl":
        path = _jsonl(tmp_path / "c.jsonl", COUNTDOWN_ROWS)
    elif fmt == "json-list":
        path = str(tmp_path / "c.json")
        (tmp_path / "c.json").write_text(json.dumps(COUNTDOWN_ROWS, indent=2))
    elif fmt == "parquet":
        path = str(tmp_path / "c.parquet")
        ds.to_parquet(path)
    elif fmt == "disk":
        path = str(tmp_path / "disk")
        ds.save_to_disk(path)
    else:
        ds.select(range(3)).to_parquet(str(tmp_path / "a.parquet"))
        ds.select(range(3, 6)).to_parquet(str(tmp_path / "b.parquet"))
        path = str(tmp_path / "*.parquet")
    assert set(data.columns(path)) >= {"context", "numbers", "target"}
    check_task_config(TaskConfig(kind="countdown", data_path=path))
    task = CountdownTask(TaskConfig(kind="countdown", data_path=path, heldout_size=2), 0)
    assert len(task.train_pool()) == 4 and [it["numbers"] for it in task.heldout()] == [[5, 2, 3], [6, 2, 3]]
    assert all(task.reward(it, task.sft_target(it)) == pytest.approx(1.1) for it in task.train_pool())


def test_dataset_dict_folder_and_mixed_files(tmp_path):
    import datasets
    ds = datasets.Dataset.from_list(COUNTDOWN_ROWS)
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(ConfigError, match="holds several splits.*point it at one of them"):
        check_task_config(TaskConfig(kind="countdown", data_path=str(tmp_path / "dd")))
    (tmp_path / "mixed").mkdir()
    _jsonl(tmp_path / "mixed" / "a.jsonl", COUNTDOWN_ROWS)
    ds.to_parquet(str(tmp_path / "mixed" / "b.parquet"))
    with pytest.raises(ConfigError, match="files of one kind"):
        check_task_config(TaskConfig(kind="countdown", data_path=str(tmp_path / "mixed")))


def test_heldout_split_rules(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", COUNTDOWN_ROWS)
    with pytest.raises(ConfigError, match="has 6 rows, too few to hold out the last task.heldout_size=6"):
        CountdownTask(TaskConfig(kind="countdown", data_path=path, heldout_size=6), 0).heldout()
    held = _jsonl(tmp_path / "h.jsonl", COUNTDOWN_ROWS[:1])
    task = CountdownTask(TaskConfig(kind="countdown", data_path=path, heldout_path=held, heldout_size=100), 0)
    assert len(task.heldout()) == 1 and len(task.train_pool()) == 5  # the held-out row leaves training
    with pytest.raises(ConfigError, match="task.heldout_path is set but task.data_path is empty"):
        check_task_config(TaskConfig(kind="countdown", heldout_path=held))


# --- custom -------------------------------------------------------------------------------

@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "my_reward.py").write_text(
        "def exact(item, completion):\n    return float(completion.strip() == str(item['answer']))\n"
        "def boom(item, completion):\n    raise RuntimeError('plug-in bug')\n"
        "NOT_CALLABLE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_reward"
    sys.modules.pop("my_reward", None)


@pytest.mark.parametrize("spec, message", [
    ("", "needs task.custom.reward_fn='module:function'"),
    ("my_reward.exact", "must look like 'module:function'"),
    ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz': ModuleNotFoundError"),
    ("my_reward:missing", "module 'my_reward' has no 'missing'"),
    ("my_reward:NOT_CALLABLE", "'NOT_CALLABLE' is not callable"),
])
def test_custom_reward_fn_is_checked_at_config_time(plugin, spec, message):
    with pytest.raises(ConfigError, match=message) as err:
        validate(config.load(None, ["task.kind=custom", f"task.custom.reward_fn={spec}"]))
    _one_line(err)


def test_custom_generated_and_file_items(plugin, tmp_path):
    task = build_task(custom_task("my_reward:exact", heldout_size=5), 0)
    item = task.heldout()[0]
    assert item["prompt"].startswith("What is") and task.score(item, f" {item['answer']} ") == 1.0
    assert task.reward(item, "nope") == 0.0 and task.sft_target(item) == str(item["answer"])
    rows = [{"prompt": f"Say {w}", "answer": w, "extra": i} for i, w in enumerate(["a", "b", "c"])]
    cfg = custom_task("my_reward:exact", data_path=_jsonl(tmp_path / "p.jsonl", rows),
                     heldout_size=1)
    check_task_config(cfg)
    task = build_task(cfg, 0)
    assert task.heldout()[0]["extra"] == 2 and task.score(task.heldout()[0], "c") == 1.0
    with pytest.raises(ConfigError, match="lacks column"):
        check_task_config(custom_task("my_reward:exact",
                                     data_path=_jsonl(tmp_path / "q.jsonl", [{"question": "x"}])))


def test_custom_plugin_errors_are_contained_by_the_runner(plugin):
    task = build_task(custom_task("my_reward:boom", heldout_size=2), 0)
    runner = RewardRunner(task.reward, timeout_s=1.0)
    assert runner.one(task.heldout()[0], "x") == 0.0 and runner.errors == 1


# --- registry and config ------------------------------------------------------------------

def test_every_task_file_is_declared_and_every_declaration_names_one():
    """The declarations against an independent source, the files: a task class without a declaration,
    or a declaration whose class is gone, fails here."""
    from helpers import classes_in_package

    from essa_hpc.tasks.base import Task

    assert classes_in_package("essa_hpc.tasks", Task) == {spec.target for spec in TASKS.specs()}
    with pytest.raises(ConfigError, match="task.kind='rg' is not one of") as err:
        check_task_config(TaskConfig(kind="rg"))  # a family is not a task by itself
    listed = str(err.value).split("not one of: ")[1].split(", ")
    assert "rg:<name>" in listed and "rg" not in listed and set(TASKS.names()) - {"rg"} <= set(listed)
    with pytest.raises(ConfigError, match="train_reward=dense is for numeric answers"):
        check_task_config(TaskConfig(kind="countdown", train_reward="dense"))
