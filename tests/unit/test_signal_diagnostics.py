"""Signal diagnostics: the per-generation fields in metrics.jsonl, and the one warning when the updates
are no better than chance (the in-process loop tests run a tiny-sigma run that warns and a healthy one
that does not)."""
import numpy as np
import pytest

from essa_hpc.strategies.diagnostics import SignalMonitor, generation_signal


def test_fields_on_handmade_generations():
    eps = np.array([1.0, 2.0, 0.0])
    mean = np.zeros(3)
    cands = np.stack([mean + eps, mean - eps, mean + eps, mean - eps])  # two mirrored pairs along one direction
    same = generation_signal(np.array([1.0, 0.0, 1.0, 0.0]), cands, mean)
    assert same == {"distinct_rewards": 2, "tied_fraction": 1.0, "mirror_ties": 0, "update_snr": pytest.approx(1.0)}
    opposite = generation_signal(np.array([1.0, 0.0, 0.0, 1.0]), cands, mean)
    assert opposite["update_snr"] == pytest.approx(-1.0)  # the halves point opposite ways
    tied_pair = generation_signal(np.array([0.5, 0.5, 1.0, 0.0]), cands, mean)
    assert tied_pair["mirror_ties"] == 1 and tied_pair["distinct_rewards"] == 3
    assert tied_pair["tied_fraction"] == 0.5 and tied_pair["update_snr"] is None  # a half without spread
    seeds = generation_signal(np.array([0.1, 0.2, 0.2]))  # seed addresses: rewards only
    assert seeds == {"distinct_rewards": 2, "tied_fraction": pytest.approx(2 / 3), "mirror_ties": None,
                     "update_snr": None}


def test_monitor_warns_once_below_chance_and_never_above():
    noisy, healthy = SignalMonitor(4), SignalMonitor(4)
    said = [noisy.observe({"tied_fraction": 0.9, "update_snr": 0.01}, dim=100) for _ in range(8)]
    assert said[:3] == [None] * 3 and "mostly noise" in said[3] and said[4:] == [None] * 4
    assert "cos 0.010" in said[3] and "90% of candidates tied" in said[3] and "strategy.population" in said[3]
    assert all(healthy.observe({"tied_fraction": 0.2, "update_snr": 0.3}, dim=100) is None for _ in range(8))
    assert SignalMonitor(0).observe({"tied_fraction": 1.0, "update_snr": None}, dim=100) is None  # switched off
