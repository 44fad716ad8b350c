"""Isolation of the jail: nothing leaks in, nothing gets out, nothing survives a run."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from next_tracer.engine import TracerEngine
from nextapi.tracer.types import Limits, Verdict


async def check(engine: TracerEngine, program: str, test: str = "assert probe()") -> None:
    result = await engine.run_tests(program, [test], Limits(timeout_s=5))
    assert result.verdict is Verdict.PASSED, result.tests[0].message


async def test_empty_environment_hides_server_secrets(engine: TracerEngine) -> None:
    os.environ["NEXT_TEST_SECRET"] = "hunter2"
    try:
        await check(
            engine,
            "import os\ndef probe():\n    return 'NEXT_TEST_SECRET' not in os.environ and "
            "set(os.environ) <= {'MALLOC_ARENA_MAX', 'LANG'}\n",
        )
    finally:
        del os.environ["NEXT_TEST_SECRET"]


async def test_unprivileged_uid_and_no_proc(engine: TracerEngine) -> None:
    await check(
        engine, "import os\ndef probe():\n    return os.getuid() == 65534 and not os.path.exists('/proc/self')\n"
    )


async def test_filesystem_is_read_only_except_scratch(engine: TracerEngine) -> None:
    program = (
        "import os\ndef probe():\n"
        # the shared API modules (verdicts, plain values) are bound read-only beside the runtime
        "    for path in ('/usr/evil', '/evil', '/next/runtime/evil.py', '/next/nextapi/tracer/verdicts.py'):\n"
        "        try:\n            open(path, 'w').write('x')\n            return False\n"
        "        except OSError:\n            pass\n"
        "    open('scratch.txt', 'w').write('ok')\n"
        "    return sorted(os.listdir('/')) == ['lib', 'lib64', 'next', 'tmp', 'usr'] or 'root' not in os.listdir('/')\n"
    )
    await check(engine, program)


async def test_no_network_even_to_loopback(engine: TracerEngine) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        program = (
            "import socket\ndef probe(port):\n    try:\n"
            "        socket.create_connection(('127.0.0.1', port), timeout=1)\n        return False\n"
            "    except OSError:\n        return True\n"
        )
        await check(engine, program, "assert probe(%d)" % port)
    finally:
        server.close()


@pytest.mark.parametrize("family", [16, 17, 38, 40])  # netlink, packet, alg, vsock
async def test_denied_socket_families(engine: TracerEngine, family: int) -> None:
    program = (
        "import socket, errno\ndef probe(family):\n    try:\n        socket.socket(family, socket.SOCK_RAW)\n"
        "        return False\n    except OSError as e:\n        return e.errno in (errno.EPERM, errno.EAFNOSUPPORT)\n"
    )
    await check(engine, program, "assert probe(%d)" % family)


async def test_namespace_and_kernel_attack_surface_denied(engine: TracerEngine) -> None:
    program = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "def probe():\n"
        "    results = [libc.unshare(0x10000000), libc.unshare(0x40000000), libc.ptrace(0, 0, 0, 0),\n"
        "               libc.syscall(250, 0, 0, 0, 0), libc.syscall(298, 0, 0, 0, 0, 0), libc.syscall(425, 1, 0),\n"
        "               libc.syscall(321, 0, 0, 0), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)]\n"
        "    return all(r == -1 for r in results)\n"  # unshare x2, ptrace, keyctl, perf_event_open, io_uring, bpf, mount
    )
    await check(engine, program)


async def test_fork_bomb_is_contained(engine: TracerEngine) -> None:
    program = (
        "import os, time\ndef probe():\n    n = 0\n    try:\n        for _ in range(1000):\n"
        "            if os.fork() == 0:\n                time.sleep(60)\n                os._exit(0)\n            n += 1\n"
        "    except OSError:\n        return n < 64\n    return False\n"
    )
    await check(engine, program)


async def test_nothing_one_test_leaves_reaches_the_next(engine: TracerEngine) -> None:
    program = (
        "import os, time\n"
        "def plant():\n    open('planted', 'w').write('x')\n    os.makedirs('locked/inner')\n    os.chmod('locked', 0)\n"
        "    if os.fork() == 0:\n        try:\n            os.setsid()\n        except OSError:\n            pass\n"
        "        while True:\n            open('daemon', 'w').write('x')\n"
        "            time.sleep(0.01)\n    return True\n"
        "def clean():\n    time.sleep(0.1)\n    return os.listdir('.') == []\n"
    )
    result = await engine.run_tests(program, ["assert plant()", "assert clean()"], Limits(timeout_s=5))
    assert [t.verdict for t in result.tests] == [Verdict.PASSED, Verdict.PASSED], result.tests
    # and nothing carries over to the next run either
    result = await engine.run_tests(program, ["assert clean()"], Limits(timeout_s=5))
    assert result.verdict is Verdict.PASSED


async def test_an_empty_work_directory_that_was_changed_is_made_afresh(engine: TracerEngine) -> None:
    """The full wipe is skipped only for an empty work directory, which is made afresh: its mode,
    its timestamps, or the directory itself, changed or replaced by a program, never reach the next test."""
    program = (
        "import os\n"
        "def lock():\n    os.chmod('.', 0o500)\n    return True\n"
        "def swap():\n    os.chdir('/tmp')\n    os.mkdir('/tmp/other', 0o555)\n    os.rmdir('work')\n"
        "    os.rename('other', 'work')\n    return os.listdir('/tmp') == ['work']\n"
        "def usable():\n    open('f', 'w').write('x')\n    return os.listdir('/tmp') == ['work'] and os.listdir('.') == ['f']\n"
        "def stamp():\n    os.utime('.', (12345, 12345))\n    return True\n"
        "def unstamped():\n    return os.stat('.').st_mtime != 12345 and os.stat('.').st_atime != 12345\n"
    )
    tests = [
        "assert lock()",
        "assert usable()",
        "assert swap()",
        "assert usable()",
        "assert stamp()",
        "assert unstamped()",
    ]
    result = await engine.run_tests(program, tests, Limits(timeout_s=5))
    assert [t.verdict for t in result.tests] == [Verdict.PASSED] * 6, result.tests


async def test_no_process_survives_a_run(engine: TracerEngine) -> None:
    # setsid is denied to program processes: the sleeper tries, and stays in the killed group.
    program = (
        "import os, time\ndef probe():\n    if os.fork() == 0:\n        try:\n            os.setsid()\n"
        "        except OSError:\n            pass\n        time.sleep(300)\n    return True\n"
    )
    await check(engine, program)
    # Namespace teardown is asynchronous in the kernel: allow it a moment to finish.
    for _ in range(50):
        leftovers = _jailed_processes()
        if not leftovers:
            break
        await asyncio.sleep(0.1)
    assert leftovers == []


def _jailed_processes() -> list[str]:
    """Processes of the jail user other than idle pre-warmed jail inits."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/status" % pid) as fh:
                status = fh.read()
        except OSError:
            continue
        if "\nUid:\t65534" in status and "\nState:\tZ" not in status:  # zombies are already dead
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    if fh.read().endswith(b"--serve\0"):
                        continue  # the init of an idle pre-warmed jail: it never runs job code
            except OSError:
                continue
            found.append(pid)
    return found


