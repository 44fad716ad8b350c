"""Children that must not outlive their parent, started without a ``preexec_fn`` (``child_env``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CHILD = (
    "import os, sys, time\n"
    "from next_common.process import PARENT_PID_ENV, die_with_named_parent\n"
    "die_with_named_parent()\n"
    "print(os.getpid(), PARENT_PID_ENV in os.environ, flush=True)\n"
    "time.sleep(60)\n"
)
# The parent starts the child with child_env (so subprocess may vfork), reports its pid, and waits.
PARENT = (
    "import subprocess, sys, os, time\n"
    "from next_common.process import child_env\n"
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], env=child_env(dict(os.environ)),\n"
    "                         stdout=subprocess.PIPE, text=True)\n"
    "print(child.stdout.readline().strip(), flush=True)\n"
    "time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_started_with_child_env_dies_with_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid_text, inherited = parent.stdout.readline().split()
        child = int(pid_text)
        assert inherited == "False"  # the variable is for this child only, not for its own children
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait()


def test_a_child_whose_parent_is_already_gone_goes_at_once() -> None:
    # The named parent is not this child's parent: as if it had died before prctl took effect.
    env = dict(os.environ, NEXT_PARENT_PID="1")
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, timeout=30)
    assert proc.returncode == -signal.SIGTERM
