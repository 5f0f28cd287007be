"""Arithmetic without ``eval``: a tiny evaluator over Python's ``ast``, and a guard
for third-party scorers that do call ``eval``/``sympy.parse_expr`` on model output.

``evaluate_arithmetic`` accepts only numbers (int constants), ``+ - * /`` and unary
signs; anything else (``**``, names, calls, attributes) is rejected, so a hostile
completion can neither run code nor build a huge number. ``looks_safe_to_eval``
decides whether a string may be handed to someone else's ``eval``: it must not parse
to anything beyond literals, arithmetic with small exponents and a few math functions.
"""
from __future__ import annotations

import ast
import math
import operator
import re

MAX_EXPR_CHARS = 200       # a Countdown answer over 3-4 numbers is ~20 characters
MAX_MAGNITUDE = 1e12       # |intermediate value| above this is rejected
MAX_GUARDED_CHARS = 10_000  # longest answer passed to a third-party scorer
MAX_EXPONENT = 100

_ARITHMETIC_CHARS = re.compile(r"[0-9+\-*/()\s]+")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class UnsafeExpression(ValueError):
    pass


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _eval(node.operand)
        value = -inner if isinstance(node.op, ast.USub) else inner
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise UnsafeExpression("division by zero")
        value = _BINOPS[type(node.op)](left, right)
    else:
        raise UnsafeExpression(f"{type(node).__name__} is not allowed")
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise UnsafeExpression("value out of range")
    return value


def evaluate_arithmetic(text: str) -> float | None:
    """Value of ``text`` if it is plain arithmetic on integers (+ - * / and signs), else None."""
    text = text.strip()
    if not text or len(text) > MAX_EXPR_CHARS or not _ARITHMETIC_CHARS.fullmatch(text):
        return None  # also keeps out 0x10, 1_000, 1e5: integers are plain digits
    try:
        return float(_eval(ast.parse(text, mode="eval")))
    except (UnsafeExpression, SyntaxError, ValueError, RecursionError, MemoryError, OverflowError,
            ZeroDivisionError, TypeError):
        return None


# --- guard for scorers that eval ------------------------------------------------

_SAFE_FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                   "exp", "log", "ln", "sqrt", "Abs", "abs", "Rational", "Integer", "Float"}
_SAFE_LEAVES = (ast.Constant, ast.Name, ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_CONTAINERS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def _small_exponent(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return abs(node.value) <= MAX_EXPONENT
    if isinstance(node, ast.Name):
        return True  # symbolic (x**n): sympy keeps it unevaluated
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # x**(1/2)
        return _small_exponent(node.left) and _small_exponent(node.right)
    return False


def _is_sequence_literal(node: ast.AST) -> bool:
    return isinstance(node, _CONTAINERS) or (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)))


def _check(node: ast.AST, pow_depth: int = 0) -> None:
    if isinstance(node, ast.Expression):
        return _check(node.body, pow_depth)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            if pow_depth >= 2 or not _small_exponent(node.right):
                raise UnsafeExpression("exponent too large or nested")
            _check(node.left, pow_depth + 1)
            return
        if isinstance(node.op, ast.Mult) and (_is_sequence_literal(node.left) or _is_sequence_literal(node.right)):
            raise UnsafeExpression("sequence repetition")
        if isinstance(node.op, (ast.LShift, ast.RShift)) and not _small_exponent(node.right):
            raise UnsafeExpression("shift too large")
        _check(node.left, pow_depth)
        _check(node.right, pow_depth)
        return
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _SAFE_FUNCTIONS) or node.keywords:
            raise UnsafeExpression("call")
        for arg in node.args:
            _check(arg, pow_depth)
        return
    if isinstance(node, (ast.UnaryOp, ast.BoolOp, ast.Compare, *_CONTAINERS)):
        for child in ast.iter_child_nodes(node):
            _check(child, pow_depth)
        return
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise UnsafeExpression("private name")
    if not isinstance(node, _SAFE_LEAVES):
        raise UnsafeExpression(f"{type(node).__name__} is not allowed")


def looks_safe_to_eval(text: str, must_parse: bool = False) -> bool:
    """True when ``eval(text)``/``sympy.parse_expr(text)`` can only compute a small value.

    Text that is not a Python expression passes (``eval`` would just raise), unless
    ``must_parse``: use that for sympy, whose token transformations accept a little more
    than Python (``5!``), so only strings that parse as plain Python get through.
    """
    if len(text) > MAX_GUARDED_CHARS or "__" in text:
        return False
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return not must_parse
    try:
        _check(tree)
    except (UnsafeExpression, RecursionError):
        return False
    return True
