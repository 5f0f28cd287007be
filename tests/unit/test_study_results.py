"""The fair study's read-outs (tools/study/study_results.py) and its projection model (tools/study/project_workers.py),
on hand-made curves and inputs whose answers are worked out in the comments."""
import math
import sys

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "tools" / "study"))
import project_workers as pw  # noqa: E402
import study_results as sr  # noqa: E402


def run(heldout, validation=None, every=10):
    """A run's curves: points (training s, samples, score, step) every ``every`` steps, the last one at the
    budget stop (``every`` * len - 3)."""
    steps = [i * every for i in range(len(heldout) - 1)] + [every * (len(heldout) - 1) - 3]
    pts = lambda ys: [(float(s), s * 100, y, s) for s, y in zip(steps, ys)]  # noqa: E731
    return {"heldout": pts(heldout), "validation": pts(validation or heldout)}


def test_selection_takes_the_first_best_validation_and_reports_its_heldout():
    r = run([0.5, 0.6, 0.7, 0.65], validation=[0.4, 0.8, 0.8, 0.7])
    assert sr.selected_heldout(r) == 0.6  # validation 0.8 first at step 10, where held-out was 0.6


def test_finals_summary_mean_sd_gain_and_selection():
    a, b = run([0.5, 0.6, 0.7]), run([0.5, 0.7, 0.6], validation=[0.5, 0.9, 0.6])
    s = sr.summarise_finals([a, b])
    assert s["final"] == [0.7, 0.6] and s["peak"] == [0.7, 0.7] and s["selected"] == [0.7, 0.7]
    assert s["final_mean"] == pytest.approx(0.65) and s["final_sd"] == pytest.approx(math.sqrt(0.005))
    assert s["gain"] == pytest.approx([0.2, 0.1]) and s["samples"] == [1700, 1700]


def test_mean_curve_aligns_steps_and_ends_on_the_mean_last_point():
    a, b = run([0.5, 0.6, 0.8]), run([0.5, 0.7, 0.7, 0.9])  # last points at steps 17 and 27
    curve = sr.mean_curve([a, b])
    assert [p[3] for p in curve] == [0, 10, 22]  # common steps below both ends, then the mean end
    assert curve[1][2] == pytest.approx(0.65) and curve[-1][2] == pytest.approx(0.85)


def test_reaching_names_the_common_target_and_the_other_methods_final():
    essa, grpo = [run([0.5, 0.6, 0.7])], [run([0.5, 0.75, 0.8])]
    summaries = {"essa": sr.summarise_finals(essa), "grpo": sr.summarise_finals(grpo)}
    got = sr.reaching({"essa": essa, "grpo": grpo}, summaries)
    assert got["heldout"] == 0.7
    assert got["essa"]["steps"] == 17 and got["grpo"]["steps"] == 10  # the first point at >= 0.7
    assert got["grpo_to_essa_final"]["samples"] == 1000 and got["essa_to_grpo_final"] is None


def test_allreduce_model():
    assert pw.allreduce_s(1e9, 1, 1e9, 1e-6) == 0.0
    # N = 2: 2 log2(2) L + 2 (1/2) m / BW = 2 us + 1 s
    assert pw.allreduce_s(1e9, 2, 1e9, 1e-6) == pytest.approx(1.000002)
    # N = 512: 18 latencies, bandwidth term 2 * 511/512
    assert pw.allreduce_s(0.0, 512, 1e9, 1e-6) == pytest.approx(18e-6)


INPUTS = {"target": 0.7,
          "essa": {"population": 4, "batch": 2, "c_es": 1.0, "f_es": 0.5, "r": 100.0, "steps": 10},
          "grpo": {"batch": 8, "c_gen": 1.0, "c_bwd": 1.0, "g": 1e6, "steps": 20},
          "measured_step_s": {"essa": {1: 8.5, 2: 5.0}, "grpo": {1: 16.0, 2: 8.5}}}
NET = {"bandwidth": 1e6, "latency": 0.0}


def test_projection_strong_and_weak_scaling():
    one, two, many = (pw.project(INPUTS, n, NET, exponent=0.5) for n in (1, 2, 512))
    assert one["essa_fixed"]["time_s"] == 10 * (8 * 1.0 + 0.5)  # 8 samples on one worker
    assert two["essa_fixed"]["time_s"] == pytest.approx(10 * (4 + 0.5 + 100 / 1e6))
    assert one["grpo_fixed"]["time_s"] == 20 * 16
    assert two["grpo_fixed"]["time_s"] == pytest.approx(20 * (8 + 1.0))  # half the batch + 1 s of gradient
    assert many["grpo_fixed"]["time_s"] == pytest.approx(20 * (2 + 2 * 511 / 512))  # one completion each
    # grows: each worker keeps one worker's work; steps fall as N^-0.5
    assert two["essa_grows"]["time_s"] == pytest.approx(10 / math.sqrt(2) * (8 + 0.5 + 200 / 1e6))
    assert two["essa_grows"]["samples"] == pytest.approx(10 / math.sqrt(2) * 16)
    assert pw.project(INPUTS, 8, NET, exponent=0.0)["grpo_grows"]["samples"] == 20 * 64


def test_the_two_worker_check_is_the_relative_error():
    check = pw.check_against_two_workers(INPUTS, NET)
    assert check["essa"]["predicted_step_s"] == pytest.approx(4.5001)
    assert check["essa"]["error"] == pytest.approx(4.5001 / 5.0 - 1, abs=1e-4)
    assert check["grpo"]["error"] == pytest.approx(9.0 / 8.5 - 1, abs=1e-4)
