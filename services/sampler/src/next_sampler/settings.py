"""Typed settings of the sampler service (environment prefix ``SAMPLER_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from next_common.settings import ServiceSettings


class OpenAISettings(BaseSettings):
    """The ``openai`` backend's own settings (``SAMPLER_OPENAI_*``); ``SamplerSettings`` has them too."""

    model_config = SettingsConfigDict(env_prefix="SAMPLER_", frozen=True, extra="ignore")

    openai_url: str = Field(
        "", description="Base URL of an OpenAI-compatible server (vLLM, SGLang), e.g. http://vllm:8000."
    )
    openai_model: str = Field("", description="The served base model's name (what /v1/models lists).")
    openai_flavor: Literal["vllm", "sglang"] = Field("vllm", description="Which load-adapter endpoint to call.")
    openai_api_key: SecretStr = Field(
        SecretStr(""), description="Bearer token the server expects (vLLM --api-key); never logged."
    )
    openai_api_key_file: str = Field(
        "", description="A file holding the key instead (a mounted Kubernetes Secret), read once at start."
    )
    openai_timeout_s: float = Field(600.0, gt=0, description="Seconds one HTTP attempt may take.")
    openai_max_retries: int = Field(
        5, ge=0, description="Retries of connection errors, timeouts, 408, 409, 429 and 5xx (Retry-After honoured)."
    )
    openai_max_in_flight: int = Field(64, ge=1, description="Requests this backend has in flight at once.")


class SamplerSettings(ServiceSettings, OpenAISettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLER_", frozen=True, extra="ignore")

    port: int = Field(50052, ge=0, le=65535)
    backends: list[str] = Field(default_factory=lambda: ["local"], description="Backends to serve, by name.")
    default_backend: str = "local"
    replay_file: str = Field("", description="JSONL of recorded completions for the replay backend.")
    tgi_url: str = Field("", description="Base URL of a TGI server, e.g. http://tgi:80.")
    tgi_adapters: list[str] = Field(default_factory=list, description="Adapters TGI was started with (LORA_ADAPTERS).")
    tgi_max_in_flight: int = Field(64, ge=1, description="Requests in flight per HTTP backend (TGI's cap is 128).")
    tgi_retries: int = Field(5, ge=0, description="Retries of 429/5xx/connection errors (HTTP backends).")
    tgi_backoff_s: float = Field(0.2, ge=0)
    tgi_deployment: str = Field(
        "",
        description="TGI's Kubernetes Deployment: to load an adapter the sampler adds it to LORA_ADAPTERS there and "
        "waits for the rollout (next-sampler[k8s]; get and patch on it). Empty: only SAMPLER_TGI_ADAPTERS.",
    )
    tgi_namespace: str = Field("", description="The Deployment's namespace (default: the sampler pod's own).")
    tgi_rollout_timeout_s: float = Field(1800.0, gt=0, description="How long a rollout of TGI may take.")
    local_model: str = Field(
        "smollm2-135m-instruct",
        description="A packaged model (smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct, "
        "qwen2.5-coder-1.5b-instruct), a .gguf file, a Hugging Face folder or hub id.",
    )
    local_engine: Literal["llamacpp", "transformers"] = Field(
        "llamacpp", description="llamacpp: GGUF, continuous batching, shared prefixes (CPU); transformers: PyTorch."
    )
    local_batch_size: int = Field(16, ge=1, description="transformers engine: sequences per batch.")
    local_slots: int = Field(32, ge=1, description="llamacpp engine: sequences decoded together.")
    local_context: int = Field(4096, ge=256, description="llamacpp engine: KV cache tokens per slot.")
    local_threads: int = Field(0, ge=0, description="llamacpp engine: CPU threads (0: the CPUs this process may use).")
    local_precision: Literal["as-is", "f32", "f16", "bf16", "q8_0"] = Field(
        "q8_0", description="llamacpp engine: weights converted once to this precision (as-is: a GGUF as it is)."
    )
    canary_prompt: str = Field("def fibonacci(n):", description="Greedy canary that verifies adapter activation.")
    canary_max_new_tokens: int = Field(32, ge=1)
    max_concurrency: int = Field(64, ge=1, description="Generations in flight across all requests.")
    max_queue: int = Field(64, ge=0, description="Requests waiting beyond those running; more is RESOURCE_EXHAUSTED.")
    max_prompts: int = Field(10_000, ge=1)
    max_samples: int = Field(1_000, ge=1, description="Upper bound of SamplingParams.n.")
