"""Sandbox harness: the first process inside the jail (PID 1 under nsjail).

Trust split. This process never runs program code: it forks a *program child* that
executes the untrusted program and answers call requests ("call f with these plain
arguments"), and it runs the test code itself, with every program-defined callable
replaced by a proxy that forwards the call to the child. So the child only ever sees
arguments, never the tests' expected values, and every value that comes back is
decoded into fresh builtin objects before a test compares it. The verdict is this
process's own observation of the test code running to completion, written to the
jail's stdout, which no child can reach (children get their own pipes for output).

Standard library only.
"""

from __future__ import annotations

import builtins
import collections
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
import traceback
from typing import Any

if __package__:  # imported as next_tracer.runtime.harness (tests, type checking)
    from next_tracer.runtime import plain
    from next_tracer.runtime.tracing import CUSTOM_REPRS, ReprLimits, Tracer, make_tracer
else:  # run as a script inside the jail, where the runtime directory is all there is
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from runtime import plain  # type: ignore[import-not-found, no-redef]
    from runtime.tracing import (  # type: ignore[import-not-found, no-redef]
        CUSTOM_REPRS,
        ReprLimits,
        Tracer,
        make_tracer,
    )

SCRATCH = "/tmp"  # the jail's tmpfs; a private temporary directory when running unsandboxed
WORKDIR = SCRATCH + "/work"
JAILED = False  # True inside a jail's pid namespace, where kill(-1) reaches only the jail
MAX_MESSAGE = 256 * 1024 * 1024
MESSAGE_CHARS = 500


