"""Pre-warmed jails: one job can never affect the next one that runs in the same jail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from nextapi.tracer.types import Limits, Verdict
from tests.conftest import make_settings

PLANT = """\
import os, time, ctypes
def plant():
    for path in ('/tmp/planted', 'planted'):
        open(path, 'w').write('x')
    os.makedirs('/tmp/locked/inner')
    os.chmod('/tmp/locked', 0)
    libc = ctypes.CDLL(None, use_errno=True)
    ipc = [libc.shmget(0x4E455854, 4096, 0o1666), libc.semget(0x4E455854, 1, 0o1666), libc.msgget(0x4E455854, 0o1666)]
    if os.fork() == 0:
        try:
            os.setsid()  # denied to program processes now; the daemon stays in the killed group
        except OSError:
            pass
        while True:
            open('/tmp/daemon', 'w').write('x')
            time.sleep(0.01)
    return ipc
"""
CHECK = """\
import os, time, ctypes
def clean():
    time.sleep(0.1)
    libc = ctypes.CDLL(None, use_errno=True)
    ipc = [libc.shmget(0x4E455854, 0, 0), libc.semget(0x4E455854, 0, 0), libc.msgget(0x4E455854, 0)]
    return os.listdir('/tmp') == ['work'] and os.listdir('.') == [] and ipc == [-1, -1, -1]
"""


@pytest.fixture
async def single_worker() -> AsyncIterator[TracerEngine]:
    settings = make_settings(max_concurrency=1)
    engine = TracerEngine(settings, FormatRegistry(load_entry_points=False))
    await engine.start()
    yield engine
    await engine.sandbox.close()


async def test_files_daemons_and_ipc_do_not_reach_the_next_job(single_worker: TracerEngine) -> None:
    planted = await single_worker.run_tests(PLANT, ["assert plant() == [-1, -1, -1]"], Limits(timeout_s=5))
    assert planted.verdict is Verdict.PASSED, planted.tests[0].message  # SysV IPC is denied outright
    assert len(single_worker.sandbox.pool.idle) == 1
    checked = await single_worker.run_tests(CHECK, ["assert clean()"], Limits(timeout_s=5))
    assert checked.verdict is Verdict.PASSED, checked.tests[0].message


async def test_hostile_test_code_does_not_reach_the_next_job(single_worker: TracerEngine) -> None:
    hostile_test = (
        "import json, os, builtins\njson.dumps = lambda *a, **k: 'forged'\nbuiltins.AssertionError = KeyError\n"
        "os.write(1, b'Z{\"idle\":true}\\n')\nassert f() == 1"
    )
    await single_worker.run_tests("def f():\n    return 1\n", [hostile_test])
    result = await single_worker.run_tests("def f():\n    return 2\n", ["assert f() == 1", "assert f() == 2"])
    assert [t.verdict for t in result.tests] == [Verdict.FAILED, Verdict.PASSED]


async def test_a_killed_worker_is_replaced(single_worker: TracerEngine) -> None:
    hang = await single_worker.run_tests(
        "x = 1\n", ["import time\ntime.sleep(30)"], Limits(timeout_s=30), deadline_s=1.0
    )
    assert hang.tests[0].verdict is Verdict.TIMEOUT
    assert single_worker.sandbox.pool.idle == []
    after = await single_worker.run_tests("def f():\n    return 1\n", ["assert f() == 1"])
    assert after.verdict is Verdict.PASSED


async def test_fresh_jail_mode_still_works() -> None:
    settings = make_settings(workers="fresh")
    engine = TracerEngine(settings, FormatRegistry(load_entry_points=False))
    await engine.start()
    result = await engine.run_tests(CHECK, ["assert clean()", "while True: pass"], Limits(timeout_s=1))
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.TIMEOUT]
