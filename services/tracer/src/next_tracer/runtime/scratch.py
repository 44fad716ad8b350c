"""The jail's scratch space and the clean-up that keeps one test (or job) from seeing another."""

from __future__ import annotations

import os
import shutil
import signal
import time
from typing import Any

SCRATCH = "/tmp"  # the jail's tmpfs; a private temporary directory when running unsandboxed
WORKDIR = SCRATCH + "/work"
JAILED = False  # True inside a jail's pid namespace, where kill(-1) reaches only the jail
_MADE: tuple[int, int, int] | None = None  # (inode, mode, owner) of the work directory as last made


def configure(job: dict[str, Any], jailed: bool | None = None) -> None:
    global SCRATCH, WORKDIR, JAILED
    if jailed is not None:
        JAILED = jailed
    if job.get("scratch"):
        SCRATCH = job["scratch"]
        WORKDIR = SCRATCH + "/work"


def clean_jail() -> None:
    """Kill every other process in the jail (but PID 1, the zygote) and wipe the scratch space.

    Called by the relay between jobs; within a job, each program process's group is killed by
    the zygote and only the scratch space is wiped between tests (``wipe_scratch``).
    """
    if JAILED:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if not JAILED:
                break
            time.sleep(0.0005)
    wipe_scratch()


def wipe_scratch() -> None:
    global _MADE
    if _untouched():
        return
    _wipe(SCRATCH)
    try:
        os.makedirs(WORKDIR, exist_ok=True)
        st = os.lstat(WORKDIR)
        _MADE = (st.st_ino, st.st_mode, st.st_uid)
    except OSError:
        _MADE = None


def _untouched() -> bool:
    """The scratch holds only the empty work directory we made, unchanged: nothing to wipe.

    Most programs write no file, and a full wipe after each test and job was a measurable part
    of a short job. Any change a program can make (a file anywhere, a new or replaced directory,
    other permissions) fails this check and gets the full wipe.
    """
    if _MADE is None:
        return False
    try:
        st = os.lstat(WORKDIR)
        if (st.st_ino, st.st_mode, st.st_uid) != _MADE:
            return False
        return os.listdir(SCRATCH) == [os.path.basename(WORKDIR)] and not os.listdir(WORKDIR)
    except OSError:
        return False


def _wipe(top: str) -> None:
    try:
        entries = os.listdir(top)
    except OSError:
        return
    for name in entries:
        path = os.path.join(top, name)
        if os.path.isdir(path) and not os.path.islink(path):
            for root, dirs, _files in os.walk(path):
                for d in dirs:
                    try:
                        os.chmod(os.path.join(root, d), 0o700)
                    except OSError:
                        pass
            try:
                os.chmod(path, 0o700)
            except OSError:
                pass
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
