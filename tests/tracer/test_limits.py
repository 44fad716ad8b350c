"""Bounds on a whole jail and on a whole execution, and retries when the sandbox (not the program) fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from next_tracer import metrics
from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from next_tracer.sandbox.jail_limits import detect, jail_memory_mb, server_memory_mb
from next_tracer.sandbox.records import JobRecords
from next_tracer.sandbox.runner import Sandbox
from next_tracer.settings import TracerSettings
from nextapi.tracer.types import IoTests, Limits, Verdict
from tests.conftest import make_settings


def test_cgroup2_is_used_when_delegated(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    limits = detect("auto", 1000, 32, root=tmp_path)  # this process's v2 group is "/": tmp_path itself
    assert limits.mode == "cgroup2"
    assert limits.argv[:2] == ["--use_cgroupv2", "--cgroupv2_mount"]
    assert "--cgroup_mem_max" in limits.argv and str(1000 << 20) in limits.argv


def test_cgroup1_when_writable_and_rlimits_otherwise(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu\n")  # v2 without memory and pids: not delegated
    assert detect("auto", 1000, 32, root=tmp_path).mode == "rlimits"
    (tmp_path / "memory").mkdir()
    (tmp_path / "pids").mkdir()
    limits = detect("auto", 1000, 32, root=tmp_path)
    assert limits.mode == "cgroup1"
    assert (tmp_path / "memory" / "NEXT_TRACER").is_dir()
    assert detect("rlimits", 1000, 32, root=tmp_path).mode == "rlimits"


def test_memory_arithmetic() -> None:
    assert jail_memory_mb(4096, 64) == 4416
    assert server_memory_mb(4, 4096, 64, 256) == 512 + 4 * (4416 + 512)


async def test_the_mode_in_use_is_exported(engine: TracerEngine) -> None:
    mode = engine.sandbox.limits.mode
    assert mode in ("cgroup2", "cgroup1", "rlimits")
    assert metrics.LIMITS_MODE.labels(mode)._value.get() == 1


async def test_a_jail_that_forks_past_its_memory_is_bounded() -> None:
    engine = TracerEngine(make_settings(max_memory_mb=256, max_concurrency=1), FormatRegistry(load_entry_points=False))
    await engine.start()
    try:
        if engine.sandbox.limits.mode == "rlimits":
            pytest.skip("no cgroup here: per-process rlimits only (%s)" % engine.sandbox.limits.why)
        # Four processes of 200 MB each: each within its own limit, together over the jail's 576 MB.
        program = (
            "import os, time\n"
            "def f():\n"
            "    pids = []\n"
            "    for _ in range(4):\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            b = bytearray(200 << 20)\n"
            "            for i in range(0, len(b), 4096):\n"
            "                b[i] = 1\n"
            "            time.sleep(2)\n"
            "            os._exit(0)\n"
            "        pids.append(pid)\n"
            "    return [os.waitpid(p, 0)[1] for p in pids]\n"
        )
        result = await engine.run_tests(program, ["assert f() == [0, 0, 0, 0]"], Limits(timeout_s=20, memory_mb=256))
        assert result.verdict is not Verdict.PASSED, result
        honest = await engine.run_tests("def f():\n    return 1\n", ["assert f() == 1"])
        assert honest.verdict is Verdict.PASSED
    finally:
        await engine.sandbox.close()


async def test_an_execution_s_whole_report_is_bounded() -> None:
    engine = TracerEngine(make_settings(max_report_mb=64), FormatRegistry(load_entry_points=False))
    await engine.start()
    try:
        # Each value is within the per-test limit; together they exceed what one execution may send.
        program = "def f(x):\n    return 'x' * 8_000_000\n"
        result = await engine.run_io_tests(program, IoTests("f", [[i] for i in range(12)], ["y"] * 12))
        verdicts = [t.verdict for t in result.tests]
        assert Verdict.PASSED not in verdicts and verdicts[-1] is Verdict.OUTPUT_LIMIT, verdicts
    finally:
        await engine.sandbox.close()


class FlakySandbox(Sandbox):
    """Stand-in for a broken jail: the first executions report nothing, as if nsjail had died."""

    def __init__(self, settings: TracerSettings, failures: int) -> None:
        super().__init__(settings)
        self.failures = failures

    async def execute(self, job: dict[str, Any], wall_s: float, report_bytes: int = 1 << 20) -> JobRecords:
        if self.failures > 0:
            self.failures -= 1
            return JobRecords(failure="sandbox ended early (exit 137)")
        return await super().execute(job, wall_s, report_bytes)


@pytest.mark.parametrize(("failures", "verdict"), [(2, Verdict.PASSED), (3, Verdict.SANDBOX_ERROR)])
async def test_a_broken_sandbox_is_retried_never_a_wrong_answer(failures: int, verdict: Verdict) -> None:
    settings = make_settings(max_concurrency=1)
    engine = TracerEngine(settings, FormatRegistry(load_entry_points=False), FlakySandbox(settings, 0))
    await engine.start()
    try:
        assert isinstance(engine.sandbox, FlakySandbox)
        engine.sandbox.failures = failures
        before = metrics.SANDBOX_RETRIES._value.get()
        result = await engine.run_tests("def f():\n    return 1\n", ["assert f() == 1"])
        assert result.verdict is verdict, result
        assert metrics.SANDBOX_RETRIES._value.get() - before == min(failures, 2)
    finally:
        await engine.sandbox.close()
