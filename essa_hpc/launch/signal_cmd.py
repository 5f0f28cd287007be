"""``essa-hpc signal CONFIG [overrides] [--settings FILE]``: the signal check (``signal_check.py``)
over a grid of settings; prints a table and writes JSON."""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import yaml

from essa_hpc import config as config_mod
from essa_hpc.config.validation import validate
from essa_hpc.errors import ConfigError
from essa_hpc.runtime.rankenv import RankEnv

COLUMNS = [("setting", "name", "{}", 28), ("dim", "dim", "{}", 6), ("sigma", "sigma", "{:.3g}", 9),
           ("samples", "samples", "{}", 8), ("tied", "tied_fraction", "{:.2f}", 5),
           ("agreement", "agreement", "{:+.3f}", 10), ("cos -grad", "cos_sft_gradient", "{:+.3f}", 10),
           ("summed", "cos_summed_updates", "{:+.3f}", 7),
           ("grad share", "gradient_share", "{:.2f}", 10), ("s", "seconds", "{:.0f}", 5)]


def read_settings(path: str | None) -> dict[str, list[str]]:
    """``{name: [overrides]}`` from a YAML file (a mapping of names to lists of ``key=value``)."""
    if not path:
        return {"as configured": []}
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--settings {path}: no such file")
    data = yaml.safe_load(file.read_text())
    data = data.get("settings", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ConfigError(f"--settings {path}: expected a mapping of setting names to lists of key=value overrides")
    return {str(k): [str(o) for o in v] for k, v in data.items()}


def line(cells: list[str]) -> str:
    return "  ".join(c.ljust(width) for c, (_, _, _, width) in zip(cells, COLUMNS)).rstrip()


def header() -> str:
    return line([h for h, _, _, _ in COLUMNS])


def row(result: dict) -> str:
    return line(["-" if result[k] is None else fmt.format(result[k]) for _, k, fmt, _ in COLUMNS])


def machine() -> dict:
    """Which machine measured: CPU model and cores, and the boot (two VMs of one CPU model can differ ~2x)."""
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""
    model = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    return {"cpu": model, "cores": os.cpu_count(), "boot_id": read("/proc/sys/kernel/random/boot_id").strip() or None,
            "python": sys.version.split()[0]}


def run_signal(args, env: RankEnv) -> int:
    if env.world > 1:
        raise ConfigError("essa-hpc signal runs in one process; start it without mpiexec/srun")
    settings = read_settings(args.settings)
    configs = {}
    for name, extra in settings.items():  # every setting is checked before any model loads
        cfg = config_mod.load(args.config, [*args.overrides, *extra])
        validate(cfg)
        configs[name] = cfg
    if args.populations < 2:
        raise ConfigError(f"--populations must be >= 2 (agreement compares independent populations), got "
                          f"{args.populations}")
    from essa_hpc.assemble import set_threads
    from essa_hpc.signal_check import measure

    set_threads(0, 1)
    rows = []
    print(header(), flush=True)
    for name, cfg in configs.items():
        rows.append(vars(measure(cfg, name, settings[name], args.populations, args.gradient_examples)))
        print(row(rows[-1]), flush=True)
    out = {"config": str(args.config), "overrides": list(args.overrides), "populations": args.populations,
           "gradient_examples": args.gradient_examples, "machine": machine(), "settings": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
