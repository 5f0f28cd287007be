"""Fakes for in-process loop tests: a numpy search space, a rollout that "generates" from
the candidate vector, a seeded task, and a transport that runs ranks as threads.

The real Trainer, strategies, evaluation, rewards, checkpoint manager and ``Comm`` (byte
counting included) run unchanged on top of them; no torch, no model, no subprocess.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from essa_hpc.assemble import Parts
from essa_hpc.rewards import FaultCounter, RewardRunner
from essa_hpc.runtime import seeding
from essa_hpc.runtime.comm import Comm
from essa_hpc.runtime.preempt import EXIT_PREEMPTED, Preemption


class FakeSpace:
    """A vector space of ``dim`` numbers; row i of the next "generate" uses candidate ``row_cand[i]``."""
    batched, seed_addressed = True, False

    def __init__(self, dim: int = 6):
        self.dim = dim
        self.rows: np.ndarray | None = None

    def initial(self) -> np.ndarray:
        return np.full(self.dim, 0.1)

    def typical_scale(self) -> float:
        return 1.0

    def apply(self, cands: np.ndarray, row_cand: np.ndarray) -> None:
        self.rows = np.asarray(cands)[np.asarray(row_cand)]

    def restore(self) -> None:
        self.rows = None

    def evaluation_vector(self, mean: np.ndarray) -> np.ndarray:
        return mean

    def after_tell(self, cands, update) -> None:
        assert update is None

    def digest(self, mean: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(mean, dtype=np.float64).tobytes()).hexdigest()

    def state_dict(self) -> dict:
        return {"dim": np.array(self.dim)}

    def load_state_dict(self, stored: dict) -> None:
        if int(stored["dim"]) != self.dim:
            raise ValueError(f"space dim {self.dim} differs from the checkpoint's {int(stored['dim'])}")

    def export(self, vector: np.ndarray, out_dir) -> None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        np.save(Path(out_dir) / "vector.npy", vector)


@dataclass
class FakeCompletions:
    texts: list[str]
    new_tokens: int


class FakeRollout:
    """The "model" answers a+b off by how far the row's vector is from a target."""
    serves_adapters = False

    def __init__(self, space: FakeSpace):
        self.space = space
        self.target = np.linspace(-1, 1, space.dim)

    def prepare(self, space, cands, row_cand):
        space.apply(cands, row_cand)

    def release(self, space) -> None:
        space.restore()

    def generate(self, items: list[dict], sample_seed: int | None = None, rows=None) -> FakeCompletions:
        vectors = self.space.rows if self.space.rows is not None else [self.space.initial()] * len(items)
        texts = []
        for item, v in zip(items, vectors):
            error = float(np.sum((np.asarray(v) - self.target) ** 2))
            texts.append(str(item["a"] + item["b"] + int(round(error * (1 + item["a"] % 3)))))
        return FakeCompletions(texts, new_tokens=2 * len(items))


class FakeTask:
    def __init__(self, run_seed: int, heldout_size: int = 12, validation_size: int = 0):
        self.run_seed, self.heldout_size, self.validation_size = run_seed, heldout_size, validation_size

    @staticmethod
    def _items(gen: np.random.Generator, n: int) -> list[dict]:
        pairs = gen.integers(0, 50, size=(n, 2))
        return [{"a": int(a), "b": int(b), "answer": int(a + b), "prompt": f"{a}+{b}"} for a, b in pairs]

    def minibatch(self, generation: int, n: int) -> list[dict]:
        return self._items(seeding.rng(self.run_seed, "minibatch", generation), n)

    def heldout(self) -> list[dict]:
        return self._items(seeding.rng(0, "heldout"), self.heldout_size)

    def validation(self) -> list[dict]:
        return self._items(seeding.rng(0, "validation_items"), self.validation_size)

    def reward(self, item: dict, completion: str) -> float:
        return 1.0 / (1.0 + abs(int(completion) - item["answer"]))

    def score(self, item: dict, completion: str) -> float:
        return float(int(completion) == item["answer"])


def fake_parts(run_seed: int, dim: int = 6, validation_size: int = 0) -> Parts:
    space, task, faults = FakeSpace(dim), FakeTask(run_seed, validation_size=validation_size), FaultCounter()
    return Parts(model=None, tokenizer=None, space=space, task=task, rollout=FakeRollout(space),
                 rewarder=RewardRunner(task.reward, 5.0, faults), scorer=RewardRunner(task.score, 5.0, faults),
                 faults=faults, fingerprint=f"fake-{dim}")


class ThreadTransport:
    """One rank of a group of ``world`` threads; collectives meet at a shared barrier.
    Results are combined in rank order, like a deterministic MPI reduction."""

    def __init__(self, group: "ThreadGroup", rank: int):
        self.group, self.rank, self.world = group, rank, group.world

    def _exchange(self, values: np.ndarray) -> list[np.ndarray]:
        g = self.group
        g.slots[self.rank] = np.array(values, copy=True)
        g.barrier.wait()
        every = [np.array(v, copy=True) for v in g.slots]
        g.barrier.wait()  # nobody writes the next round's slot before everyone has read this one
        return every

    def allreduce(self, values: np.ndarray, op: str) -> np.ndarray:
        every = np.stack(self._exchange(values))
        return every.sum(axis=0) if op == "sum" else every.max(axis=0)

    def allgather(self, values: np.ndarray) -> np.ndarray:
        return np.stack(self._exchange(values))

    def bcast(self, values: np.ndarray, root: int) -> None:
        values[...] = self._exchange(values)[root]

    def barrier(self) -> None:
        self.group.barrier.wait()

    def finalize(self) -> None:
        pass

    def abort(self, code: int) -> None:
        self.group.barrier.abort()


class ThreadGroup:
    def __init__(self, world: int):
        self.world = world
        self.barrier = threading.Barrier(world, timeout=30)
        self.slots: list = [None] * world

    def comms(self) -> list[Comm]:
        return [Comm(transport=ThreadTransport(self, r)) for r in range(self.world)]


def run_ranks(world: int, body) -> list:
    """``body(comm)`` on ``world`` thread-ranks at once; their results in rank order (errors re-raised)."""
    comms = ThreadGroup(world).comms()
    results, errors = [None] * world, []

    def target(r):
        try:
            results[r] = body(comms[r])
        except BaseException as exc:  # noqa: BLE001 - surfaced below, after every thread ended
            errors.append(exc)
            comms[r]._t.group.barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


class PreemptAt(Preemption):
    """Preempted as generation ``n`` ends, as if SIGUSR1 had arrived during it."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.generations = n, 0

    def agree(self, comm) -> int:
        self.generations += 1
        if self.generations == self.n:
            self.set("test", EXIT_PREEMPTED)
        return super().agree(comm)
