"""Red team: attacks on the verdict itself, each run through the real sandbox.

Every program here implements nothing; it tries to pass anyway, by reading the tests, by
reaching a process of ours, by forging a result channel or an exception, or by making the
trusted side interpret something it chose. Each must end not PASSED, with no server error,
and the next honest job must still pass.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from nextapi.tracer.types import IoTests, Limits, TraceOptions, Verdict
from tests.conftest import make_settings

# Values no honest `solve` could compute: only a program that reads the tests can pass them.
TESTS = ["assert solve(3) == 104729", "assert solve(5) == 7919", "assert solve(8) == 65537"]
TABLE_FROM_TEXT = """
def _table(texts):
    import re
    out = {}
    for text in texts:
        for a, b in re.findall(r"solve\\((\\d+)\\) == (\\d+)", text):
            out[int(a)] = int(b)
    return out
def solve(x):
    return TABLE.get(x, -1)
"""

ATTACKS: dict[str, str] = {
    # 1. The job process's frames are still on the stack of a forked program process.
    "frame walking": TABLE_FROM_TEXT
    + """
import sys
texts, f = [], sys._getframe()
while f is not None:
    for scope in (f.f_locals, f.f_globals):
        for v in list(scope.values()):
            try:
                texts.append(repr(v)[:10_000_000])
            except Exception:
                pass
    f = f.f_back
TABLE = _table(texts)
""",
    # 2. ... and its heap is reachable through the garbage collector.
    "gc scan": TABLE_FROM_TEXT
    + """
import gc
texts = []
for o in gc.get_objects():
    vals = o.values() if type(o) is dict else o if type(o) in (list, tuple) else ()
    texts.extend(v for v in vals if type(v) is str and "solve(" in v)
TABLE = _table(texts)
""",
    # 3. The exploit: a copy of the parent's stdout through pidfd_getfd, forged lines, kill the parent.
    "pidfd_getfd on the parent's stdout": """
import ctypes, os, signal
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(os.getppid())
    fd = libc.syscall(438, pidfd, 1, 0)
    line = b'{"test":%d,"status":"PASSED","message":"","duration_s":0}\\n'
    os.write(fd, line % 0 + line % 1 + line % 2 + b'{"done":true}\\n')
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    os._exit(0)
""",
    # 4. Every pid in the jail: steal each of its first fds, forge both wire formats, then kill it.
    "pidfd against every ancestor": """
import ctypes, os, signal
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    line = b'{"test":%d,"status":"PASSED","message":"","duration_s":0}\\n'
    raw = line % 0 + line % 1 + line % 2 + b'{"done":true}\\n'
    relayed = b"".join(b"J" + l + b"\\n" for l in raw.splitlines()) + b'Z{"idle":true}\\n'
    pidfds = []
    for pid in range(1, 200):
        if pid == os.getpid():
            continue
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        pidfds.append(pidfd)
        for target in range(0, 32):
            fd = libc.syscall(438, pidfd, target, 0)
            if fd >= 0:
                for data in (raw, relayed):
                    try:
                        os.write(fd, data)
                    except OSError:
                        pass
    for pidfd in pidfds:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)
""",
    # 5. Plain signals at every pid (stop, then kill), then an honest-looking return.
    "signals against every pid": """
import os, signal
def solve(x):
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in list(range(1, 300)) + [0, -1]:
            if pid != os.getpid():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    return 104729
""",
    # 6. Every fd number this process might have inherited, with the relay's prefixes too.
    "forged lines on every fd, both wire formats": """
import os
def solve(x):
    line = b'{"test":%d,"status":"PASSED","message":"","duration_s":0}\\n'
    raw = line % 0 + line % 1 + line % 2 + b'{"done":true}\\n'
    relayed = b"".join(b"J" + l + b"\\n" for l in raw.splitlines()) + b'Z{"idle":true}\\n'
    for fd in range(0, 1024):
        for data in (raw, relayed):
            try:
                os.write(fd, data)
            except OSError:
                pass
    os._exit(0)
""",
    # 7. A real StopIteration silently ends `all(map(...))`.
    "StopIteration ends the check early": "def solve(x):\n    raise StopIteration\n",
    # 8. ... and so does a class that only borrows the name.
    "exception class named StopIteration": (
        "class StopIteration(Exception):\n    pass\ndef solve(x):\n    raise StopIteration('done')\n"
    ),
    # 9. Process memory read through the kernel (denied by seccomp; kept as a regression).
    "process_vm_readv on every pid": TABLE_FROM_TEXT
    + """
