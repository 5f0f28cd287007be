"""Helpers for preemption/resume tests: run, interrupt, resume, compare."""
from __future__ import annotations

from pathlib import Path

from helpers import TINY, cli_env, essa, metrics

EXIT_PREEMPTED = 75
GENS = 6


def train(run: Path, ranks: int | None, *extra: str, preempt_at: str = "", resume: str = "auto", check=True,
          env_extra: dict | None = None):
    env = cli_env(ESSA_TEST_PREEMPT_AT=preempt_at, **(env_extra or {}))
    return essa(["train", str(TINY), f"run.generations={GENS}", *extra, "--run-dir", str(run), "--resume", resume],
                ranks=ranks, env=env, check=check)


def final_sha(run: Path) -> str:
    return metrics(run)[-1]["adapter_sha256"]


def assert_each_generation_once(run: Path) -> None:
    gens = [r["generation"] for r in metrics(run)]
    assert gens == list(range(GENS + 1)), gens


def run_with_preemptions(run: Path, ranks_sequence: list[int | None], preempt_points: list[str]) -> list[int]:
    """Run until done; invocation i uses ranks_sequence[i] and preempts at preempt_points[i]."""
    codes = []
    for ranks, point in zip(ranks_sequence, preempt_points):
        proc = train(run, ranks, preempt_at=point, check=False)
        codes.append(proc.returncode)
        if proc.returncode not in (0, EXIT_PREEMPTED):
            raise AssertionError(proc.stderr[-3000:])
    return codes
