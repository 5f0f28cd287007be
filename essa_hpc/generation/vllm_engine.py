"""The vLLM engine process that serves one rank (``rollout.backend=vllm``).

It runs under the vLLM environment's own Python, which may differ from the rank's
(vLLM pins its own torch and transformers), so it imports nothing from essa_hpc and
talks to its rank over a ``multiprocessing.connection`` socket with plain messages:

    {"op": "generate", "prompts": [[ids], ...], "loras": [None | [name, id, path], ...],
     "params": [{"temperature", "max_tokens", "seed", "stop_token_ids"}, ...]}
        -> {"token_ids": [[ids], ...]}
    {"op": "remove", "ids": [...]}  -> {"removed": n}      (drops adapters from the engine's caches)
    {"op": "stop"}                  -> the process exits

Prompts go in as token ids and come back as token ids (``skip_tokenizer_init``): the rank
tokenizes and decodes with the same tokenizer the HF backend uses. One ``generate`` call
serves a whole candidate group, each row carrying its candidate's ``LoRARequest``.

The engine ignores the warning signals (SIGINT, SIGTERM, SIGUSR1/2): its rank handles them
at a generation boundary and needs the engine until then. It ends when its rank's
connection closes, and the kernel ends it if the rank dies (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import signal
import sys
import time
import traceback


def serve(address: str, authkey: bytes) -> None:
    from multiprocessing.connection import Listener

    # The engine listens and the rank connects, polling: a rank never waits on an engine that died.
    with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        conn = listener.accept()
    start = conn.recv()
    try:
        t0 = time.perf_counter()
        from vllm import LLM

        llm = LLM(model=start["model"], skip_tokenizer_init=True, **start["engine"])
        conn.send({"ready": True, "start_s": time.perf_counter() - t0})
    except BaseException as exc:  # noqa: BLE001 - the rank reports it in one line
        conn.send({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the rank is gone
            return
        try:
            if msg["op"] == "stop":
                return
            if msg["op"] == "generate":
                conn.send({"token_ids": generate(llm, msg)})
            elif msg["op"] == "remove":
                conn.send({"removed": remove(llm, msg["ids"])})
            else:
                conn.send({"error": f"unknown op {msg['op']!r}"})
        except BaseException as exc:  # noqa: BLE001
            conn.send({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})


def generate(llm, msg: dict) -> list[list[int]]:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in msg["prompts"]]
    params = [SamplingParams(n=1, temperature=p["temperature"], max_tokens=p["max_tokens"], seed=p.get("seed"),
                             stop_token_ids=p["stop_token_ids"], detokenize=False, ignore_eos=False)
              for p in msg["params"]]
    loras = [None if spec is None else LoRARequest(spec[0], spec[1], spec[2]) for spec in msg["loras"]]
    outputs = llm.generate(prompts, params, lora_request=loras, use_tqdm=False)
    return [list(out.outputs[0].token_ids) for out in outputs]


def remove(llm, ids: list[int]) -> int:
    engine = llm.llm_engine
    removed = 0
    for lora_id in ids:
        removed += bool(engine.remove_lora(int(lora_id)))
    return removed


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


if __name__ == "__main__":
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    _die_with_parent()
    serve(sys.argv[1], bytes.fromhex(sys.argv[2]))
