"""``essa-hpc submit``: launch training through submitit (SLURM, or local with --local).

On SLURM the job is elastic unless ``--no-elastic``: it is submitted with ``--no-kill``, and
one driver task runs the relaunch loop that ``slurm/essa.sbatch`` runs, so a lost node or a
killed rank costs a restart from the newest checkpoint inside the same job, not a trip back
through the queue (the jobs are in ``submit_jobs.py``).

submitit counts a preemption within min(0.8·T, T−10 min) of the start as a timeout
(measured with submitit 1.5.4), so short jobs use up ``max_num_timeout``; it is raised accordingly.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from essa_hpc import config as config_mod
from essa_hpc.config.validation import validate
from essa_hpc.errors import ConfigError
from essa_hpc.launch.submit_jobs import ElasticTrainJob, TrainJob, submitit
from essa_hpc.runtime.rankenv import RankEnv
from essa_hpc.runtime.runlog import write_job_info


def slurm_parameters(args) -> dict:
    """submitit's parameters for SLURM. Elastic: submitit knows of one task, the driver, started by
    its srun on one node as a step that overlaps the ranks' step; the allocation's nodes and
    tasks per node are set as plain sbatch options, for the driver's own srun to use."""
    params = dict(timeout_min=args.time, cpus_per_task=args.cpus_per_task, name=args.job_name,
                  slurm_signal_delay_s=args.signal_delay)
    if args.partition:
        params["slurm_partition"] = args.partition
    if not args.elastic:
        return {**params, "nodes": args.nodes, "tasks_per_node": args.tasks_per_node,
                "slurm_srun_args": [f"--mpi={args.srun_mpi}", "--kill-on-bad-exit=1"]}
    return {**params, "nodes": 1, "tasks_per_node": 1,
            "slurm_additional_parameters": {"nodes": args.nodes, "ntasks_per_node": args.tasks_per_node,
                                            "no_kill": True},
            "slurm_srun_args": ["--nodes=1", "--ntasks=1", "--overlap"]}


def submitted_job(args, config_path: str, run_dir: Path):
    if args.local or not args.elastic:
        return TrainJob(config_path, args.overrides, str(run_dir))
    return ElasticTrainJob(config_path, args.overrides, str(run_dir), args.tasks_per_node, args.srun_mpi,
                           args.max_restarts, args.min_nodes, args.restart_gap)


def run_submit(args, env: RankEnv) -> int:
    cfg = config_mod.load(args.config, args.overrides)
    if args.run_dir:
        cfg.run.run_dir = args.run_dir
    ranks = 1 if args.local else args.nodes * args.tasks_per_node
    validate(cfg, world_size=ranks)  # fail on the login node, not after queueing
    if args.local and args.tasks_per_node * args.nodes > 1:
        raise ConfigError("--local runs one process (no MPI launcher); drop --tasks-per-node/--nodes or use SLURM")
    if not 1 <= args.min_nodes <= args.nodes or args.max_restarts < 0:
        raise ConfigError(f"--min-nodes must be in [1, --nodes {args.nodes}] and --max-restarts >= 0 "
                          f"(got {args.min_nodes}, {args.max_restarts})")
    run_dir = Path(cfg.run.run_dir).resolve()
    folder = run_dir / "submitit"
    executor = (submitit.LocalExecutor(folder=folder) if args.local
                else submitit.AutoExecutor(folder=folder, slurm_max_num_timeout=args.max_requeues))
    if args.local:
        executor.update_parameters(timeout_min=args.time, cpus_per_task=args.cpus_per_task, name=args.job_name)
    else:
        executor.update_parameters(**slurm_parameters(args))
    job = executor.submit(submitted_job(args, str(Path(args.config).resolve()), run_dir))
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
    p.add_argument("--no-elastic", dest="elastic", action="store_false",
                   help="SLURM's own handling: a lost node or rank ends the job (default: relaunch inside it)")
    p.add_argument("--max-restarts", type=int, default=3, help="elastic: relaunches after failures (default 3)")
    p.add_argument("--min-nodes", type=int, default=1, help="elastic: stop rather than run on fewer nodes (default 1)")
    p.add_argument("--restart-gap", type=float, default=10.0, help="elastic: seconds between two starts at least")
    p.add_argument("--local", action="store_true", help="run here with submitit's LocalExecutor (one process)")
    p.add_argument("--wait", action="store_true", help="block until the job finishes and print its result")

