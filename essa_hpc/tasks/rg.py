"""Adapter over reasoning-gym procedural tasks (Stojanovski et al., arXiv 2505.24760):
``task.kind=rg:<name>``, e.g. ``rg:gsm_symbolic``, ``rg:countdown``.

Items come from ``reasoning_gym.create_dataset(name, seed=..., size=...)`` (offline,
seeded); the held-out set uses a fixed seed and the training pool another, generated
lazily and skipping any held-out question. The answer is the last ``<answer>…</answer>``
block (reasoning-gym's own convention, ``reasoning_gym.utils.extract_answer``, here as a
linear scan), scored by the dataset's ``score_answer``. Training reward = that score (some
datasets give small partial credit); held-out ``score`` = 1 only for a full-marks answer.

Some scorers ``eval`` the answer or call ``sympy.parse_expr`` (which evals), so answers
are screened first by ``safe_expr.looks_safe_to_eval``: no calls, attributes, dunders or
power towers reach them.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence

from essa_hpc.errors import ConfigError
from essa_hpc.tasks.answers import last_tag
from essa_hpc.tasks.base import Task
from essa_hpc.tasks.safe_expr import looks_safe_to_eval

INSTRUCTION = "\n\nGive only your final answer between <answer> and </answer> tags."
TRAIN_POOL_SIZE = 5_000
# Fixed, far apart: reasoning-gym seeds item i with Random(seed + i), so the streams never meet.
HELDOUT_SEED, TRAIN_SEED = 1_000_000_000, 0
# Scorers that pass the answer to sympy.parse_expr: only plain Python expressions may reach them.
SYMPY_SCORERS = {"countdown", "puzzle24", "polynomial_multiplication", "simple_integration",
                 "intermediate_integration"}


def dataset_names() -> list[str]:
    try:
        import reasoning_gym  # noqa: F401 - importing registers every dataset
        from reasoning_gym.factory import DATASETS
    except ImportError:
        raise ConfigError("task.kind=rg:<name> needs reasoning-gym: pip install 'essa-hpc[tasks]'") from None
    return sorted(DATASETS)


def check_config(cfg) -> None:
    name = cfg.kind.partition(":")[2]
    names = dataset_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join('rg:' + c for c in close)}? " if close else ""
        raise ConfigError(f"task.kind={cfg.kind!r}: no reasoning-gym dataset {name!r}; {hint}"
                          f"{len(names)} exist, e.g. {', '.join('rg:' + n for n in names[:6])} "
                          "(see reasoning_gym.factory.DATASETS)")
    if cfg.data_path or cfg.heldout_path:
        raise ConfigError("task.data_path/task.heldout_path do not apply to rg:<name> tasks (items are generated)")


def _item(entry: dict) -> dict:
    return {"prompt": entry["question"] + INSTRUCTION, "answer": entry["answer"], "entry": entry}


class _LazyPool(Sequence):
    """The training pool, generated on first access per index (some datasets take 10-40 ms per
    item). A held-out question is replaced by the item ``size`` indices further on."""

    def __init__(self, dataset, size: int, exclude: set):
        self.dataset, self.size, self.exclude = dataset, size, exclude
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        if not 0 <= i < self.size:
            raise IndexError(i)
        if i not in self._cache:
            for probe in range(4):
                entry = self.dataset[i + probe * self.size]
                if entry["question"] not in self.exclude:
                    break
            self._cache[i] = _item(entry)
        return self._cache[i]


class ReasoningGymTask(Task):
    def __init__(self, cfg, run_seed: int):
        super().__init__(cfg, run_seed)
        check_config(cfg)
        self.name = cfg.kind.partition(":")[2]
        import reasoning_gym

        self._create = functools.partial(reasoning_gym.create_dataset, self.name)
        self._scorer = self._create(seed=HELDOUT_SEED, size=1)

    @functools.cached_property
    def _heldout(self) -> list[dict]:
        dataset = self._create(seed=HELDOUT_SEED, size=self.cfg.heldout_size)
        return [_item(dataset[i]) for i in range(self.cfg.heldout_size)]

    def heldout(self) -> list[dict]:
        return self._heldout

    @functools.cached_property
    def _pool(self) -> _LazyPool:
        exclude = {item["entry"]["question"] for item in self._heldout}
        return _LazyPool(self._create(seed=TRAIN_SEED, size=4 * TRAIN_POOL_SIZE), TRAIN_POOL_SIZE, exclude)

    def train_pool(self) -> Sequence:
        return self._pool

    def reward(self, item: dict, completion: str) -> float:
        answer = last_tag(completion, "answer")
        if answer is not None:
            answer = answer.strip()
            if not looks_safe_to_eval(answer, must_parse=self.name in SYMPY_SCORERS):
                return 0.0
        return float(self._scorer.score_answer(answer, item["entry"]))

    def score(self, item: dict, completion: str) -> float:
        return 1.0 if self.reward(item, completion) >= 1.0 - 1e-9 else 0.0

    def sft_target(self, item: dict) -> str:
        return f"<answer>{item['answer']}</answer>"
