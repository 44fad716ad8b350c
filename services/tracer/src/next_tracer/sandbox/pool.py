"""Pre-warmed jails: a job costs a fork inside a running jail, not a new jail and interpreter."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from next_common.errors import UnavailableError
from next_tracer.sandbox.jail import nsjail_errors, stop_jail
from next_tracer.sandbox.protocol import MAX_REPORT_BYTES, STREAM_LINE_LIMIT, read_control, read_job_frames
from next_tracer.sandbox.records import JobRecords
from nextapi.tracer.verdicts import Verdict

log = logging.getLogger(__name__)


class Worker:
    """One long-lived jail whose init (the harness in ``--serve`` mode) runs jobs one at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.jobs = 0
        self.stderr_task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def control(self) -> dict[str, Any]:
        """Next control line from the jail's relay (frames of job output are skipped)."""
        assert self.proc.stdout
        return await read_control(self.proc.stdout)

    async def kill(self) -> None:
        await stop_jail(self.proc)


class WorkerPool:
    """Idle pre-warmed jails, started with ``argv()`` (read at each start, so it follows the limits in force)."""

    def __init__(self, argv: Callable[[], list[str]], jobs_per_worker: int) -> None:
        self.argv = argv
        self.jobs_per_worker = jobs_per_worker
        self.idle: list[Worker] = []

    async def _spawn(self) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={},
            start_new_session=True,
            limit=STREAM_LINE_LIMIT,
        )
        worker = Worker(proc)
        try:
            ready = await asyncio.wait_for(worker.control(), timeout=30)
        except (TimeoutError, EOFError, ValueError) as exc:
            await worker.kill()
            detail = await _read_stderr(proc)
            reason = "%s%s" % (exc or type(exc).__name__, ": " + detail if detail else "")
            raise UnavailableError("a sandbox worker failed to start: %s" % reason) from None
        if not ready.get("ready"):
            await worker.kill()
            raise UnavailableError("a sandbox worker sent %r instead of ready" % ready)
        worker.stderr_task = asyncio.create_task(_log_stderr(proc))
        return worker

    async def warm(self, n: int) -> None:
        """Start jails until ``n`` are idle, so the first requests do not pay for a jail's start-up."""
        missing = max(0, n - len(self.idle))
        self.idle.extend(await asyncio.gather(*(self._spawn() for _ in range(missing))))

    async def _acquire(self) -> Worker:
        while self.idle:
            worker = self.idle.pop()
            if worker.alive:
                return worker
        return await self._spawn()

    async def execute(self, job: dict[str, Any], wall_s: float, report_bytes: int = MAX_REPORT_BYTES) -> JobRecords:
        records = JobRecords()
        try:
            worker = await self._acquire()
        except UnavailableError as exc:
            records.failure = str(exc)
            return records
        reusable = False
        try:
            reusable = await asyncio.wait_for(self._run(worker, job, records, report_bytes), timeout=wall_s)
        except TimeoutError:
            records.failure = "wall-clock limit of %.3gs for the whole execution exceeded" % wall_s
            records.limit_hit = Verdict.TIMEOUT
        except (OSError, ValueError, EOFError) as exc:
            records.failure = records.failure or "sandbox worker failed: %s" % exc
        finally:
            # Any doubt (deadline, cancellation, a broken stream) costs the whole jail.
            worker.jobs += 1
            if reusable and worker.alive and worker.jobs < self.jobs_per_worker:
                self.idle.append(worker)
            else:
                await worker.kill()
        if not records.done and not records.failure:
            records.failure = "sandbox worker ended the job early"
        return records

    async def _run(self, worker: Worker, job: dict[str, Any], records: JobRecords, report_bytes: int) -> bool:
        assert worker.proc.stdin and worker.proc.stdout
        worker.proc.stdin.write(json.dumps(job).encode() + b"\n")
        await worker.proc.stdin.drain()
        return await read_job_frames(worker.proc.stdout, records, report_bytes)

    async def close(self) -> None:
        workers, self.idle = self.idle, []
        for worker in workers:
            await worker.kill()


async def _read_stderr(proc: asyncio.subprocess.Process) -> str:
    if proc.stderr is None:
        return ""
    try:
        data = await asyncio.wait_for(proc.stderr.read(65536), timeout=1)
    except TimeoutError:
        return ""
    return nsjail_errors(data.decode("utf-8", "replace"))


async def _log_stderr(proc: asyncio.subprocess.Process) -> None:
    """Drain a worker's stderr (nsjail's own messages) into the log, so the pipe never fills."""
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        log.debug("sandbox worker %d: %s", proc.pid, line.decode("utf-8", "replace").rstrip()[:1000])
