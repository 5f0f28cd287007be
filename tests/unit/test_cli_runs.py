"""End-to-end CLI on the tiny model (single process): train, eval, export, inspect."""
import json

from helpers import TINY, essa, metrics


def test_train_then_eval_exported_adapter_matches_run(tmp_path):
    run = tmp_path / "run"
    essa(["train", str(TINY), "run.generations=3", "--run-dir", str(run)])
    recs = metrics(run)
    assert [r["generation"] for r in recs] == [0, 1, 2, 3]
    assert "heldout_reward" in recs[0] and "heldout_reward" in recs[-1]
    for key in ("reward_mean", "reward_max", "bytes_sent", "eval_s", "apply_s", "reward_s", "step_s",
                "adapter_sha256"):
        assert key in recs[1]
    assert recs[-1]["heldout_reward"] > 0  # a non-trivial score, so the equalities below mean something
    assert (run / "config.yaml").is_file() and (run / "adapter" / "adapter_config.json").is_file()
    # the exported adapter, reloaded by PEFT, scores what the run reported
    out = essa(["eval", str(TINY), "--adapter", str(run / "adapter")])
    assert json.loads(out.stdout)["heldout_reward"] == recs[-1]["heldout_reward"]
    out = essa(["eval", str(TINY), "--run-dir", str(run)])
    assert json.loads(out.stdout)["heldout_reward"] == recs[-1]["heldout_reward"]
    # export from the checkpoint writes the same adapter again
    out = essa(["export", str(run), str(tmp_path / "exported")])
    assert json.loads(out.stdout)["adapter_sha256"] == recs[-1]["adapter_sha256"]
    out = essa(["eval", str(TINY), "--adapter", str(tmp_path / "exported")])
    assert json.loads(out.stdout)["heldout_reward"] == recs[-1]["heldout_reward"]


COMMANDS = ("train", "eval", "export", "sft", "baseline", "inspect", "submit", "status", "config", "signal")
# What each command's --help must explain: its own options and arguments, and where it matters the
# overrides and exit codes; baseline's lists every declared method with its help line.
EXPLAINS = {"train": ["--run-dir", "--resume", "section.key=value", "strategy.population=16", "Exit codes",
                      "75 preempted"],
            "eval": ["--run-dir", "--adapter", "CONFIG defaults to the run's own config.yaml"],
            "export": ["run_dir", "out_dir", "adapter_config.json"],
            "inspect": ["path", "--tail"],
            "status": ["run_dir"],
            "config": ["--describe"],
            "submit": ["--local"],
            "signal": ["--settings", "--populations", "--gradient-examples", "--out", "agreement"]}


def test_help_explains_each_command():
    import re

    from essa_hpc.config.baselines import BASELINES

    top = essa(["--help"]).stdout
    for cmd in COMMANDS:  # each command listed with a help line of its own
        assert re.search(rf"^\s+{cmd}\s+\w", top, re.M), (cmd, top)
    EXPLAINS["baseline"] = [f"  {s.name:<7}{s.help}" for s in BASELINES.specs()] + ["torchrun"]
    for cmd, phrases in EXPLAINS.items():
        out = " ".join(essa([cmd, "--help"]).stdout.split())  # argparse wraps lines: compare words
        missing = [p for p in phrases if " ".join(p.split()) not in out]
        assert not missing, (cmd, missing)
