"""Every verdict, every test shape, and failures that must not erase other tests' verdicts."""

from __future__ import annotations

import pytest

from next_tracer.engine import TracerEngine
from next_tracer.sandbox.runner import Sandbox
from nextapi.tracer.types import IoTests, Limits, Verdict
from tests.conftest import make_settings

ADD = "def add(a, b):\n    return a + b\n"


async def test_passed_and_failed(engine: TracerEngine) -> None:
    result = await engine.run_tests(ADD, ["assert add(1, 2) == 3", "assert add(1, 1) == 3"])
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.FAILED]
    assert result.verdict is Verdict.FAILED
    assert "AssertionError" in result.tests[1].message


async def test_all_passed_is_passed(engine: TracerEngine) -> None:
    result = await engine.run_tests(ADD, ["assert add(1, 2) == 3", "assert add(0, 0) == 0"])
    assert result.verdict is Verdict.PASSED


async def test_error_names_exception(engine: TracerEngine) -> None:
    program = "def f(x):\n    return [1, 2][x]\n"
    result = await engine.run_tests(program, ["assert f(5) == 1"])
    assert result.tests[0].verdict is Verdict.ERROR
    assert "IndexError" in result.tests[0].message and "out of range" in result.tests[0].message


async def test_syntax_error_is_a_result(engine: TracerEngine) -> None:
    result = await engine.run_tests("def f(:\n  pass\n", ["assert f() is None", "assert True"])
    assert [t.verdict for t in result.tests] == [Verdict.ERROR, Verdict.ERROR]
    assert "SyntaxError" in result.tests[0].message


async def test_timeout_does_not_erase_other_tests(engine: TracerEngine) -> None:
    program = "def f(x):\n    while x == 2:\n        pass\n    return x\n"
    tests = ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]
    result = await engine.run_tests(program, tests, Limits(timeout_s=1.0))
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.TIMEOUT, Verdict.PASSED]


async def test_sleep_is_a_timeout(engine: TracerEngine) -> None:
    program = "import time\ndef f():\n    time.sleep(30)\n"
    result = await engine.run_tests(program, ["f()"], Limits(timeout_s=0.5))
    assert result.tests[0].verdict is Verdict.TIMEOUT


async def test_memory_limit(engine: TracerEngine) -> None:
    program = "def f():\n    return len(bytearray(2_000_000_000))\n"
    result = await engine.run_tests(program, ["assert f() > 0", "assert True"], Limits(timeout_s=5, memory_mb=128))
    assert [t.verdict for t in result.tests] == [Verdict.MEMORY_LIMIT, Verdict.PASSED]


async def test_memory_limit_keeps_threads_working(engine: TracerEngine) -> None:
    program = (
        "import threading\ndef f():\n    out = []\n"
        "    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n"
        "    [t.start() for t in ts]; [t.join() for t in ts]\n    return sorted(out)\n"
    )
    result = await engine.run_tests(program, ["assert f() == list(range(8))"], Limits(timeout_s=5, memory_mb=256))
    assert result.verdict is Verdict.PASSED, result.tests[0].message


PROBE_OUTSIDE_THE_ALLOW_LIST = """
import ctypes, errno, os, socket, sys
def probe():
    refused = {}
    def attempt(name, call):
        try:
            call()
            refused[name] = False
        except PermissionError:
            refused[name] = True
    attempt("socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    attempt("execve", lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
    attempt("setsid", os.setsid)
    attempt("kill pid 1", lambda: os.kill(1, 0))
    a, b = socket.socketpair()
    b.send(b"x")
    attempt("recvmsg (the zygote's, not a program's)", lambda: a.recvmsg(1))
    libc = ctypes.CDLL(None, use_errno=True)
    refused["prctl"] = libc.prctl(15, b"x", 0, 0, 0) == -1 and ctypes.get_errno() == errno.EPERM
    return refused
"""


async def test_calls_outside_the_allow_list_are_refused(engine: TracerEngine) -> None:
    test = "r = probe()\nassert all(r.values()), r"
    result = await engine.run_tests(PROBE_OUTSIDE_THE_ALLOW_LIST, [test], Limits(timeout_s=5), entry_points=["probe"])
    assert result.verdict is Verdict.PASSED, result.tests[0].message


async def test_threads_and_asyncio_work_under_the_allow_list(engine: TracerEngine) -> None:
    program = (
        "import asyncio, concurrent.futures\n"
        "async def twice(x):\n    await asyncio.sleep(0.01)\n    return 2 * x\n"
        "def f(x):\n    with concurrent.futures.ThreadPoolExecutor(2) as pool:\n"
        "        y = sum(pool.map(abs, [-x, x]))\n"
        "    return asyncio.run(twice(y))\n"
    )
    result = await engine.run_tests(program, ["assert f(3) == 12"], Limits(timeout_s=5))
    assert result.verdict is Verdict.PASSED, result.tests[0].message


