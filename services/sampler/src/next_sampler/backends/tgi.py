"""``tgi``: text-generation-inference's ``/generate`` HTTP API.

N samples per prompt are N concurrent requests with distinct seeds (TGI caps ``best_of`` at 2
and refuses it with a seed). ``do_sample`` and ``details`` are always sent. 429, 424, 5xx and
connection errors are retried with bounded exponential backoff; 422 (validation) never is.
Requests in flight stay below the server's ``max_concurrent_requests``. The adapter goes in
``adapter_id``; TGI silently falls back to the base model for an unknown one, so only the
adapters the deployment declares (``SAMPLER_TGI_ADAPTERS``, TGI's ``LORA_ADAPTERS``) are
accepted, and the adapter asked for is recorded with every sample.

TGI loads adapters only when it starts. With ``SAMPLER_TGI_DEPLOYMENT`` (TGI on Kubernetes), the
backend can load one anyway: ``load_adapter`` adds ``name=path`` to ``LORA_ADAPTERS`` on TGI's
Deployment, waits for the rollout (``next_sampler.backends.tgi_rollout``) and for TGI to answer
``/health`` again; the engine then verifies the adapter with its canary. At start the backend
reads the adapters already in ``LORA_ADAPTERS``, so a restarted sampler serves them too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx

from next_common.errors import InvalidArgumentError, UnavailableError
from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_sampler.backends.http import RetryingJsonClient
from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams

if TYPE_CHECKING:
    from next_sampler.backends.tgi_rollout import TgiDeployment

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({424, 429, 500, 502, 503, 504})
HEALTH_TIMEOUT_S = 300.0  # after a rollout, until TGI answers through its Service
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
        deployment: TgiDeployment | None = None,
    ) -> None:
        if not url:
            raise InvalidArgumentError("the tgi backend needs SAMPLER_TGI_URL (e.g. http://tgi:80)")
        self.url = url.rstrip("/")
        self._adapters = list(adapters)
        self.deployment = deployment
        if deployment is not None:  # what TGI was started with, e.g. before this sampler restarted
            self._add_names(deployment.adapters())
        self.http = RetryingJsonClient(
            "TGI", url, RETRY_STATUS, max_in_flight, retries, backoff_s, timeout_s, describe_error=_error_message
        )

    def _add_names(self, names: Iterable[str]) -> None:
        self._adapters += [n for n in names if n not in self._adapters]

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

    async def load_adapter(self, name: str, path: str) -> None:
        """Add ``name=path`` to TGI's ``LORA_ADAPTERS`` and wait until TGI serves again."""
        if self.deployment is None:
            raise InvalidArgumentError(
                "backend 'tgi' cannot load adapters at run time without SAMPLER_TGI_DEPLOYMENT: TGI loads adapters "
                "only at start (LORA_ADAPTERS); name its Deployment so the sampler can add %r and roll it out, or "
                "start TGI with it, list it in SAMPLER_TGI_ADAPTERS and activate it with adapter_loading: preloaded"
                % name
            )
        rollout = await self.deployment.add_adapter(name, path)
        await self._wait_serving(HEALTH_TIMEOUT_S)
        self._add_names(rollout.adapters)
        log.info(
            "TGI serves adapter %s after %.0f s (%s)",
            name,
            rollout.seconds,
            "rolled out %s" % (rollout.replica_set or "a new ReplicaSet") if rollout.patched else "already listed",
        )

    async def _wait_serving(self, timeout_s: float) -> None:
        """Until TGI answers ``/health`` through its URL (the Service may lag the new pod)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                try:
                    resp = await client.get(self.url + "/health")
                    if resp.status_code == 200:
                        return
                    last = "%d: %s" % (resp.status_code, resp.text[:200])
                except httpx.TransportError as exc:
                    last = "%s: %s" % (type(exc).__name__, exc)
                if time.monotonic() >= deadline:
                    raise UnavailableError(
                        "TGI at %s does not answer /health %.0f s after its rollout: %s" % (self.url, timeout_s, last)
                    )
                await asyncio.sleep(1.0)

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
        if self.deployment is not None:
            self.deployment.close()


def _error_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        return str(data.get("error", data))[:500]
    except ValueError:
        return resp.text[:500]


def tgi_deployment(options: dict[str, Any]) -> TgiDeployment | None:
    """TGI's Deployment when ``tgi_deployment`` names one (needs ``next-sampler[k8s]``)."""
    name = str(options.get("tgi_deployment", ""))
    if not name:
        return None
    try:
        from next_sampler.backends.tgi_rollout import TgiDeployment
    except ImportError as exc:
        raise InvalidArgumentError(
            "SAMPLER_TGI_DEPLOYMENT needs the Kubernetes client: pip install 'next-sampler[k8s]' (%s)" % exc
        ) from None
    return TgiDeployment.from_environment(
        name, str(options.get("tgi_namespace", "")), float(options.get("tgi_rollout_timeout_s", 1800.0))
    )


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
            deployment=tgi_deployment(options),
        ),
    )
