"""A second seccomp filter, installed by each program process on itself before the program runs.

The jail's policy (``sandbox/policy.kafel``) is the same for every process in the jail and lists
what is denied. This one is an allow-list: the system calls a Python program needs to compute,
allocate, use files in its scratch space, run threads and time itself (what HumanEval, MBPP and
HumanEval+ programs were measured to make, plus the interpreter's ordinary needs); anything
else fails with EPERM. It also knows the program process's pid, so it can say what a static
policy cannot: signals only to itself, its threads and its own process group, which it may not
leave. With it, no process of ours (the job process, the relay, the zygote) can be stopped or
killed by a program, and pidfds, ptrace, cross-process memory access, sockets, namespaces and
exec are refused here, whatever the jail's policy says. Standard library only (ctypes): it runs
inside the jail.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import struct
from collections.abc import Iterable

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_ALLOW = 0x7FFF0000
_ERRNO_EPERM = 0x00050000 | errno.EPERM
_ERRNO_ENOSYS = 0x00050000 | errno.ENOSYS
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

# name -> (x86_64, aarch64); None where the architecture has no such call (aarch64 has only the *at forms).
_SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    # Signals: allowed only towards the process itself or its group (the argument check).
    "kill": (62, 129),
    "tkill": (200, 130),
    "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240),
    # The allow-list, most frequent first (a program's replies, then memory).
    "write": (1, 64),
    "writev": (20, 66),
    "read": (0, 63),
    "brk": (12, 214),
    "mmap": (9, 222),
    "munmap": (11, 215),
    "mremap": (25, 216),
    "mprotect": (10, 226),
    "madvise": (28, 233),
    "futex": (202, 98),
    "readv": (19, 65),
    "pread64": (17, 67),
    "pwrite64": (18, 68),
    "close": (3, 57),
    "close_range": (436, 436),
    "openat": (257, 56),
    "open": (2, None),
    "newfstatat": (262, 79),
    "fstat": (5, 80),
    "stat": (4, None),
    "lstat": (6, None),
    "statx": (332, 291),
    "lseek": (8, 62),
    "ioctl": (16, 29),
    "fcntl": (72, 25),
    "flock": (73, 32),
    "dup": (32, 23),
    "dup2": (33, None),
    "dup3": (292, 24),
    "pipe": (22, None),
    "pipe2": (293, 59),
    "getdents64": (217, 61),
    "getcwd": (79, 17),
    "chdir": (80, 49),
    "fchdir": (81, 50),
    "access": (21, None),
    "faccessat": (269, 48),
    "faccessat2": (439, 439),
    "readlink": (89, None),
    "readlinkat": (267, 78),
    "mkdir": (83, None),
    "mkdirat": (258, 34),
    "rmdir": (84, None),
    "unlink": (87, None),
    "unlinkat": (263, 35),
    "rename": (82, None),
    "renameat": (264, 38),
    "renameat2": (316, 276),
    "chmod": (90, None),
    "fchmod": (91, 52),
    "fchmodat": (268, 53),
    "utimensat": (280, 88),
    "ftruncate": (77, 46),
    "fsync": (74, 82),
    "fdatasync": (75, 83),
    "fadvise64": (221, 223),
    "statfs": (137, 43),
    "fstatfs": (138, 44),
    "umask": (95, 166),
    "poll": (7, None),
    "ppoll": (271, 73),
    "select": (23, None),
    "pselect6": (270, 72),
    "rt_sigaction": (13, 134),
    "rt_sigprocmask": (14, 135),
    "rt_sigreturn": (15, 139),
    "rt_sigsuspend": (130, 133),
    "sigaltstack": (131, 132),
    "pause": (34, None),
    "alarm": (37, None),
    "getitimer": (36, 102),
    "setitimer": (38, 103),
    "nanosleep": (35, 101),
    "clock_nanosleep": (230, 115),
    "clock_gettime": (228, 113),
    "clock_getres": (229, 114),
    "gettimeofday": (96, 169),
    "times": (100, 153),
    "getrusage": (98, 165),
    "getrandom": (318, 278),
    "sched_yield": (24, 124),
    "sched_getaffinity": (204, 123),
    "getpid": (39, 172),
    "gettid": (186, 178),
    "getppid": (110, 173),
    "getpgrp": (111, None),
    "getpgid": (121, 155),
    "getsid": (124, 156),
    "getuid": (102, 174),
    "geteuid": (107, 175),
    "getgid": (104, 176),
    "getegid": (108, 177),
    "uname": (63, 160),
    "sysinfo": (99, 179),
    "getrlimit": (97, 163),
    "prlimit64": (302, 261),
    # asyncio's event loop: epoll, and a connected socket pair as its wake-up channel (no addresses).
    "epoll_create1": (291, 20),
    "epoll_ctl": (233, 21),
    "epoll_wait": (232, None),
    "epoll_pwait": (281, 22),
    "eventfd2": (290, 19),
    "socketpair": (53, 199),
    "sendto": (44, 206),
    "recvfrom": (45, 207),
    "getsockname": (51, 204),
    "getsockopt": (55, 209),
    # Threads and child processes (fork bounds: the jail's pids limit; namespaces: the jail's policy).
    "clone": (56, 220),
    "fork": (57, None),
    "vfork": (58, None),
    "wait4": (61, 260),
    "set_robust_list": (273, 99),
    "set_tid_address": (218, 96),
    "rseq": (334, 293),
    "arch_prctl": (158, None),
    "exit": (60, 93),
    "exit_group": (231, 94),
}
_CLONE3 = (435, 435)
_ARCHES = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}
SIGNAL_SYSCALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
ALLOWED_SYSCALLS = tuple(name for name in _SYSCALLS if name not in SIGNAL_SYSCALLS)


# What the zygote needs beyond a program's list: the socket it is asked on, and the two calls a
# program process makes on itself before its own filter is in place.
ZYGOTE_SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    "recvmsg": (47, 212),
    "setsid": (112, 157),
    "prctl": (157, 167),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _numbers(machine: str, names: Iterable[str]) -> list[int]:
    column = _ARCHES[machine.lower()][0]
    table = {**_SYSCALLS, **ZYGOTE_SYSCALLS}
    return [nr for name in names if (nr := table[name][column]) is not None]


def _head(machine: str) -> list[bytes]:
    """Foreign architectures, x32 and clone3 refused; leaves the call's number loaded."""
    column, audit_arch = _ARCHES[machine.lower()]
    out = [_insn(_LD_W_ABS, 0, 0, _OFF_ARCH)]
    # Foreign architecture (e.g. 32-bit calls on x86_64): refused outright.
    out.append(_insn(_JEQ_K, 1, 0, audit_arch))
    out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    out.append(_insn(_LD_W_ABS, 0, 0, _OFF_NR))
    if column == 0:  # x32 ABI numbers have bit 30 set
        out.append(_insn(_JGE_K, 0, 1, 0x40000000))
        out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    # clone3 passes its flags in memory a filter cannot read: "not implemented" makes glibc
    # start threads with clone instead (EPERM would make it give up).
    out.append(_insn(_JEQ_K, 0, 1, _CLONE3[column]))
    out.append(_insn(_RET_K, 0, 0, _ERRNO_ENOSYS))
    return out


