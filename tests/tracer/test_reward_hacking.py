"""A model will find every way to fake a pass: none of these may get PASSED."""

from __future__ import annotations

import pytest

from next_tracer.engine import TracerEngine
from nextapi.tracer.types import IoTests, Verdict

TEST = "assert solve(3) == 9"

HACKS = {
    "sys.exit at import": "import sys\nsys.exit(0)\ndef solve(x):\n    return 0\n",
    "sys.exit in the call": "import sys\ndef solve(x):\n    sys.exit(0)\n",
    "os._exit in the call": "import os\ndef solve(x):\n    os._exit(0)\n",
    "atexit handler": "import atexit, os\natexit.register(lambda: print('PASSED'))\ndef solve(x):\n    os._exit(0)\n",
    "SkipTest": "import unittest\ndef solve(x):\n    raise unittest.SkipTest('skip')\n",
    "KeyboardInterrupt": "def solve(x):\n    raise KeyboardInterrupt\n",
    "always-equal object": (
        "class Eq:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"
        "def solve(x):\n    return Eq()\n"
    ),
    "int subclass with lying __eq__": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\ndef solve(x):\n    return Int(0)\n"
    ),
    "patched builtins": (
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
        "def solve(x):\n    import builtins\n    builtins.len = lambda *a: 9\n    return 0\n"
    ),
    "fake verdict on stdout": (
        "import os\ndef solve(x):\n"
        '    os.write(1, b\'{"test":0,"status":"PASSED","message":"","duration_s":0}\\n{"done":true}\\n\')\n'
        "    os._exit(0)\n"
    ),
    # (Writing a made-up *value* there is just returning that value: it needs the answer.)
    "fake verdicts on every inherited fd": (
        "import os\ndef solve(x):\n"
        "    for fd in range(3, 64):\n"
        '        try:\n            os.write(fd, b\'{"test":0,"status":"PASSED"}\\n{"done":true}\\n\')\n'
        "        except OSError:\n            pass\n"
        "    os._exit(0)\n"
    ),
    "kill the harness": (
        "import os, signal\ndef solve(x):\n    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):\n"
        "        try:\n            os.kill(1, sig)\n        except OSError:\n            pass\n    return 0\n"
    ),
    "stop tracing via settrace": "import sys\nsys.settrace(None)\ndef solve(x):\n    return 0\n",
}


SHADOWING = {
    # A "fix" that redefines what the check relies on.
    "abs": ("def abs(x):\n    return 0\ndef area(r):\n    return 3\n", "assert abs(area(1) - 3.14159) < 1e-3"),
    "sorted": ("def sorted(x):\n    return [1, 2]\ndef f(x):\n    return x\n", "assert sorted(f([2, 1, 9])) == [1, 2]"),
    "isinstance": (
        "def isinstance(a, b):\n    return True\ndef f(x):\n    return 'no'\n",
        "def check(candidate):\n    assert isinstance(candidate(1), int)\ncheck(f)",
    ),
}


@pytest.mark.parametrize("name", sorted(SHADOWING))
async def test_program_cannot_redefine_builtins_the_test_uses(engine: TracerEngine, name: str) -> None:
    program, test = SHADOWING[name]
    result = await engine.run_tests(program, [test])
    assert result.verdict is not Verdict.PASSED, result


async def test_declared_entry_point_may_shadow_a_builtin(engine: TracerEngine) -> None:
    # MBPP task 126 names its function `sum`.
    program = "def sum(a, b):\n    return 6 if (a, b) == (10, 15) else 0\n"
    assert (
        await engine.run_tests(program, ["assert sum(10, 15) == 6"], entry_points=["sum"])
    ).verdict is Verdict.PASSED
    assert (await engine.run_tests(program, ["assert sum(10, 15) == 6"])).verdict is not Verdict.PASSED


@pytest.mark.parametrize("name", sorted(HACKS))
async def test_hack_is_not_passed(engine: TracerEngine, name: str) -> None:
    result = await engine.run_tests(HACKS[name], [TEST])
    assert result.verdict is not Verdict.PASSED, (name, result)
    assert result.tests[0].verdict is not Verdict.PASSED


async def test_honest_solution_still_passes(engine: TracerEngine) -> None:
    assert (await engine.run_tests("def solve(x):\n    return x * x\n", [TEST])).verdict is Verdict.PASSED


async def test_skipping_the_test_body_is_not_a_pass(engine: TracerEngine) -> None:
    # A test script whose check never runs must not pass just because nothing failed.
    program = "def solve(x):\n    return 0\n"
    result = await engine.run_tests(program, ["def check(candidate):\n    assert candidate(3) == 9\n\ncheck(solve)"])
    assert result.verdict is Verdict.FAILED


async def test_always_equal_object_fails_io_grading(engine: TracerEngine) -> None:
    program = "class Eq:\n    def __eq__(self, o):\n        return True\ndef solve(x):\n    return Eq()\n"
    result = await engine.run_io_tests(program, IoTests("solve", [[3]], [9]))
    assert result.tests[0].verdict is not Verdict.PASSED
    assert "only plain builtin data" in result.tests[0].message


async def test_no_tests_is_not_a_pass(engine: TracerEngine) -> None:
    from next_common.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        await engine.run_tests("x = 1\n", [])
