"""tools/study/study_fair.py end to end on the tiny model: equal arms per method at one wall-time budget,
scored on validation, the best arm of each with two seeds, a rerun that starts nothing, and a fresh
checkout (nothing but the kept results) that resumes from the record."""
import json
import shutil
import subprocess
import sys

import yaml
from helpers import ROOT, TINY, cli_env, metrics

sys.path.insert(0, str(ROOT / "tools" / "study"))
import study_fair  # noqa: E402

ARM = ["baseline.batch_size=8", "baseline.num_generations=4"]
SPEC = {"config": str(TINY), "common": ["task.heldout_size=8", "task.validation_size=8", "run.eval_every=2",
                                        "baseline.eval_every=2"],
        "sft": ["sft.steps=2", "sft.batch_size=4"], "screen": {"budget_s": 1, "seed": 0},
        "final": {"budget_s": 1, "seeds": [0, 1]}, "grpo_steps_cap": 50,
        "essa_arms": [{"name": "cma", "overrides": ["strategy.kind=cma_es"]},
                      {"name": "adam", "overrides": ["strategy.kind=open_es"]}],
        "grpo_arms": [{"name": "lr1e-4", "overrides": ["baseline.learning_rate=1e-4", *ARM]},
                      {"name": "lr1e-3", "overrides": ["baseline.learning_rate=1e-3", *ARM]}],
        "levers": [{"name": "late", "overrides": ["task.late_batch_size=12", "task.late_batch_from=2"]}],
        "scaling": {"steps": 3}}


def study(tmp_path, spec):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.run([sys.executable, str(ROOT / "tools" / "study" / "study_fair.py"), str(path), "--out",
                           str(tmp_path / "out"), "--ranks", "1", "--results", str(tmp_path / "results")],
                          capture_output=True, text=True, timeout=900,
                          env=cli_env(ESSA_NO_MPI="1"), cwd=ROOT)


def test_the_fair_study_runs_end_to_end_and_resumes_without_rerunning(tmp_path):
    proc = study(tmp_path, SPEC)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    summary = json.loads((out / "fair_summary.json").read_text())
    for method, arms in (("essa", ["cma", "adam"]), ("grpo", ["lr1e-4", "lr1e-3"])):
        screen = summary["screen"][method]
        assert sorted(screen) == sorted(arms)
        assert summary["best"][method] == max(arms, key=lambda a: screen[a]["validation_final"])
        for arm in arms:  # each arm stopped at the budget and was scored on validation there
            last = metrics(out / "screen" / method / arm)[-1]
            assert last["budget_stop"] and last["validation_reward"] == screen[arm]["validation_final"]
        final = summary["final"][method]
        assert final["arm"] == summary["best"][method] and len(final["final"]) == 2
        assert all(0.0 <= x <= 1.0 for x in final["final"] + final["peak"])
    assert summary["levers"]["late"]["on"] == summary["best"]["essa"]
    assert [r["samples"] for r in metrics(out / "levers" / "essa" / "late")[1:3]] == [8 * 8, 8 * 12]  # grew at 2
    for method in ("essa", "grpo"):  # the common target is reached by both mean curves, the lower one last
        assert summary["target"]["heldout"] == min(summary["final"][m]["final_mean"] for m in ("essa", "grpo"))
        assert summary["target"][method]["score"] >= summary["target"]["heldout"]
    scaling = json.loads((out / "scaling.json").read_text())
    for method in ("essa", "grpo"):
        s = scaling[method]
        assert s["arm"] == summary["best"][method] and s["n1"]["workers"] == 1 and s["n2"]["workers"] == 2
        assert s["efficiency_1_to_2"] == round(s["n1"]["step_s"] / (2 * s["n2"]["step_s"]), 3)
    assert scaling["grpo"]["n2"]["samples"] == scaling["grpo"]["n1"]["samples"] == 8  # one global batch
    assert scaling["grpo"]["gradient_bytes"] > 0 and scaling["essa"]["n2"]["bytes_sent"] > 0
    projection = json.loads((out / "projection.json").read_text())
    assert sorted(map(int, projection["rows"])) == [1, 2, 8, 64, 512]
    for method, check in projection["check_n2"].items():
        assert check["measured_step_s"] == scaling[method]["n2"]["step_s"]
    report = (tmp_path / "results" / "fair_study.md").read_text()
    for heading in ("## Screen", "## ESSA levers", "## Finals", "## Finals, seed by seed", "## Parallel scaling",
                    "## Projection"):
        assert heading in report
    seed_rows = report.split("## Finals, seed by seed")[1].split("##")[0]
    for method in ("ESSA", "GRPO"):  # one row per final run, with its steps
        for seed in (0, 1):
            assert f"| {method} | {seed} | " in seed_rows, seed_rows
    for name in ("fair_summary.json", "fair_scaling.json", "fair_projection.json", "fair_projection.png",
                 "fair_curves.png"):
        assert (tmp_path / "results" / name).stat().st_size > 0
    again = study(tmp_path, SPEC)
    assert again.returncode == 0 and "essa-hpc" not in again.stdout, again.stdout[-2000:]
    # A fresh checkout: the scratch dir is gone, only --results is left. The SFT start is rebuilt, finds
    # itself identical, and every recorded run is skipped, scaling included.
    shutil.rmtree(out)
    fresh = study(tmp_path, SPEC)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    started = [line for line in fresh.stdout.splitlines() if line.startswith("+ ") and "essa-hpc" in line]
    assert len(started) == 1 and " sft " in started[0], started
    resumed = json.loads((out / "fair_summary.json").read_text())
    assert resumed["final"] == summary["final"] and resumed["screen"] == summary["screen"]
    assert json.loads((out / "scaling.json").read_text()) == scaling
    # One more final seed in the spec: only that seed's two runs start (one per method).
    more = study(tmp_path, {**SPEC, "final": {"budget_s": 1, "seeds": [0, 1, 2]}})
    assert more.returncode == 0, more.stderr[-3000:]
    started = [line for line in more.stdout.splitlines() if line.startswith("+ ") and "run.seed=2" in line]
    assert len(started) == 2 and len(json.loads((out / "fair_summary.json").read_text())["final"]["grpo"]["final"]) == 3


