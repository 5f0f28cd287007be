"""``essa-hpc submit``: launch training through submitit (SLURM, or local with --local).

The job is a ``submitit.helpers.Checkpointable``. On preemption our own handler
(installed inside the job, over submitit's) lets the current generation finish and
rank 0 write the HDF5 checkpoint; only then is submitit's USR2 handler called, which
pickles ``checkpoint()`` (this same job: its state is on disk) and requeues. The
requeued job resumes from the newest checkpoint.

submitit counts a preemption within min(0.8·T, T−10 min) of the start as a timeout
(measured with submitit 1.5.4), so short jobs use up ``max_num_timeout``; it is raised accordingly.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.config.validation import validate
from essa_hpc.errors import ConfigError
from essa_hpc.runtime.preempt import Preemption, requeues
from essa_hpc.runtime.rankenv import RankEnv
from essa_hpc.runtime.runlog import write_job_info

try:
    import submitit
    _Checkpointable = submitit.helpers.Checkpointable
except ImportError:  # pragma: no cover - submitit is a core dependency
    submitit, _Checkpointable = None, object


class TrainJob(_Checkpointable):
    def __init__(self, config_path: str, overrides: list[str], run_dir: str):
        self.config_path, self.overrides, self.run_dir = config_path, list(overrides), run_dir

    def __call__(self) -> dict:
        from essa_hpc.launch.train_cmd import run_training
        from essa_hpc.runtime.comm import Comm
        from essa_hpc.runtime.runlog import read_metrics

        flag = Preemption().install()  # replaces submitit's USR2/TERM handlers, keeping them
        comm = Comm()
        code = run_training(self.config_path, self.overrides, self.run_dir, comm, "auto", flag, RankEnv.from_environ())
        if requeues(code):
            submitit_handler = flag.previous_handler(signal.SIGUSR2)
            flag.uninstall()
            comm.finalize()  # every rank leaves MPI before rank 0 requeues the job
            if callable(submitit_handler):
                submitit_handler(signal.SIGUSR2, None)  # rank 0: checkpoint() + requeue + exit
            return {"preempted": True, "rank": comm.rank}
        flag.quiet()  # finished: a late warning signal must not fail the job while it exits
        if code != 0:
            raise RuntimeError(f"essa-hpc training failed with exit code {code}")
        last = read_metrics(Path(self.run_dir) / "metrics.jsonl")[-1]
        return {"run_dir": self.run_dir, "generation": last["generation"],
                "adapter_sha256": last["adapter_sha256"], "heldout_reward": last.get("heldout_reward")}


def run_submit(args, env: RankEnv) -> int:
    cfg = config_mod.load(args.config, args.overrides)
    if args.run_dir:
        cfg.run.run_dir = args.run_dir
    ranks = 1 if args.local else args.nodes * args.tasks_per_node
    validate(cfg, world_size=ranks)  # fail on the login node, not after queueing
    if args.local and args.tasks_per_node * args.nodes > 1:
        raise ConfigError("--local runs one process (no MPI launcher); drop --tasks-per-node/--nodes or use SLURM")
    run_dir = Path(cfg.run.run_dir).resolve()
    folder = run_dir / "submitit"
    executor = (submitit.LocalExecutor(folder=folder) if args.local
                else submitit.AutoExecutor(folder=folder, slurm_max_num_timeout=args.max_requeues))
    params = dict(timeout_min=args.time, nodes=args.nodes, tasks_per_node=args.tasks_per_node,
                  cpus_per_task=args.cpus_per_task, name=args.job_name)
    if not args.local:
        params.update(slurm_signal_delay_s=args.signal_delay, slurm_srun_args=[f"--mpi={args.srun_mpi}", "--kill-on-bad-exit=1"])
        if args.partition:
            params["slurm_partition"] = args.partition
    executor.update_parameters(**params)
    job = executor.submit(TrainJob(str(Path(args.config).resolve()), args.overrides, str(run_dir)))
    write_job_info(run_dir, {"job_id": str(job.job_id), "backend": "local" if args.local else executor.cluster,
                             "submitit_folder": str(folder), "submitted": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(json.dumps({"job_id": str(job.job_id), "run_dir": str(run_dir)}))
    if args.wait:
        result = job.results()[0]
        print(json.dumps({"result": result}))
    return 0


def add_submit_parser(sub) -> None:
    p = sub.add_parser("submit", help="submit training with submitit (SLURM, or --local)",
                       description="Submit `essa-hpc train` through submitit. On SLURM the job is requeued on "
                                   "preemption/timeout (USR2) and resumes from its newest checkpoint. Prints the job "
                                   "id and the run dir; `essa-hpc status RUN_DIR` shows progress.")
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="dotted config overrides")
    p.add_argument("--run-dir", help="output directory (overrides run.run_dir)")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--tasks-per-node", type=int, default=1, help="MPI ranks per node (one per GPU on GPU nodes)")
    p.add_argument("--cpus-per-task", type=int, default=1)
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--time", type=int, default=60, help="time limit in minutes")
    p.add_argument("--job-name", default="essa")
    p.add_argument("--signal-delay", type=int, default=90,
                   help="seconds before the time limit that SLURM sends USR2 (SLURM may send it up to 60 s early)")
    p.add_argument("--max-requeues", type=int, default=20, help="submitit's max_num_timeout")
    p.add_argument("--srun-mpi", default="pmi2", help="srun --mpi plugin: pmi2 (MPICH) or pmix (Open MPI)")
    p.add_argument("--local", action="store_true", help="run here with submitit's LocalExecutor (one process)")
    p.add_argument("--wait", action="store_true", help="block until the job finishes and print its result")

