"""The ``essa-hpc`` command line: argument parsing and dispatch only.

Each subcommand lives in its own module under ``essa_hpc.launch``; imports are
lazy so ``--help`` and config errors answer in well under a second.
"""
from __future__ import annotations

import argparse
import importlib
import sys

EPILOG = """\
Overrides are dotted section.key=value pairs applied on top of CONFIG, e.g.
  essa-hpc train configs/demo.yaml strategy.population=16 run.generations=3
Run `essa-hpc config --describe` for every key, its default and meaning.

Exit codes: 0 done, 2 bad config or input, 75 preempted (resumable: run the
same command again, or let SLURM requeue), 130 interrupted by Ctrl-C (checkpointed
at the end of the generation, resumable; a second Ctrl-C stops at once without a
checkpoint), 1 anything else: under MPI a failing rank names itself and ends them all."""


def _add_config_args(p: argparse.ArgumentParser, config_required: bool = True) -> None:
    p.add_argument("config", nargs=None if config_required else "?", help="YAML config file (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="dotted config overrides")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="essa-hpc", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Align LLMs with evolution strategies: ESSA (CMA-ES over SVD-LoRA singular values), "
                    "OpenAI-ES and full-parameter ES, as an MPI/SLURM batch job. "
                    "Launch with mpiexec/srun for several ranks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="run ES training (resumes from the newest checkpoint by default)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Run ES training. Under mpiexec/srun every rank runs this same command.")
    _add_config_args(p)
    p.add_argument("--run-dir", help="output directory (overrides run.run_dir)")
    p.add_argument("--resume", default="auto", choices=["auto", "never", "must"],
                   help="auto: resume if a valid checkpoint exists; never: start fresh; must: fail without one")

    p = sub.add_parser("eval", help="held-out reward of the base model, a run, or an exported PEFT adapter",
                       description="Report the held-out metric (exact match) as JSON. With neither --run-dir nor "
                                   "--adapter the plain base model is scored. With --run-dir, CONFIG defaults to the "
                                   "run's own config.yaml; a CONFIG whose model or space differs from the run's is "
                                   "refused.")
    _add_config_args(p, config_required=False)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run-dir", help="score the adapter in this run's newest checkpoint")
    src.add_argument("--adapter", help="score a PEFT adapter directory, loaded with PeftModel.from_pretrained")

    p = sub.add_parser("export", help="write a run's adapter as a PEFT directory",
                       description="Write the newest checkpoint's adapter of RUN_DIR as a PEFT adapter "
                                   "(adapter_config.json + adapter_model.safetensors) into OUT_DIR.")
    p.add_argument("run_dir", help="a run directory (holds config.yaml and checkpoints/)")
    p.add_argument("out_dir", help="where to write the PEFT adapter")

    p = sub.add_parser("sft", help="train the SFT LoRA adapter ESSA starts from (space.init)",
                       description="Supervised LoRA warm-up on the task's training split, with the same rank and "
                                   "target modules as the search space. Writes a PEFT adapter directory.")
    _add_config_args(p)
    p.add_argument("--out", help="adapter directory (default: sft.out_dir or <run.run_dir>/sft)")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation after training")

    from essa_hpc.config.baselines import BASELINES  # the declarations: light, no TRL or torch

    methods = " | ".join(BASELINES.names())
    parallel = ", ".join(BASELINES.with_capability("data_parallel")) or "none"
    p = sub.add_parser("baseline", help=f"train a gradient baseline through TRL: {methods}",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Train a baseline the ESSA papers compare against on the same task, start adapter\n"
                                   "(space.init) and held-out set, in one process; data-parallel under torchrun\n"
                                   "(torchrun --standalone --nproc_per_node N --no-python essa-hpc baseline METHOD ...)\n"
                                   f"for: {parallel}. METHOD is one of\n"
                                   + "".join(f"  {s.name:<7}{s.help}\n" for s in BASELINES.specs())
                                   + "Settings are the baseline.* keys. Writes metrics.jsonl, config.yaml and adapter/.")
    p.add_argument("method", metavar="METHOD", help=methods)  # checked with the config: one line, exit 2
    _add_config_args(p)
    p.add_argument("--run-dir", help="output directory (overrides run.run_dir)")

    p = sub.add_parser("inspect", help="summarise a checkpoint file or a run's newest checkpoint")
    p.add_argument("path", help="a .h5 checkpoint or a run directory")
    p.add_argument("--tail", type=int, default=5, help="how many metric lines to show")

    from essa_hpc.launch.submit_cmd import add_submit_parser
    add_submit_parser(sub)

    p = sub.add_parser("signal", help="how much of one generation's update is signal, for a grid of settings",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="At the run's start, draw independent populations per setting, score them as\n"
                                   "training does and form each update with the strategy's own rule. Reports the\n"
                                   "agreement of independent updates (0 = noise), their cosine with the negative\n"
                                   "SFT-loss gradient on the searched values, the tie fraction and the share of that\n"
                                   "gradient inside the searched dimensions. One process; minutes, not a run.")
    _add_config_args(p)
    p.add_argument("--settings", help="YAML: setting name -> list of key=value overrides (default: the config as is)")
    p.add_argument("--populations", type=int, default=4, help="independent populations per setting (>= 2)")
    p.add_argument("--gradient-examples", type=int, default=256,
                   help="SFT examples for the gradient comparison (0 = skip it)")
    p.add_argument("--out", help="write the results as JSON here")

    p = sub.add_parser("status", help="progress of a run: generation, reward, checkpoint, job state")
    p.add_argument("run_dir", help="a run directory")

    p = sub.add_parser("config", help="print the resolved config, or --describe every key")
    _add_config_args(p, config_required=False)
    p.add_argument("--describe", action="store_true", help="print the reference of every key (Markdown)")
    return parser


# command -> "module:function" under essa_hpc.launch, imported only when used
COMMANDS = {"eval": "eval_cmd:run_eval", "export": "eval_cmd:run_export", "sft": "sft_cmd:run_sft",
            "baseline": "baseline_cmd:run_baseline", "inspect": "inspect_cmd:run_inspect",
            "submit": "submit_cmd:run_submit", "signal": "signal_cmd:run_signal", "status": "inspect_cmd:run_status", "config": "inspect_cmd:run_config"}


def main(argv: list[str] | None = None, owns_process: bool | None = None) -> int:
    """``owns_process`` (default: called as the console script, ``argv`` None): the process ends
    after this returns, so a finished ``train`` may ignore late signals for good (preempt.quiet)."""
    owns_process = argv is None if owns_process is None else owns_process
    parser = build_parser()
    # Overrides may follow options (`train cfg.yaml --run-dir d run.seed=1`); argparse
    # stops filling a positional list at the first option, so collect the rest here.
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("-") or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = list(args.overrides or []) + extra
    from essa_hpc.errors import ConfigError
    from essa_hpc.runtime.rankenv import RankEnv

    env = RankEnv.from_environ()  # the one read of the launcher's variables
    try:
        if args.command == "train":
            # Catch preemption signals before the slow imports and model load: SLURM may
            # send its warning while a requeued job is still starting up.
            from essa_hpc.runtime.preempt import Preemption
            flag = Preemption().install()
            from essa_hpc.launch.train_cmd import run_train
            try:
                return run_train(args, env, flag)
            finally:
                flag.quiet() if owns_process else flag.uninstall()
        module, function = COMMANDS[args.command].split(":")
        return getattr(importlib.import_module(f"essa_hpc.launch.{module}"), function)(args, env)
    except ConfigError as exc:
        if env.is_root:  # every rank hits the same config error; one line is enough
            print(f"essa-hpc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
