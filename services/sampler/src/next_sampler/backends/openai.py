"""``openai``: OpenAI-compatible ``/v1/completions`` (vLLM, SGLang, llama.cpp's server, TGI's own route).

One ``openai.AsyncOpenAI`` client is kept for the backend's lifetime (its connection pool is
reused by every request) and closed by ``close()``. Its retries are the ones used: connection
errors, timeouts, 408, 409, 429 and 5xx are retried up to ``openai_max_retries`` times with
jittered exponential backoff (0.5 s doubling to 8 s, minus up to 25%), and a ``Retry-After``
(or ``retry-after-ms``) of up to 120 s is waited out instead; any other status is refused at
once. Requests in flight are capped at ``openai_max_in_flight``.

Each sample is one request with its own seed (``seed + j``, from ``next_sampler.generation``). A
LoRA adapter is selected by passing its name as ``model`` (how vLLM and SGLang serve adapters)
and loaded at run time through the server's load-adapter endpoint (vLLM:
``/v1/load_lora_adapter``, SGLang: ``/load_lora_adapter``).

A server that cannot be reached, or that refuses or breaks off a request, raises a
``next_common`` error naming the URL; such a sample never becomes a completion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path
from typing import Any

import openai

from next_common.errors import InvalidArgumentError, NextError, NotFoundError, UnavailableError
from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_sampler.generation import Generation, SampleJob
from next_sampler.settings import OpenAISettings
from nextapi.sampler.types import SamplingParams

log = logging.getLogger(__name__)

LOAD_ENDPOINTS = {"vllm": "/v1/load_lora_adapter", "sglang": "/load_lora_adapter"}
COMPLETIONS = "/v1/completions"
CLOSE_TIMEOUT_S = 10.0


def read_api_key(settings: OpenAISettings) -> str:
    """``openai_api_key``, or the contents of ``openai_api_key_file`` (stripped); never both."""
    key = settings.openai_api_key.get_secret_value()
    if not settings.openai_api_key_file:
        return key
    if key:
        raise InvalidArgumentError("set SAMPLER_OPENAI_API_KEY or SAMPLER_OPENAI_API_KEY_FILE, not both")
    try:
        return Path(settings.openai_api_key_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidArgumentError(
            "SAMPLER_OPENAI_API_KEY_FILE %s cannot be read: %s" % (settings.openai_api_key_file, exc.strerror)
        ) from None


def server_root(url: str) -> str:
    """``http://host:8000`` from ``http://host:8000``, ``http://host:8000/`` or ``http://host:8000/v1``."""
    root = url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    if not root.startswith(("http://", "https://")):
        raise InvalidArgumentError("SAMPLER_OPENAI_URL must start with http:// or https://, not %r" % url)
    return root


def finish_reason(choice: Any) -> str | None:
    """Ours ("length", "stop", "eos") from an OpenAI choice; None for anything else (an abort,
    a content filter). vLLM says which stop ended a sample in ``stop_reason``, SGLang in
    ``matched_stop``: a string is a stop string ("stop"), a token id or None the model's own end
    ("eos"). llama.cpp's server does not say, and "stop" covers both, as in the local engine."""
    reason = choice.finish_reason
    if reason == "length":
        return "length"
    if reason != "stop":
        return None
    extra: Mapping[str, Any] = choice.model_extra or {}
    for key in ("stop_reason", "matched_stop"):
        if key in extra:
            return "stop" if isinstance(extra[key], str) else "eos"
    return "stop"


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])[:500]
    if isinstance(body, Mapping) and isinstance(body.get("detail"), str):
        return str(body["detail"])[:500]
    return (exc.response.text or exc.message)[:500]


