"""The program process's own seccomp filter, run through a small classic-BPF interpreter: it allows
exactly its allow-list, refuses everything else with EPERM, and lets signals reach only the
process itself or its group, on both architectures it knows."""

from __future__ import annotations

import struct

import pytest

from next_tracer.runtime import confine

ALLOW, EPERM = 0x7FFF0000, 0x00050001
ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
COLUMN = {"x86_64": 0, "aarch64": 1}
PID = 4321


def run_filter(code: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """Classic BPF, the four instructions the filter uses, over a seccomp_data."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0 & 0xFFFFFFFFFFFFFFFF, 0, 0, 0, 0, 0)
    insns = [struct.unpack("=HBBI", code[i : i + 8]) for i in range(0, len(code), 8)]
    acc, pc = 0, 0
    while True:
        op, jt, jf, k = insns[pc]
        if op == 0x20:  # ld w abs
            acc = struct.unpack_from("=I", data, k)[0]
        elif op == 0x15:  # jeq k
            pc += jt if acc == k else jf
        elif op == 0x35:  # jge k
            pc += jt if acc >= k else jf
        elif op == 0x06:  # ret k
            return k
        else:
            raise AssertionError("unexpected opcode %#x" % op)
        pc += 1


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_only_the_allow_list_passes(machine: str) -> None:
    code = confine.program(PID, machine)
    allowed = {nr for name in confine.ALLOWED_SYSCALLS if (nr := confine._SYSCALLS[name][COLUMN[machine]]) is not None}
    signals = {confine._SYSCALLS[name][COLUMN[machine]] for name in confine.SIGNAL_SYSCALLS}
    assert len(allowed) == len(
        [n for n in confine.ALLOWED_SYSCALLS if confine._SYSCALLS[n][COLUMN[machine]] is not None]
    )
    for nr in range(0, 500):
        if nr in signals or nr == 435:
            continue
        expected = ALLOW if nr in allowed else EPERM
        assert run_filter(code, nr, ARCH[machine]) == expected, nr


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("name", ["ptrace", "pidfd_open", "pidfd_getfd", "process_vm_readv", "execve", "socket"])
def test_reaching_other_processes_or_programs_is_refused(machine: str, name: str) -> None:
    numbers = {
        "ptrace": (101, 117),
        "pidfd_open": (434, 434),
        "pidfd_getfd": (438, 438),
        "process_vm_readv": (310, 270),
        "execve": (59, 221),
        "socket": (41, 198),
    }
    nr = numbers[name][COLUMN[machine]]
    assert run_filter(confine.program(PID, machine), nr, ARCH[machine]) == EPERM


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_signals_reach_only_the_process_and_its_group(machine: str) -> None:
    code = confine.program(PID, machine)
    kill = confine._SYSCALLS["kill"][COLUMN[machine]]
    assert kill is not None
    for target in (PID, 0, -PID):
        assert run_filter(code, kill, ARCH[machine], target) == ALLOW
    for target in (1, PID - 1, -1, -(PID - 1)):
        assert run_filter(code, kill, ARCH[machine], target) == EPERM


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_clone3_is_not_implemented_so_threads_start_with_clone(machine: str) -> None:
    assert run_filter(confine.program(PID, machine), 435, ARCH[machine]) == 0x00050000 | 38  # ENOSYS


def test_a_foreign_architecture_and_x32_are_refused() -> None:
    code = confine.program(PID, "x86_64")
    assert run_filter(code, 1, 0x40000003) == EPERM  # i386
    assert run_filter(code, 0x40000000 | 1, ARCH["x86_64"]) == EPERM  # x32 write


def run_stack(filters: list[bytes], nr: int, arch: int, arg0: int = 0) -> int:
    """What the kernel returns for a stack of filters (newest first): the most restrictive action,
    the newest filter's on a tie."""
    best = None
    for code in filters:
        ret = run_filter(code, nr, arch, arg0)
        action = struct.unpack("=i", struct.pack("=I", ret & 0xFFFF0000))[0]
        if best is None or action < best[0]:
            best = (action, ret)
    assert best is not None
    return best[1]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_zygote_filter_and_the_small_one_on_top_are_the_whole_policy(machine: str) -> None:
    """Program processes of a confined zygote install only ``on_zygote``: the stack must decide
    every call, with every target, exactly as the single filter does."""
    stack = [confine.on_zygote(PID, machine), confine.zygote(machine)]
    single = confine.program(PID, machine)
    for arch in (ARCH[machine], 0x40000003):
        for nr in [*range(0, 500), 0x40000001]:
            for arg0 in (PID, 0, -PID, 1, -1, PID + 1):
                assert run_stack(stack, nr, arch, arg0) == run_filter(single, nr, arch, arg0), (arch, nr, arg0)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_zygote_may_do_what_its_program_processes_may_not(machine: str) -> None:
    column = COLUMN[machine]
    kill = confine._SYSCALLS["kill"][column]
    assert run_filter(confine.zygote(machine), kill, ARCH[machine], 1234) == ALLOW  # kills program groups
    for name, numbers in confine.ZYGOTE_SYSCALLS.items():
        nr = numbers[column]
        assert nr is not None, name
        assert run_filter(confine.zygote(machine), nr, ARCH[machine]) == ALLOW, name
        assert run_filter(confine.on_zygote(PID, machine), nr, ARCH[machine]) == EPERM, name
