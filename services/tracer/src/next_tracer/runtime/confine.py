"""A second seccomp filter, installed by each program process on itself before the program runs.

The jail's policy (``sandbox/policy.kafel``) is the same for every process in the jail. This
one knows the program process's pid, so it can say what a static policy cannot: signals only
to itself, its threads and its own process group, which it may not leave. With it, no process
of ours (the job process, the relay, the zygote) can be stopped or killed by a program, and
pidfds, ptrace and cross-process memory access are refused again here, whatever the jail's
policy says. Standard library only (ctypes): it runs inside the jail.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import struct

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_ALLOW = 0x7FFF0000
_ERRNO_EPERM = 0x00050000 | errno.EPERM
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

# name -> (x86_64, aarch64)
_SYSCALLS = {
    "kill": (62, 129),
    "tkill": (200, 130),
    "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240),
    "setsid": (112, 157),
    "setpgid": (109, 154),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "pidfd_send_signal": (424, 424),
    "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438),
    "process_madvise": (440, 440),
    "process_mrelease": (448, 448),
}
_ARCHES = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}
SIGNAL_SYSCALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
DENIED_SYSCALLS = (
    "setsid",
    "setpgid",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_send_signal",
    "pidfd_open",
    "pidfd_getfd",
    "process_madvise",
    "process_mrelease",
)


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


@functools.cache
def _checks(machine: str) -> bytes:
    """Everything but the pid-dependent tail, built once per machine (in the zygote)."""
    column, audit_arch = _ARCHES[machine.lower()]
    signals = [_SYSCALLS[name][column] for name in SIGNAL_SYSCALLS]
    denied = [_SYSCALLS[name][column] for name in DENIED_SYSCALLS]
    out = [_insn(_LD_W_ABS, 0, 0, _OFF_ARCH)]
    # Foreign architecture (e.g. 32-bit calls on x86_64): refused outright.
    out.append(_insn(_JEQ_K, 1, 0, audit_arch))
    out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    out.append(_insn(_LD_W_ABS, 0, 0, _OFF_NR))
    if column == 0:  # x32 ABI numbers have bit 30 set
        out.append(_insn(_JGE_K, 0, 1, 0x40000000))
        out.append(_insn(_RET_K, 0, 0, _ERRNO_EPERM))
    # Layout after this point: [signal checks][deny checks][ALLOW][arg check][ERRNO]
    n_sig, n_deny = len(signals), len(denied)
    for i, nr in enumerate(signals):
        # jump to the argument check: past the remaining signal checks, the deny checks and ALLOW
        out.append(_insn(_JEQ_K, (n_sig - 1 - i) + n_deny + 1, 0, nr))
    for i, nr in enumerate(denied):
        # jump to ERRNO: past the remaining deny checks, ALLOW and the 5 instructions of the argument check
        out.append(_insn(_JEQ_K, (n_deny - 1 - i) + 1 + 5, 0, nr))
    out.append(_insn(_RET_K, 0, 0, _ALLOW))
    out.append(_insn(_LD_W_ABS, 0, 0, _OFF_ARG0))
    return b"".join(out)


def program(pid: int, machine: str | None = None) -> bytes:
    """The filter for a program process with this pid, as packed sock_filter instructions."""
    # The target (first argument, low 32 bits): itself, its group (0 or -pid); anything else is refused.
    return _checks(machine or _MACHINE) + b"".join(
        (
            _insn(_JEQ_K, 2, 0, pid),
            _insn(_JEQ_K, 1, 0, 0),
            _insn(_JEQ_K, 0, 1, -pid),
            _insn(_RET_K, 0, 0, _ALLOW),
            _insn(_RET_K, 0, 0, _ERRNO_EPERM),
        )
    )


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# Made once, in the zygote: a program process is a fresh fork, where every object it touches
# costs a copied page, so it does as little as it can before the program runs.
_LIBC = ctypes.CDLL(None, use_errno=True)
_PRCTL = _LIBC.prctl
_PRCTL.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
_MACHINE = platform.machine()
if _MACHINE.lower() in _ARCHES:
    _checks(_MACHINE)


def confine_program_process() -> str:
    """Install the filter on this process (inherited by anything it forks); returns the mode."""
    try:
        code = program(os.getpid())
    except KeyError:
        return "unavailable: no syscall table for %s" % _MACHINE
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.addressof(buf))
    _PRCTL(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0)
    if _PRCTL(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        return "unavailable: prctl failed (%s)" % os.strerror(ctypes.get_errno())
    return "seccomp"


def prctl(option: int, arg: int) -> int:
    return int(_PRCTL(option, arg, None, 0, 0))


def set_undumpable() -> None:
    """PR_SET_DUMPABLE 0: no ptrace, pidfd_getfd or /proc/PID/mem access from same-uid processes."""
    prctl(4, 0)
