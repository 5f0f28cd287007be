"""The jobs ``essa-hpc submit`` hands to submitit.

``TrainJob``: submitit's own srun starts one of these per rank, and each trains. A rank that
dies ends the job (``--kill-on-bad-exit``).

``ElasticTrainJob`` (the default on SLURM): submitit starts one of these, on the allocation's
first node, as a step that overlaps the others. It runs the elastic loop
(``essa_hpc.runtime.elastic``), whose own srun starts the ranks and starts them again from the
newest checkpoint when a node or a rank fails, on the nodes still up, inside the same job
(which is submitted with ``--no-kill``). It is the batch script's relaunch, driven from Python.

Both are ``submitit.helpers.Checkpointable``. On preemption our own handler (installed over
submitit's) lets the ranks finish their generation and checkpoint; only then is submitit's USR2
handler called, which pickles ``checkpoint()`` (this same job: its state is on disk) and
requeues. The requeued job resumes from the newest checkpoint.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from essa_hpc.runtime.preempt import Preemption, requeues
from essa_hpc.runtime.rankenv import RankEnv

try:
    import submitit
    _Checkpointable = submitit.helpers.Checkpointable
except ImportError:  # pragma: no cover - submitit is a core dependency
    submitit, _Checkpointable = None, object


def requeue_through_submitit(flag: Preemption) -> None:
    """Call submitit's USR2 handler (checkpoint() + requeue + exit) now that the run is on disk."""
    submitit_handler = flag.previous_handler(signal.SIGUSR2)
    flag.uninstall()
    if callable(submitit_handler):
        submitit_handler(signal.SIGUSR2, None)


def run_summary(run_dir: str) -> dict:
    from essa_hpc.runtime.runlog import read_metrics
    last = read_metrics(Path(run_dir) / "metrics.jsonl")[-1]
    return {"run_dir": run_dir, "generation": last["generation"],
            "adapter_sha256": last["adapter_sha256"], "heldout_reward": last.get("heldout_reward")}


class TrainJob(_Checkpointable):
    def __init__(self, config_path: str, overrides: list[str], run_dir: str):
        self.config_path, self.overrides, self.run_dir = config_path, list(overrides), run_dir

    def __call__(self) -> dict:
        from essa_hpc.launch.train_cmd import run_training
        from essa_hpc.runtime.comm import Comm

        flag = Preemption().install()  # replaces submitit's USR2/TERM handlers, keeping them
        comm = Comm()
        code = run_training(self.config_path, self.overrides, self.run_dir, comm, "auto", flag, RankEnv.from_environ())
        if requeues(code):
            comm.finalize()  # every rank leaves MPI before rank 0 requeues the job
            requeue_through_submitit(flag)  # rank 0 exits inside; the other ranks return
            return {"preempted": True, "rank": comm.rank}
        flag.quiet()  # finished: a late warning signal must not fail the job while it exits
        if code != 0:
            raise RuntimeError(f"essa-hpc training failed with exit code {code}")
        return run_summary(self.run_dir)


class ElasticTrainJob(_Checkpointable):
    def __init__(self, config_path: str, overrides: list[str], run_dir: str, tasks_per_node: int, srun_mpi: str,
                 max_restarts: int, min_nodes: int, min_gap_s: float):
        self.config_path, self.overrides, self.run_dir = config_path, list(overrides), run_dir
        self.tasks_per_node, self.srun_mpi = tasks_per_node, srun_mpi
        self.max_restarts, self.min_nodes, self.min_gap_s = max_restarts, min_nodes, min_gap_s

    def elastic_argv(self) -> list[str]:
        essa = Path(sys.executable).with_name("essa-hpc")  # the console script beside this interpreter
        train = [str(essa)] if essa.is_file() else [sys.executable, "-m", "essa_hpc.launch.cli"]
        return [f"--max-restarts={self.max_restarts}", f"--min-nodes={self.min_nodes}",
                f"--min-gap-s={self.min_gap_s}", f"--tasks-per-node={self.tasks_per_node}",
                "--", f"--mpi={self.srun_mpi}", "--kill-on-bad-exit=1",
                "--", *train, "train", self.config_path, *self.overrides, "--run-dir", self.run_dir, "--resume", "auto"]

    def __call__(self) -> dict:
        from essa_hpc.runtime import elastic

        # SLURM signals every step, so the ranks get the warning themselves; here it only marks
        # that the step's exit 75 is a preemption to requeue, not a failure.
        flag = Preemption().install()
        code = elastic.main(self.elastic_argv())
        if requeues(code):
            requeue_through_submitit(flag)
            return {"preempted": True}
        flag.quiet()
        if code != 0:
            raise RuntimeError(f"essa-hpc training failed with exit code {code} (the elastic loop's last line says why)")
        return run_summary(self.run_dir)
