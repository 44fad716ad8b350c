"""What the sampler runs inside: one generation per (prompt, seed), as backends see it."""

from __future__ import annotations

from dataclasses import dataclass

from nextapi.sampler.types import SamplingParams


@dataclass(frozen=True)
class Generation:
    """What a backend returns for one (prompt, seed)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length" or "eos"


@dataclass(frozen=True)
class SampleJob:
    """One generation to run: sample ``sample_index`` of prompt ``prompt_index``, with its own seed."""

    prompt_index: int
    sample_index: int
    prompt: str
    seed: int


def expand(prompts: list[str], params: SamplingParams) -> list[SampleJob]:
    """N jobs per prompt with distinct seeds (seed + j): reproducible, never one shared seed."""
    return [SampleJob(i, j, prompt, params.seed + j) for i, prompt in enumerate(prompts) for j in range(params.n)]
