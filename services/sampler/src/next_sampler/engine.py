"""The sampler's domain logic: validate, fan out N samples per prompt, bound the work."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from next_common.errors import InvalidArgumentError, NotFoundError, ResourceExhaustedError
from next_common.plugins.manager import Registry, collect
from next_sampler import metrics
from next_sampler.backends import BUILTIN_BACKEND_PLUGINS
from next_sampler.backends.base import Backend
from next_sampler.generation import SampleJob, expand
from next_sampler.settings import SamplerSettings
from nextapi.sampler.types import Activation, Completion, SamplingParams


def backend_registry(extra_plugins: Iterable[Any] = (), load_entry_points: bool = True) -> Registry:
    return collect(
        "sampler backend", "next_register_sampler_backends", BUILTIN_BACKEND_PLUGINS, extra_plugins, load_entry_points
    )


class SamplerEngine:
    """Everything the servicer and the in-process client call."""

    def __init__(self, settings: SamplerSettings, registry: Registry | None = None) -> None:
        self.settings = settings
        registry = registry or backend_registry()
        unknown = [name for name in settings.backends if name not in registry]
        if unknown:
            raise InvalidArgumentError(
                "unknown backend(s) %s; available: %s" % (", ".join(unknown), ", ".join(registry.names()))
            )
        options = settings.model_dump()
        self.backends: dict[str, Backend] = {name: registry.get(name)(options) for name in settings.backends}
        if settings.default_backend not in self.backends:
            raise InvalidArgumentError(
                "default backend %r is not among the served backends %s"
                % (settings.default_backend, ", ".join(self.backends))
            )
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._requests = 0

    def _validate(self, prompts: list[str], params: SamplingParams, backend: str, adapter: str) -> Backend:
        if not prompts:
            raise InvalidArgumentError("no prompts given")
        if len(prompts) > self.settings.max_prompts:
            raise InvalidArgumentError("%d prompts exceed the limit of %d" % (len(prompts), self.settings.max_prompts))
        if not 1 <= params.n <= self.settings.max_samples:
            raise InvalidArgumentError("n must be between 1 and %d" % self.settings.max_samples)
        if params.temperature < 0 or not 0 < params.top_p <= 1 or params.max_new_tokens < 1:
            raise InvalidArgumentError("temperature must be >= 0, top_p in (0, 1], max_new_tokens >= 1")
        name = backend or self.settings.default_backend
        if name not in self.backends:
            raise InvalidArgumentError("unknown backend %r; served: %s" % (name, ", ".join(sorted(self.backends))))
        found = self.backends[name]
        if adapter and adapter not in found.adapters():
            raise NotFoundError(
                "backend %r has no adapter %r (available: %s)" % (name, adapter, ", ".join(found.adapters()) or "none")
            )
        return found

    async def _one(self, backend: Backend, job: SampleJob, params: SamplingParams, adapter: str) -> Completion:
        name = next((n for n, b in self.backends.items() if b is backend), "unknown")
        async with self._slots:
            metrics.IN_FLIGHT.inc()
            started = time.monotonic()
            try:
                gen = await backend.generate(job, params, adapter)
            finally:
                metrics.IN_FLIGHT.dec()
        metrics.LATENCY.labels(name).observe(time.monotonic() - started)
        metrics.COMPLETIONS.labels(name, gen.finish_reason).inc()
        metrics.TOKENS.labels(name).inc(gen.completion_tokens)
        return Completion(
            job.prompt_index,
            job.sample_index,
            gen.text,
            gen.prompt_tokens,
            gen.completion_tokens,
            gen.finish_reason,
            adapter,
            job.seed,
        )

    def _admit(self) -> None:
        if self._requests >= self.settings.max_queue + 1 and self._slots.locked():
            raise ResourceExhaustedError("sampler queue is full; retry later")
        self._requests += 1

    async def sample(
        self, prompts: list[str], params: SamplingParams, backend: str = "", adapter: str = ""
    ) -> list[Completion]:
        found = self._validate(prompts, params, backend, adapter)
        self._admit()
        metrics.REQUESTS.labels(backend or self.settings.default_backend).inc()
        try:
            jobs = expand(prompts, params)
            return list(await asyncio.gather(*(self._one(found, job, params, adapter) for job in jobs)))
        finally:
            self._requests -= 1

    async def stream(
        self, prompts: list[str], params: SamplingParams, backend: str = "", adapter: str = ""
    ) -> AsyncIterator[tuple[Completion, int, int]]:
        """Completions as they finish, with (done, total)."""
        found = self._validate(prompts, params, backend, adapter)
        self._admit()
        tasks: list[asyncio.Task[Completion]] = []
        try:
            jobs = expand(prompts, params)
            tasks = [asyncio.create_task(self._one(found, job, params, adapter)) for job in jobs]
            for done, finished in enumerate(asyncio.as_completed(tasks), start=1):
                yield await finished, done, len(tasks)
        finally:
            for task in tasks:
                task.cancel()
            self._requests -= 1

    async def activate(self, backend: str, adapter: str, path: str = "", canary: str = "") -> Activation:
        """Load ``adapter`` if a path is given, then verify it: a greedy canary must change under it."""
        name = backend or self.settings.default_backend
        if name not in self.backends:
            raise InvalidArgumentError("unknown backend %r; served: %s" % (name, ", ".join(sorted(self.backends))))
        if not adapter:
            raise InvalidArgumentError("no adapter named")
        found = self.backends[name]
        if path:
            loader = getattr(found, "load_adapter", None)
            if loader is None:
                raise InvalidArgumentError(
                    "backend %r cannot load adapters at run time (TGI: start it with LORA_ADAPTERS)" % name
                )
            await loader(adapter, path)
        if adapter not in found.adapters():
            raise NotFoundError(
                "backend %r has no adapter %r (available: %s)" % (name, adapter, ", ".join(found.adapters()) or "none")
            )
        params = SamplingParams(max_new_tokens=self.settings.canary_max_new_tokens)
        job = SampleJob(0, 0, canary or self.settings.canary_prompt, 0)
        base = await found.generate(job, params, "")
        tuned = await found.generate(job, params, adapter)
        verified = base.text != tuned.text
        message = "" if verified else "the canary's greedy output is identical with and without the adapter"
        return Activation(verified, base.text, tuned.text, message)

    def close(self) -> None:
        """Stop the backends' work, from code without an event loop (a backend with nothing to stop has
        no ``close``; one whose ``close`` is a coroutine needs ``aclose``, on the loop its clients use)."""
        for backend in self.backends.values():
            close = getattr(backend, "close", None)
            if close is not None and not inspect.iscoroutinefunction(close):
                close()

    async def aclose(self) -> None:
        """Stop every backend's work on this loop: async ``close`` awaited, blocking ones in a thread."""
        for backend in self.backends.values():
            close = getattr(backend, "close", None)
            if close is None:
                continue
            if inspect.iscoroutinefunction(close):
                await close()
            else:
                await asyncio.to_thread(close)

    def describe(self) -> list[tuple[str, str, list[str]]]:
        return [(name, b.description, b.adapters()) for name, b in sorted(self.backends.items())]
