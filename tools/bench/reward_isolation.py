#!/usr/bin/env python3
"""Cost of running rewards in a worker process (task.reward_isolation=process) against inline
(SIGALRM), per completion, for the built-in arithmetic and countdown rewards, in one run.

    python tools/bench/reward_isolation.py [--quick]

Writes bench/results/reward_isolation.json. The worker's one-off start (a spawned Python that
imports the task) is reported apart from the per-completion cost.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common import save  # noqa: E402

from essa_hpc.config import TaskConfig  # noqa: E402
from essa_hpc.reward_worker import RewardWorker  # noqa: E402
from essa_hpc.rewards import RewardRunner  # noqa: E402
from essa_hpc.tasks import build_task  # noqa: E402


def completions_for(task, n: int) -> tuple[list[dict], list[str]]:
    pool = task.train_pool()
    items = [pool[i % len(pool)] for i in range(n)]
    texts = [task.sft_target(it) if i % 2 else "wrong 12" for i, it in enumerate(items)]
    return items, texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, repeats = (256, 3) if args.quick else (512, 7)  # 512 = one generation of the demo (16 x 32)
    results = {}
    for kind in ("arithmetic", "countdown"):
        cfg = TaskConfig(kind=kind)
        task = build_task(cfg, 0)
        items, texts = completions_for(task, n)
        inline = RewardRunner(task.reward, 2.0)
        t0 = time.perf_counter()
        worker = RewardWorker(cfg, 0)
        worker._start()
        start_s = time.perf_counter() - t0
        isolated = RewardRunner(None, 2.0, worker=worker, method="reward")
        times = {"inline": [], "process": []}
        for _ in range(repeats):  # interleaved, so both see the same machine load
            for name, runner in (("inline", inline), ("process", isolated)):
                t0 = time.perf_counter()
                out = runner.rewards(items, texts)
                times[name].append(time.perf_counter() - t0)
            assert (inline.rewards(items, texts) == out).all()
        worker.close()
        med = {k: statistics.median(v) for k, v in times.items()}
        results[kind] = {"completions": n, "repeats": repeats, "worker_start_s": round(start_s, 3),
                         "inline_us_per_completion": round(1e6 * med["inline"] / n, 2),
                         "process_us_per_completion": round(1e6 * med["process"] / n, 2),
                         "process_over_inline": round(med["process"] / med["inline"], 2),
                         "process_ms_per_generation_of_512": round(1e3 * med["process"] * 512 / n, 2)}
        print(kind, results[kind], flush=True)
    save("reward_isolation", {"command": "python tools/bench/reward_isolation.py" + (" --quick" if args.quick else ""),
                              "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