def _any_of(numbers: list[int], past: int) -> list[bytes]:
    """A chain of checks; a call whose number is in it jumps ``past`` instructions beyond the chain's end."""
    return [_insn(_JEQ_K, (len(numbers) - 1 - i) + past, 0, nr) for i, nr in enumerate(numbers)]


def _pid_tail(pid: int) -> bytes:
    """The argument check, after ``LD arg0``: the target (low 32 bits) is the process itself or its
    group (0 or -pid); anything else is refused."""
    return b"".join(
        (
            _insn(_JEQ_K, 2, 0, pid),
            _insn(_JEQ_K, 1, 0, 0),
            _insn(_JEQ_K, 0, 1, -pid),
            _insn(_RET_K, 0, 0, _ALLOW),
            _insn(_RET_K, 0, 0, _ERRNO_EPERM),
        )
    )


@functools.cache
def _checks(machine: str) -> bytes:
    """Everything of ``program`` but the pid-dependent tail, built once per machine."""
    signals = _numbers(machine, SIGNAL_SYSCALLS)
    allowed = _numbers(machine, ALLOWED_SYSCALLS)
    out = _head(machine)
    # Layout after this point: [signal checks][allow checks][ERRNO][ALLOW][argument check]
    out += _any_of(signals, len(allowed) + 2)  # to the argument check: past the allow checks, ERRNO and ALLOW
    out += _any_of(allowed, 1)  # to ALLOW, past ERRNO
    out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    out.append(_insn(_RET_K, 0, 0, _ALLOW))
    out.append(_insn(_LD_W_ABS, 0, 0, _OFF_ARG0))
    return b"".join(out)


def program(pid: int, machine: str | None = None) -> bytes:
    """A program process's whole policy as one filter (installed so where the zygote has none)."""
    return _checks(machine or _MACHINE) + _pid_tail(pid)


