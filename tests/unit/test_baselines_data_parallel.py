"""GRPO data-parallel under torchrun (gloo on CPU), and the one-line refusals of launches it cannot run."""
import json

import pytest
from helpers import BIN, ROOT, TINY, cli_env, essa, metrics

TORCHRUN_ENV = {"TORCHELASTIC_RUN_ID": "test", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}


@pytest.mark.parametrize("method, extra, env, message", [
    ("grpo", [], {"PMI_RANK": "0", "PMI_SIZE": "2"}, "data-parallel under torchrun only"),
    ("trdpo", [], {**TORCHRUN_ENV, "WORLD_SIZE": "2"}, "baseline trdpo runs as one process"),
    ("grpo", ["baseline.batch_size=8", "baseline.num_generations=4"], {**TORCHRUN_ENV, "WORLD_SIZE": "3"},
     "must split evenly over 3 processes"),
])
def test_launches_a_baseline_cannot_run_fail_in_one_line(tmp_path, method, extra, env, message):
    run = tmp_path / "never"
    proc = essa(["baseline", method, str(TINY), *extra, "--run-dir", str(run)], env=cli_env(**env), check=False,
                timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert not run.exists()


def test_grpo_on_two_torchrun_processes_trains_one_global_batch_and_stops_together(tmp_path):
    """Two processes, 4 completions each = the one-process batch of 8. Rank 0 alone writes one metrics line per
    step and scores held-out; rank 0's budget clock ends both (a rank that stopped alone would leave the other
    waiting in DDP's allreduce, and the run would time out instead of exiting). The budget is 10 s: with 4 s a
    first step once took the whole budget in a full test run, leaving one step where the test needs two."""
    import subprocess

    run = tmp_path / "grpo_dp"
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "--no-python", str(BIN / "essa-hpc"),
           "baseline", "grpo", str(TINY), "baseline.steps=10000", "baseline.budget_s=10", "baseline.eval_every=2",
           "task.heldout_size=8", "task.validation_size=8", "baseline.batch_size=8", "baseline.num_generations=4",
           "run.threads=1", "--run-dir", str(run)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=cli_env(), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summaries = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # rank 0's
    assert "2 process(es) x 1 torch threads" in proc.stderr
    rows = metrics(run)
    steps = rows[-1]["generation"]
    assert steps >= 2 and rows[-1]["budget_stop"] and json.loads(summaries[0])["steps"] == steps
    assert [r["generation"] for r in rows] == list(range(steps + 1))  # one line per step: rank 1 wrote none
    assert [r["samples"] for r in rows] == [8 * g for g in range(steps + 1)]  # both ranks' completions
    evaluated = [r["generation"] for r in rows if "heldout_reward" in r]
    assert evaluated == [0, *range(2, steps, 2), steps] or evaluated == [0, *range(2, steps + 1, 2)]
    for r in rows[1:]:
        assert 0.0 <= r["reward_mean"] <= 1.0 and r["loss"] == r["loss"]
        assert 0.0 < r["generate_s"] < r["step_s"]  # generation is part of the step, the backward pass the rest
    assert (run / "adapter" / "adapter_model.safetensors").is_file()


def _group_worker(rank: int, port: int, results):
    import numpy as np
    import torch.distributed as dist

    from essa_hpc.runtime.comm import torch_distributed_comm

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    c = torch_distributed_comm()
    results[rank] = (c.rank, c.world, c.root_decides(rank == 0), c.root_decides(rank == 1),
                     c.mean_of_present(0.25 if rank == 0 else 0.75), c.mean_of_present(0.5 if rank == 0 else None),
                     c.mismatched_ranks(repr(1.5)), c.mismatched_ranks(repr(float(rank))),
                     c.allreduce_sum(np.array([rank, 1.0])).tolist(), c.bcast_array(np.array([rank + 7.0])).tolist(),
                     c.bytes_sent)
    dist.destroy_process_group()


def test_group_decisions_are_rank_zeros_and_divergence_is_seen():
    """The Comm the data-parallel run relies on, over torch.distributed on two real gloo processes: rank 0
    decides for all, means are over the ranks that have a value, a value that differs between ranks is
    caught (as the end-of-run weight check uses it), and bytes are counted as ES counts them."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_group_worker, args=(port, results), nprocs=2, join=True)
    for rank in (0, 1):  # bytes: 4 + 4 + 16 + 16 + 8 + 8 + 16, and rank 0's 8-byte broadcast
        assert results[rank] == (rank, 2, True, False, 0.5, 0.5, [], [1], [1.0, 2.0], [7.0], 72 + 8 * (rank == 0))
