"""The plain-value encoding: long number lists travel as binary doubles and come back exactly."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from next_tracer.engine import TracerEngine
from nextapi.tracer import plain
from nextapi.tracer.types import IoTests, Verdict


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float and math.isnan(a):
        return math.isnan(b)
    if type(a) is float:
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


CASES = {
    "ints then floats (HumanEval/130)": [1, 3] + [i / 2 + 1 for i in range(3000)],
    "floats with nan, inf and -0.0": [float("nan"), float("inf"), -0.0] * 500,
    "all ints stay JSON": list(range(2000)),
    "an int beyond 2**53 stays JSON": [2**60] + [0.5] * 2000,
    "bools stay JSON": [True] + [0.5] * 2000,
    "short lists stay JSON": [0.5, 1],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_is_exact(name: str) -> None:
    value = CASES[name]
    text = plain.dumps(value)
    assert ('"$f64"' in text) == (name.startswith(("ints then", "floats with")))
    back = plain.decode(json.loads(text))
    assert len(back) == len(value) and all(_same(a, b) for a, b in zip(back, value, strict=True))


@pytest.mark.parametrize(
    "body",
    [["AAAAAAAA8H8=", [0]], ["AAAAAAAA8H8=", [3]], ["AAAA", []], ["AAAAAAAA8H8="], "x", ["AAAAAAAA8H8=", ["0"]]],
)
def test_malformed_packed_values_are_refused(body: Any) -> None:
    with pytest.raises(ValueError):
        plain.decode({"$f64": body})


async def test_packed_outputs_are_graded(engine: TracerEngine) -> None:
    program = "def f(n):\n    return [1, 3] + [i / 2 + 1 for i in range(n)]\n"
    expected = [[1, 3] + [i / 2 + 1 for i in range(n)] for n in (2000, 5)]
    assert (await engine.run_io_tests(program, IoTests("f", [[2000], [5]], expected))).verdict is Verdict.PASSED
    wrong = [[1, 3] + [i / 2 + 1.5 for i in range(2000)]]
    result = await engine.run_io_tests(program, IoTests("f", [[2000]], wrong))
    assert result.verdict is Verdict.FAILED, result