class OpenAIBackend:
    description = "OpenAI-compatible /v1/completions (vLLM, SGLang, llama.cpp); adapters loaded at run time"

    def __init__(self, settings: OpenAISettings) -> None:
        if not settings.openai_url or not settings.openai_model:
            raise InvalidArgumentError("the openai backend needs SAMPLER_OPENAI_URL and SAMPLER_OPENAI_MODEL")
        self.settings = settings
        self.url = server_root(settings.openai_url)
        self.model = settings.openai_model
        self._adapters: dict[str, str] = {}
        api_key = read_api_key(settings)
        # Nothing is taken from the OPENAI_* variables meant for api.openai.com: no organization or
        # project header, and without a key of ours no Authorization header at all.
        # (The client checks per request that Authorization is either set or omitted on purpose.)
        self._headers: dict[str, Any] = {"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit}
        if not api_key:
            self._headers["Authorization"] = openai.omit
        self.client = openai.AsyncOpenAI(
            base_url=self.url + "/v1",
            api_key=api_key or "none",
            max_retries=settings.openai_max_retries,
            timeout=openai.Timeout(settings.openai_timeout_s, connect=min(settings.openai_timeout_s, 10.0)),
        )
        self._in_flight = asyncio.Semaphore(settings.openai_max_in_flight)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the client's connections belong to
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        self._bind_loop()
        try:
            async with self._in_flight:
                result = await self.client.completions.create(
                    model=adapter or self.model,
                    prompt=job.prompt,
                    n=1,
                    max_tokens=params.max_new_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    seed=job.seed,
                    stop=list(params.stop) if params.stop else openai.omit,
                    extra_headers=self._headers,
                )
        except openai.APIError as exc:
            raise self._error(COMPLETIONS, exc) from None
        if len(result.choices) != 1:
            raise UnavailableError(
                "OpenAI-compatible server %s%s answered %d choices to a request for 1"
                % (self.url, COMPLETIONS, len(result.choices))
            )
        choice = result.choices[0]
        finish = finish_reason(choice)
        if finish is None:
            raise UnavailableError(
                "OpenAI-compatible server %s%s ended a sample with finish_reason %r"
                % (self.url, COMPLETIONS, choice.finish_reason)
            )
        usage = result.usage
        return Generation(
            choice.text or "",
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            finish,
        )

    async def load_adapter(self, name: str, path: str) -> None:
        self._bind_loop()
        endpoint = LOAD_ENDPOINTS[self.settings.openai_flavor]
        try:
            async with self._in_flight:
                # vLLM answers in plain text, SGLang in JSON: neither is parsed
                await self.client.post(
                    self.url + endpoint,
                    body={"lora_name": name, "lora_path": path},
                    cast_to=str,
                    options={"headers": self._headers},
                )
        except openai.APIError as exc:
            raise self._error(endpoint, exc) from None
        self._adapters[name] = path

    def _error(self, path: str, exc: openai.APIError) -> NextError:
        where = "OpenAI-compatible server %s%s" % (self.url, path)
        # the client numbers its attempts in a header of the request (a Retry-After over 120 s
        # ends the retries early)
        retried = exc.request.headers.get("x-stainless-retry-count", "") if exc.request else ""
        attempts = int(retried) + 1 if retried.isdigit() else self.settings.openai_max_retries + 1
        if isinstance(exc, openai.APIStatusError):
            status, detail = exc.status_code, _detail(exc)
            if status in (408, 409, 429) or status >= 500:
                return UnavailableError("%s answered %d after %d attempts: %s" % (where, status, attempts, detail))
            if status == 404:
                return NotFoundError("%s answered 404: %s" % (where, detail))
            return InvalidArgumentError("%s refused the request (%d): %s" % (where, status, detail))
        if isinstance(exc, openai.APIConnectionError):  # APITimeoutError too
            cause = exc.__cause__
            reason = "%s (%s: %s)" % (exc.message, type(cause).__name__, cause) if cause else exc.message
            return UnavailableError("%s cannot be reached after %d attempts: %s" % (where, attempts, reason))
        return UnavailableError("%s answered something unreadable: %s" % (where, exc.message))

    # -- lifetime ------------------------------------------------------------------------
    def _bind_loop(self) -> None:
        if self._closed:
            raise UnavailableError("the openai backend is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        self._closed = True
        await self.client.close()

    def close(self) -> None:
        """Close the kept client. ``SamplerEngine.close`` calls this from a worker thread while the
        serving loop runs (the client is closed on that loop), or from the loop itself (the close
        is scheduled there), or after that loop has stopped."""
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and loop is running:
            self._close_task = loop.create_task(self.client.close())
        elif loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self.client.close(), loop)
            try:
                future.result(CLOSE_TIMEOUT_S)
            except FutureTimeoutError:
                log.warning("the openai backend's HTTP client did not close in %.0f s", CLOSE_TIMEOUT_S)
        # else never used (no connection to hand back), or its loop has stopped (they went with it)


def make_openai(options: dict[str, Any]) -> OpenAIBackend:
    """The backend from the sampler's settings as a dict (its ``openai_*`` fields)."""
    fields = {name: options[name] for name in OpenAISettings.model_fields if name in options}
    return OpenAIBackend(OpenAISettings.model_validate(fields))


@hookimpl
def next_register_sampler_backends(register: RegisterFn) -> None:
    register("openai", make_openai)
