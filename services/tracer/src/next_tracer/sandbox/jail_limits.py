"""How one jail's memory and process count are bounded: a cgroup where the host delegates one.

With a cgroup, everything in a jail together (harness, program processes, anything they fork,
files in its tmpfs) stays under ``jail_memory_mb`` and ``max_jail_processes``, so
``max_concurrency`` jails fit in a known amount of memory. Without one, each process has its
own address-space limit (rlimits), and a program that forks multiplies it: the mode is logged
at start-up and exported as the ``next_tracer_jail_limits_mode`` metric.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_PARENT = "NEXT_TRACER"  # created once under the v1 memory and pids hierarchies
# Memory of a jail beyond its largest program process: interpreter, zygote, relay, job process.
JAIL_OVERHEAD_MB = 256


@dataclass(frozen=True)
class JailLimits:
    mode: str  # "cgroup2" | "cgroup1" | "rlimits"
    argv: list[str] = field(default_factory=list)  # nsjail flags
    why: str = ""
    parents: tuple[Path, ...] = ()  # where nsjail makes each jail's NSJAIL.<pid> group

    def sweep(self, older_than_s: float = 60.0) -> int:
        """Remove empty jail groups left by jails that were killed (SIGKILL leaves them behind)."""
        removed = 0
        now = time.time()
        for parent in self.parents:
            for group in parent.glob("NSJAIL.*"):
                try:
                    if now - group.stat().st_mtime > older_than_s and not (group / "cgroup.procs").read_text().strip():
                        group.rmdir()
                        removed += 1
                except OSError:
                    pass  # in use, or gone already
        return removed


# The server process itself (interpreter, gRPC, metrics), before any execution's report.
SERVER_BASE_MB = 512


def jail_memory_mb(max_memory_mb: int, tmpfs_mb: int) -> int:
    """The most memory one jail can hold under a cgroup: a program at the maximum, its files, the harness."""
    return max_memory_mb + tmpfs_mb + JAIL_OVERHEAD_MB


def server_memory_mb(
    max_concurrency: int, max_memory_mb: int, tmpfs_mb: int, max_report_mb: int, jail_mb: int = 0
) -> int:
    """The most memory a tracer (server and jails) can use: what its pod's memory limit must allow.

    Each running execution has a jail and a report in the server (held as bytes, then parsed:
    counted twice); idle pre-warmed jails are part of the same ``max_concurrency``.
    """
    per_jail = jail_mb or jail_memory_mb(max_memory_mb, tmpfs_mb)
    return SERVER_BASE_MB + max_concurrency * (per_jail + 2 * max_report_mb)


def detect(wanted: str, memory_mb: int, pids: int, root: Path = CGROUP_ROOT) -> JailLimits:
    """``wanted``: "auto" (a cgroup if possible), "cgroup" (a cgroup or an error) or "rlimits"."""
    if wanted == "rlimits":
        return JailLimits("rlimits", why="TRACER_JAIL_LIMITS=rlimits")
    mem = str(memory_mb << 20)
    reasons = []
    v2 = _cgroup2(root)
    if isinstance(v2, Path):
        return JailLimits(
            "cgroup2",
            ["--use_cgroupv2", "--cgroupv2_mount", str(root), "--cgroup_mem_max", mem, "--cgroup_pids_max", str(pids)],
            parents=(v2,),
        )
    reasons.append(v2)
    v1 = _cgroup1(root)
    if v1 is None:
        return JailLimits(
            "cgroup1",
            [
                "--cgroup_mem_mount",
                str(root / "memory"),
                "--cgroup_mem_parent",
                V1_PARENT,
                "--cgroup_mem_max",
                mem,
                "--cgroup_pids_mount",
                str(root / "pids"),
                "--cgroup_pids_parent",
                V1_PARENT,
                "--cgroup_pids_max",
                str(pids),
            ],
            parents=(root / "memory" / V1_PARENT, root / "pids" / V1_PARENT),
        )
    reasons.append(v1)
    return JailLimits("rlimits", why="; ".join(reasons))


def _cgroup2(root: Path) -> Path | str:
    """This process's v2 group when nsjail can make per-jail groups under it, else why not.

    (nsjail removes a jail's group when it ends, so jails are stopped with SIGTERM first.)
    """
    controllers = root / "cgroup.controllers"
    if not controllers.is_file():
        return "no cgroup v2 hierarchy at %s" % root
    try:
        own = next(
            line.split("::", 1)[1]
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
        available = set(controllers.read_text().split())
    except (OSError, StopIteration):
        return "cannot read this process's cgroup"
    if not {"memory", "pids"} <= available:
        return "cgroup v2 lacks the memory or pids controller (not delegated)"
    mine = root / own.strip().lstrip("/")
    if not os.access(mine, os.W_OK):
        return "cgroup v2 group %s is not writable (not delegated to this user)" % mine
    return mine


def _cgroup1(root: Path) -> str | None:
    for controller in ("memory", "pids"):
        parent = root / controller / V1_PARENT
        try:
            parent.mkdir(exist_ok=True)
        except OSError as exc:
            return "cgroup v1 %s hierarchy not writable (%s)" % (controller, exc.strerror)
        if not os.access(parent, os.W_OK):
            return "cgroup v1 group %s not writable" % parent
    return None
