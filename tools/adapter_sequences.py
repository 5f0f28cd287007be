"""The 3-generation adapter_sha256 sequences of four space/strategy pairs on the tiny model: the
behaviour a refactor must not change. Run it on the old checkout and the new one, on one machine
(float kernels differ in the last bits between machines), and compare the two JSON outputs.

    python tools/adapter_sequences.py [--repo PATH_TO_OTHER_CHECKOUT] [--out DIR] [--set KEY=VALUE ...]

``--repo`` runs that checkout's code (its ``essa_hpc`` first on PYTHONPATH) with this environment.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "svd_lora+cma_es": [],
    "svd_lora+open_es": ["strategy.kind=open_es"],
    "lora+cma_es": ["space.kind=lora"],
    "full+open_es": ["space.kind=full", "strategy.kind=open_es", "strategy.open_es.shaping=z_score",
                     "strategy.sigma_relative=false", "strategy.sigma0=0.05", "strategy.open_es.learning_rate=0.01",
                     "strategy.mirrored=false", "strategy.population=6", "rollout.group_size=1"],
}


def sequences(repo: Path, out: Path, common: list[str] = ()) -> dict[str, list[str]]:
    env = dict(os.environ, OMP_NUM_THREADS="1", ESSA_NO_MPI="1", PYTHONPATH=str(repo))
    result = {}
    for name, overrides in CASES.items():
        run_dir = out / name.replace("+", "_")
        proc = subprocess.run([sys.executable, "-m", "essa_hpc.launch.cli", "train", "configs/tiny.yaml",
                               "run.generations=3", *overrides, *common, "--run-dir", str(run_dir), "--resume", "never"],
                              cwd=repo, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed in {repo}:\n{proc.stderr[-2000:]}")
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        result[name] = [json.loads(line)["adapter_sha256"] for line in lines if line.strip()]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose code runs (default: this one)")
    ap.add_argument("--out", type=Path, help="where the runs go (default: a temporary folder)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides for every case, e.g. an option that restores an earlier default")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(sequences(args.repo.resolve(), args.out or Path(tmp), args.set), indent=1))


if __name__ == "__main__":
    main()
