"""`essa-hpc signal` on the tiny model: a grid of settings, each measured with the strategy's own update
rule; a table on stdout and the JSON the docs cite."""
import json

from helpers import TINY, essa

GRID = """
as configured: []
B factors, top half: [space.alpha_fraction=0.5, space.svd_lora.factors=B]
tiny sigma: [strategy.sigma0=1.0e-9]
"""


def test_a_grid_of_settings_gives_a_table_and_json(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    out = tmp_path / "signal.json"
    proc = essa(["signal", str(TINY), "--settings", str(grid), "--populations", "3", "--gradient-examples", "16",
                 "--out", str(out)])
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["setting", "dim", "sigma"] and len(lines) == 4
    rows = {r["name"]: r for r in json.loads(out.read_text())["settings"]}
    assert list(rows) == ["as configured", "B factors, top half", "tiny sigma"]
    full, top, tiny = rows["as configured"], rows["B factors, top half"], rows["tiny sigma"]
    assert full["dim"] == 4 * top["dim"] and abs(full["gradient_share"] - 1.0) < 1e-12  # every value searched
    assert 0.0 <= top["gradient_share"] < 1.0  # B's top half holds part of the gradient only
    assert full["samples"] == 8 * 8 and 0.0 <= full["tied_fraction"] <= 1.0
    for r in (full, top):
        assert -1.0 <= r["agreement"] <= 1.0 and -1.0 <= r["cos_sft_gradient"] <= 1.0
        assert -1.0 <= r["cos_summed_updates"] <= 1.0
    # sigma so small that every candidate ties: pycma skips the flat step, so no update, no agreement
    assert tiny["tied_fraction"] == 1.0 and tiny["agreement"] == 0.0 and tiny["cos_sft_gradient"] == 0.0


def test_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("just a string\n")
    for args, message in ((["--settings", str(bad)], "expected a mapping of setting names"),
                          (["--populations", "1"], "--populations must be >= 2"),
                          (["strategy.population=1"], "strategy.population must be >= 2")):
        proc = essa(["signal", str(TINY), *args], check=False)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