import ctypes, os
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
libc = ctypes.CDLL(None, use_errno=True)
texts = []
buf = ctypes.create_string_buffer(1 << 16)
for pid in range(1, 64):
    for addr in range(0x550000000000, 0x550000000000 + (1 << 20), 1 << 16):
        local, remote = iovec(ctypes.addressof(buf), 1 << 16), iovec(addr, 1 << 16)
        if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0:
            texts.append(buf.raw.decode("latin-1"))
TABLE = _table(texts)
""",
    # 10. An exception message carrying newlines and forged protocol lines.
    "protocol lines in an exception message": (
        "def solve(x):\n"
        '    raise ValueError(\'\\n{"test":0,"status":"PASSED"}\\n{"done":true}\\nJ{"done":true}\\nZ{"idle":true}\\n\')\n'
    ),
}

# The signal attack ends by stopping its own process group (SIGSTOP to pid 0), which uses no CPU
# time, so only the wall-clock allowance (3 s per CPU second, plus 1) ends each test: a 1 s limit
# keeps it at 4 s a test instead of 16. The attack itself takes milliseconds either way.
TIMEOUT_S = {"signals against every pid": 1.0}

# Each is a check that must run all its assertions; the helper is one the test calls.
MAP_CHECK = "assert all(map(lambda x: solve(x) == x * x, [1, 2, 3]))"


@pytest.fixture(scope="module")
async def one_jail() -> AsyncIterator[TracerEngine]:
    """A single pre-warmed jail, so an attack that damaged it would show in the next job."""
    engine = TracerEngine(make_settings(max_concurrency=1), FormatRegistry(load_entry_points=False))
    await engine.start()
    yield engine
    await engine.sandbox.close()


async def _honest_job_passes(engine: TracerEngine) -> None:
    honest = await engine.run_tests("def solve(x):\n    return x * x\n", ["assert solve(3) == 9"], Limits(timeout_s=5))
    assert honest.verdict is Verdict.PASSED, honest


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_attack_is_not_passed(one_jail: TracerEngine, name: str) -> None:
    tests = [MAP_CHECK] if "StopIteration" in name else TESTS
    limits = Limits(timeout_s=TIMEOUT_S.get(name, 5))
    result = await one_jail.run_tests(ATTACKS[name], tests, limits, entry_points=["solve"])
    assert result.verdict is not Verdict.PASSED, (name, result)
    assert all(t.verdict is not Verdict.PASSED for t in result.tests), (name, result)
    await _honest_job_passes(one_jail)


async def test_attacks_are_not_passed_in_fresh_jails() -> None:
    engine = TracerEngine(make_settings(workers="fresh"), FormatRegistry(load_entry_points=False))
    await engine.start()
    for name in ("frame walking", "gc scan", "pidfd_getfd on the parent's stdout", "signals against every pid"):
        limits = Limits(timeout_s=TIMEOUT_S.get(name, 5))
        result = await engine.run_tests(ATTACKS[name], TESTS, limits, entry_points=["solve"])
        assert result.verdict is not Verdict.PASSED, (name, result)


SCAN_MEMORY = r"""
import ctypes, gc, os, re, sys

def found():
    # Every readable page near anything this process can name: the heap, arenas, stacks.
    libc = ctypes.CDLL(None)
    libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    libc.write.restype = ctypes.c_ssize_t
    r, w = os.pipe()
    pattern = re.compile(rb"NEXT-SECRET-[0-9a-f]{32}")
    anchors = {id(o) >> 24 for o in gc.get_objects()}
    anchors |= {id(sys._getframe()) >> 24, ctypes.addressof(ctypes.c_int()) >> 24}
    for base in sorted(anchors):
        run = bytearray()
        for page in range(base << 24, (base + 1) << 24, 4096):
            if libc.write(w, page, 1) == 1:
                os.read(r, 1)
                run += ctypes.string_at(page, 4096)
                continue
            hit = pattern.search(run)
            if hit:
                return hit.group().decode()
            run = bytearray()
        hit = pattern.search(run)
        if hit:
            return hit.group().decode()
    return ""
