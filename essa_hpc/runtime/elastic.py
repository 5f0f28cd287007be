"""Relaunch a failed training step inside its SLURM allocation, on the nodes still up.

    python -m essa_hpc.runtime.elastic [--max-restarts 3] [--min-nodes 1] [--min-gap-s 10] \\
        -- SRUN_OPTION ... -- COMMAND ...

A run resumes bit-identically on any number of ranks, so a lost node need not cost a trip back
through the queue. Inside an allocation that survives a node's failure (``sbatch --no-kill``)
this runs ``srun SRUN_OPTIONS COMMAND`` on the allocation's nodes and, when the step fails, reads
srun's report of why (a node failure, or a task that exited or was killed), asks SLURM which
nodes are down, and starts the step again from the newest checkpoint: on the nodes still up when
a node was lost, on all of them when only a process failed. Restarts are bounded
(``--max-restarts``, at least ``--min-gap-s`` apart, never below ``--min-nodes``); each is logged
with its cause and the new world size, and the next start records that cause in the run's
``starts.jsonl`` (``ESSA_RESTART_CAUSE``), where ``essa-hpc status`` shows it. Exit 0 (finished),
75 (preempted: the batch script requeues) and 3 (the no-progress guard) end it at once.

torchrun's ``--max-restarts`` is the same idea for gradient training, except that torchrun
restarts every worker on the same world size; here the world may shrink.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from essa_hpc.runtime.launchers import allocation

FINAL_CODES = {0: "finished", 75: "preempted", 3: "no progress"}
PREEMPTED_TASK = re.compile(r"srun: error: \S+: tasks? [\d,\-]+: Exited with exit code 75\b")
DOWN_STATES = ("down", "drain", "fail", "unknown", "not_responding", "no_respond")
SRUN_FAILURE = re.compile(r"srun: error: (?:Node failure on (?P<lost>\S+)|Task launch for StepId=\S+ failed on "
                          r"node (?P<unreachable>[^:\s]+)|(?P<node>[^:\s]+): (?P<tasks>tasks? [\d,\-]+): (?P<how>.+))")


def log(message: str) -> None:
    print(f"essa-hpc elastic: {message}", file=sys.stderr, flush=True)


def failure_cause(srun_stderr: str) -> tuple[str, set[str]]:
    """(what failed, in one line; the nodes srun reported lost) from srun's error lines."""
    lost, unreachable, tasks = set(), set(), []
    for m in SRUN_FAILURE.finditer(srun_stderr):
        if m.group("lost"):
            lost.add(m.group("lost"))
        elif m.group("unreachable"):  # the step could not even start there: leave that node out too
            unreachable.add(m.group("unreachable"))
        else:
            tasks.append(f"{m.group('node')} {m.group('tasks')} {m.group('how').strip().lower()}")
    parts = ([f"node {n} failed" for n in sorted(lost)] + [f"launch failed on node {n}" for n in sorted(unreachable)]
             + tasks[:4])
    return "; ".join(parts) or "the step failed without naming a node or task", lost | unreachable


def hostnames(nodelist: str) -> list[str]:
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()


def down_nodes(nodes: list[str]) -> set[str]:
    """The nodes SLURM reports down, drained or failing (sinfo's long state names)."""
    out = subprocess.run(["sinfo", "-h", "-N", "-n", ",".join(nodes), "-o", "%N %T"], capture_output=True, text=True)
    down = set()
    for line in out.stdout.splitlines():
        name, _, state = line.partition(" ")
        if any(word in state.lower() for word in DOWN_STATES):
            down.add(name)
    return down


def run_step(srun_options: list[str], command: list[str], nodes: list[str], per_node: int, env: dict
             ) -> tuple[int, str]:
    """One ``srun`` on ``nodes``; its stderr passes through to ours and is kept for the cause."""
    cmd = ["srun", f"--nodes={len(nodes)}", f"--ntasks={len(nodes) * per_node}", f"--ntasks-per-node={per_node}",
           f"--nodelist={','.join(nodes)}",
           *srun_options, *command]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    kept = []
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        kept.append(line)
    return proc.wait(), "".join(kept[-200:])


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m essa_hpc.runtime.elastic", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-restarts", type=int, default=3, help="relaunches after failures (default 3)")
    ap.add_argument("--min-nodes", type=int, default=1, help="stop rather than run on fewer nodes (default 1)")
    ap.add_argument("--min-gap-s", type=float, default=10.0, help="seconds between two starts at least (default 10)")
    ap.add_argument("--tasks-per-node", type=int, help="ranks per node (default: the allocation's); a driver "
                    "that runs inside a step of its own (essa-hpc submit) gives it, since its step's variables differ")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- SRUN_OPTION ... -- COMMAND ...")
    args = ap.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if "--" not in rest or rest.index("--") == len(rest) - 1:
        ap.error("give the srun options and the command as: -- SRUN_OPTION ... -- COMMAND ...")
    cut = rest.index("--")
    return args, rest[:cut], rest[cut + 1:]


def main(argv=None, environ=os.environ) -> int:
    args, srun_options, command = parse_args(argv)
    nodelist, per_node = allocation(environ)
    per_node = args.tasks_per_node or per_node
    nodes = hostnames(nodelist)
    env, restarts = dict(environ), 0
    while True:
        started = time.monotonic()
        code, stderr = run_step(srun_options, command, nodes, per_node, env)
        if code in FINAL_CODES:
            return code
        cause, lost = failure_cause(stderr)
        if PREEMPTED_TASK.search(stderr):  # a rank checkpointed and left: the job requeues, not relaunches
            log(f"a rank exited 75 (preempted, checkpointed): ending the step as preempted ({cause})")
            return 75
        if restarts >= args.max_restarts:
            log(f"stopping: the restart budget is spent ({restarts} of --max-restarts {args.max_restarts}); "
                f"last failure: {cause} (exit {code})")
            return code
        alive = [n for n in nodes if n not in lost | down_nodes(nodes)]
        if len(alive) < args.min_nodes:
            log(f"stopping: {len(alive)} node(s) left, fewer than --min-nodes {args.min_nodes}; last failure: {cause}")
            return code
        time.sleep(max(0.0, args.min_gap_s - (time.monotonic() - started)))
        restarts += 1
        log(f"restart {restarts} of {args.max_restarts} after: {cause} (exit {code}); relaunching on "
            f"{','.join(alive)}: {len(alive) * per_node} ranks")
        nodes = alive
        env = {**env, "ESSA_RESTART_CAUSE": cause, "ESSA_ELASTIC_RESTART": str(restarts)}


if __name__ == "__main__":
    sys.exit(main())