async def test_output_limit(engine: TracerEngine) -> None:
    program = "def f():\n    while True:\n        print('x' * 1000)\n"
    result = await engine.run_tests(program, ["f()", "assert True"], Limits(timeout_s=5, output_bytes=50_000))
    assert [t.verdict for t in result.tests] == [Verdict.OUTPUT_LIMIT, Verdict.PASSED]


async def test_crash_by_signal(engine: TracerEngine) -> None:
    program = "import ctypes\ndef f():\n    return ctypes.string_at(0)\n"
    result = await engine.run_tests(program, ["f()", "assert True"])
    assert result.tests[0].verdict is Verdict.CRASHED
    assert "SIGSEGV" in result.tests[0].message
    assert result.tests[1].verdict is Verdict.PASSED


async def test_sandbox_error_when_the_jail_cannot_run() -> None:
    settings = make_settings(python="/nonexistent/python3")
    engine = TracerEngine(settings, sandbox=Sandbox(settings))
    result = await engine.run_tests(ADD, ["assert add(1, 2) == 3"])
    assert result.tests[0].verdict is Verdict.SANDBOX_ERROR


async def test_humaneval_check_script_shape(engine: TracerEngine) -> None:
    test = (
        "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9\n\n"
        "check(add)\n"
    )
    assert (await engine.run_tests(ADD, [test])).verdict is Verdict.PASSED
    bad = "def add(a, b):\n    return a - b\n"
    assert (await engine.run_tests(bad, [test])).verdict is Verdict.FAILED


async def test_mutation_of_arguments_is_visible_to_the_test(engine: TracerEngine) -> None:
    program = "def push(xs, v):\n    xs.append(v)\n"
    result = await engine.run_tests(program, ["xs = [1]\npush(xs, 2)\nassert xs == [1, 2]"])
    assert result.verdict is Verdict.PASSED, result.tests[0].message


async def test_program_exceptions_can_be_expected_by_tests(engine: TracerEngine) -> None:
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    test = "try:\n    f(-1)\n    raise AssertionError('no error')\nexcept ValueError as e:\n    assert 'negative' in str(e)\n"
    assert (await engine.run_tests(program, [test])).verdict is Verdict.PASSED


async def test_io_tests_with_tolerance_and_a_hang(engine: TracerEngine) -> None:
    program = "def f(x):\n    while x == 3:\n        pass\n    return x / 3 if x != 4 else (x,)\n"
    io = IoTests("f", [[1], [2], [3], [4], [5]], [1 / 3 + 1e-9, 0.5, 1.0, (4,), 5 / 3], atol=1e-6)
    result = await engine.run_io_tests(program, io, Limits(timeout_s=1.0))
    assert [t.verdict for t in result.tests] == [
        Verdict.PASSED,
        Verdict.FAILED,
        Verdict.TIMEOUT,
        Verdict.PASSED,
        Verdict.PASSED,
    ]
    assert "expected 0.5" in result.tests[1].message


async def test_io_exact_types(engine: TracerEngine) -> None:
    program = "def f(x):\n    return [x] if x else (x,)\n"
    io = IoTests("f", [[1], [0]], [[1], [0]])
    result = await engine.run_io_tests(program, io)
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.FAILED]


async def test_a_hang_in_the_test_code_itself_is_a_timeout_of_that_test(engine: TracerEngine) -> None:
    result = await engine.run_tests(
        ADD, ["assert add(1, 1) == 2", "while True: pass", "assert add(2, 2) == 4"], Limits(timeout_s=1.0)
    )
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.TIMEOUT, Verdict.PASSED]


async def test_find_zero_oracle_accepts_any_root(engine: TracerEngine) -> None:
    program = "def find_zero(xs):\n    return 2.0 if xs == [-6, 11, -6, 1] else 0.5\n"
    # roots of (x-1)(x-2)(x-3): 2.0 is a root although the expected output says 1.0
    io = IoTests("find_zero", [[[-6, 11, -6, 1]], [[1, 1]]], [1.0, -1.0], atol=1e-6, oracle="find_zero")
    result = await engine.run_io_tests(program, io)
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.FAILED]


async def test_unknown_oracle_is_invalid(engine: TracerEngine) -> None:
    from next_common.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="available: '', 'find_zero'"):
        await engine.run_io_tests(ADD, IoTests("add", [[1, 2]], [3], oracle="nope"))
