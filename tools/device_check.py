#!/usr/bin/env python3
"""The GPU check: one prepared call that tries essa-hpc's GPU path and records its numbers.

    python tools/device_check.py [--cpu] [--out FILE] [--model random:qwen2.5-0.5b]

GPU mode (the default; needs CUDA), on a real architecture with random weights:
- every search space (svd_lora, lora, eggroll, full) in bf16 and fp32: the population's
  tokens per second through the trainer's own evaluation against plain batched ``generate`` of
  the base model on the same rows, and the peak GPU memory;
- greedy agreement between CPU and CUDA in fp32: the same svd_lora candidates, token by token;
- ``mpiexec -n 2`` on the one GPU against 1 rank: identical adapters;
- svd_lora over a bitsandbytes NF4 base (``model.quantize=nf4``), where bitsandbytes is installed.

CPU mode (``--cpu``) runs the same steps at small sizes on the CPU (CPU against CPU for the
agreement), so the script runs in ``make test`` and cannot rot. A part that cannot run records
why ("skipped") and the others go on; one JSON file holds everything, and a summary is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the device machine runs the working tree without installing it

SPACES = ["svd_lora", "lora", "eggroll", "full"]
# Seed-addressed spaces (eggroll, full) need a strategy with a seed-addressed form.
SPACE_OVERRIDES = {"eggroll": ["strategy.kind=open_es", "space.rank=1"], "full": ["strategy.kind=open_es",
                                                                                  "strategy.mirrored=false"]}


def settings(args) -> dict:
    if args.cpu:
        return {"device": "cpu", "model": args.model or "tiny-random:64x2", "dtypes": ["float32"], "population": 4,
                "prompts": 4, "max_new_tokens": 4}
    return {"device": "cuda", "model": args.model or "random:qwen2.5-0.5b", "dtypes": ["bfloat16", "float32"],
            "population": 16, "prompts": 16, "max_new_tokens": 16}


def overrides(s: dict, space: str, dtype: str, quantize: str = "none") -> list[str]:
    return [f"model.name={s['model']}", f"model.dtype={dtype}", f"model.quantize={quantize}", f"space.kind={space}",
            *SPACE_OVERRIDES.get(space, []),
            f"strategy.population={s['population']}", f"task.batch_size={s['prompts']}", "task.heldout_size=4",
            f"rollout.max_new_tokens={s['max_new_tokens']}", "rollout.group_size=4",
            f"rollout.max_rows={s['population'] * s['prompts']}", f"run.device={s['device']}"]


def peak_memory_reset(device: str) -> None:
    if device == "cuda":
        import torch
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def throughput(s: dict, space: str, dtype: str, quantize: str = "none") -> dict:
    """The population's tokens/s through the trainer's evaluation, and plain generate on the same rows."""
    from essa_hpc import config
    from essa_hpc.assemble import build_parts, build_search
    from essa_hpc.evaluation import evaluate_population
    from essa_hpc.runtime.comm import Comm
    from essa_hpc.runtime.rankenv import RankEnv

    cfg = config.load(str(ROOT / "configs" / "tiny.yaml"), overrides(s, space, dtype, quantize))
    env = RankEnv().with_device(cfg.run.device)
    peak_memory_reset(s["device"])
    parts = build_parts(cfg, env=env)
    items = parts.task.minibatch(0, s["prompts"])
    cands = build_search(cfg, parts.space).ask()
    comm = Comm(use_mpi=False)
    evaluate_population(parts.rollout, parts.space, parts.rewarder, cands[:1], items, cfg, comm, 0)  # warm-up
    result = evaluate_population(parts.rollout, parts.space, parts.rewarder, cands, items, cfg, comm, 1)
    # Plain batched generate of the base model on the same rows (the evaluation released the space,
    # so the model is the base again), in chunks of the same size.
    rows = [items[i % len(items)] for i in range(len(cands) * len(items))]
    t0 = time.perf_counter()
    plain_tokens = sum(parts.rollout.generate(rows[i:i + cfg.rollout.max_rows]).new_tokens
                       for i in range(0, len(rows), cfg.rollout.max_rows))
    plain_s = time.perf_counter() - t0
    population_tok_s, plain_tok_s = result.new_tokens / result.eval_s, plain_tokens / plain_s
    return {"space": space, "dtype": dtype, "candidates": len(cands), "rows": len(rows),
            "population_tok_s": round(population_tok_s, 1), "plain_tok_s": round(plain_tok_s, 1),
            "population_over_plain": round(population_tok_s / plain_tok_s, 3),
            "peak_memory_mib": peak_memory_mib(s["device"])}


def greedy_tokens(s: dict, device: str):
    import numpy as np

    from essa_hpc import config
    from essa_hpc.assemble import build_parts, build_search
    from essa_hpc.runtime.rankenv import RankEnv

    cfg = config.load(str(ROOT / "configs" / "tiny.yaml"), overrides({**s, "device": device}, "svd_lora", "float32"))
    parts = build_parts(cfg, env=RankEnv().with_device(device))
    items = parts.task.minibatch(0, s["prompts"])
    cands = build_search(cfg, parts.space).ask()[:4]
    rows = np.repeat(np.arange(len(cands)), len(items))
    prepared = parts.rollout.prepare(parts.space, cands, rows)
    out = parts.rollout.generate([items[i % len(items)] for i in range(len(rows))], rows=prepared)
    parts.rollout.release(parts.space)
    return out.token_ids


def agreement(s: dict) -> dict:
    """Greedy tokens of the same svd_lora candidates in fp32 on the CPU and on the check's device."""
    cpu, dev = greedy_tokens(s, "cpu"), greedy_tokens(s, s["device"])
    same_rows = sum(a == b for a, b in zip(cpu, dev))
    tokens = sum(len(a) for a in cpu)
    same_tokens = sum(x == y for a, b in zip(cpu, dev) for x, y in zip(a, b))
    return {"rows": len(cpu), "identical_rows": same_rows, "tokens": tokens, "identical_tokens": same_tokens,
            "row_agreement": round(same_rows / len(cpu), 3), "compared": f"cpu vs {s['device']}"}


