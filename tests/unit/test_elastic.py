"""The elastic relaunch loop (essa_hpc.runtime.elastic) against fake srun, scontrol and sinfo:
which nodes it relaunches on, the cause it logs and passes on, and its bounds. The loop on the
real test cluster is in tests/slurm."""
import json
import os
import stat

import pytest

from essa_hpc.runtime import elastic

FAKE_SRUN = """#!/bin/bash
# Each call: record its arguments and ESSA_RESTART_CAUSE, then play the next scripted outcome.
n=$(( $(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$FAKE_DIR/calls"
python3 -c 'import json,os,sys; print(json.dumps({"args": sys.argv[1:], "cause": os.environ.get("ESSA_RESTART_CAUSE")}))' "$@" >> "$FAKE_DIR/srun.jsonl"
outcome=$(sed -n "${n}p" "$FAKE_DIR/outcomes"); [ -z "$outcome" ] && outcome=$(tail -n 1 "$FAKE_DIR/outcomes")
code=${outcome%%|*}; message=${outcome#*|}
[ -n "$message" ] && echo "$message" >&2
exit "$code"
"""
FAKE_SCONTROL = '#!/bin/bash\necho node1; echo node2\n'
FAKE_SINFO = '#!/bin/bash\ncat "$FAKE_DIR/sinfo"\n'


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL), ("sinfo", FAKE_SINFO)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    (tmp_path / "sinfo").write_text("node1 idle\nnode2 idle\n")

    def run(outcomes: list[str], sinfo: str = "node1 idle\nnode2 idle\n", *options: str):
        (tmp_path / "outcomes").write_text("\n".join(outcomes) + "\n")
        (tmp_path / "sinfo").write_text(sinfo)
        env = {**os.environ, "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "node[1-2]", "SLURM_NTASKS_PER_NODE": "2"}
        code = elastic.main(["--min-gap-s", "0", *options, "--", "--mpi=pmi2", "--", "essa-hpc", "train", "x.yaml"],
                            environ=env)
        calls = [json.loads(line) for line in (tmp_path / "srun.jsonl").read_text().splitlines()]
        return code, calls
    return run


def nodes_of(call) -> str:
    return next(a for a in call["args"] if a.startswith("--nodelist=")).split("=", 1)[1]


def test_a_lost_node_relaunches_on_the_nodes_left_with_the_cause(cluster, capsys):
    code, calls = cluster(["1|srun: error: Node failure on node2", "0|"], "node1 idle\nnode2 down*\n")
    assert code == 0 and [nodes_of(c) for c in calls] == ["node1,node2", "node1"]
    assert "--ntasks=2" in calls[1]["args"] and calls[1]["args"][-3:] == ["essa-hpc", "train", "x.yaml"]
    assert calls[1]["cause"] == "node node2 failed" and calls[0]["cause"] is None
    assert "restart 1 of 3 after: node node2 failed (exit 1); relaunching on node1: 2 ranks" in capsys.readouterr().err


def test_a_node_where_the_step_could_not_start_is_left_out(cluster):
    code, calls = cluster(["233|srun: error: Task launch for StepId=137.0 failed on node node2: Communication "
                           "connection failure", "0|"])
    assert code == 0 and [nodes_of(c) for c in calls] == ["node1,node2", "node1"]
    assert calls[1]["cause"] == "launch failed on node node2"


def test_a_crashed_process_relaunches_on_every_node(cluster):
    code, calls = cluster(["137|srun: error: node2: task 3: Killed", "0|"])
    assert code == 0 and [nodes_of(c) for c in calls] == ["node1,node2", "node1,node2"]
    assert calls[1]["cause"] == "node2 task 3 killed"


@pytest.mark.parametrize("final", [0, 75, 3])
def test_finished_preempted_and_no_progress_end_at_once(cluster, final):
    code, calls = cluster([f"{final}|"])
    assert code == final and len(calls) == 1


def test_a_rank_that_left_preempted_makes_the_step_preempted(cluster):
    """One rank exits 75 (checkpointed) and srun kills the slower ones: requeue, do not relaunch."""
    code, calls = cluster(["137|srun: error: vm: task 1: Exited with exit code 75\nsrun: error: vm: task 0: Killed"])
    assert code == 75 and len(calls) == 1


def test_the_restart_budget_ends_a_step_that_always_fails(cluster, capsys):
    code, calls = cluster(["1|srun: error: node1: task 0: Exited with exit code 1"], "node1 idle\nnode2 idle\n",
                          "--max-restarts", "2")
    assert code == 1 and len(calls) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "essa-hpc elastic: stopping: the restart budget is spent (2 of --max-restarts 2); last failure: node1 "
        "task 0 exited with exit code 1 (exit 1)")


def test_fewer_nodes_than_the_minimum_stops(cluster, capsys):
    code, calls = cluster(["1|srun: error: Node failure on node2"], "node1 idle\nnode2 down\n", "--min-nodes", "2")
    assert code == 1 and len(calls) == 1
    assert "stopping: 1 node(s) left, fewer than --min-nodes 2" in capsys.readouterr().err


def test_the_command_line_needs_both_parts():
    with pytest.raises(SystemExit):
        elastic.parse_args(["--", "--mpi=pmi2"])


def test_a_driver_in_a_step_of_its_own_gives_the_tasks_per_node(cluster):
    """essa-hpc submit's driver runs in a one-task step; its step's variables do not describe the
    allocation, so it passes the ranks per node itself and srun gets them explicitly."""
    code, calls = cluster(["137|srun: error: node2: task 1: Killed", "0|"], "node1 idle\nnode2 idle\n",
                          "--tasks-per-node", "3")
    assert code == 0
    for call in calls:
        assert "--ntasks=6" in call["args"] and "--ntasks-per-node=3" in call["args"], call
