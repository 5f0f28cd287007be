"""tools/device_check.py in its CPU mode: every part of the GPU check runs, so the script that a
GPU machine will run in one call cannot rot."""
import json
import subprocess
import sys

from helpers import ROOT, cli_env, mpiexec


def test_the_device_check_runs_every_part_in_cpu_mode(tmp_path):
    out = tmp_path / "device_check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "device_check.py"), "--cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=cli_env(), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu" and "failed parts: none" in proc.stdout
    assert [(r["space"], r["dtype"]) for r in report["throughput"]] == \
        [("svd_lora", "float32"), ("lora", "float32"), ("eggroll", "float32"), ("full", "float32")]
    assert all(r["population_tok_s"] > 0 and r["plain_tok_s"] > 0 for r in report["throughput"])
    # CPU against CPU on the same candidates: greedy decoding must agree on every token
    assert report["agreement"]["row_agreement"] == 1.0 and report["agreement"]["tokens"] > 0
    if mpiexec():
        assert report["ranks"]["identical"] is True, report["ranks"]
    assert "skipped" in report["nf4"] or report["nf4"].get("population_tok_s", 0) > 0