def ranks_agree(s: dict) -> dict:
    """``essa-hpc train`` on 1 rank and under ``mpiexec -n 2`` on the same device: the same adapter."""
    mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if not mpiexec:
        return {"skipped": "no mpiexec on PATH or beside this Python"}
    shas = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in (1, 2):
            run = Path(tmp) / f"ranks{ranks}"
            cmd = [sys.executable, "-m", "essa_hpc.launch.cli", "train", str(ROOT / "configs" / "tiny.yaml"),
                   f"run.device={s['device']}", "run.generations=2", "--run-dir", str(run)]
            cmd = [mpiexec, "-n", "2", *cmd] if ranks == 2 else cmd
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   "OMP_NUM_THREADS": "1"}
            env.pop("ESSA_NO_MPI", None) if ranks == 2 else env.update(ESSA_NO_MPI="1")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
            if proc.returncode != 0:
                return {"error": f"{ranks} rank(s) exited {proc.returncode}: {proc.stderr.strip()[-600:]}"}
            last = (run / "metrics.jsonl").read_text().splitlines()[-1]
            shas[ranks] = json.loads(last)["adapter_sha256"]
    out = {"adapter_1_rank": shas[1], "adapter_2_ranks": shas[2], "identical": shas[1] == shas[2]}
    return out if out["identical"] else {**out, "error": "1 and 2 ranks ended on different adapters"}


def nf4(s: dict) -> dict:
    """svd_lora over a bitsandbytes NF4 base, in the first dtype of the mode (bf16 on the GPU)."""
    import importlib.util
    if importlib.util.find_spec("bitsandbytes") is None:
        return {"skipped": "bitsandbytes is not installed here"}
    return {**throughput(s, "svd_lora", s["dtypes"][0], "nf4"), "quantize": "nf4"}


def attempt(name: str, fn, *args) -> dict:
    """Run one part; an exception becomes its record, so the other parts still run."""
    t0 = time.perf_counter()
    out: dict = {"part": name}
    try:
        out.update(fn(*args))
    except Exception as exc:  # noqa: BLE001 - the check reports every failure and goes on
        out.update(error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                   traceback=traceback.format_exc()[-1500:])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"device_check: {name}: " + json.dumps({k: v for k, v in out.items() if k != "traceback"}), flush=True)
    return out


def machine(device: str) -> dict:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__, "host": platform.node()}
    if device == "cuda":
        info.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                    gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    else:
        info["cpu_threads"] = torch.get_num_threads()
    import transformers
    info["transformers"] = transformers.__version__
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="small sizes on the CPU (what make test runs)")
    ap.add_argument("--model", default="", help="model.name (default: random:qwen2.5-0.5b, tiny-random:64x2 with --cpu)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "device_check.json"))
    args = ap.parse_args(argv)
    s = settings(args)
    import torch
    if s["device"] == "cuda" and not torch.cuda.is_available():
        print("device_check: no CUDA device here; use --cpu for the CPU mode", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    report = {"mode": "cpu" if args.cpu else "gpu", "settings": s, "machine": machine(s["device"]),
              "command": "python tools/device_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "throughput": [attempt(f"{space} {dtype}", throughput, s, space, dtype)
                             for dtype in s["dtypes"] for space in SPACES]}
    report["agreement"] = attempt("greedy agreement", agreement, s)
    report["ranks"] = attempt("1 vs 2 ranks", ranks_agree, s)
    report["nf4"] = attempt("nf4", nf4, s)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    parts = [*report["throughput"], report["agreement"], report["ranks"], report["nf4"]]
    failed = [part["part"] for part in parts if "error" in part]
    print(f"device_check: {report['mode']} mode on {report['machine'].get('gpu', 'CPU')}, {report['wall_s']} s, "
          f"wrote {args.out}; failed parts: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