def test_unequal_arm_counts_are_refused(tmp_path):
    proc = study(tmp_path, {**SPEC, "grpo_arms": SPEC["grpo_arms"][:1]})
    assert proc.returncode != 0 and "unequal tuning budget: 2 ESSA arms against 1 GRPO arms" in proc.stderr


def test_a_record_from_another_sft_start_is_not_resumed(tmp_path, capsys):
    out, results = tmp_path / "out", tmp_path / "results"
    out.mkdir()
    results.mkdir()
    (results / "fair_summary.json").write_text(json.dumps({"sft": "aaaa", "screen": {"essa": {"x": {}}}}))
    (results / "fair_scaling.json").write_text(json.dumps({"sft": "aaaa"}))
    assert study_fair.carried_summary(out, results, "bbbb") is None
    assert "made from another SFT start (aaaa, this one is bbbb)" in capsys.readouterr().out
    assert not (out / "scaling.json").exists()
    carried = study_fair.carried_summary(out, results, "aaaa")
    assert carried["screen"] == {"essa": {"x": {}}} and (out / "scaling.json").is_file()


def test_a_recorded_run_is_skipped_only_with_the_same_inputs():
    want = study_fair.run_inputs("essa", SPEC, ["strategy.kind=cma_es"], 0, 300, 2)
    assert study_fair.recorded({"inputs": dict(want)}, want)
    for changed in ({"seed": 1}, {"budget_s": 1800}, {"ranks": 1}, {"overrides": ["strategy.kind=open_es"]}):
        assert not study_fair.recorded({"inputs": {**want, **changed}}, want)
    assert not study_fair.recorded(None, want) and not study_fair.recorded({"validation_final": 0.7}, want)


def test_only_an_es_run_with_a_checkpoint_resumes(tmp_path):
    """An ES run killed before its first checkpoint leaves metrics that `train` refuses to resume over:
    the study starts such an arm again instead of failing on it."""
    run = tmp_path / "arm"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"generation": 0}\n')
    assert not study_fair.resumable("essa", run)
    (run / "checkpoints" / "ckpt_000001.h5").write_bytes(b"")
    assert study_fair.resumable("essa", run)
    assert not study_fair.resumable("grpo", run) and not study_fair.resumable("essa", tmp_path / "none")


def test_the_sft_start_is_known_by_its_recipe_and_score_not_its_last_bits(tmp_path):
    def start(adapter: bytes, heldout: float, spec=SPEC):
        sft = tmp_path / "sft"
        sft.mkdir(exist_ok=True)
        (sft / "adapter_model.safetensors").write_bytes(adapter)
        (sft / "sft_summary.json").write_text(json.dumps({"heldout_reward": heldout}))
        return study_fair.sft_start(sft, spec)

    first = start(b"weights", 0.648)
    other_machine = start(b"weightz", 0.648)  # the same recipe on another VM: other bits, same score
    assert other_machine["id"] == first["id"] and other_machine["adapter"] != first["adapter"]
    assert start(b"weights", 0.650)["id"] != first["id"]
    assert start(b"weights", 0.648, {**SPEC, "sft": ["sft.steps=3"]})["id"] != first["id"]
    assert start(b"weights", 0.648, {**SPEC, "common": []})["id"] != first["id"]