class ChildFailure(BaseException):
    """The program child stopped answering: ends the current test with ``status``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ProgramError(Exception):
    """Stand-in raised in the test for an exception the program raised."""


def _exception_class(name: str) -> type[BaseException]:
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls
    return type(name, (ProgramError,), {})


def _describe(exc: BaseException) -> str:
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return text[:MESSAGE_CHARS]


def _send(fd: int, obj: Any) -> None:
    _write_all(fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --------------------------------------------------------------------------- child side
def _child(job: dict[str, Any], program: Any, cmd_fd: int, res_fd: int, out_fd: int, trace: bool) -> None:
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    r, w = os.pipe()
    os.close(w)
    os.dup2(r, 0)
    keep = {0, 1, 2, cmd_fd, res_fd}
    for fd in range(3, 1024):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    limits = job["limits"]
    cpu = int(limits["timeout_s"] * max(1, len(job["tests"]))) + 2
    for res, value in (
        (resource.RLIMIT_AS, limits["memory_bytes"]),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, limits["file_bytes"]),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    try:
        os.chdir(WORKDIR)
    except OSError:
        pass
    tracer: Tracer | None = None
    trace_cfg = job.get("trace")
    if trace and trace_cfg:
        lim = ReprLimits(trace_cfg["max_value_chars"], trace_cfg["max_items"])
        tracer = make_tracer(
            [program],
            {"<program>": "program"},
            {program},
            lambda events: _send(res_fd, {"events": events}),
            lim,
            max_steps=trace_cfg["max_steps"],
            backend=trace_cfg.get("backend", "auto"),
        )
    ns: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(program, ns)
    except MemoryError:
        _send(res_fd, {"memory": True})
        return
    except BaseException as exc:
        _send(res_fd, {"program_error": _describe(exc)})
        return
    _send(res_fd, {"ready": _listing(ns)})
    reader = os.fdopen(cmd_fd, "rb", buffering=0)
    pending = b""
    while True:
        while b"\n" not in pending:
            chunk = reader.read(65536)
            if not chunk:
                return
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        cmd = json.loads(line)
        if "batch" in cmd:
            _serve_batch(cmd, ns, res_fd)
        else:
            _serve_call(cmd, ns, res_fd, tracer)


def _listing(ns: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in ns.items():
        if name.startswith("__"):
            continue
        t = type(value)
        if t.__name__ == "module":
            out[name] = {"module": value.__name__}
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
    if isinstance(exc, SystemExit):
        return {"exit": repr(exc.code)[:MESSAGE_CHARS]}
    return {"raise": [type(exc).__name__, str(exc)[:MESSAGE_CHARS]]}


def _serve_batch(cmd: dict[str, Any], ns: dict[str, Any], res_fd: int) -> None:
    """Call the entry point on each input in turn, writing one reply per input as it finishes."""
    fn = ns.get(cmd["batch"])
    for raw in cmd["inputs"]:
        try:
            if fn is None or not callable(fn):
                raise NameError("the program defines no function %r" % cmd["batch"])
            result = fn(*[plain.decode(a) for a in raw])
            line = b"V" + json.dumps(plain.encode(result), separators=(",", ":")).encode() + b"\n"
            _write_all(res_fd, line)
        except BaseException as exc:
            _send(res_fd, _failure_reply(exc))


def _serve_call(cmd: dict[str, Any], ns: dict[str, Any], res_fd: int, tracer: Tracer | None) -> None:
    try:
        args = [_resolve(a, ns) for a in cmd["args"]]
        kwargs = {k: _resolve(v, ns) for k, v in cmd["kwargs"].items()}
        fn = ns[cmd["call"]]
    except BaseException as exc:
        _send(res_fd, {"raise": ["TypeError", "bad call: %s" % _describe(exc)]})
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
        _send(res_fd, reply)
    except MemoryError:
        _send(res_fd, {"memory": True})


def _resolve(arg: Any, ns: dict[str, Any]) -> Any:
    if isinstance(arg, dict) and "$ref" in arg and len(arg) == 1:
        return ns[arg["$ref"]]
    return plain.decode(arg)


def _encode_or_none(value: Any) -> Any:
    try:
        return plain.encode(value)
    except plain.NotPlainError:
        return None


# --------------------------------------------------------------------------- parent side
class ProgramChild:
    """A forked child running the program; the parent talks to it over two pipes."""

    def __init__(self, job: dict[str, Any], program: Any, trace: bool = False) -> None:
        self.limits = job["limits"]
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(cmd_w)
                os.close(res_r)
                os.close(out_r)
                _child(job, program, cmd_r, res_w, out_w, trace)
            except BaseException:
                code = 70
            os._exit(code)
        for fd in (cmd_r, res_w, out_w):
            os.close(fd)
        self.pid = pid
        self.cmd_fd = cmd_w
        self.res_fd = res_r
        self.out_fd = out_r
        self.lines: collections.deque[bytes] = collections.deque()
        self.partial: list[bytes] = []
        self.partial_len = 0
        self.output = bytearray()
        self.output_total = 0
        self.alive = True
        self._status = 0
        self.events: list[dict[str, Any]] = []
        self.step = 0

    def receive(self, deadline: float) -> dict[str, Any]:
        """Next message from the child; raises ChildFailure on timeout, limits or death."""
        msg: dict[str, Any] = json.loads(self.receive_raw(deadline))
        return msg

    def receive_raw(self, deadline: float) -> bytes:
        """Next reply line from the child, unparsed (trace events are collected on the way)."""
        while True:
            while self.lines:
                line = self.lines.popleft()
                if line.startswith(b'{"events"'):
                    self.events.extend(json.loads(line)["events"])
                    continue
                return line
            if self.partial_len > MAX_MESSAGE:
                self.kill()
                raise ChildFailure("OUTPUT_LIMIT", "the program returned a value larger than the result limit")
            _flush_emitted()  # results buffered while the child's replies kept coming
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise ChildFailure("TIMEOUT", "timed out after %.3gs" % self.limits["timeout_s"])
            ready, _, _ = select.select([self.res_fd, self.out_fd], [], [], remaining)
            if self.out_fd in ready:
                chunk = os.read(self.out_fd, 65536)
                if chunk:
                    self.output_total += len(chunk)
                    if len(self.output) < 4096:
                        self.output += chunk[: 4096 - len(self.output)]
                    if self.output_total > self.limits["output_bytes"]:
                        self.kill()
                        raise ChildFailure(
                            "OUTPUT_LIMIT", "wrote more than %d bytes of output" % self.limits["output_bytes"]
                        )
            if self.res_fd in ready:
                chunk = os.read(self.res_fd, 1 << 20)
                if not chunk:
                    raise self._death()
                self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        # Joins a long message once, when its newline arrives (no quadratic re-scanning).
        if b"\n" not in chunk:
            self.partial.append(chunk)
            self.partial_len += len(chunk)
            return
        parts = chunk.split(b"\n")
        self.lines.append(b"".join(self.partial) + parts[0])
        self.lines.extend(parts[1:-1])
        self.partial = [parts[-1]] if parts[-1] else []
        self.partial_len = len(parts[-1])

    def send(self, obj: dict[str, Any]) -> None:
        try:
            _send(self.cmd_fd, obj)
        except OSError:
            raise self._death() from None

    def _death(self) -> ChildFailure:
        status = self.reap()
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return ChildFailure("TIMEOUT", "CPU time limit exceeded")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return ChildFailure("CRASHED", "killed by signal %s" % name)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        return ChildFailure("ERROR", "the program ended its process (exit status %d) before the test finished" % code)

    def kill(self) -> None:
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reap()

    def reap(self) -> int:
        if not self.alive:
            return self._status
        _, status = os.waitpid(self.pid, 0)
        self.alive = False
        self._status = status
        for fd in (self.cmd_fd, self.res_fd, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        return status


class Proxy:
    """Stands in for a program callable inside the test namespace."""

    def __init__(self, runner: TestRunner, name: str) -> None:
        self._runner = runner
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._runner.call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return "<program function %s>" % self._name


CUSTOM_REPRS[Proxy] = lambda proxy: "<function %s>" % proxy._name


class Opaque:
    def __init__(self, name: str, type_name: str) -> None:
        self._what = "%s (a %s object)" % (name, type_name)

    def __getattr__(self, item: str) -> Any:
        raise ProgramError("the test used %s, which is not plain data and stays inside the program" % self._what)


class TestRunner:
    def __init__(self, job: dict[str, Any], program: Any, parent_tracer: Tracer | None) -> None:
        self.job = job
        self.program = program
        self.child: ProgramChild | None = None
        self.deadline = 0.0
        self.want_args = True
        self.tracer = parent_tracer

    # child lifecycle
    def spawn(self) -> dict[str, Any]:
        self.child = ProgramChild(self.job, self.program, self.tracer is not None)
        msg = self.child.receive(time.monotonic() + self.job["limits"]["timeout_s"])
        if "program_error" in msg:
            raise ChildFailure("ERROR", msg["program_error"])
        if "memory" in msg:
            raise ChildFailure("MEMORY_LIMIT", "MemoryError while loading the program")
        listing: dict[str, Any] = msg["ready"]
        return listing

    def close(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child = None
        _clean_jail()

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        child = self.child
        if child is None:
            raise ChildFailure("SANDBOX_ERROR", "no program process")
        enc_args = [self._encode_arg(a) for a in args]
        enc_kwargs = {k: self._encode_arg(v) for k, v in kwargs.items()}
        step = self.tracer.step if self.tracer is not None else 0
        if self.tracer is not None:
            self.tracer.flush()
        child.send({"call": name, "args": enc_args, "kwargs": enc_kwargs, "want_args": self.want_args, "step": step})
        try:
            reply = child.receive(self.deadline)
        except ChildFailure:
            if self.tracer is not None and child.events:
                # The child died mid-call: continue numbering after the last step it reported.
                self.tracer.step = max(self.tracer.step, max(e["step"] for e in child.events) + 1)
            raise
        if self.tracer is not None and "step" in reply:
            self.tracer.step = reply["step"]
        if "ok" in reply:
            for original, after in zip(args, reply.get("args_after", []), strict=False):
                _apply_mutation(original, after)
            return plain.decode(reply["ok"])
        if "memory" in reply:
            child.kill()
            raise ChildFailure("MEMORY_LIMIT", "memory limit exceeded (MemoryError)")
        if "unplain" in reply:
            raise ProgramError(
                "%s returned a %s object; only plain builtin data can be checked" % (name, reply["unplain"])
            )
        if "exit" in reply:
            raise ChildFailure("ERROR", "the program called exit(%s) before the test finished" % reply["exit"])
        exc_type, message = reply["raise"]
        raise _exception_class(exc_type)(message)

    def _encode_arg(self, value: Any) -> Any:
        if type(value) is Proxy:
            return {"$ref": value._name}
        try:
            return plain.encode(value)
        except plain.NotPlainError as exc:
            raise ProgramError("cannot pass a %s object into the program" % exc.type_name) from None

    def namespace(self, listing: dict[str, Any]) -> dict[str, Any]:
        ns: dict[str, Any] = {"__name__": "__test__", "__builtins__": builtins}
        may_shadow = set(self.job.get("entry_points") or ())
        for name, info in listing.items():
            if hasattr(builtins, name) and name not in may_shadow:
                # A program's own `abs` or `sorted` stays inside the program: tests use the real
                # builtins, so a fix cannot redefine what a test relies on to check it.
                continue
            if "callable" in info:
                ns[name] = Proxy(self, name)
            elif "module" in info:
                try:
                    ns[name] = __import__(info["module"])
                except ImportError:
                    ns[name] = Opaque(name, "module")
            elif "value" in info:
                ns[name] = plain.decode(info["value"])
            else:
                ns[name] = Opaque(name, info["opaque"])
        return ns


def _apply_mutation(original: Any, after: Any) -> None:
    if after is None:
        return
    t = type(original)
    if t is list or t is dict or t is set:
        new = plain.decode(after)
        if type(new) is t and new != original:
            if t is list:
                original[:] = new
            else:
                original.clear()
                original.update(new)


def _clean_jail() -> None:
    """Kill every other process in the jail (but PID 1) and wipe the scratch space."""
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
    _wipe(SCRATCH)
    try:
        os.makedirs(WORKDIR, exist_ok=True)
    except OSError:
        pass


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


# --------------------------------------------------------------------------- test kinds
def _result(status: str, message: str, started: float, **extra: Any) -> dict[str, Any]:
    out = {"status": status, "message": message[:MESSAGE_CHARS], "duration_s": round(time.monotonic() - started, 6)}
    out.update(extra)
    return out


def run_statement_test(job: dict[str, Any], program: Any, source: str, trace: bool) -> dict[str, Any]:
    started = time.monotonic()
    try:
        code = compile(source, "<test>", "exec")
    except SyntaxError as exc:
        return _result("ERROR", "SyntaxError in test: %s" % exc, started)
    tracer = None
    if trace:
        cfg = job["trace"]
        tracer = make_tracer(
            [code],
            {"<test>": "test"},
            set(),
            lambda ev: _emit({"events": ev}),
            ReprLimits(cfg["max_value_chars"], cfg["max_items"]),
            max_steps=cfg["max_steps"],
            ignore_exceptions=(ChildFailure,),
            backend=cfg.get("backend", "auto"),
        )
    runner = TestRunner(job, program, tracer)
    runner.deadline = time.monotonic() + job["limits"]["timeout_s"]
    child = None
    try:
        listing = runner.spawn()
        child = runner.child
        ns = runner.namespace(listing)
        if tracer is not None:
            try:
                tracer.start(set(ns))
            except Exception:  # a tracer that cannot start costs the trace, never the verdict
                tracer = runner.tracer = None
        # The test code itself runs here: a loop in it (not in the program) is stopped by an alarm.
        remaining = max(0.001, runner.deadline - time.monotonic())
        signal.signal(signal.SIGALRM, _test_alarm)
        signal.setitimer(signal.ITIMER_REAL, remaining + 0.05)
        try:
            exec(code, ns)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if tracer is not None:
                tracer.stop()
        return _result("PASSED", "", started)
    except ChildFailure as exc:
        return _result(exc.status, exc.message, started)
    except AssertionError as exc:
        return _result("FAILED", "AssertionError: %s" % exc if str(exc) else "AssertionError", started)
    except BaseException as exc:
        return _result("ERROR", _describe(exc), started)
    finally:
        if child is not None:
            _forward_child_events(child, tracer)
            out = bytes(child.output)
        runner.close()
        if child is not None and out:
            _emit({"output": out.decode("utf-8", "replace")})


def _test_alarm(signum: int, frame: Any) -> None:
    raise ChildFailure("TIMEOUT", "the test itself did not finish within its time limit")


def _forward_child_events(child: ProgramChild, tracer: Tracer | None) -> None:
    if child.events:
        _emit({"events": child.events})
        child.events = []


def run_call_tests(job: dict[str, Any], program: Any, tests: list[dict[str, Any]]) -> None:
    """EvalPlus-style inputs: one child runs them in order, each with its own time limit.

    The inputs go to the child in one message and it answers input by input; a timeout,
    crash or exit ends that input only: a fresh child continues with the next one.
    """
    entry = job["entry_point"]
    timeout = job["limits"]["timeout_s"]
    index = 0
    while index < len(tests):
        runner = TestRunner(job, program, None)
        started = time.monotonic()
        loaded = False
        try:
            runner.deadline = started + timeout
            runner.spawn()
            loaded = True
            child = runner.child
            assert child is not None
            child.send({"batch": entry, "inputs": [t["args"] for t in tests[index:]]})
            while index < len(tests):
                raw = child.receive_raw(started + timeout)
                if raw.startswith(b"V"):
                    _emit_returned(index, raw[1:], started)
                else:
                    _emit_call_result(index, json.loads(raw), started)
                index += 1
                started = time.monotonic()
        except ChildFailure as exc:
            # A program that cannot even load fails every remaining input the same way.
            last = len(tests) if not loaded else index + 1
            for failed in range(index, last):
                _emit({"test": failed, **_result(exc.status, exc.message, started)}, flush=False)
            index = last
        finally:
            runner.close()


def _emit_returned(index: int, value: bytes, started: float) -> None:
    """Pass a returned value on without parsing it: the server decodes and checks it.

    The value goes on its own line right after a header that announces it, so whatever
    bytes the program process wrote can only ever be read as that one value (it is a single
    line: replies are split on newlines).
    """
    head = '{"test":%d,"status":"RETURNED","message":"","duration_s":%.6f,"value_follows":true}\n' % (
        index,
        time.monotonic() - started,
    )
    _OUT.write(head.encode() + b"V" + value + b"\n")


def _emit_call_result(index: int, reply: dict[str, Any], started: float) -> None:
    if "memory" in reply:
        _emit({"test": index, **_result("MEMORY_LIMIT", "memory limit exceeded (MemoryError)", started)})
    elif "unplain" in reply:
        message = "returned a %s object; only plain builtin data can be checked" % reply["unplain"]
        _emit({"test": index, **_result("FAILED", message, started)})
    elif "exit" in reply:
        message = "the program called exit(%s) before the test finished" % reply["exit"]
        _emit({"test": index, **_result("ERROR", message, started)})
    else:
        exc_type, message = reply["raise"]
        _emit({"test": index, **_result("ERROR", "%s: %s" % (exc_type, message) if message else exc_type, started)})


_OUT: Any = sys.stdout.buffer


def _emit(obj: dict[str, Any], flush: bool = True) -> None:
    _OUT.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())
    if flush:
        _OUT.flush()


def _flush_emitted() -> None:
    _OUT.flush()


def run_job(job: dict[str, Any]) -> None:
    tests = job["tests"]
    if "inputs_json" in job:
        tests = [{"args": args} for args in json.loads(job["inputs_json"])]
    try:
        program = compile(job["program"], "<program>", "exec")
    except SyntaxError as exc:
        for index in range(len(tests)):
            _emit({"test": index, "status": "ERROR", "message": "SyntaxError: %s" % exc, "duration_s": 0.0})
        _emit({"done": True})
        return
    if job["kind"] == "calls":
        run_call_tests(job, program, tests)
    else:
        for index, test in enumerate(tests):
            trace = bool(job.get("trace")) and index == job.get("trace_index", 0)
            _emit({"test": index, **run_statement_test(job, program, test["source"], trace)})
    _emit({"done": True})


def _die_with_parent() -> None:
    # When the server kills nsjail (deadline, shutdown), the whole jail must go too.
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _configure(job: dict[str, Any]) -> None:
    global SCRATCH, WORKDIR, JAILED
    JAILED = os.getpid() == 1 or bool(job.get("jailed"))
    if job.get("scratch"):
        SCRATCH = job["scratch"]
        WORKDIR = SCRATCH + "/work"


def main() -> None:
    """One job per process: read it from stdin, report on stdout."""
    if os.getpid() == 1:
        _die_with_parent()
    job = json.loads(sys.stdin.buffer.read())
    _configure(job)
    _clean_jail()
    run_job(job)


def serve() -> None:
    """Pre-warmed mode: PID 1 of a long-lived jail runs jobs one at a time.

    This process only reads jobs and forks; each job runs in a fresh forked *job process*
    (which runs the tests and forks the program children), so nothing a job does can change
    the state the next job starts from. After each job every other process in the jail is
    killed and the scratch space wiped. Control lines are prefixed ``Z``; every line of the
    job process is relayed with a ``J`` prefix, so a job cannot forge the end of a job.
    """
    global _OUT
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer
    _configure({"jailed": True})
    _clean_jail()
    out.write(b'Z{"ready":true}\n')
    out.flush()
    while True:
        line = stdin.readline()
        if not line:
            return
        job = json.loads(line)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(read_fd)
                os.dup2(write_fd, 1)
                os.close(write_fd)
                r, w = os.pipe()
                os.close(w)
                os.dup2(r, 0)
                _OUT = os.fdopen(1, "wb")
                run_job(job)
            except BaseException:
                try:
                    _emit({"harness_error": traceback.format_exc()[-2000:]})
                except BaseException:
                    pass
                code = 70
            os._exit(code)
        os.close(write_fd)
        partial: list[bytes] = []
        while True:
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            if b"\n" not in chunk:
                partial.append(chunk)
                continue
            lines = chunk.split(b"\n")
            lines[0] = b"".join(partial) + lines[0]
            tail = lines.pop()  # what follows the last newline
            partial = [tail] if tail else []
            out.write(b"".join(b"J" + item + b"\n" for item in lines))
            out.flush()
        os.close(read_fd)
        if partial:
            out.write(b"J" + b"".join(partial) + b"\n")
        _clean_jail()
        out.write(b'Z{"idle":true}\n')
        out.flush()


if __name__ == "__main__":
    try:
        serve() if sys.argv[1:] == ["--serve"] else main()
    except BaseException:
        _emit({"harness_error": traceback.format_exc()[-2000:]})
        raise