"""


@pytest.mark.parametrize("seed", range(3))
async def test_a_marker_only_in_the_tests_is_never_found_in_program_memory(one_jail: TracerEngine, seed: int) -> None:
    marker = "NEXT-SECRET-" + secrets.token_hex(16)
    # The marker sits in the test source, in a local of the test and in the job the harness read.
    tests = ["secret = %r\nassert found() == secret" % marker, "assert found() == %r" % marker]
    result = await one_jail.run_tests(SCAN_MEMORY, tests, Limits(timeout_s=30), entry_points=["found"])
    assert result.verdict is not Verdict.PASSED, result
    for outcome in result.tests:
        assert outcome.verdict is Verdict.FAILED, outcome  # the scan ran to the end and found nothing


async def test_scan_finds_a_marker_the_program_holds(one_jail: TracerEngine) -> None:
    # The scanner works: a marker in the program's own memory is found.
    marker = "NEXT-SECRET-" + secrets.token_hex(16)
    program = SCAN_MEMORY + "\nKEEP = %r.encode()\n" % marker
    result = await one_jail.run_tests(program, ["assert found() == %r" % marker], Limits(timeout_s=30))
    assert result.verdict is Verdict.PASSED, result


HELPER_PROGRAM = "def poly(xs, x):\n    return 0.0\ndef find_zero(xs):\n    return 0.0\n"
HELPER_CHECK = "assert abs(poly([1, 2], find_zero([1, 2]))) < 1e-6"
HELPER_PRELUDE = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n"


async def test_a_helper_the_test_calls_cannot_be_replaced(one_jail: TracerEngine) -> None:
    # HumanEval/32's check calls `poly`: only the entry point crosses from the program.
    result = await one_jail.run_tests(HELPER_PROGRAM, [HELPER_CHECK], entry_points=["find_zero"])
    assert result.verdict is not Verdict.PASSED, result
    # The task's own definition, carried by the test, is the one the check uses.
    result = await one_jail.run_tests(HELPER_PROGRAM, [HELPER_PRELUDE + HELPER_CHECK], entry_points=["find_zero"])
    assert result.verdict is Verdict.FAILED, result
    honest = "def find_zero(xs):\n    return -xs[0] / xs[1]\n"
    result = await one_jail.run_tests(honest, [HELPER_PRELUDE + HELPER_CHECK], entry_points=["find_zero"])
    assert result.verdict is Verdict.PASSED, result


INJECT = """
import types
open('/tmp/test_injected.py', 'w').write(
    "import os\\n"
    "line = b'{\\"test\\":0,\\"status\\":\\"PASSED\\",\\"message\\":\\"\\",\\"duration_s\\":0}\\\\n{\\"done\\":true}\\\\n'\\n"
    "os.write(1, line)\\nos._exit(0)\\n"
)
runner = types.ModuleType("unittest.__main__")
this = types.ModuleType("this")
def solve(x):
    return 0
