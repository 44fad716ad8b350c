"""The interface every backend implements."""

from __future__ import annotations

from typing import Protocol

from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams


class Backend(Protocol):
    description: str

    def adapters(self) -> list[str]:
        """Adapters this backend can serve ("" the base model is always available)."""
        ...

    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        """One completion for ``job.prompt`` with ``job.seed``; raise a next_common error on failure."""
        ...
