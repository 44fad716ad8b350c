"""Comparison of returned values with expected outputs, outside the sandbox.

Both sides are plain builtin data decoded by trusted code, so no user ``__eq__`` runs.
Floats compare with ``rel_tol=1e-7`` (EvalPlus's ``rtol``) plus ``abs_tol=atol``.
"""

from __future__ import annotations

import math
from typing import Any

REL_TOL = 1e-7


def _number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def outputs_match(actual: Any, expected: Any, atol: float = 0.0) -> bool:
    # Both sides are builtin data built by trusted code, so C-level equality is safe; it is
    # EvalPlus's own first test (``out == exp``) and the fast path for large outputs.
    if actual == expected:
        return True
    return _close(actual, expected, atol)


def _close(actual: Any, expected: Any, atol: float) -> bool:
    if type(expected) is float or (type(actual) is float and _number(expected)):
        if not (_number(actual) and _number(expected)):
            return False
        if actual == expected:
            return True
        a, e = float(actual), float(expected)
        if math.isnan(a) and math.isnan(e):
            return True
        return math.isclose(a, e, rel_tol=REL_TOL, abs_tol=atol)
    if type(actual) is not type(expected):
        return False
    if type(expected) in (list, tuple):
        pairs = zip(actual, expected, strict=False)
        return len(actual) == len(expected) and all(_close(a, e, atol) for a, e in pairs)
    if type(expected) is dict:
        return actual.keys() == expected.keys() and all(_close(actual[k], expected[k], atol) for k in expected)
    return bool(actual == expected)


def _poly(xs: list[Any], x: float) -> float:
    return float(sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs)))


def find_zero_oracle(args: list[Any], actual: Any, expected: Any, atol: float) -> bool:
    """HumanEval/32 (``find_zero``): any root is right, so check ``|poly(xs, x)| <= atol``.

    EvalPlus's evaluator special-cases this task the same way (it tests ``poly <= atol``
    without ``abs``; the absolute value here is the stricter reading).
    """
    if not (_number(actual) and args and type(args[0]) is list and all(_number(c) for c in args[0])):
        return False
    try:
        return abs(_poly(args[0], float(actual))) <= max(atol, 1e-6)
    except (OverflowError, ValueError):
        return False


def equal_oracle(args: list[Any], actual: Any, expected: Any, atol: float) -> bool:
    return outputs_match(actual, expected, atol)


# Named output checks for io tests; "" means plain comparison with the expected output.
ORACLES: dict[str, Any] = {"": equal_oracle, "find_zero": find_zero_oracle}
