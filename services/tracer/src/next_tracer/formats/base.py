"""What a trace format receives, and the interface it implements."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from nextapi.tracer.types import TraceEvent


@dataclass(frozen=True)
class RenderOptions:
    max_states_per_line: int = 3


@dataclass(frozen=True)
class CapturedTrace:
    """A program, the traced test, and the structured events in step order."""

    program: str
    test: str
    events: list[TraceEvent]
    truncated: bool

    def steps(self) -> list[list[TraceEvent]]:
        """Events grouped by step, in execution order (one group per step number)."""
        groups: dict[int, list[TraceEvent]] = defaultdict(list)
        for event in self.events:
            if event.kind != "truncated":
                groups[event.step].append(event)
        return [groups[k] for k in sorted(groups)]

    def source_lines(self, source: str) -> list[str]:
        text = self.program if source == "program" else self.test
        return text.rstrip("\n").split("\n") if text.strip() else []


class TraceFormat(Protocol):
    description: str

    def render(self, trace: CapturedTrace, options: RenderOptions) -> str: ...
