"""Shared bits for the benchmark scripts: machine description and result files."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


SIMD = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")


def simd_flags() -> str:
    """The vector extensions that decide CPU matmul speed (an AVX2-only EPYC ran the demo 2.4x slower)."""
    try:
        flags = next(line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags"))
    except (OSError, StopIteration):
        return ""
    return " ".join(f for f in SIMD if f in flags)


def cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return ""


def describe_machine() -> str:
    """One line: cores, CPU model and SIMD flags, for figures printed next to a time (no torch import)."""
    return f"{len(os.sched_getaffinity(0))} cores, {cpu_model() or 'unknown CPU'} ({simd_flags() or 'no AVX2'})"


def machine() -> dict:
    import torch

    return {"cores": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "simd": simd_flags(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip()}


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")
    return path
