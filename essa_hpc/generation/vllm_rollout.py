"""``rollout.backend=vllm``: the population served as multi-LoRA by a vLLM engine.

Each rank starts one engine process (``vllm_engine.py``) under the vLLM environment's
Python: vLLM pins its own torch and transformers, so on CPU it lives in its own venv
(``make venv-vllm``), and on GPU clusters in the rank's own (``pip install essa-hpc[vllm]``).
``find_vllm_python`` looks for it and ``engine_env`` sets what it needs, in one place.

For a candidate group, ``prepare`` writes each candidate's factors (``space.factors_for``)
as a PEFT adapter in tmpfs under a fresh adapter id, ``generate`` sends the group's rows in
one engine call, each row with its candidate's ``LoRARequest``, and ``release`` removes
the adapters from the engine and from tmpfs, so memory stays flat over a run. Prompts are
the token ids ``HFRollout`` renders, and completions come back as token ids decoded by the
same tokenizer, so both backends see the same text.
"""
from __future__ import annotations

import atexit
import glob
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from multiprocessing.connection import Client
from pathlib import Path

from essa_hpc.config.backends import find_vllm_python
from essa_hpc.generation.rollout import Completions, HFRollout
from essa_hpc.runtime import seeding

log = logging.getLogger(__name__)
ENGINE_SCRIPT = Path(__file__).resolve().with_name("vllm_engine.py")


def engine_env(python: str, opts, cores: list[int], device: str) -> dict:
    """The engine process's environment. On CPU, vLLM needs its torch's libgomp preloaded, a KV
    cache size, and the cores it may use; single-process mode starts it in ~30 s instead of minutes."""
    env = dict(os.environ)
    env.update({"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"})
    env.pop("PYTHONPATH", None)  # nothing of the rank's environment may shadow vLLM's own packages
    if not device.startswith("cuda"):
        env["VLLM_CPU_KVCACHE_SPACE"] = str(opts.kv_cache_gib)
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cores)
        env["OMP_NUM_THREADS"] = str(len(cores))
        prefix = Path(python).resolve().parents[1]
        gomp = sorted(glob.glob(str(prefix / "lib" / "python3*" / "site-packages" / "torch" / "lib" / "libgomp*.so*")))
        if gomp:
            env["LD_PRELOAD"] = gomp[0]
    return env


def engine_args(cfg, model_dir: str) -> dict:
    o, r = cfg.rollout.vllm, cfg.rollout
    return dict(dtype=o.dtype, enforce_eager=o.enforce_eager, max_model_len=o.max_model_len,
                tensor_parallel_size=o.tensor_parallel_size, gpu_memory_utilization=o.gpu_memory_utilization,
                max_num_seqs=r.max_rows, max_num_batched_tokens=max(r.max_rows * o.max_model_len, 2048),
                enable_lora=True, max_lora_rank=max(8, cfg.space.rank), max_loras=max(1, r.group_size),
                max_cpu_loras=max(2, 2 * r.group_size), seed=0, distributed_executor_backend="uni")


