"""Execution tracer that runs inside the sandbox and emits structured state events.

Capture only: rendering (the NExT inline format and the others) happens on the server
from the events. Values are rendered with :func:`bounded_repr`, which never calls user
code, so a hostile ``__repr__`` cannot hang or break the trace.

Standard library only (this module runs inside the jail).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
_HIDDEN_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.ModuleType, type, types.MethodType)


class ReprLimits:
    def __init__(self, max_chars: int = 200, max_items: int = 20, max_depth: int = 4) -> None:
        self.max_chars = max_chars
        self.max_items = max_items
        self.max_depth = max_depth


def bounded_repr(value: Any, limits: ReprLimits) -> str:
    """``repr`` for builtin data, bounded in size; user objects are shown from their fields."""
    out = _repr(value, limits, 0, set())
    if len(out) > limits.max_chars:
        out = out[: limits.max_chars - 3] + "..."
    return out


# Exact type -> renderer, for the harness's own stand-in objects (never user classes).
CUSTOM_REPRS: dict[type, Callable[[Any], str]] = {}


def _repr(v: Any, lim: ReprLimits, depth: int, path: set[int]) -> str:
    t = type(v)
    custom = CUSTOM_REPRS.get(t)
    if custom is not None:
        return custom(v)
    if v is None or t is bool or t is float or t is complex:
        return repr(v)
    if t is int:
        if v.bit_length() > 256:
            return "<int with %d digits>" % int(v.bit_length() * 0.30103 + 1)
        return repr(v)
    if t is str or t is bytes:
        if len(v) > lim.max_chars // 2:
            # Half the budget, so the length marker survives the cut of the whole value.
            return repr(v[: lim.max_chars // 2]) + "...(len=%d)" % len(v)
        return repr(v)
    if t in (list, tuple, set, frozenset, dict):
        if id(v) in path:
            return "{...}" if t is dict else "[...]"
        if depth >= lim.max_depth:
            return "[...]" if t is list else "(...)" if t is tuple else "{...}"
        path.add(id(v))
        try:
            return _container(v, t, lim, depth, path)
        finally:
            path.discard(id(v))
    if isinstance(v, BaseException):
        args = v.args if type(v.args) is tuple else ()
        return "%s(%s)" % (t.__name__, ", ".join(_repr(a, lim, depth + 1, path) for a in args[: lim.max_items]))
    if t is types.FunctionType or t is types.BuiltinFunctionType:
        return "<function %s>" % getattr(v, "__name__", "?")
    if t is types.GeneratorType:
        return "<generator %s>" % v.__name__
    if t is types.ModuleType:
        return "<module %s>" % v.__name__
    if t is type:
        return "<class %s>" % v.__name__
    return _instance(v, t, lim, depth, path)


def _container(v: Any, t: type, lim: ReprLimits, depth: int, path: set[int]) -> str:
    items: list[str] = []
    n = len(v)
    source: Any = v.items() if t is dict else v
    if t in (set, frozenset):
        try:
            source = sorted(v)
        except TypeError:
            source = v
    for i, x in enumerate(source):
        if i >= lim.max_items:
            items.append("...(+%d)" % (n - i))
            break
        if t is dict:
            items.append("%s: %s" % (_repr(x[0], lim, depth + 1, path), _repr(x[1], lim, depth + 1, path)))
        else:
            items.append(_repr(x, lim, depth + 1, path))
    body = ", ".join(items)
    if t is list:
        return "[" + body + "]"
    if t is tuple:
        return "(" + body + ("," if n == 1 else "") + ")"
    if t is dict:
        return "{" + body + "}"
    if not items:
        return "set()" if t is set else "frozenset()"
    return ("{%s}" if t is set else "frozenset({%s})") % body


def _instance(v: Any, t: type, lim: ReprLimits, depth: int, path: set[int]) -> str:
    # Read the instance dict without running __getattr__ or properties of user classes.
    try:
        fields = object.__getattribute__(v, "__dict__")
    except Exception:
        fields = None
    name = getattr(t, "__name__", "object")
    if type(fields) is not dict or depth >= lim.max_depth or id(v) in path:
        return "<%s>" % name
    path.add(id(v))
    try:
        parts = []
        for i, (k, x) in enumerate(fields.items()):
            if i >= lim.max_items:
                parts.append("...")
                break
            parts.append("%s=%s" % (k, _repr(x, lim, depth + 1, path)))
        return "%s(%s)" % (name, ", ".join(parts))
    finally:
        path.discard(id(v))


class _FrameState:
    __slots__ = ("frame", "host", "last_line", "pending_exc", "snap", "src")

    def __init__(self, frame: Any, src: str, snap: dict[str, str], host: Any) -> None:
        # Holding the frame keeps its id from being reused while this state is live.
        self.frame = frame
        self.src = src
        self.last_line: int | None = None
        self.snap = snap
        self.pending_exc = False
        self.host = host


class Tracer:
    """``sys.settrace`` tracer over the code compiled from the program and the test.

    Emits events ``{"step", "src", "line", "name", "value", "kind"}``; several events
    share a step when one line changed several variables.
    """

    def __init__(
        self,
        sources: dict[str, str],
        skip_codes: set[Any],
        emit: Callable[[list[dict[str, Any]]], None],
        limits: ReprLimits,
        max_steps: int = 10_000,
        max_line_events: int = 1_000_000,
        flush_every: int = 256,
        ignore_exceptions: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.ignore_exceptions = ignore_exceptions
        self.sources = sources  # code filename -> "program" | "test"
        self.skip_codes = skip_codes
        self.emit = emit
        self.limits = limits
        self.max_steps = max_steps
        self.max_line_events = max_line_events
        self.flush_every = flush_every
        self.step = 0
        self.line_events = 0
        self.frames: dict[int, _FrameState] = {}
        self.seen_exceptions: set[int] = set()
        self.buffer: list[dict[str, Any]] = []
        self.baseline: set[str] = set()
        self.truncated = False

    # -- public -----------------------------------------------------------------
    def start(self, hidden_names: set[str]) -> None:
        self.baseline = hidden_names
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(None)
        self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.emit(self.buffer)
            self.buffer = []

    # -- capture ----------------------------------------------------------------
    def _render_locals(self, frame: Any, module_level: bool) -> dict[str, str]:
        out = {}
        for k, v in frame.f_locals.items():
            if k.startswith(".") or k.startswith("__") or isinstance(v, _HIDDEN_TYPES):
                continue
            if module_level and k in self.baseline:
                continue
            out[k] = bounded_repr(v, self.limits)
        return out

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        src = self.sources.get(code.co_filename)
        if src is None or code in self.skip_codes or self.truncated:
            return None
        key = id(frame)
        known = self.frames.get(key)
        if known is None or known.frame is not frame:
            is_comp = code.co_name in COMPREHENSIONS
            host = frame.f_back if is_comp else None
            module_level = code.co_name == "<module>"
            state = _FrameState(frame, src, self._render_locals(frame, module_level), host)
            self.frames[key] = state
            if not is_comp and not module_level and state.snap:
                self._add_step(src, code.co_firstlineno, [(k, v, "arg") for k, v in state.snap.items()])
        return self._local

    def _line_of(self, frame: Any, state: _FrameState) -> tuple[str, int | None]:
        if state.host is not None and state.host.f_code.co_filename in self.sources:
            return self.sources[state.host.f_code.co_filename], state.host.f_lineno
        return state.src, state.last_line

    def _diff(self, frame: Any, state: _FrameState) -> None:
        cur = self._render_locals(frame, frame.f_code.co_name == "<module>")
        prev = state.snap
        changes = [(k, v, "state") for k, v in cur.items() if prev.get(k) != v]
        state.snap = cur
        if changes:
            src, line = self._line_of(frame, state)
            if line is not None:
                self._add_step(src, line, changes)

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if self.truncated:
            return None
        state = self.frames.get(id(frame))
        if state is None or state.frame is not frame:
            return None
        if event == "line":
            self.line_events += 1
            if self.line_events > self.max_line_events:
                self._truncate()
                return None
            self._diff(frame, state)
            state.pending_exc = False
            state.last_line = frame.f_lineno
        elif event == "return":
            self._diff(frame, state)
            code = frame.f_code
            if not state.pending_exc and state.host is None and code.co_name != "<module>":
                is_gen = bool(code.co_flags & 0x20)
                if not is_gen or arg is not None:
                    name = "__yield__" if is_gen else "__return__"
                    line = state.last_line if state.last_line is not None else frame.f_lineno
                    self._add_step(state.src, line, [(name, bounded_repr(arg, self.limits), "return")])
            if not (frame.f_code.co_flags & 0x20):
                self.frames.pop(id(frame), None)
        elif event == "exception":
            exc = arg[1]
            if isinstance(exc, self.ignore_exceptions):
                return self._local
            is_module = frame.f_code.co_name == "<module>" and state.src == "test"
            if id(exc) not in self.seen_exceptions or is_module:
                self.seen_exceptions.add(id(exc))
                self._diff(frame, state)
                src, line = (state.src, frame.f_lineno) if state.host is None else self._line_of(frame, state)
                if line is not None:
                    self._add_step(src, line, [("__exception__", bounded_repr(exc, self.limits), "exception")])
            state.pending_exc = True
        return self._local

    def _add_step(self, src: str, line: int, changes: list[tuple[str, str, str]]) -> None:
        if self.step >= self.max_steps:
            self._truncate()
            return
        for name, value, kind in changes:
            self.buffer.append(
                {"step": self.step, "src": src, "line": line, "name": name, "value": value, "kind": kind}
            )
        self.step += 1
        if len(self.buffer) >= self.flush_every:
            self.flush()

    def _truncate(self) -> None:
        # Detach rather than raise: hostile code can swallow exceptions raised from a hook.
        if not self.truncated:
            self.truncated = True
            self.buffer.append({"step": self.step, "src": "", "line": 0, "name": "", "value": "", "kind": "truncated"})
            self.flush()
        sys.settrace(None)
        f: Any = sys._getframe(1)
        while f is not None:
            f.f_trace = None
            f = f.f_back


class MonitoringTracer(Tracer):
    """The same tracer on ``sys.monitoring`` (3.12+): events only for the user's code objects.

    Events are translated into the ``sys.settrace`` events the base class handles, the way
    CPython 3.12's own settrace emulation does (a backward jump within one line counts as a
    new execution of that line), so both backends produce the same trace. Library code the
    program calls costs nothing here, where settrace pays for every call into it.
    """

    def __init__(self, roots: list[Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.codes = [c for c in _walk_codes(roots) if c not in self.skip_codes]
        self.code_set = frozenset(self.codes)
        self.tool: int | None = None
        self._lines: dict[Any, dict[int, int | None]] = {}

    def start(self, hidden_names: set[str]) -> None:
        self.baseline = hidden_names
        mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        ev = mon.events
        for tool in (mon.DEBUGGER_ID, 1, 2, 3, 4):
            if mon.get_tool(tool) is None:
                mon.use_tool_id(tool, "next-tracer")
                self.tool = tool
                break
        if self.tool is None:
            sys.settrace(self._global)  # every tool id taken: fall back to settrace
            return
        local = {
            ev.PY_START: self._on_start,
            ev.PY_RESUME: self._on_start,
            ev.LINE: self._on_line,
            ev.JUMP: self._on_jump,
            ev.PY_RETURN: self._on_return,
            ev.PY_YIELD: self._on_return,
        }
        # These cannot be local events: they are set globally and filtered by code object.
        other = {ev.PY_THROW: self._on_throw, ev.PY_UNWIND: self._on_unwind, ev.RAISE: self._on_raise}
        mask = 0
        for event, callback in local.items():
            mon.register_callback(self.tool, event, callback)
            mask |= event
        for event, callback in other.items():
            mon.register_callback(self.tool, event, callback)
        for code in self.codes:
            mon.set_local_events(self.tool, code, mask)
        mon.set_events(self.tool, ev.PY_THROW | ev.PY_UNWIND | ev.RAISE)

    def stop(self) -> None:
        self._detach()
        self.flush()

    def _detach(self) -> None:
        if self.tool is None:
            sys.settrace(None)
            return
        mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        mon.set_events(self.tool, 0)
        for code in self.codes:
            mon.set_local_events(self.tool, code, 0)
        for event in range(20):
            try:
                mon.register_callback(self.tool, 1 << event, None)
            except ValueError:
                pass
        mon.free_tool_id(self.tool)
        self.tool = None

    def _truncate(self) -> None:
        if not self.truncated:
            self.truncated = True
            self.buffer.append({"step": self.step, "src": "", "line": 0, "name": "", "value": "", "kind": "truncated"})
            self.flush()
        self._detach()

    # callbacks: frame of the monitored code is the caller of the callback
    def _on_start(self, code: Any, offset: int) -> Any:
        self._global(sys._getframe(1), "call", None)

    def _on_line(self, code: Any, line: int) -> Any:
        self._local(sys._getframe(1), "line", None)

    def _on_jump(self, code: Any, src: int, dest: int) -> Any:
        if dest < src:
            lines = self._lines.get(code)
            if lines is None:
                lines = self._lines[code] = {off: ln for off, _, ln in _offsets(code)}
            if lines.get(src) == lines.get(dest) is not None:
                self._local(sys._getframe(1), "line", None)
                return None
        return sys.monitoring.DISABLE  # type: ignore[attr-defined,unused-ignore]

    def _on_return(self, code: Any, offset: int, value: Any) -> Any:
        self._local(sys._getframe(1), "return", value)

    def _on_throw(self, code: Any, offset: int, exc: BaseException) -> Any:
        if code in self.code_set:
            self._global(sys._getframe(1), "call", None)

    def _on_unwind(self, code: Any, offset: int, exc: BaseException) -> Any:
        if code in self.code_set:
            self._local(sys._getframe(1), "return", None)

    def _on_raise(self, code: Any, offset: int, exc: BaseException) -> Any:
        if code in self.code_set:
            self._local(sys._getframe(1), "exception", (type(exc), exc, None))


def _offsets(code: Any) -> list[tuple[int, int, int | None]]:
    """(instruction offset, end, line) for every instruction of ``code``."""
    out = []
    for start, end, line in code.co_lines():
        for off in range(start, end, 2):
            out.append((off, end, line))
    return out


def _walk_codes(roots: list[Any]) -> list[Any]:
    seen: list[Any] = []
    stack = list(roots)
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.append(code)
        stack.extend(c for c in code.co_consts if type(c) is type(code))
    return seen


def make_tracer(roots: list[Any], *args: Any, backend: str = "auto", **kwargs: Any) -> Tracer:
    """The capture backend: ``auto`` picks the one measured faster on this Python.

    On MBPP programs (``benchmarks/trace_backends.py``) ``sys.monitoring`` took 0.72-0.77x
    the time of ``sys.settrace`` on 3.12 and 1.03-1.07x on 3.13, whose settrace is faster;
    3.11 has no ``sys.monitoring``. Both give identical traces (tested).
    """
    if backend == "auto":
        backend = "monitoring" if sys.version_info[:2] == (3, 12) else "settrace"
    if backend == "monitoring":
        return MonitoringTracer(roots, *args, **kwargs)
    return Tracer(*args, **kwargs)
