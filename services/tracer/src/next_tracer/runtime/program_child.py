"""The program process: runs the untrusted program and answers call requests.

It is forked by the zygote, never by a process that held a job: it receives the program, its
limits and then arguments only, never a test or an expected value, and answers with plain data.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import math
import os
import resource
from typing import Any

from nextapi.tracer import plain

from . import confine, scratch
from .tracing import ReprLimits, Tracer, make_tracer
from .wire import MESSAGE_CHARS, describe, send, write_parts


def run_program_child(cmd_fd: int, res_fd: int, out_fd: int) -> None:
    """Entry point of a program process, forked by the zygote with three pipe ends."""
    # Out of the way of 0-5 first, whatever numbers the pipe ends arrived with; then 3 and 4 only.
    cmd_fd, res_fd, out_fd = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_fd, res_fd, out_fd))
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.dup2(os.pipe()[0], 0)  # an empty stdin (its write end is closed below)
    cmd_fd, res_fd = os.dup2(cmd_fd, 3), os.dup2(res_fd, 4)
    os.closerange(5, 1 << 16)  # one close_range(2) call
    reader = os.fdopen(cmd_fd, "rb", buffering=0)
    pending = bytearray()
    setup = _next_command(reader, pending)
    if setup is None:
        return
    mode = _limit_and_confine(setup)
    if mode != "seccomp" and confine.zygote_confined():
        send(res_fd, {"sandbox_error": "the program process could not confine itself: %s" % mode})
        return
    serve_program(setup, reader, pending, res_fd)


def _limit_and_confine(setup: dict[str, Any]) -> str:
    """Its limits, its own session and its seccomp filter; returns the filter's mode."""
    limits = setup["limits"]
    # Soft CPU limit first (SIGXCPU, reported as TIMEOUT); the supervisor polls the per-call budget.
    cpu = math.ceil(limits["timeout_s"] * max(1, setup.get("calls", 1))) + 2
    for res, soft, hard in (
        (resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"]),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, limits["file_bytes"], limits["file_bytes"]),
        (resource.RLIMIT_NOFILE, 64, 64),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            pass
    # Its own process group, which it cannot leave: the supervisor kills the whole group.
    try:
        os.setsid()
    except OSError:
        pass
    mode = confine.confine_program_process()
    try:
        os.chdir(setup.get("workdir") or scratch.WORKDIR)
    except OSError:
        pass
    return mode


def serve_program(setup: dict[str, Any], reader: Any, pending: bytearray, res_fd: int) -> None:
    """Load the program and answer calls until the command pipe closes (also the zygote's warm-up)."""
    try:
        program = compile(setup["program"], "<program>", "exec")
    except BaseException as exc:
        send(res_fd, {"program_error": describe(exc), "compile": True})
        return
    del setup["program"]
    tracer: Tracer | None = None
    trace_cfg = setup.get("trace")
    if trace_cfg:
        lim = ReprLimits(trace_cfg["max_value_chars"], trace_cfg["max_items"])
        tracer = make_tracer(
            [program],
            {"<program>": "program"},
            {program},
            lambda events: send(res_fd, {"events": events}),
            lim,
            max_steps=trace_cfg["max_steps"],
            backend=trace_cfg.get("backend", "auto"),
        )
    ns: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(program, ns)
    except MemoryError:
        send(res_fd, {"memory": True})
        return
    except BaseException as exc:
        send(res_fd, {"program_error": describe(exc)})
        return
    send(res_fd, {"ready": _listing(ns, setup.get("exports"))})
    while (cmd := _next_command(reader, pending)) is not None:
        if "batch" in cmd:
            _serve_batch(cmd, ns, res_fd)
        else:
            _serve_call(cmd, ns, res_fd, tracer)


MAX_HIDDEN_NAMES = 1000


def _next_command(reader: Any, pending: bytearray) -> dict[str, Any] | None:
    while b"\n" not in pending:
        chunk = reader.read(65536)
        if not chunk:
            return None
        pending += chunk
    end = pending.index(b"\n")
    cmd: dict[str, Any] = json.loads(bytes(pending[:end]))
    del pending[: end + 1]
    return cmd


def _listing(ns: dict[str, Any], exports: list[str] | None) -> dict[str, Any]:
    """What the tests may use: the names asked for (all when not asked), never modules.

    The other names are listed too, names only, so a test that uses one gets a clear error.
    """
    out: dict[str, Any] = {}
    hidden = 0
    for name, value in ns.items():
        if name.startswith("__"):
            continue
        if exports is not None and name not in exports:
            if hidden < MAX_HIDDEN_NAMES and len(name) <= 100:
                out[name] = {"hidden": True}
                hidden += 1
            continue
        t = type(value)
        if t.__name__ == "module":
            out[name] = {"opaque": "module"}
        elif callable(value):
            out[name] = {"callable": True}
        else:
            try:
                out[name] = {"value": plain.encode(value)}
            except plain.NotPlainError:
                out[name] = {"opaque": t.__name__}
    return out


def _failure_reply(exc: BaseException) -> dict[str, Any]:
    """How a call that did not return plain data is reported to the harness."""
    if isinstance(exc, MemoryError):
        return {"memory": True}
    if isinstance(exc, plain.NotPlainError):
        return {"unplain": exc.type_name}
    try:  # the program's own __str__/__repr__ runs here, in its own process
        if isinstance(exc, SystemExit):
            return {"exit": repr(exc.code)[:MESSAGE_CHARS]}
        return {"raise": [str(type(exc).__name__)[:100], str(exc)[:MESSAGE_CHARS]]}
    except BaseException:
        return {"raise": ["Exception", "(an exception whose message could not be rendered)"]}


def _serve_batch(cmd: dict[str, Any], ns: dict[str, Any], res_fd: int) -> None:
    """Call the entry point on each input in turn, writing one reply per input as it finishes."""
    fn = ns.get(cmd["batch"])
    for raw in cmd["inputs"]:
        try:
            if fn is None or not callable(fn):
                raise NameError("the program defines no function %r" % cmd["batch"])
            result = fn(*[plain.decode(a) for a in raw])
            value = json.dumps(plain.encode(result), separators=(",", ":")).encode()
            write_parts(res_fd, [b"V", value, b"\n"])
        except BaseException as exc:
            send(res_fd, _failure_reply(exc))


def _serve_call(cmd: dict[str, Any], ns: dict[str, Any], res_fd: int, tracer: Tracer | None) -> None:
    try:
        args = [_resolve(a, ns) for a in cmd["args"]]
        kwargs = {k: _resolve(v, ns) for k, v in cmd["kwargs"].items()}
        fn = ns[cmd["call"]]
    except BaseException as exc:
        send(res_fd, {"raise": ["TypeError", "bad call: %s" % describe(exc)]})
        return
    if tracer is not None:
        tracer.step = cmd.get("step", 0)
        try:
            tracer.start(set())
        except Exception:  # a tracer that cannot start costs the trace, never the verdict
            tracer = None
    try:
        try:
            result = fn(*args, **kwargs)
        finally:
            if tracer is not None:
                tracer.stop()
        reply: dict[str, Any] = {"ok": plain.encode(result)}
        if cmd.get("want_args"):
            reply["args_after"] = [_encode_or_none(a) for a in args]
    except BaseException as exc:
        reply = _failure_reply(exc)
    if tracer is not None:
        reply["step"] = tracer.step
    try:
        send(res_fd, reply)
    except MemoryError:
        send(res_fd, {"memory": True})


def _resolve(arg: Any, ns: dict[str, Any]) -> Any:
    if isinstance(arg, dict) and "$ref" in arg and len(arg) == 1:
        return ns[arg["$ref"]]
    return plain.decode(arg)


def _encode_or_none(value: Any) -> Any:
    try:
        return plain.encode(value)
    except plain.NotPlainError:
        return None
