"""The tracer client that runs the engine in this process: sandboxed executions without a server.

For embedded mode, the CLI's data commands and tests; callers code against
``nextapi.tracer.client.TracerClient`` and never import this module unless they build one.
"""

from __future__ import annotations

from collections.abc import Sequence

from next_tracer.engine import TracerEngine
from next_tracer.settings import TracerSettings
from nextapi.tracer.types import IoTests, Limits, RunResult, TraceOptions, TraceResult


class InProcessTracerClient:
    """Runs the engine in this process: sandboxed executions without a server."""

    def __init__(self, settings: TracerSettings | None = None, engine: TracerEngine | None = None) -> None:
        self.engine = engine or TracerEngine(settings or TracerSettings())
        self._started = False

    async def _ready(self) -> TracerEngine:
        if not self._started:
            await self.engine.start()
            self._started = True
        return self.engine

    async def run_tests(
        self, program: str, tests: list[str], limits: Limits | None = None, entry_points: Sequence[str] = ()
    ) -> RunResult:
        return await (await self._ready()).run_tests(program, tests, limits, entry_points=entry_points)

    async def run_io_tests(self, program: str, io: IoTests, limits: Limits | None = None) -> RunResult:
        return await (await self._ready()).run_io_tests(program, io, limits)

    async def trace(
        self,
        program: str,
        test: str,
        options: TraceOptions | None = None,
        limits: Limits | None = None,
        entry_points: Sequence[str] = (),
    ) -> TraceResult:
        return await (await self._ready()).trace(program, test, options, limits, entry_points=entry_points)

    async def close(self) -> None:
        return None
