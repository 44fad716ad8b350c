"""The tracer's domain types: what clients send and get back (no gRPC here; ``convert`` maps them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nextapi.tracer.verdicts import Verdict, overall

__all__ = [
    "IoTests",
    "Limits",
    "RunResult",
    "TestOutcome",
    "TraceEvent",
    "TraceOptions",
    "TraceResult",
    "Verdict",
]


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    output_bytes: int = 16 << 20  # per test: stdout+stderr, and each returned value
    file_bytes: int = 10_000_000


@dataclass(frozen=True)
class IoTests:
    """EvalPlus-style grading: call ``entry_point(*args)`` and compare with ``expected``."""

    entry_point: str
    inputs: list[list[Any]]
    expected: list[Any]
    atol: float = 0.0
    # Inputs already in the plain-value JSON encoding (as received over gRPC): passed on
    # as text, without decoding and re-encoding, when given instead of ``inputs``.
    inputs_json: list[str] | None = None
    # Expected outputs in that encoding: an output whose encoding is byte-identical passes
    # without being parsed; others are decoded and compared (floats with tolerance).
    expected_json: list[str] | None = None
    oracle: str = ""  # a named check from next_tracer.compare.ORACLES; "" compares with expected
    return_outputs: bool = False  # report each returned value; with no expected outputs, returning passes


@dataclass(frozen=True)
class TestOutcome:
    verdict: Verdict
    message: str = ""
    duration_s: float = 0.0
    output_json: str = ""  # the returned value (plain-value JSON), when asked for


@dataclass(frozen=True)
class RunResult:
    verdict: Verdict
    tests: list[TestOutcome]
    output: str = ""

    @classmethod
    def of(cls, tests: Sequence[TestOutcome], output: str = "") -> RunResult:
        """The one place a run's verdict is derived from its tests' (``verdicts.overall``)."""
        return cls(overall(t.verdict for t in tests), list(tests), output)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "tests": [
                {"verdict": t.verdict.value, "message": t.message, "duration_s": t.duration_s} for t in self.tests
            ],
        }


@dataclass(frozen=True)
class TraceEvent:
    step: int
    source: str
    line: int
    name: str
    value: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "source": self.source,
            "line": self.line,
            "name": self.name,
            "value": self.value,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class TraceResult:
    rendered: str
    events: list[TraceEvent]
    test: TestOutcome
    truncated: bool
    format: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rendered": self.rendered,
            "events": [e.to_json() for e in self.events],
            "verdict": self.test.verdict.value,
            "message": self.test.message,
            "truncated": self.truncated,
            "format": self.format,
        }


@dataclass(frozen=True)
class TraceOptions:
    format: str = "next-inline"
    max_steps: int = 10_000
    max_value_chars: int = 200
    max_items: int = 20
    max_states_per_line: int = 3
    backend: str = "auto"  # "auto": sys.monitoring on 3.12+, sys.settrace before; or force one