"""


@pytest.mark.parametrize("workers", ["fresh", "prewarmed"])
async def test_program_chosen_module_names_are_never_imported(workers: str) -> None:
    engine = TracerEngine(make_settings(workers=workers), FormatRegistry(load_entry_points=False))
    await engine.start()
    for entry_points in (["solve"], []):
        result = await engine.run_tests(INJECT, ["assert solve(3) == 104729"], entry_points=entry_points)
        assert result.verdict is Verdict.FAILED, result
    await engine.sandbox.close()


async def test_result_pipe_flood_is_an_output_limit(one_jail: TracerEngine) -> None:
    program = "def solve(x):\n    return 'x' * 40_000_000\n"
    result = await one_jail.run_io_tests(program, IoTests("solve", [[1], [2], [3]], ["a", "b", "c"]))
    assert result.verdict is Verdict.OUTPUT_LIMIT, result
    result = await one_jail.run_tests(
        program, ["assert len(solve(1)) == 40_000_000"], Limits(output_bytes=1000), entry_points=["solve"]
    )
    assert result.verdict is Verdict.OUTPUT_LIMIT, result
    await _honest_job_passes(one_jail)


async def test_a_forged_compile_error_is_bounded(one_jail: TracerEngine) -> None:
    """A program may write the program process's own first reply: a "does not compile" with a
    huge message fails every test (its own, as ERROR), each with a bounded message."""
    program = (
        "import os\n"
        "os.write(4, b'{\"program_error\": \"' + b'x' * 3_000_000 + b'\", \"compile\": true}\\n')\n"
        "os._exit(0)\n"
    )
    result = await one_jail.run_tests(program, TESTS * 4, Limits(timeout_s=5, output_bytes=4_000_000))
    assert [t.verdict for t in result.tests] == [Verdict.ERROR] * 12, result.tests[0].message[:200]
    assert all(len(t.message) <= 500 for t in result.tests)
    await _honest_job_passes(one_jail)


HOSTILE_VALUES = {
    "int beyond the str-digits limit": "def solve(x):\n    return 10 ** 5000 + 1\n",
    "negative huge int": "def solve(x):\n    return -(7 ** 9000)\n",
    "recursive list": "def solve(x):\n    a = []\n    a.append(a)\n    return a\n",
    "deeply nested list": "def solve(x):\n    a = []\n    for _ in range(100000):\n        a = [a]\n    return a\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_VALUES))
async def test_hostile_values_are_graded_without_a_server_error(one_jail: TracerEngine, name: str) -> None:
    program = HOSTILE_VALUES[name]
    io = await one_jail.run_io_tests(program, IoTests("solve", [[1]], [104729]))
    assert io.verdict is not Verdict.PASSED, io
    assert io.verdict is not Verdict.SANDBOX_ERROR, io
    returned = await one_jail.run_io_tests(program, IoTests("solve", [[1]], [], return_outputs=True))
    assert returned.verdict is not Verdict.SANDBOX_ERROR, returned
    statements = await one_jail.run_tests(program, ["assert solve(1) == 104729"], entry_points=["solve"])
    assert statements.verdict is not Verdict.PASSED, statements


async def test_hostile_repr_does_not_break_a_trace(one_jail: TracerEngine) -> None:
    program = (
        "class Evil:\n    def __repr__(self):\n        while True:\n            pass\n"
        "    def __eq__(self, other):\n        return True\n"
        "def solve(x):\n    e = Evil()\n    return 104729\n"
    )
    result = await one_jail.trace(program, "assert solve(3) == 104729", TraceOptions(), Limits(timeout_s=5))
    assert result.test.verdict is Verdict.PASSED  # an honest constant: the trace is what is under test
    assert "solve" in result.rendered


async def test_cpu_used_across_many_inputs_is_not_a_crash(one_jail: TracerEngine) -> None:
    # Each input is well inside its limit; together they exceed it many times over.
    program = "def solve(x):\n    n = 0\n    for i in range(2_500_000):\n        n += i\n    return x\n"
    inputs = [[i] for i in range(60)]
    result = await one_jail.run_io_tests(program, IoTests("solve", inputs, list(range(60))), Limits(timeout_s=1))
    assert result.verdict is Verdict.PASSED, [(t.verdict, t.message) for t in result.tests if t.verdict != "PASSED"]


@pytest.mark.parametrize("kind", ["statements", "calls"])
async def test_a_busy_loop_is_a_timeout_never_a_crash(one_jail: TracerEngine, kind: str) -> None:
    program = "def solve(x):\n    while True:\n        pass\n"
    if kind == "calls":
        result = await one_jail.run_io_tests(program, IoTests("solve", [[1], [2]], [1, 2]), Limits(timeout_s=1))
    else:
        result = await one_jail.run_tests(program, ["assert solve(1) == 1"], Limits(timeout_s=1))
    assert [t.verdict for t in result.tests] == [Verdict.TIMEOUT] * len(result.tests), result


async def test_a_correct_program_passes_beside_a_cpu_hog(one_jail: TracerEngine) -> None:
    # Limits are CPU time: two busy processes on the machine's cores must not turn a correct,
    # CPU-heavy program into a TIMEOUT (it needs about a third of its limit on an idle core).
    import subprocess
    import sys

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        program = "def solve(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
        n = 3_000_000
        result = await one_jail.run_io_tests(
            program, IoTests("solve", [[n]] * 3, [n * (n - 1) // 2] * 3), Limits(timeout_s=2)
        )
        assert result.verdict is Verdict.PASSED, [(t.verdict, t.message) for t in result.tests]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
