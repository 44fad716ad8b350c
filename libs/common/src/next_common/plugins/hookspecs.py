"""Hook specifications: the documented contract for plugins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from next_common.plugins import hookspec

RegisterFn = Callable[[str, Any], None]


@hookspec
def next_register_trace_formats(register: RegisterFn) -> None:
    """Register trace formats by name.

    :param register: call ``register(name, format)`` once per format. ``format`` is an
        object with a ``description: str`` attribute and a method
        ``render(trace: next_tracer.formats.base.CapturedTrace, options: RenderOptions) -> str``.
        Names are unique across all plugins; a duplicate is an error at start-up.

    Called once, when the tracer builds its format registry.
    """


@hookspec
def next_register_bug_sources(register: RegisterFn) -> None:
    """Register sources of buggy programs for building Mbpp-R by name.

    :param register: call ``register(name, factory)`` once per source. ``factory(options)``
        (``options`` a dict of builder settings, e.g. ``{"completions": PATH}``) returns an
        object with ``async candidates(problem, seed) -> list[tuple[str, str]]``: candidate
        buggy programs as ``(kind, program)``, best first. The builder keeps those that fail
        at least one test, deduplicated, up to its cap per problem.

    Called once, when a builder resolves ``--bugs NAME``.
    """


@hookspec
def next_register_sampler_backends(register: RegisterFn) -> None:
    """Register sampler backends by name.

    :param register: call ``register(name, factory)``; ``factory(options)`` (a dict of the
        sampler's settings, e.g. ``{"replay_file": PATH}``) returns an object with
        ``description: str``, ``adapters() -> list[str]`` and
        ``async generate(job, params, adapter) -> next_sampler.generation.Generation``.

    Called once, when the sampler builds its backends; only the backends the server is
    configured to serve are constructed.
    """


@hookspec
def next_register_sample_filters(register: RegisterFn) -> None:
    """Register sample filters for self-training rounds by name.

    :param register: call ``register(name, factory)``; ``factory(options)`` (a dict of the
        run's filter settings, e.g. ``{"max_completion_chars": 6000}``) returns an object with
        ``description: str`` and ``keep(samples: list[next_controller.filters.Sample]) -> list[bool]``:
        one decision per sample of a round, in order. Filters see a round's samples together
        (so a filter can deduplicate) after the earlier filters in the run's list dropped theirs.

    Called once per run, when the controller resolves ``filters.names``; each filter's drop
    count is reported per round.
    """