async def test_file_size_limit(engine: TracerEngine) -> None:
    program = (
        "def probe():\n    try:\n        with open('big', 'wb') as f:\n            f.write(b'x' * (200 << 20))\n"
        "        return False\n    except OSError:\n        return True\n"
    )
    await check(engine, program)


async def test_open_files_limit(engine: TracerEngine) -> None:
    program = (
        "def probe():\n    files = []\n    try:\n        for i in range(1000):\n"
        "            files.append(open('f%d' % i, 'w'))\n    except OSError as e:\n        return e.errno == 24 and len(files) < 100\n"
        "    return False\n"
    )
    await check(engine, program)


async def test_cpu_time_limit_backstop(engine: TracerEngine) -> None:
    # The kernel's CPU limit ends a busy loop even if the harness's wall clock were not watching.
    program = "import resource\ndef probe():\n    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n    return 0 < hard <= 10\n"
    await check(engine, program)


async def test_only_the_interpreter_is_in_the_jail(engine: TracerEngine) -> None:
    program = (
        "import os, subprocess\ndef probe():\n"
        "    assert os.listdir('/usr/bin') == [os.path.basename(os.path.realpath('/usr/bin/' + os.listdir('/usr/bin')[0]))]\n"
        "    for path in ('/bin/sh', '/usr/bin/gcc', '/usr/bin/env', '/etc/passwd', '/root'):\n"
        "        assert not os.path.exists(path), path\n"
        "    try:\n        subprocess.run(['sh', '-c', 'true'])\n        return False\n"
        "    except OSError:\n        return True\n"
    )
    await check(engine, program)
