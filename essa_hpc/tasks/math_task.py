"""Competition math graded on the last ``\\boxed{}`` (MATH, Hendrycks et al., arXiv 2103.03874;
the ESSA paper's PRM800K/MATH setting, arXiv 2507.04453).

Grading uses HF ``math-verify`` (``parse`` + ``verify``) on the boxed answer, with a
normalised string comparison as fallback (text answers, or when math-verify cannot
parse). math-verify's own timeouts use ``signal.alarm``, which would cancel the
``RewardRunner``'s SIGALRM timer, so they are switched off (``parsing_timeout=None``,
``timeout_seconds=None``) and the runner's limit applies. Sympy evaluates integer powers
eagerly and uninterruptibly (``9^{9^{9}}`` hangs), so parsed answers with big or nested
exponents or factorials are refused before ``verify``. Only LaTeX extraction is used:
math-verify's plain-expression path calls sympy's ``parse_expr``, i.e. ``eval``.

Data: ``task.data_path`` rows (problem, answer) — ``answer`` may be a list or a
stringified list (Minerva, OlympiadBench: the first element counts) — or (problem,
solution) with the answer boxed in the solution. Empty ``data_path`` uses the hub:
``DigitalLearningGmbH/MATH-lighteval`` train and ``HuggingFaceH4/MATH-500`` held-out.
"""
from __future__ import annotations

import ast
import functools
import re

from essa_hpc.errors import ConfigError
from essa_hpc.rewards import RewardTimeout
from essa_hpc.tasks import data
from essa_hpc.tasks.answers import last_boxed
from essa_hpc.tasks.base import Task

LAYOUTS = [("problem", "answer"), ("problem", "solution")]
HUB_TRAIN, HUB_HELDOUT = ("DigitalLearningGmbH/MATH-lighteval", "train"), ("HuggingFaceH4/MATH-500", "test")
INSTRUCTION = "\n\nPlease reason step by step, and put your final answer within \\boxed{}."
MAX_ANSWER_CHARS = 1000
MAX_DIGITS = 20_000  # refuse answers whose value may need more digits than this


def gold_answer(row: dict, where: str) -> str:
    raw = row.get("answer")
    if raw is None and isinstance(row.get("solution"), str):
        raw = last_boxed(row["solution"])
    if isinstance(raw, str) and raw.strip().startswith("["):  # "['9.6\\n']", not an interval like "[2, 5)"
        try:
            parsed = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list) and parsed and all(isinstance(x, str) for x in parsed):
            raw = parsed
    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}: no usable answer (answer={row.get('answer')!r})")
    return raw.strip()


def row_to_item(row: dict, where: str) -> dict:
    problem = row.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise ConfigError(f"{where}: empty or non-text problem")
    solution = row.get("solution") if isinstance(row.get("solution"), str) else None
    return {"prompt": problem.strip() + INSTRUCTION, "answer": gold_answer(row, where), "solution": solution}


# --- grading ------------------------------------------------------------------------

