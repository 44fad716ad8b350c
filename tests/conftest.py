"""Shared fixtures: a real nsjail-backed tracer engine and a gRPC server on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from next_tracer.settings import TracerSettings
from nextapi.tracer.types import Limits

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def make_settings(**overrides: object) -> TracerSettings:
    return TracerSettings(**{"max_concurrency": 2, "port": 0, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings() -> TracerSettings:
    return make_settings()


@pytest.fixture(scope="session")
async def engine(settings: TracerSettings) -> AsyncIterator[TracerEngine]:
    eng = TracerEngine(settings, FormatRegistry(load_entry_points=False))
    await eng.start()
    yield eng


@pytest.fixture
def fast_limits() -> Limits:
    return Limits(timeout_s=2.0, memory_mb=256, output_bytes=100_000)
