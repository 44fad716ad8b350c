"""``openai``: OpenAI-compatible ``/v1/completions`` (vLLM, SGLang, and TGI's own route).

Each sample is one request with its own seed. A LoRA adapter is selected by passing its name
as ``model`` (how vLLM and SGLang serve adapters) and loaded at run time through the server's
load-adapter endpoint (vLLM: ``/v1/load_lora_adapter``, SGLang: ``/load_lora_adapter``).
"""

from __future__ import annotations

import logging
from typing import Any

from next_common.errors import InvalidArgumentError
from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_sampler.backends.http import RetryingJsonClient
from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
LOAD_ENDPOINTS = {"vllm": "/v1/load_lora_adapter", "sglang": "/load_lora_adapter"}


class OpenAIBackend:
    description = "OpenAI-compatible /v1/completions (vLLM, SGLang); adapters loaded at run time"

    def __init__(
        self,
        url: str,
        model: str,
        flavor: str = "vllm",
        api_key: str = "",
        max_in_flight: int = 64,
        retries: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 600.0,
    ) -> None:
        if not url or not model:
            raise InvalidArgumentError("the openai backend needs SAMPLER_OPENAI_URL and SAMPLER_OPENAI_MODEL")
        if flavor not in LOAD_ENDPOINTS:
            raise InvalidArgumentError("SAMPLER_OPENAI_FLAVOR must be one of %s" % ", ".join(LOAD_ENDPOINTS))
        self.model = model
        self.flavor = flavor
        self._adapters: dict[str, str] = {}
        headers = {"Authorization": "Bearer " + api_key} if api_key else {}
        self.http = RetryingJsonClient(
            "OpenAI-compatible server", url, RETRY_STATUS, max_in_flight, retries, backoff_s, timeout_s, headers=headers
        )

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    def payload(self, job: SampleJob, params: SamplingParams, adapter: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": adapter or self.model,
            "prompt": job.prompt,
            "n": 1,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": job.seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        data = await self.http.post("/v1/completions", self.payload(job, params, adapter))
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Generation(
            choice["text"],
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            "length" if choice.get("finish_reason") == "length" else "stop",
        )

    async def load_adapter(self, name: str, path: str) -> None:
        await self.http.post(LOAD_ENDPOINTS[self.flavor], {"lora_name": name, "lora_path": path})
        self._adapters[name] = path


@hookimpl
def next_register_sampler_backends(register: RegisterFn) -> None:
    register(
        "openai",
        lambda options: OpenAIBackend(
            options.get("openai_url", ""),
            options.get("openai_model", ""),
            options.get("openai_flavor", "vllm"),
            options.get("openai_api_key", ""),
            int(options.get("tgi_max_in_flight", 64)),
            int(options.get("tgi_retries", 5)),
            float(options.get("tgi_backoff_s", 0.2)),
        ),
    )