@functools.cache
def zygote(machine: str | None = None) -> bytes:
    """The zygote's filter, inherited by every program process it forks: the program's allow-list,
    signals to anyone (it kills program process groups) and ``ZYGOTE_SYSCALLS``."""
    allowed = _numbers(machine or _MACHINE, (*SIGNAL_SYSCALLS, *ALLOWED_SYSCALLS, *ZYGOTE_SYSCALLS))
    out = _head(machine or _MACHINE) + _any_of(allowed, 1)  # to ALLOW, past ERRNO
    out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    out.append(_insn(_RET_K, 0, 0, _ALLOW))
    return b"".join(out)


def on_zygote(pid: int, machine: str | None = None) -> bytes:
    """A program process's filter on top of the zygote's: it takes back ``ZYGOTE_SYSCALLS`` and
    lets signals reach only the process itself and its group. The two together are ``program``.

    Small on purpose: the kernel checks a new filter against every call number it may cache,
    which for the whole list cost about half a millisecond per program process.
    """
    extra = _numbers(machine or _MACHINE, ZYGOTE_SYSCALLS)
    signals = _numbers(machine or _MACHINE, SIGNAL_SYSCALLS)
    out = [_insn(_LD_W_ABS, 0, 0, _OFF_NR)]
    # Layout: [extra checks][signal checks][ALLOW][ERRNO][argument check]
    out += _any_of(extra, len(signals) + 1)  # to ERRNO: past the signal checks and ALLOW
    out += _any_of(signals, 2)  # to the argument check, past ALLOW and ERRNO
    out.append(_insn(_RET_K, 0, 0, _ALLOW))
    out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    out.append(_insn(_LD_W_ABS, 0, 0, _OFF_ARG0))
    return b"".join(out) + _pid_tail(pid)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _Filter:
    """A filter in memory the kernel can read, built once (in the zygote)."""

    def __init__(self, code: bytes) -> None:
        self.size = len(code)
        self.buffer = ctypes.create_string_buffer(code, len(code))
        self.fprog = _SockFprog(len(code) // 8, ctypes.addressof(self.buffer))

    def set_pid(self, pid: int) -> None:
        """Write ``pid`` into the argument check (``_pid_tail``: the last five instructions)."""
        struct.pack_into("=I", self.buffer, self.size - 5 * 8 + 4, pid & 0xFFFFFFFF)
        struct.pack_into("=I", self.buffer, self.size - 3 * 8 + 4, -pid & 0xFFFFFFFF)

    def install(self) -> str:
        if _PRCTL(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self.fprog), 0, 0) != 0:
            return "unavailable: prctl failed (%s)" % os.strerror(ctypes.get_errno())
        return "seccomp"


# Made once, in the zygote: a program process is a fresh fork, where every object it touches
# costs a copied page, so it does as little as it can before the program runs.
_LIBC = ctypes.CDLL(None, use_errno=True)
_PRCTL = _LIBC.prctl
_PRCTL.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
_MACHINE = platform.machine()
if _MACHINE.lower() in _ARCHES:
    _checks(_MACHINE)
_ON_ZYGOTE: _Filter | None = None  # set once the zygote's own filter is in place


def confine_zygote() -> str:
    """Install the zygote's filter on the zygote (after it forked the job side); returns the mode.

    Its program processes then need only the small ``on_zygote`` filter, prepared here.
    """
    global _ON_ZYGOTE
    if _MACHINE.lower() not in _ARCHES:
        return "unavailable: no syscall table for %s" % _MACHINE
    child = _Filter(on_zygote(0))
    _PRCTL(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0)
    mode = _Filter(zygote()).install()
    if mode == "seccomp":
        _ON_ZYGOTE = child
    return mode


def zygote_confined() -> bool:
    """The zygote's filter is in place: a program process that cannot add its own must not run."""
    return _ON_ZYGOTE is not None


def confine_program_process() -> str:
    """Install this process's filter (inherited by anything it forks); returns the mode."""
    if _ON_ZYGOTE is not None:
        _ON_ZYGOTE.set_pid(os.getpid())
        mode = _ON_ZYGOTE.install()
        if mode == "seccomp":
            return mode
        # Under the zygote's filter alone it could signal our processes: try the whole filter,
        # and if that fails too the program must not run (``zygote_confined``).
    try:
        code = program(os.getpid())
    except KeyError:
        return "unavailable: no syscall table for %s" % _MACHINE
    _PRCTL(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0)
    return _Filter(code).install()


def prctl(option: int, arg: int) -> int:
    return int(_PRCTL(option, arg, None, 0, 0))


def set_undumpable() -> None:
    """PR_SET_DUMPABLE 0: no ptrace, pidfd_getfd or /proc/PID/mem access from same-uid processes."""
    prctl(4, 0)
