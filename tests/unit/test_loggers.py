"""run.report_to: the metrics rows also go to TensorBoard and W&B, from rank 0, and a resume
repeats no step there."""
import pytest
from helpers import TINY, cli_env, essa, metrics

from essa_hpc.runtime.loggers import scalars


def tensorboard_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def jsonl_scalars(run) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for record in metrics(run):
        for name, value in scalars(record).items():
            out.setdefault(name, []).append((record["generation"], value))
    return out


def test_scalars_flatten_nested_numbers_and_leave_out_the_step_and_text():
    row = {"generation": 3, "reward_mean": 0.5, "budget_stop": True, "adapter_sha256": "ab",
           "reward_faults": {"timeout": 1, "error": 0}}
    assert scalars(row) == {"reward_mean": 0.5, "reward_faults/timeout": 1.0, "reward_faults/error": 0.0}


def test_tensorboard_scalars_equal_metrics_jsonl_after_a_resume_that_redoes_a_generation(tmp_path):
    pytest.importorskip("tensorboard", reason="run.report_to=tensorboard needs the tensorboard package")
    run = tmp_path / "run"
    args = ["train", str(TINY), "run.generations=5", "ckpt.every=2", "ckpt.keep=5", "run.eval_every=2",
            "run.report_to=tensorboard", "--run-dir", str(run)]
    essa(args)
    # A crash after generation 5's row, before its checkpoint: the resume redoes generation 5 and
    # its TensorBoard events must replace, not repeat, the ones written before.
    (run / "checkpoints" / "ckpt_000005.h5").unlink()
    essa([*args, "--resume", "auto"])
    board, rows = tensorboard_scalars(run / "tensorboard"), jsonl_scalars(run)
    assert [r["generation"] for r in metrics(run)] == [0, 1, 2, 3, 4, 5]
    assert set(board) == set(rows) and {"reward_mean", "heldout_reward", "tied_fraction"} <= set(board)
    # ckpt_s is the one field a checkpoint cannot hold about its own generation: the row goes into
    # the checkpoint before the write is timed, so the resume rewrote generation 4's line without
    # it, while TensorBoard kept the first run's value.
    assert [s for s, _ in board.pop("ckpt_s")] == [2, 4, 5] and [s for s, _ in rows.pop("ckpt_s")] == [2, 5]
    for tag, points in rows.items():
        assert [s for s, _ in board[tag]] == [s for s, _ in points], tag  # each step once
        assert [v for _, v in board[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag


def test_wandb_offline_writes_its_run_directory(tmp_path):
    pytest.importorskip("wandb", reason="run.report_to=wandb needs the wandb package")
    run = tmp_path / "run"
    essa(["train", str(TINY), "run.generations=2", "run.report_to=wandb", "run.wandb.mode=offline",
          "--run-dir", str(run)], env=cli_env(WANDB_SILENT="true", WANDB_DIR=str(tmp_path)))
    run_id = (run / "wandb_run_id").read_text().strip()
    written = list((run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(written) == 1 and written[0].stat().st_size > 0, list((run / "wandb").rglob("*"))


def test_an_unknown_logger_is_a_one_line_error_before_the_model_loads(tmp_path):
    proc = essa(["train", str(TINY), "run.report_to=tensorboard,mlflow", "--run-dir", str(tmp_path / "run")],
                check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "essa-hpc train: error: run.report_to='mlflow' is not one of: tensorboard, wandb", proc.stderr


def test_a_logger_whose_package_is_missing_is_refused_with_the_install_line(monkeypatch):
    import importlib.util

    from essa_hpc.config import ConfigError, load
    from essa_hpc.config.validation import validate

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    validate(load(str(TINY), ["run.report_to=tensorboard"]))
    with pytest.raises(ConfigError, match=r"^run.report_to=wandb needs the wandb package: pip install wandb$"):
        validate(load(str(TINY), ["run.report_to=tensorboard, wandb"]))
