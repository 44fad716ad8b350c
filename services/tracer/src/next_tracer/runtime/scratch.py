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
    if _remake_empty_workdir():
        return
    _wipe(SCRATCH)
    try:
        os.makedirs(WORKDIR, exist_ok=True)
    except OSError:
        pass


def _remake_empty_workdir() -> bool:
    """The usual case, a program that wrote no file: the scratch holds only the work directory,
    and it is empty. Making that directory afresh resets whatever a program could change of it
    (mode, timestamps, flags) in two system calls; a full wipe cost a measurable part of a short
    job, twice per job. Anything else (a file, a link, a directory it cannot list) gets the full wipe.
    """
    try:
        if os.listdir(SCRATCH) != [os.path.basename(WORKDIR)] or os.listdir(WORKDIR):
            return False
        os.rmdir(WORKDIR)  # refuses anything but an empty directory (a link or a file: NotADirectoryError)
        os.mkdir(WORKDIR)
    except OSError:
        return False
    return True


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
