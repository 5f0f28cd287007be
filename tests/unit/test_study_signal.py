"""tools/study/halving.py (the screen's successive halving) and tools/study/study_signal.py end to end on
the tiny model: two starts, a screen on one of them, paired finals that record their machine, a rerun
that starts nothing, and a pair split across two boots that runs again."""
import json
import subprocess
import sys

import pytest
import yaml
from helpers import ROOT, TINY, cli_env

sys.path.insert(0, str(ROOT / "tools" / "study"))
import halving  # noqa: E402
import signal_study_report  # noqa: E402

ARMS = ["a", "b", "c", "d", "e", "f"]


def test_six_arms_take_three_rounds_and_twenty_first_budgets():
    assert [halving.rounds_for(n) for n in (1, 2, 3, 4, 5, 6, 8, 9)] == [1, 1, 2, 2, 3, 3, 3, 4]
    assert halving.total_budget(6, 150) == 6 * 150 + 3 * 300 + 2 * 600
    assert [halving.budget(150, r) for r in range(3)] == [150, 300, 600]


def test_the_better_half_by_mean_goes_on_and_the_winner_rests_on_every_round():
    scores = {"a": [0.60], "b": [0.70], "c": [0.65], "d": [0.50], "e": [0.72], "f": [0.40]}
    assert halving.survivors(ARMS, scores, 0) == ARMS
    assert halving.survivors(ARMS, scores, 1) == ["b", "c", "e"]
    scores.update(b=[0.70, 0.66], c=[0.65, 0.60], e=[0.72, 0.55])  # means 0.68, 0.625, 0.635
    assert halving.survivors(ARMS, scores, 2) == ["b", "e"]
    # e wins the longest round but b's mean over the three is higher: one run does not decide
    scores.update(b=[0.70, 0.66, 0.68], e=[0.72, 0.55, 0.70])
    assert halving.winner(ARMS, scores) == "b"


def test_equal_means_keep_the_declared_order_and_a_missing_score_is_an_error():
    scores = {name: [0.5] for name in ARMS}
    assert halving.survivors(ARMS, scores, 1) == ["a", "b", "c"]
    del scores["b"]
    with pytest.raises(ValueError, match="round 0 has no score for b"):
        halving.survivors(ARMS, scores, 1)


ARM = ["baseline.batch_size=8", "baseline.num_generations=4"]
SPEC = {"config": str(TINY), "common": ["task.heldout_size=8", "task.validation_size=8", "run.eval_every=2",
                                        "baseline.eval_every=2"],
        "starts": {"short": {"sft": ["sft.steps=1", "sft.batch_size=4"], "target": 0.0},
                   "long": {"sft": ["sft.steps=3", "sft.batch_size=4"], "target_gain": 0.0}},
        "screen": {"start": "short", "first_budget_s": 1}, "final": {"budget_s": 1, "seeds": [0]},
        "grpo_steps_cap": 50,
        "essa_arms": [{"name": "cma", "overrides": ["strategy.kind=cma_es"]},
                      {"name": "adam", "overrides": ["strategy.kind=open_es"]}],
        "grpo_arms": [{"name": "lr1e-4", "overrides": ["baseline.learning_rate=1e-4", *ARM]},
                      {"name": "lr1e-3", "overrides": ["baseline.learning_rate=1e-3", *ARM]}]}


def study(tmp_path, spec, *extra):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.run([sys.executable, str(ROOT / "tools" / "study" / "study_signal.py"), str(path), "--out",
                           str(tmp_path / "out"), "--ranks", "1", "--results", str(tmp_path / "results"), *extra],
                          capture_output=True, text=True, timeout=900, env=cli_env(ESSA_NO_MPI="1"), cwd=ROOT)


def started(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("+ ")]


def test_the_signal_study_screens_pairs_its_finals_and_resumes(tmp_path):
    proc = study(tmp_path, SPEC)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = tmp_path / "results" / "signal_study.json"
    record = json.loads(path.read_text())
    boot = (open("/proc/sys/kernel/random/boot_id").read().strip())
    for method, arms in (("essa", ["cma", "adam"]), ("grpo", ["lr1e-4", "lr1e-3"])):
        screen = record["screen"][method]
        assert sorted(screen["scores"]) == sorted(arms) and all(len(v) == 1 for v in screen["scores"].values())
        assert screen["chosen"] == max(arms, key=lambda a: (screen["scores"][a][0], -arms.index(a)))
        assert all(r["inputs"]["start"] == record["starts"]["short"]["id"] for r in screen["runs"].values())
    assert record["starts"]["long"]["target"] == record["starts"]["long"]["heldout"]  # start + a gain of 0
    for start in ("short", "long"):
        for method in ("essa", "grpo"):
            result = record["results"][start][method]
            assert result["arm"] == record["screen"][method]["chosen"] and len(result["final"]) == 1
            assert result["machine"][0]["boot_id"] == boot and result["machine"][0]["calibration_s"] > 0
            assert result["to_target"][0] is not None  # a target of the start itself is met at once
            assert result["runs"]["seed0"]["inputs"]["start"] == record["starts"][start]["id"]

    table = (tmp_path / "results" / "signal_study.md").read_text()
    assert "## Finals from `long`" in table and f"| essa | {record['screen']['essa']['chosen']} | 1 |" in table

    again = study(tmp_path, SPEC)
    assert again.returncode == 0, again.stderr[-3000:]
    assert started(again) == []

    # the record says the ESSA run of one pair ran on another boot: that run is made again, its partner is not
    record["results"]["long"]["essa"]["runs"]["seed0"]["machine"]["boot_id"] = "another-boot"
    path.write_text(json.dumps(record))
    paired = study(tmp_path, SPEC)
    assert paired.returncode == 0, paired.stderr[-3000:]
    assert len(started(paired)) == 1 and " train " in started(paired)[0] and "/long/final/essa/" in started(paired)[0]
    record = json.loads(path.read_text())
    assert record["results"]["long"]["essa"]["machine"][0]["boot_id"] == boot


