"""The tracer's domain logic: validate, queue, run in the sandbox, decide verdicts, render."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from next_common.errors import InvalidArgumentError, ResourceExhaustedError
from next_tracer import metrics
from next_tracer.compare import ORACLES
from next_tracer.formats.base import CapturedTrace, RenderOptions
from next_tracer.formats.registry import FormatRegistry
from next_tracer.runtime.supervisor import wall_allowance
from next_tracer.runtime.tracing import ReprLimits, bounded_repr
from next_tracer.sandbox.records import JobRecords
from next_tracer.sandbox.runner import Sandbox
from next_tracer.settings import TracerSettings
from nextapi.tracer import plain
from nextapi.tracer.types import IoTests, Limits, RunResult, TestOutcome, TraceEvent, TraceOptions, TraceResult, Verdict

log = logging.getLogger(__name__)

PASSED, FAILED, ERROR = Verdict.PASSED, Verdict.FAILED, Verdict.ERROR  # per-input hot path: no enum lookups
STARTUP_SLACK_S = 5.0
# A sandbox that broke (not a program's verdict) is retried this often before SANDBOX_ERROR is reported.
SANDBOX_RETRIES = 2
REPORT_SLACK_BYTES = 64 * 1024
TRACE_REPORT_BYTES = 64 * 1024 * 1024


def _text(value: str | bytes, what: str, limit: int) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgumentError("%s is not valid UTF-8 (byte %d)" % (what, exc.start)) from None
    if "\x00" in value:
        raise InvalidArgumentError("%s contains a NUL character" % what)
    if len(value.encode("utf-8")) > limit:
        raise InvalidArgumentError("%s is larger than the limit of %d bytes" % (what, limit))
    return value


class TracerEngine:
    """Everything the gRPC servicer and the in-process client call."""

    def __init__(
        self, settings: TracerSettings, formats: FormatRegistry | None = None, sandbox: Sandbox | None = None
    ) -> None:
        self.settings = settings
        self.formats = formats or FormatRegistry()
        self.sandbox = sandbox or Sandbox(settings)
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._waiting = 0

    async def start(self) -> None:
        await self.sandbox.check()

    # -- validation --------------------------------------------------------------------
    def limits(self, timeout_s: float = 0, memory_mb: int = 0, output_bytes: int = 0) -> Limits:
        s = self.settings
        if timeout_s < 0 or memory_mb < 0 or output_bytes < 0:
            raise InvalidArgumentError("limits must not be negative")
        if timeout_s > s.max_timeout_s:
            raise InvalidArgumentError("limits.timeout_s %.3g exceeds the maximum %.3g" % (timeout_s, s.max_timeout_s))
        if memory_mb > s.max_memory_mb:
            raise InvalidArgumentError("limits.memory_mb %d exceeds the maximum %d" % (memory_mb, s.max_memory_mb))
        if output_bytes > s.max_output_bytes:
            raise InvalidArgumentError(
                "limits.output_bytes %d exceeds the maximum %d" % (output_bytes, s.max_output_bytes)
            )
        return Limits(
            timeout_s=timeout_s or s.default_timeout_s,
            memory_mb=memory_mb or s.default_memory_mb,
            output_bytes=output_bytes or s.default_output_bytes,
        )

    def _checked(self, limits: Limits | None) -> Limits:
        """Limits handed in directly (in-process callers) meet the same bounds as those from the API."""
        if limits is None:
            return self.limits()
        checked = self.limits(limits.timeout_s, limits.memory_mb, limits.output_bytes)
        return Limits(checked.timeout_s, checked.memory_mb, checked.output_bytes, limits.file_bytes)

    def _program(self, program: str | bytes) -> str:
        return _text(program, "program", self.settings.max_program_bytes)

    def _tests(self, tests: Iterable[str | bytes]) -> list[str]:
        out = [_text(t, "tests[%d]" % i, self.settings.max_program_bytes) for i, t in enumerate(tests)]
        if len(out) > self.settings.max_tests:
            raise InvalidArgumentError("%d tests exceed the limit of %d" % (len(out), self.settings.max_tests))
        return out

    # -- running ----------------------------------------------------------------------
    async def _execute(
        self, job: dict[str, Any], n_tests: int, limits: Limits, kind: str, deadline_s: float | None
    ) -> JobRecords:
        # Limits are CPU time; the wall-clock allowance per test is wider, so load is never a TIMEOUT.
        wall = min(self.settings.max_total_wall_s, STARTUP_SLACK_S + wall_allowance(limits.timeout_s) * max(1, n_tests))
        # What the jail may send back: one bounded value or message per test, plus a trace.
        report_bytes = min(
            (max(1, n_tests) + 1) * (limits.output_bytes + REPORT_SLACK_BYTES), self.settings.max_report_mb << 20
        )
        if "trace" in job:
            report_bytes += TRACE_REPORT_BYTES
        if deadline_s is not None:
            wall = min(wall, max(0.1, deadline_s))
        if self._waiting >= self.settings.max_queue and self._slots.locked():
            raise ResourceExhaustedError("tracer queue is full (%d waiting); retry later" % self._waiting)
        self._waiting += 1
        metrics.QUEUED.inc()
        queued_at = time.monotonic()
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
            metrics.QUEUED.dec()
        try:
            wall -= time.monotonic() - queued_at if deadline_s is not None else 0
            metrics.RUNNING.inc()
            started = time.monotonic()
            for attempt in range(SANDBOX_RETRIES + 1):
                records = await self.sandbox.execute(job, max(0.1, wall), report_bytes)
                if not records.broken or attempt == SANDBOX_RETRIES:
                    break
                metrics.SANDBOX_RETRIES.inc()
                log.warning(
                    "sandbox failure (%s); retrying the execution (%d/%d)",
                    records.failure,
                    attempt + 1,
                    SANDBOX_RETRIES,
                )
            metrics.LATENCY.labels(kind).observe(time.monotonic() - started)
            metrics.EXECUTIONS.labels(kind).inc()
            return records
        finally:
            metrics.RUNNING.dec()
            self._slots.release()

    @staticmethod
    def _job(kind: str, program: str, tests: list[dict[str, Any]], limits: Limits) -> dict[str, Any]:
        return {
            "kind": kind,
            "program": program,
            "tests": tests,
            "limits": {
                "timeout_s": limits.timeout_s,
                "memory_bytes": limits.memory_mb << 20,
                "output_bytes": limits.output_bytes,
                "file_bytes": limits.file_bytes,
            },
        }

    @staticmethod
    def _missing(records: JobRecords) -> TestOutcome:
        if records.limit_hit:
            return TestOutcome(Verdict(records.limit_hit), records.failure)
        return TestOutcome(Verdict.SANDBOX_ERROR, records.failure or "no result from the sandbox")

    def _outcome(self, record: dict[str, Any] | None, records: JobRecords) -> TestOutcome:
        if record is None:
            return self._missing(records)
        return TestOutcome(Verdict(record["status"]), record.get("message", ""), float(record.get("duration_s", 0.0)))

    async def run_tests(
        self,
        program: str | bytes,
        tests: Iterable[str | bytes],
        limits: Limits | None = None,
        deadline_s: float | None = None,
        entry_points: Iterable[str] = (),
    ) -> RunResult:
        program = self._program(program)
        sources = self._tests(tests)
        if not sources:
            raise InvalidArgumentError("no tests given")
        limits = self._checked(limits)
        job = self._job("statements", program, [{"source": s} for s in sources], limits)
        job["entry_points"] = self._entry_points(entry_points)
        records = await self._execute(job, len(sources), limits, "run_tests", deadline_s)
        outcomes = [self._outcome(records.tests.get(i), records) for i in range(len(sources))]
        return self._finish(outcomes, records.output)

    async def run_io_tests(
        self, program: str | bytes, io: IoTests, limits: Limits | None = None, deadline_s: float | None = None
    ) -> RunResult:
        program = self._program(program)
        if not io.entry_point.isidentifier():
            raise InvalidArgumentError("io_tests.entry_point %r is not a Python identifier" % io.entry_point)
        if io.oracle not in ORACLES:
            known = ", ".join(repr(name) for name in sorted(ORACLES))
            raise InvalidArgumentError("io_tests.oracle %r is unknown; available: %s" % (io.oracle, known))
        texts = io.inputs_json if io.inputs_json is not None else self._encode_inputs(io.inputs)
        n_expected = len(io.expected_json) if io.expected_json is not None else len(io.expected)
        if len(texts) != n_expected and not (io.return_outputs and n_expected == 0 and not io.oracle):
            raise InvalidArgumentError("io_tests has %d inputs but %d expected outputs" % (len(texts), n_expected))
        if not texts or len(texts) > self.settings.max_io_inputs:
            raise InvalidArgumentError("io_tests needs 1 to %d inputs" % self.settings.max_io_inputs)
        if io.inputs_json is not None:
            self._check_inputs_json(texts)
        limits = self._checked(limits)
        job = self._job("calls", program, [], limits)
        job["entry_point"] = io.entry_point
        job["inputs_json"] = "[" + ",".join(texts) + "]"
        tests = texts
        records = await self._execute(job, len(tests), limits, "run_io_tests", deadline_s)
        outcomes = []
        for i in range(len(texts)):
            record = records.tests.get(i)
            if record is not None and record["status"] == "RETURNED":
                outcomes.append(self._grade(io, i, record, texts[i]))
            else:
                outcomes.append(self._outcome(record, records))
        return self._finish(outcomes, records.output)

    @staticmethod
    def _grade(io: IoTests, i: int, record: dict[str, Any], input_text: str) -> TestOutcome:
        line: bytes = record["line"]
        at: int = record["value_at"]
        duration = float(record.get("duration_s", 0.0))
        output = line[at:].decode("utf-8", "replace") if io.return_outputs else ""
        have_expected = bool(io.expected_json) or bool(io.expected)
        if have_expected and not io.oracle and io.expected_json:
            encoded = io.expected_json[i].encode()
            if len(line) - at == len(encoded) and line.endswith(encoded):
                # Same encoder on both sides: identical bytes are identical values, no parsing needed.
                return TestOutcome(PASSED, "", duration, output)
        raw = line[at:]
        try:
            actual = plain.decode(json.loads(raw))
        except (ValueError, TypeError, RecursionError):
            return TestOutcome(ERROR, "the program process sent a malformed value", duration)
        if not have_expected and not io.oracle:
            return TestOutcome(PASSED, "", duration, output)  # outputs only: returning is passing
        if io.expected_json:
            expected = parse_plain_json(io.expected_json[i], "io_tests.expected_json[%d]" % i)
        else:
            expected = io.expected[i] if io.expected else None
        args = plain.decode(json.loads(input_text)) if io.oracle else []
        if ORACLES[io.oracle](args, actual, expected, io.atol):
            return TestOutcome(PASSED, "", duration, output)
        message = "returned %s, expected %s" % (_short(actual), _short(expected))
        return TestOutcome(FAILED, message, duration, output)

    @staticmethod
    def _entry_points(names: Iterable[str]) -> list[str]:
        out = list(names)
        for i, name in enumerate(out):
            if not name.isidentifier():
                raise InvalidArgumentError("entry_points[%d] %r is not a Python identifier" % (i, name))
        return out

    @staticmethod
    def _check_inputs_json(texts: list[str]) -> None:
        """Each text must be one JSON array (tags are checked where the inputs are decoded)."""
        try:
            parsed = json.loads("[" + ",".join(texts) + "]")
            if len(parsed) == len(texts) and all(type(args) is list for args in parsed):
                return
        except ValueError:
            pass
        for i, text in enumerate(texts):  # slow path: name the first bad input
            try:
                args = json.loads(text)
            except ValueError as exc:
                raise InvalidArgumentError("io_tests.inputs_json[%d] is not valid JSON: %s" % (i, exc)) from None
            if type(args) is not list:
                raise InvalidArgumentError("io_tests.inputs_json[%d] must be a JSON array of arguments" % i)
        raise InvalidArgumentError("io_tests.inputs_json holds an input that is not one JSON array")

    @staticmethod
    def _encode_inputs(inputs: list[list[Any]]) -> list[str]:
        texts = []
        for i, args in enumerate(inputs):
            if not isinstance(args, list):
                raise InvalidArgumentError("io_tests.inputs[%d] must be a list of arguments" % i)
            try:
                texts.append(plain.dumps(args))
            except plain.NotPlainError as exc:
                raise InvalidArgumentError("io_tests.inputs[%d] holds a non-plain %s" % (i, exc.type_name)) from None
        return texts

    def _finish(self, outcomes: list[TestOutcome], output: str) -> RunResult:
        for verdict, count in collections.Counter(o.verdict for o in outcomes).items():
            metrics.VERDICTS.labels(verdict.value).inc(count)
        return RunResult.of(outcomes, output)

    async def trace(
        self,
        program: str | bytes,
        test: str | bytes,
        options: TraceOptions | None = None,
        limits: Limits | None = None,
        deadline_s: float | None = None,
        entry_points: Iterable[str] = (),
    ) -> TraceResult:
        options = options or TraceOptions()
        fmt = self.formats.get(options.format)
        program = self._program(program)
        (source,) = self._tests([test])
        limits = self._checked(limits)
        job = self._job("statements", program, [{"source": source}], limits)
        job["entry_points"] = self._entry_points(entry_points)
        job["trace"] = {
            "max_steps": options.max_steps,
            "max_value_chars": options.max_value_chars,
            "max_items": options.max_items,
            "backend": options.backend,
        }
        records = await self._execute(job, 1, limits, "trace", deadline_s)
        outcome = self._outcome(records.tests.get(0), records)
        metrics.VERDICTS.labels(outcome.verdict.value).inc()
        events = sorted(
            (
                TraceEvent(
                    int(e["step"]), str(e["src"]), int(e["line"]), str(e["name"]), str(e["value"]), str(e["kind"])
                )
                for e in records.events
            ),
            key=lambda e: e.step,
        )
        truncated = any(e.kind == "truncated" for e in events)
        captured = CapturedTrace(program, source, events, truncated)
        rendered = fmt.render(captured, RenderOptions(options.max_states_per_line))
        return TraceResult(rendered, events, outcome, truncated, options.format)


def _short(value: Any, limit: int = 200) -> str:
    """A bounded repr that never raises (huge ints, deep or recursive values)."""
    try:
        return bounded_repr(value, ReprLimits(max_chars=limit, max_items=20))
    except (RecursionError, ValueError, MemoryError):
        return "<a %s that cannot be shown>" % type(value).__name__


def parse_plain_json(text: str, what: str) -> Any:
    """JSON with the plain-value tags (``{"$tuple": [...]}``, ...) of :mod:`runtime.plain`."""
    try:
        return plain.decode(json.loads(text))
    except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        raise InvalidArgumentError("%s is not valid plain-value JSON: %s" % (what, exc)) from None