def normalize(text: str) -> str:
    s = re.sub(r"\\(left|right|!|,|;|:|quad|qquad|displaystyle)", "", text)
    s = re.sub(r"\\text(bf|rm|normal)?\{([^{}]*)\}", r"\2", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("^\\circ", "").replace("^{\\circ}", "")
    s = s.replace("$", "").replace("\\%", "").replace("%", "")
    return re.sub(r"\s+", "", s).rstrip(".").lower()


_BIG_OPS = re.compile(r"\\(sum|prod|lim|int|iint|oint)(?![a-zA-Z])")
_COMBINATORIAL = re.compile(r"binom|choose|Gamma|gamma|(?<!\\)!")
_EAGER_FUNCTIONS = ("sympy.functions.combinatorial", "sympy.functions.special.gamma_functions")


def latex_too_big(latex: str) -> bool:
    """Refuse, before parsing, answers whose *parsing* may build a huge number (a power in a
    root index, big binomials/factorials), and sums, products, limits and integrals (no final
    answer needs them; verify would try to evaluate them). Power towers parse unevaluated
    and are refused after parsing, by ``digits_bound``."""
    if _BIG_OPS.search(latex) or re.search(r"\^\s*(\w|\\[a-zA-Z]+)\s*\^", latex):
        return True
    if _COMBINATORIAL.search(latex) and ("^" in latex or any(len(d) > 3 for d in re.findall(r"\d+", latex))):
        return True
    root_index = re.search(r"\\sqrt\s*\[([^\]]*)\]", latex)  # sympy builds 1/index eagerly
    return bool(root_index and "^" in root_index.group(1))


def digits_bound(expr) -> float:
    """An upper estimate of the decimal digits sympy may need to evaluate ``expr`` (inf if unsure)."""
    import math

    import sympy

    if isinstance(expr, sympy.Integer):
        return max(1.0, abs(int(expr)).bit_length() * 0.302)
    if isinstance(expr, sympy.Rational):
        return digits_bound(sympy.Integer(expr.p)) + digits_bound(sympy.Integer(expr.q))
    if isinstance(expr, sympy.Pow):
        base, exp = digits_bound(expr.base), expr.exp
        if exp.free_symbols:
            return base + digits_bound(exp)
        e = digits_bound(exp)
        return math.inf if e > 6 else base * min(10.0 ** e, abs(complex(exp.evalf(15))) + 1)
    if isinstance(expr, sympy.Function) and type(expr).__module__.startswith(_EAGER_FUNCTIONS):
        return math.inf if max((digits_bound(a) for a in expr.args), default=0) > 3 else 3000.0
    args = [digits_bound(a) for a in getattr(expr, "args", ()) if isinstance(a, sympy.Basic)]
    return sum(args) if isinstance(expr, sympy.Mul) else max(args, default=1.0) + 1


def _too_big(expr) -> bool:
    import sympy

    if isinstance(expr, sympy.MatrixBase):
        return any(_too_big(x) for x in expr)
    if not isinstance(expr, sympy.Basic):
        return False
    try:
        return digits_bound(expr) > MAX_DIGITS
    except RewardTimeout:
        raise
    except Exception:  # noqa: BLE001 - an expression we cannot even inspect is refused
        return True


def _parse(latex: str):
    from math_verify import LatexExtractionConfig, parse

    return parse("\\boxed{" + latex + "}", extraction_config=[LatexExtractionConfig()],
                 parsing_timeout=None, raise_on_error=True)


@functools.lru_cache(maxsize=8192)
def _parse_gold(gold: str):
    return _parse(gold)


def math_equal(gold: str, pred: str) -> bool:
    """math-verify equivalence of two LaTeX answers, or equal after string normalisation."""
    if normalize(gold) == normalize(pred):
        return True
    from math_verify import verify

    try:
        if latex_too_big(pred):
            return False
        gold_p, pred_p = _parse_gold(gold), _parse(pred)
        if not gold_p or not pred_p or any(_too_big(x) for x in pred_p):
            return False
        return bool(verify(gold_p, pred_p, timeout_seconds=None, raise_on_error=True))
    except RewardTimeout:  # the runner's time limit: let it through
        raise
    except Exception:  # noqa: BLE001 - math-verify failed: the string comparison above decided
        return False


def check_config(cfg) -> None:
    data.check_paths(cfg, LAYOUTS)


def _hub_rows(repo: str, split: str) -> list[dict]:
    import datasets
    try:
        return datasets.load_dataset(repo, split=split).to_list()
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"cannot load {repo} ({split}) from the hub ({type(e).__name__}); "
                          "set task.data_path to local files with columns problem, answer") from None


class MathTask(Task):
    def split(self) -> tuple[list[dict], list[dict]]:
        if self.cfg.data_path:
            return data.train_and_heldout(self.cfg, row_to_item)
        heldout = [row_to_item(r, f"{HUB_HELDOUT[0]} row {i}")
                   for i, r in enumerate(_hub_rows(*HUB_HELDOUT)[:self.cfg.heldout_size])]
        seen = {it["prompt"] for it in heldout}
        train = [row_to_item(r, f"{HUB_TRAIN[0]} row {i}") for i, r in enumerate(_hub_rows(*HUB_TRAIN))]
        return [it for it in train if it["prompt"] not in seen], heldout

    def score(self, item: dict, completion: str) -> float:
        pred = last_boxed(completion)
        if pred is None or not pred.strip() or len(pred) > MAX_ANSWER_CHARS:
            return 0.0
        return 1.0 if math_equal(item["answer"], pred) else 0.0

    def sft_target(self, item: dict) -> str:
        if item.get("solution") and last_boxed(item["solution"]) is not None:
            return item["solution"]
        return f"The final answer is $\\boxed{{{item['answer']}}}$."
