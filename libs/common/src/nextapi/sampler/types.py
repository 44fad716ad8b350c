"""The sampler's domain types: what clients send and get back (no gRPC here; ``convert`` maps them)."""

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
class Activation:
    verified: bool
    base_output: str
    adapter_output: str
    message: str = ""
