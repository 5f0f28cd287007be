"""Every task's reward and held-out score on hostile completions: never raises, returns a
finite number within 1 s, keeps the held-out metric 0/1, and never reaches eval/exec
(the reasoning-gym adapter may hand *screened* answers to scorers that eval them)."""
import builtins
import json
import math
import re
import sys
import time
import types

import pytest
from helpers import custom_task

from essa_hpc.config import TaskConfig
from essa_hpc.config.tasks import check_task_config
from essa_hpc.tasks import build_task

HOSTILE = {
    "empty": "",
    "extra_answer": "<answer>1</answer> and then <answer>2</answer>",
    "numbers_twice": "</think>\n<answer>44 + 44 + 44</answer>",
    "number_not_given": "</think>\n<answer>1 + 2 + 3 + 4 + 5</answer>",
    "div_zero": "</think>\n<answer>1/0</answer> #### 1/0 \\boxed{1/0}",
    "pow_tower": "<answer>9**9**9</answer> #### 9**9**9 \\boxed{9^{9^{9}}} 9**9**9",
    "big_product": "<answer>(99*99*99*99*99*99*99*99*99*99)</answer> \\boxed{(99*99*99*99*99*99*99*99*99*99)}",
    "import": "<answer>__import__('os').system('echo pwned')</answer> \\boxed{__import__('os')} #### __import__",
    "latex_bombs": "\\boxed{\\binom{10000000}{5000000}} \\boxed{100000000!} \\boxed{\\sqrt[9^{9^9}]{2}}",
    "deep_braces": "\\boxed{" * 100_000 + "1" + "}" * 100_000,
    "unicode": "\u0663 <answer>\u0663</answer> \\boxed{\u0663} #### \u0663 \ud800",
    "megabyte": "a" * 1_000_000,
    "megabyte_tags": ("<answer>\\boxed{####<think></think>\n" * 40_000)[:1_000_000],
    "megabyte_digits": "9" * 1_000_000,
    "megabyte_answer": "<answer>" + "9" * 1_000_000 + "</answer>",
}
SYMPY_NUMBER = re.compile(r"from sympy import \*|(Integer|Float|Rational) ?\( ?'?[0-9.]+'? ?\)")
PLUGIN = '''
def reward(item, completion):
    return 1.0 if completion.strip().endswith(str(item["answer"])) else 0.0
'''


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adversarial")
    (tmp / "gsm.jsonl").write_text("\n".join(json.dumps({"problem": f"{i}*2?", "answer": str(2 * i)})
                                             for i in range(4)))
    (tmp / "math.jsonl").write_text("\n".join(json.dumps({"problem": f"{i}*2?", "answer": f"\\frac{{{2 * i}}}{{1}}"})
                                              for i in range(4)))
    (tmp / "adv_plugin.py").write_text(PLUGIN)
    sys.path.insert(0, str(tmp))
    cfgs = [TaskConfig(kind="arithmetic"), TaskConfig(kind="countdown", heldout_size=3),
            TaskConfig(kind="gsm8k", data_path=str(tmp / "gsm.jsonl"), heldout_size=1),
            TaskConfig(kind="math", data_path=str(tmp / "math.jsonl"), heldout_size=1),
            custom_task("adv_plugin:reward")]
    try:
        import reasoning_gym  # noqa: F401
        cfgs += [TaskConfig(kind="rg:gsm_symbolic", heldout_size=1), TaskConfig(kind="rg:countdown", heldout_size=1)]
    except ImportError:
        pass
    out = {}
    for cfg in cfgs:
        check_task_config(cfg)
        task = build_task(cfg, run_seed=0)
        out[cfg.kind] = (task, task.heldout()[0])
        for warm_up in ("\\boxed{1} <answer>1</answer> #### 1", "\\boxed{x^{2}+\\frac{1}{2}}"):
            task.reward(out[cfg.kind][1], warm_up)  # lazy imports (which exec/eval module code) happen here
    yield out
    sys.path.remove(str(tmp))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_completion(tasks, name, monkeypatch):
    completion = HOSTILE[name]
    evaluated = []
    real_eval, real_exec = builtins.eval, builtins.exec
    monkeypatch.setattr(builtins, "eval", lambda src, *a, **k: evaluated.append(src) or real_eval(src, *a, **k))

    def spy_exec(src, *a, **k):
        if not isinstance(src, types.CodeType):  # code objects are module imports
            evaluated.append(src)
        return real_exec(src, *a, **k)
    monkeypatch.setattr(builtins, "exec", spy_exec)
    for kind, (task, item) in tasks.items():
        for fn in (task.reward, task.score):
            evaluated.clear()
            t0 = time.perf_counter()
            value = fn(item, completion)
            elapsed = time.perf_counter() - t0
            assert elapsed < 1.0, f"{kind}.{fn.__name__} took {elapsed:.2f}s on {name}"
            assert isinstance(value, float) and math.isfinite(value), (kind, fn.__name__, value)
            if fn == task.score and kind != "custom":
                assert value in (0.0, 1.0), (kind, name, value)
            if kind.startswith("rg:"):  # sympy scorers eval screened arithmetic only
                assert not [s for s in evaluated if "__" in str(s) or "**9" in str(s)], (kind, name, evaluated)
            elif kind == "math":  # latex2sympy's sympy.Number(token) goes through parse_expr: digits only
                assert all(SYMPY_NUMBER.fullmatch(str(s)) for s in evaluated), (kind, name, evaluated)
            else:
                assert evaluated == [], (kind, name, evaluated)
            if name in ("megabyte", "pow_tower", "import", "latex_bombs", "unicode") and kind != "custom":
                assert value < 1.0, (kind, name, fn.__name__)


def test_every_registered_kind_is_covered(tasks):
    from essa_hpc.config.tasks import TASKS
    families = {("rg" if k.startswith("rg:") else k) for k in tasks}
    assert families >= set(TASKS.names()) - ({"rg"} if "rg:countdown" not in tasks else set())