class VLLMRollout(HFRollout):
    """Renders and decodes like ``HFRollout`` (it is one, for the base model it never runs);
    generation goes to the engine."""

    def __init__(self, model, tokenizer, cfg, env=None):
        super().__init__(model, tokenizer, cfg)
        self.cfg = cfg
        self.python = find_vllm_python(cfg.rollout.vllm.python)
        self.work = Path(tempfile.mkdtemp(prefix=f"essa-vllm-{os.getpid()}-", dir="/dev/shm"))
        atexit.register(self.close)  # the engine and the tmpfs directory go with the rank
        self._next_id, self._live = 0, []
        self.model_dir = self._base_dir(cfg)
        cores = sorted(os.sched_getaffinity(0))
        if env is not None and env.local_world > 1 and len(cores) >= env.local_world:
            cores = cores[env.local_rank::env.local_world]  # ranks on one node share its cores, one slice each
        self._start(engine_env(self.python, cfg.rollout.vllm, cores, env.device if env is not None else "cpu"))

    def _base_dir(self, cfg) -> str:
        """The base model as an HF directory (or hub id) for vLLM: the one the rank loaded from, or,
        for a model built in code, a fresh unwrapped copy of it saved to tmpfs."""
        from essa_hpc.config.model_names import TINY
        from essa_hpc.model import load_model, resolve_model_dir

        if not TINY.match(cfg.model.name):
            return resolve_model_dir(cfg.model)
        model, tok = load_model(cfg.model)  # the rank's own copy is wrapped by the space by now
        out = self.work / "base"
        model.save_pretrained(str(out), safe_serialization=True)
        tok.save_pretrained(str(out))
        return str(out)

    def _start(self, env: dict) -> None:
        authkey = secrets.token_bytes(16)
        address = str(self.work / "engine.sock")
        log_path = self.work / "engine.log"
        t0 = time.perf_counter()
        with open(log_path, "wb") as fh:
            self.proc = subprocess.Popen([self.python, str(ENGINE_SCRIPT), address, authkey.hex()], env=env,
                                         stdout=fh, stderr=subprocess.STDOUT, cwd=str(self.work))
        self.conn = None
        while self.conn is None:  # the engine listens; connect once it does, unless it died first
            if self.proc.poll() is not None or time.perf_counter() - t0 > self.cfg.rollout.vllm.start_timeout_s:
                tail = log_path.read_text(errors="replace")[-1500:]
                self.close()
                raise RuntimeError(f"vLLM engine exited before it listened; engine log tail:\n{tail}")
            try:
                self.conn = Client(address, family="AF_UNIX", authkey=authkey)
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)
        self.conn.send({"model": self.model_dir, "engine": engine_args(self.cfg, self.model_dir)})
        reply = self.conn.recv() if self.conn.poll(self.cfg.rollout.vllm.start_timeout_s) else {"error": "timed out"}
        if "error" in reply:
            tail = log_path.read_text(errors="replace")[-1500:]
            self.close()
            raise RuntimeError(f"vLLM engine did not start ({reply['error']}); engine log tail:\n{tail}")
        log.info("vLLM engine ready in %.1f s (%s)", time.perf_counter() - t0, self.python)

    def _call(self, msg: dict) -> dict:
        self.conn.send(msg)
        reply = self.conn.recv()
        if "error" in reply:
            raise RuntimeError(f"vLLM engine: {reply['error']}\n{reply.get('trace', '')}")
        return reply

    # --- the backend protocol -------------------------------------------------------
    def prepare(self, space, cands, row_cand):
        """One adapter per candidate the rows use; returns each row's [name, id, path]."""
        specs = {}
        for c in sorted(set(int(i) for i in row_cand)):
            self._next_id += 1  # fresh per (generation, candidate): vLLM caches adapters by id
            path = self.work / f"lora-{self._next_id}"
            space.save_candidate(cands[c], path)
            specs[c] = [f"c{self._next_id}", self._next_id, str(path)]
            self._live.append(self._next_id)
        return [specs[int(i)] for i in row_cand]

    def release(self, space) -> None:
        if self._live:
            self._call({"op": "remove", "ids": list(self._live)})
            for lora_id in self._live:
                shutil.rmtree(self.work / f"lora-{lora_id}", ignore_errors=True)
            self._live = []

    def generate(self, items: list[dict], sample_seed: int | None = None, rows=None, *,
                 temperature: float | None = None, max_new_tokens: int | None = None) -> Completions:
        temp = self.rcfg.temperature if temperature is None else temperature
        n_new = self.rcfg.max_new_tokens if max_new_tokens is None else max_new_tokens
        eos = self.tok.eos_token_id
        params = [{"temperature": float(temp), "max_tokens": int(n_new), "stop_token_ids": [eos],
                   "seed": seeding.int_seed(int(sample_seed or 0), "sampling", i) % 2**31 if temp > 0 else None}
                  for i in range(len(items))]
        reply = self._call({"op": "generate", "prompts": [list(self.token_ids(it)) for it in items],
                            "loras": rows if rows is not None else [None] * len(items), "params": params})
        ids = [row[: row.index(eos) + 1] if eos in row else row for row in reply["token_ids"]]
        texts = self.tok.batch_decode(ids, skip_special_tokens=True)
        return Completions(texts, sum(len(x) for x in ids), ids)

    def close(self) -> None:
        try:
            if getattr(self, "conn", None) is not None:
                self.conn.send({"op": "stop"})
                self.conn.close()
        except OSError:
            pass
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.conn = self.proc = None
        shutil.rmtree(self.work, ignore_errors=True)
