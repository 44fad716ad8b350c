"""The zygote outlives a fork that fails: the job side gets an error, the jail keeps serving."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from next_tracer.runtime import zygote


def test_a_failed_fork_is_reported_and_the_zygote_keeps_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process budget of the jail user is shared host-wide (RLIMIT_NPROC), so fork() can fail
    # with EAGAIN while a fork bomb's orphans are being reaped; the zygote must not die of it.
    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(zygote.os, "fork", no_fork)
    monkeypatch.setattr(zygote, "SPAWN_RETRY_S", 0.05)
    server_sock, client_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = zygote.Zygote(server_sock, lambda *fds: None, watch=-1)
    pipes = [os.pipe() for _ in range(3)]
    fds = [pipes[0][0], pipes[1][1], pipes[2][1]]
    assert server._spawn(fds) == -1
    for fd in fds:  # handed-over ends are closed, not leaked
        with pytest.raises(OSError):
            os.fstat(fd)
    for fd in (pipes[0][1], pipes[1][0], pipes[2][0]):
        os.close(fd)
    server_sock.send(b"-1")  # what serve() answers for it; the job side records SANDBOX_ERROR
    with pytest.raises(OSError, match="could not start a program process"):
        zygote.ZygoteClient(client_sock).spawn(0, 1, 2)
    server_sock.close()
    client_sock.close()
