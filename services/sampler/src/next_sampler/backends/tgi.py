"""``tgi``: text-generation-inference's ``/generate`` HTTP API.

N samples per prompt are N concurrent requests with distinct seeds (TGI caps ``best_of`` at 2
and refuses it with a seed). ``do_sample`` and ``details`` are always sent. 429, 424, 5xx and
connection errors are retried with bounded exponential backoff; 422 (validation) never is.
Requests in flight stay below the server's ``max_concurrent_requests``. The adapter goes in
``adapter_id``; TGI silently falls back to the base model for an unknown one, so only the
adapters the deployment declares (``SAMPLER_TGI_ADAPTERS``, TGI's ``LORA_ADAPTERS``) are
accepted, and the adapter asked for is recorded with every sample.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from next_common.errors import InvalidArgumentError
from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_sampler.backends.http import RetryingJsonClient
from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({424, 429, 500, 502, 503, 504})
FINISH_REASONS = {"length": "length", "eos_token": "eos", "stop_sequence": "stop"}


class TgiBackend:
    description = "text-generation-inference /generate (seeded concurrent requests, adapter_id)"

    def __init__(
        self,
        url: str,
        adapters: list[str],
        max_in_flight: int = 64,
        retries: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 600.0,
    ) -> None:
        if not url:
            raise InvalidArgumentError("the tgi backend needs SAMPLER_TGI_URL (e.g. http://tgi:80)")
        self._adapters = list(adapters)
        self.http = RetryingJsonClient(
            "TGI", url, RETRY_STATUS, max_in_flight, retries, backoff_s, timeout_s, describe_error=_error_message
        )

    def adapters(self) -> list[str]:
        return list(self._adapters)

    @staticmethod
    def payload(job: SampleJob, params: SamplingParams, adapter: str) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "do_sample": params.temperature > 0,
            "max_new_tokens": params.max_new_tokens,
            "seed": job.seed,
            "details": True,
            "decoder_input_details": False,
            "return_full_text": False,
            "stop": list(params.stop),
        }
        if params.temperature > 0:  # TGI rejects temperature 0; greedy is do_sample=false
            parameters["temperature"] = params.temperature
            if params.top_p < 1.0:
                parameters["top_p"] = params.top_p
        if adapter:
            parameters["adapter_id"] = adapter
        return {"inputs": job.prompt, "parameters": parameters}

    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        # 422 (validation) is outside RETRY_STATUS: refused at once, never retried.
        return self._parse(await self.http.post("/generate", self.payload(job, params, adapter)))

    @staticmethod
    def _parse(data: Any) -> Generation:
        if isinstance(data, list):  # TGI answers a list when called with a list of inputs
            data = data[0]
        details = data.get("details") or {}
        return Generation(
            text=data["generated_text"],
            prompt_tokens=len(details.get("prefill") or []),
            completion_tokens=int(details.get("generated_tokens", 0)),
            finish_reason=FINISH_REASONS.get(details.get("finish_reason", ""), details.get("finish_reason", "")),
        )

    async def close(self) -> None:
        await self.http.close()


def _error_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        return str(data.get("error", data))[:500]
    except ValueError:
        return resp.text[:500]


@hookimpl
def next_register_sampler_backends(register: RegisterFn) -> None:
    register(
        "tgi",
        lambda options: TgiBackend(
            options.get("tgi_url", ""),
            list(options.get("tgi_adapters", [])),
            int(options.get("tgi_max_in_flight", 64)),
            int(options.get("tgi_retries", 5)),
            float(options.get("tgi_backoff_s", 0.2)),
        ),
    )
