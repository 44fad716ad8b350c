"""One test's view of the program: program callables become proxies to the program process."""

from __future__ import annotations

import builtins
from typing import Any

from nextapi.tracer import plain
from nextapi.tracer.verdicts import Verdict

from . import scratch
from .supervisor import ProgramChild
from .tracing import CUSTOM_REPRS, Tracer
from .wire import MESSAGE_CHARS, ChildFailure, LoadFailure


class ProgramError(Exception):
    """What the test sees for an exception the program raised: always this type.

    A program's ``ValueError`` arrives as a subclass of both, so ``except ValueError`` in a test
    still works; exceptions that steer control flow (``StopIteration`` ends an ``all(map(...))``
    silently) arrive as plain ProgramErrors, and a name the program made up never reaches a
    class of ours.
    """


# Builtin exceptions a test may catch by their type; the ones left out change control flow.
_CONTROL_FLOW = frozenset({"StopIteration", "StopAsyncIteration", "GeneratorExit", "KeyboardInterrupt", "SystemExit"})
_PROGRAM_EXCEPTIONS: dict[str, type[ProgramError]] = {}


def program_exception(name: str) -> type[ProgramError]:
    name = name if name.isidentifier() else "ProgramError"
    cls = _PROGRAM_EXCEPTIONS.get(name)
    if cls is None:
        base = getattr(builtins, name, None)
        bases: tuple[type, ...] = (ProgramError,)
        if isinstance(base, type) and issubclass(base, Exception) and name not in _CONTROL_FLOW:
            bases = (ProgramError, base)
        cls = _PROGRAM_EXCEPTIONS[name] = type(name, bases, {"__module__": "program"})
    return cls


class Proxy:
    """Stands in for a program callable inside the test namespace."""

    def __init__(self, runner: ProgramSession, name: str) -> None:
        self._runner = runner
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._runner.call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return "<program function %s>" % self._name


CUSTOM_REPRS[Proxy] = lambda proxy: "<function %s>" % proxy._name


class Unexported:
    """Stands in for a name the program defines that the request does not let the tests use."""

    def __init__(self, name: str) -> None:
        self._why = (
            "the test used %s, which the program defines but which is not one of the request's entry "
            "points: only those cross to the tests (program objects are not plain data)" % name
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ProgramError(self._why)

    def __getattr__(self, item: str) -> Any:
        raise ProgramError(self._why)


CUSTOM_REPRS[Unexported] = lambda stand_in: "<not an entry point>"


class Opaque:
    def __init__(self, name: str, type_name: str) -> None:
        self._what = "%s (a %s object)" % (name, type_name)

    def __getattr__(self, item: str) -> Any:
        raise ProgramError("the test used %s, which is not plain data and stays inside the program" % self._what)


class ProgramSession:
    def __init__(self, job: dict[str, Any], exports: list[str] | None, parent_tracer: Tracer | None) -> None:
        self.job = job
        self.exports = exports
        self.child: ProgramChild | None = None
        self.deadline = 0.0
        self.want_args = True
        self.tracer = parent_tracer

    # child lifecycle
    def spawn(self, calls: int = 1) -> dict[str, Any]:
        """Start the program process and load the program; its deadline starts the test's."""
        setup = {
            "program": self.job["program"],
            "limits": self.job["limits"],
            "exports": self.exports,
            "trace": self.job.get("trace") if self.tracer is not None else None,
            "calls": calls,
            "workdir": scratch.WORKDIR,
        }
        self.child = ProgramChild(setup)
        self.deadline = self.child.start_budget()
        msg = self.child.receive(self.deadline)
        if "sandbox_error" in msg:
            raise ChildFailure(Verdict.SANDBOX_ERROR, str(msg["sandbox_error"])[:MESSAGE_CHARS])
        if "program_error" in msg:
            raise (LoadFailure if msg.get("compile") else ChildFailure)(Verdict.ERROR, msg["program_error"])
        if "memory" in msg:
            raise ChildFailure(Verdict.MEMORY_LIMIT, "MemoryError while loading the program")
        listing: dict[str, Any] = msg["ready"]
        return listing

    def close(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child = None
        scratch.wipe_scratch()

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        child = self.child
        if child is None:
            raise ChildFailure(Verdict.SANDBOX_ERROR, "no program process")
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
            raise ChildFailure(Verdict.MEMORY_LIMIT, "memory limit exceeded (MemoryError)")
        if "unplain" in reply:
            raise ProgramError(
                "%s returned a %s object; only plain builtin data can be checked" % (name, reply["unplain"])
            )
        if "exit" in reply:
            raise ChildFailure(Verdict.ERROR, "the program called exit(%s) before the test finished" % reply["exit"])
        exc_type, message = reply["raise"]
        raise program_exception(str(exc_type)[:100])(str(message))

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
            if "hidden" in info or (self.exports is not None and name not in self.exports):
                ns[name] = Unexported(name)
                continue
            if "callable" in info:
                ns[name] = Proxy(self, name)
            elif "value" in info:
                ns[name] = plain.decode(info["value"])
            else:
                ns[name] = Opaque(name, str(info.get("opaque", "?"))[:100])
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
