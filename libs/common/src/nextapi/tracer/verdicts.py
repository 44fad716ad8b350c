"""The verdicts a test run can have, and how a run's verdict follows from its tests' verdicts.

Standard library only: the in-jail runtime imports this module too (mounted read-only at
``/next/nextapi``), so the runtime, the engine and every client name verdicts the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Verdict(enum.StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    CRASHED = "CRASHED"
    SANDBOX_ERROR = "SANDBOX_ERROR"


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """The first test that did not pass decides; a run with no tests is FAILED (nothing proved it right)."""
    seen = False
    for verdict in verdicts:
        if verdict is not Verdict.PASSED:
            return verdict
        seen = True
    return Verdict.PASSED if seen else Verdict.FAILED
