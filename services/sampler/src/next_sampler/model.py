"""Domain types of the sampler (no gRPC here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    """What a backend returns for one (prompt, seed)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length" or "eos"


@dataclass(frozen=True)
class Completion:
    prompt_index: int
    sample_index: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    adapter: str
    seed: int


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


@dataclass(frozen=True)
class Activation:
    verified: bool
    base_output: str
    adapter_output: str
    message: str = ""
