"""Running one job: statement tests (MBPP asserts, HumanEval check scripts) or io inputs."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

from nextapi.tracer.verdicts import Verdict

from .session import ProgramSession
from .supervisor import ProgramChild
from .tracing import ReprLimits, make_tracer
from .wire import MESSAGE_CHARS, OUT, ChildFailure, LoadFailure, describe


def result_record(status: Verdict, message: str, started: float, **extra: Any) -> dict[str, Any]:
    out = {"status": status, "message": message[:MESSAGE_CHARS], "duration_s": round(time.monotonic() - started, 6)}
    out.update(extra)
    return out


def exports_for(job: dict[str, Any], code: Any) -> list[str]:
    """What of the program a test may use: the request's entry points, or else every name
    the test refers to (a helper the test defines itself always wins over the program's)."""
    if job.get("entry_points"):
        return list(job["entry_points"])
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return sorted(names)


def run_statement_test(job: dict[str, Any], source: str, trace: bool) -> dict[str, Any]:
    """One test's result record; raises LoadFailure (after the clean-up) if the program does not compile."""
    started = time.monotonic()
    try:
        code = compile(source, "<test>", "exec")
    except SyntaxError as exc:
        return result_record(Verdict.ERROR, "SyntaxError in test: %s" % exc, started)
    tracer = None
    if trace:
        cfg = job["trace"]
        tracer = make_tracer(
            [code],
            {"<test>": "test"},
            set(),
            lambda ev: OUT.emit({"events": ev}),
            ReprLimits(cfg["max_value_chars"], cfg["max_items"]),
            max_steps=cfg["max_steps"],
            ignore_exceptions=(ChildFailure,),
            backend=cfg.get("backend", "auto"),
        )
    runner = ProgramSession(job, exports_for(job, code), tracer)
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
        return result_record(Verdict.PASSED, "", started)
    except LoadFailure:
        raise
    except ChildFailure as exc:
        return result_record(exc.status, exc.message, started)
    except AssertionError as exc:
        return result_record(Verdict.FAILED, "AssertionError: %s" % exc if str(exc) else "AssertionError", started)
    except BaseException as exc:
        return result_record(Verdict.ERROR, describe(exc), started)
    finally:
        if child is not None:
            _forward_child_events(child)
            out = bytes(child.output)
        runner.close()
        if child is not None and out:
            OUT.emit({"output": out.decode("utf-8", "replace")})


def _test_alarm(signum: int, frame: Any) -> None:
    raise ChildFailure(Verdict.TIMEOUT, "the test itself did not finish within its time limit")


def _forward_child_events(child: ProgramChild) -> None:
    if child.events:
        OUT.emit({"events": child.events})
        child.events = []


def run_call_tests(job: dict[str, Any], tests: list[dict[str, Any]]) -> None:
    """EvalPlus-style inputs: one child runs them in order, each with its own time limit.

    The inputs go to the child in one message and it answers input by input; a timeout,
    crash or exit ends that input only: a fresh child continues with the next one.
    """
    entry = job["entry_point"]
    index = 0
    while index < len(tests):
        runner = ProgramSession(job, [entry], None)
        started = time.monotonic()
        loaded = False
        try:
            runner.spawn(calls=len(tests) - index)
            loaded = True
            child = runner.child
            assert child is not None
            child.send({"batch": entry, "inputs": [t["args"] for t in tests[index:]]})
            deadline = child.start_budget()
            while index < len(tests):
                raw = child.receive_raw(deadline)
                if raw.startswith(b"V"):
                    _emit_returned(index, memoryview(raw)[1:], started)
                else:
                    _emit_call_result(index, json.loads(raw), started)
                index += 1
                started = time.monotonic()
                deadline = child.start_budget()
        except ChildFailure as exc:
            # A program that cannot even load fails every remaining input the same way.
            last = len(tests) if not loaded else index + 1
            for failed in range(index, last):
                OUT.emit({"test": failed, **result_record(exc.status, exc.message, started)}, flush=False)
            index = last
        finally:
            runner.close()


def _emit_returned(index: int, value: memoryview, started: float) -> None:
    """Pass a returned value on without parsing it: the server decodes and checks it.

    One line, ``R<index> <duration> <value>``: the index and duration are written here and the
    value, whatever bytes the program process sent, is all that follows the second space (it is
    a single line: replies are split on newlines).
    """
    OUT.write(b"R%d %.6f " % (index, time.monotonic() - started), value, b"\n")


def _emit_call_result(index: int, reply: dict[str, Any], started: float) -> None:
    if "memory" in reply:
        OUT.emit({"test": index, **result_record(Verdict.MEMORY_LIMIT, "memory limit exceeded (MemoryError)", started)})
    elif "unplain" in reply:
        message = "returned a %s object; only plain builtin data can be checked" % reply["unplain"]
        OUT.emit({"test": index, **result_record(Verdict.FAILED, message, started)})
    elif "exit" in reply:
        message = "the program called exit(%s) before the test finished" % reply["exit"]
        OUT.emit({"test": index, **result_record(Verdict.ERROR, message, started)})
    else:
        exc_type, message = reply["raise"]
        OUT.emit(
            {
                "test": index,
                **result_record(Verdict.ERROR, "%s: %s" % (exc_type, message) if message else exc_type, started),
            }
        )


def run_job(job: dict[str, Any]) -> None:
    tests = job["tests"]
    if "inputs_json" in job:
        tests = [{"args": args} for args in json.loads(job["inputs_json"])]
    if job["kind"] == "calls":
        run_call_tests(job, tests)
    else:
        for index, test in enumerate(tests):
            trace = bool(job.get("trace")) and index == job.get("trace_index", 0)
            try:
                OUT.emit({"test": index, **run_statement_test(job, test["source"], trace)})
            except LoadFailure as exc:
                # Only the program process compiles the program: its error stands for every test left.
                message = exc.message[:MESSAGE_CHARS]  # the program can write this line itself
                for rest in range(index, len(tests)):
                    OUT.emit({"test": rest, "status": exc.status, "message": message, "duration_s": 0.0})
                break
    OUT.emit({"done": True})
