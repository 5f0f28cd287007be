"""Shared test helpers: run the real CLI in subprocesses, with or without mpiexec."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
BIN = Path(sys.executable).parent
# The full-parameter ES space on the tiny model, with signal enough that the weights move.
FULL_SPACE = ["space.kind=full", "strategy.kind=open_es", "strategy.open_es.shaping=z_score", "strategy.sigma_relative=false",
              "strategy.sigma0=0.05", "strategy.open_es.learning_rate=0.01", "strategy.mirrored=false",
              "strategy.population=6", "rollout.group_size=1"]
# EGGROLL on the tiny model: rank-1 noise on every linear, mirrored, a whole group per batch.
EGGROLL_SPACE = ["space.kind=eggroll", "space.rank=1", "space.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj,"
                 "up_proj,down_proj]", "strategy.kind=open_es", "strategy.open_es.shaping=z_score",
                 "strategy.sigma_relative=false", "strategy.sigma0=0.05", "strategy.open_es.learning_rate=0.01",
                 "strategy.population=8", "rollout.group_size=4"]
# What each space needs besides space.kind=<name> to train on the tiny model (a space not named here needs nothing).
SPACE_SETUPS = {"full": FULL_SPACE, "eggroll": EGGROLL_SPACE}


def space_setup(name: str) -> list[str]:
    """The overrides that train the space ``name`` on the tiny model."""
    return SPACE_SETUPS.get(name, [f"space.kind={name}"])


def mpiexec() -> str | None:
    exe = BIN / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


HOOKS = ROOT / "tests" / "hooks"  # sitecustomize.py: test hooks for the processes a test starts


def cli_env(**extra) -> dict:
    env = dict(os.environ)
    env.pop("ESSA_NO_MPI", None)
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1",
                "PYTHONPATH": os.pathsep.join(p for p in (str(HOOKS), env.get("PYTHONPATH", "")) if p)})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def essa(args: list[str], ranks: int | None = None, timeout: float = 300, env: dict | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "essa-hpc"), *args]
    if ranks is not None:
        cmd = [mpiexec(), "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or cli_env(), cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-4000:]}")
    return proc


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines() if line.strip()]


def shas(run_dir: Path) -> list[str]:
    return [r["adapter_sha256"] for r in metrics(run_dir)]


def rank_pids(run_dir: Path) -> list[int]:
    """PIDs of the `essa-hpc train` processes (the ranks, not mpiexec or its proxies) writing ``run_dir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"mpiexec" not in argv[0] and b"hydra" not in argv[0] and any(a.endswith(b"essa-hpc")
                                                                                    for a in argv[:2]) \
                and b"train" in argv and str(run_dir).encode() in argv:
            pids.append(int(proc.name))
    return pids


def train_cmd(run_dir: Path, *extra: str, ranks: int | None = None, config: Path = TINY) -> list[str]:
    cmd = [str(BIN / "essa-hpc"), "train", str(config), *extra, "--run-dir", str(run_dir)]
    return [mpiexec(), "-n", str(ranks), *cmd] if ranks else cmd


def custom_task(reward_fn: str, **keys):
    """A ``task.kind=custom`` section with ``task.custom.reward_fn`` and the given common keys."""
    from essa_hpc.config import TaskConfig

    cfg = TaskConfig(kind="custom", **keys)
    cfg.custom.reward_fn = reward_fn
    return cfg


def classes_in_package(package: str, base: type) -> set[str]:
    """``"module:Class"`` of every subclass of ``base`` defined in a module file of ``package``: the
    independent source the declaration tables are checked against."""
    import importlib

    defined = set()
    for path in sorted((ROOT / package.replace(".", "/")).glob("*.py")):
        module = importlib.import_module(f"{package}.{path.stem}")
        defined |= {f"{obj.__module__}:{obj.__qualname__}" for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, base) and obj is not base
                    and obj.__module__ == module.__name__}
    return defined