TRDPO = ["baseline.batch_size=4", "baseline.trdpo.k=4", "baseline.trdpo.prompts=8", "baseline.trdpo.tau=1"]


def test_a_third_method_runs_after_the_pair_without_binding_or_rerunning_it(tmp_path):
    """The pair's finals first (--methods essa,grpo), TR-DPO later: its screen and finals run then, the
    pair's runs are not made again, and a TR-DPO final recorded on another boot stands (it is compared by
    machine kind, not paired)."""
    spec = {**SPEC, "starts": {"short": SPEC["starts"]["short"]},
            "methods": {"essa": ["short"], "grpo": ["short"], "trdpo": ["short"]},
            "trdpo_arms": [{"name": "lr1e-3", "overrides": ["baseline.learning_rate=1e-3", *TRDPO]},
                           {"name": "lr1e-4", "overrides": ["baseline.learning_rate=1e-4", *TRDPO]}]}
    pair = study(tmp_path, spec, "--methods", "essa,grpo")
    assert pair.returncode == 0, pair.stderr[-3000:]
    path = tmp_path / "results" / "signal_study.json"
    record = json.loads(path.read_text())
    assert sorted(record["screen"]) == ["essa", "grpo", "total_budget_s"]
    assert sorted(record["results"]["short"]) == ["essa", "grpo"]

    third = study(tmp_path, spec)
    assert third.returncode == 0, third.stderr[-3000:]
    assert started(third) and all(" baseline trdpo " in cmd for cmd in started(third))
    assert len(started(third)) == 3  # two screen arms and one final
    record = json.loads(path.read_text())
    trdpo = record["results"]["short"]["trdpo"]
    assert trdpo["arm"] == record["screen"]["trdpo"]["chosen"] and len(trdpo["final"]) == 1
    table = (tmp_path / "results" / "signal_study.md").read_text()
    assert f"| trdpo | {trdpo['arm']} | 1 |" in table and trdpo["machine"][0]["cpu"] in table

    record["results"]["short"]["trdpo"]["runs"]["seed0"]["machine"]["boot_id"] = "another-boot"
    path.write_text(json.dumps(record))
    again = study(tmp_path, spec)
    assert again.returncode == 0 and started(again) == [], again.stdout[-3000:]

    unknown = study(tmp_path, spec, "--methods", "essa,dpo")
    assert unknown.returncode != 0 and "--methods names dpo" in unknown.stderr


def test_unequal_arms_and_an_unknown_screen_start_are_refused(tmp_path):
    proc = study(tmp_path, {**SPEC, "grpo_arms": SPEC["grpo_arms"][:1]})
    assert proc.returncode != 0 and "unequal tuning budget" in proc.stderr
    proc = study(tmp_path, {**SPEC, "screen": {"start": "nowhere", "first_budget_s": 1}})
    assert proc.returncode != 0 and "screen.start=nowhere" in proc.stderr


def _finals(gains, samples):
    return {"gain": gains, "gain_mean": sum(gains) / len(gains),
            "to_target": [None if s is None else {"samples": s} for s in samples]}


@pytest.mark.parametrize("gains, samples, met", [
    ([0.12, 0.11, 0.10], [4000, 6000, 7900], ["met", "met"]),
    ([0.20, 0.15, -0.01], [4000, 6000, None], ["missed", "missed"]),  # a negative seed; one never reached
    ([0.09, 0.10, 0.10], [4000, 6000, 8100], ["missed", "missed"]),
])
def test_the_goals_are_reported_met_or_missed_from_the_record(gains, samples, met):
    record = {"results": {"sft15": {"essa": _finals(gains, samples)},
                          "strong": {"essa": {"final": [0.8], "final_mean": 0.80},
                                     "grpo": {"final": [0.84], "final_mean": 0.84}}}}
    lines = signal_study_report.goals(record)
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == [*met, "missed"]  # GRPO 4 points ahead
    record["results"]["strong"]["grpo"]["final_mean"] = 0.82
    assert signal_study_report.goals(record)[-1].split(": ")[1].startswith("met")


def test_a_screen_cut_short_shows_the_scores_recorded_so_far():
    runs = {"r0/b": {"validation_final": 0.60}, "r0/a": {"validation_final": 0.65},
            "r1/a": {"validation_final": 0.70}}
    table = signal_study_report.screen_table({"screen": {"essa": {"runs": runs}, "total_budget_s": 1.0}})
    assert "| essa | a | 0.650 / 0.700 | 0.675 |  |" in table and "| essa | b | 0.600 | 0.600 |  |" in table
