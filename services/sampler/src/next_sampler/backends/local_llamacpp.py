"""The ``local`` backend's llama.cpp engine: llama.cpp's server loop in-process, through ``xllamacpp``.

Why it is fast on a CPU: continuous batching across requests (slots join and leave the running
batch), and the samples of one prompt are one request with ``n_cmpl`` children that share the
prompt's KV cells, so a 2,000-token prompt is read once for its 8 or 32 samples.

The contract is the transformers engine's: sample ``j`` of a prompt has seed ``seed + j`` (llama.cpp
seeds child ``j`` of an ``n_cmpl`` request with ``seed + j``, so a group of consecutive seeds is one
request), identical requests give identical samples, stop strings end a sample. Adapters are PEFT
folders converted once to GGUF LoRA (by content hash) and loaded at scale 0; each request sets
its own adapter's scale to 1, so the base model and every adapter are served by one loaded model.
Loading a new adapter restarts the in-process server once in-flight requests are done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError, NotFoundError, UnavailableError
from next_common.models import gguf_file, hf_folder, resolve_model
from next_sampler.backends.llamacpp_convert import adapter_gguf, model_gguf
from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams

log = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.005
TOP_K = 50  # transformers' generate() default, which the transformers engine has always sampled with
PRECISIONS = ("as-is", "f32", "f16", "bf16", "q8_0")
DEFAULT_PRECISION = "q8_0"  # batches best on CPUs (docs/sampler.md has the measurements)


@dataclass
class _Group:
    """Jobs of one prompt with consecutive seeds: one llama.cpp request with ``n_cmpl`` children."""

    prompt: str
    params: SamplingParams
    adapter: str
    jobs: list[tuple[SampleJob, asyncio.Future[Generation]]] = field(default_factory=list)


def default_threads() -> int:
    return len(os.sched_getaffinity(0))


class LlamaCppEngine:
    description = "in-process llama.cpp (xllamacpp): continuous batching, shared prompt prefixes, GGUF LoRA"

    def __init__(
        self,
        model: str,
        slots: int = 32,
        context: int = 4096,
        threads: int = 0,
        precision: str = DEFAULT_PRECISION,
        base_hf_dir: str | Path | None = None,
    ) -> None:
        """``model``: a packaged name, a .gguf file or a Hugging Face folder; ``context``: tokens per slot.

        ``precision`` "as-is" serves a GGUF file as it is; f16/bf16/q8_0/f32 convert the dequantized
        weights once (q8_0, the default, batches best: measurements in docs/sampler.md). ``base_hf_dir`` is the
        Hugging Face folder whose config adapters are converted against (default: ``model``'s).
        """
        if precision not in PRECISIONS:
            raise InvalidArgumentError("local_precision %r is not one of %s" % (precision, ", ".join(PRECISIONS)))
        self.model_name = model
        self._gguf = self._weights(model, precision)
        self._base_hf_dir = Path(base_hf_dir) if base_hf_dir else None
        self.slots = slots
        self.context = context
        self.threads = threads or default_threads()
        self._adapters: dict[str, Path] = {}  # name -> GGUF LoRA, in load order (the llama.cpp ids)
        self._pending: list[tuple[SampleJob, SamplingParams, str, asyncio.Future[Generation]]] = []
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="llamacpp")
        self._in_flight = 0
        self._idle: asyncio.Condition | None = None
        self._reloading = False
        self._closing = threading.Event()
        self._server = self._start()

    # -- model and server --------------------------------------------------------------
    @staticmethod
    def _weights(model: str, precision: str) -> Path:
        if precision == "as-is":
            try:
                return gguf_file(model)
            except InvalidArgumentError:
                precision = "f16"  # a Hugging Face folder: convert it (f16 keeps the weights' precision)
        return model_gguf(resolve_model(model), precision)

    def _start(self) -> Any:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self._gguf)
        params.n_parallel = self.slots
        # One KV stream per slot: with a unified pool every sequence's attention spans the cells of
        # all slots (measured 1.6x slower at 32 slots); n_cmpl children still copy the prompt's cells.
        params.kv_unified = False
        params.n_ctx = self.slots * self.context
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.warmup = False
        params.verbosity = -1  # llama.cpp's own log lines stay quiet; ours go through logging
        params.api_keys = [secrets.token_hex(16)]  # its HTTP listener on loopback answers no one
        params.lora_init_without_apply = True
        loras = []
        for path in self._adapters.values():
            info = xllamacpp.CommonAdapterLoraInfo()
            info.path = str(path)
            info.scale = 0.0
            loras.append(info)
        params.lora_adapters = loras
        # xllamacpp.Server returns before its loop thread has entered llama.cpp's task loop, and
        # the loop marks itself running when it enters: a Server dropped before then loses the
        # stop request and its destructor waits forever (the sampler hangs on shutdown or on an
        # adapter reload). One metrics request goes through that loop, so once it has answered,
        # the Server can be dropped at any time.
        params.endpoint_metrics = True
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:
            raise InvalidArgumentError("llama.cpp cannot load %s: %s" % (self._gguf, exc)) from None
        server.handle_metrics()
        return server

    # -- adapters ----------------------------------------------------------------------
    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    async def load_adapter(self, name: str, path: str) -> None:
        if not (Path(path) / "adapter_config.json").is_file():
            raise NotFoundError("no adapter at %s (adapter_config.json missing)" % path)
        converted = await asyncio.to_thread(lambda: adapter_gguf(path, self._base_hf_dir or self._base_folder()))
        idle = self._idle_condition()
        async with idle:
            self._reloading = True
            try:
                await idle.wait_for(lambda: self._in_flight == 0)
                adapters = dict(self._adapters)
                adapters.pop(name, None)
                adapters[name] = converted
                previous, self._adapters = self._adapters, adapters
                try:
                    self._server = await asyncio.to_thread(self._restart)
                except Exception:
                    self._adapters = previous
                    raise
            finally:
                self._reloading = False
                idle.notify_all()

    def _base_folder(self) -> Path:
        try:
            return hf_folder(self.model_name)
        except InvalidArgumentError:
            return Path(resolve_model(self.model_name))

    def _restart(self) -> Any:
        self._server = None  # the old server's loop thread exits when it is collected
        return self._start()

    def _idle_condition(self) -> asyncio.Condition:
        if self._idle is None:
            self._idle = asyncio.Condition()
        return self._idle

    # -- generation --------------------------------------------------------------------
    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        if adapter and adapter not in self._adapters:
            raise NotFoundError("no adapter %r loaded (loaded: %s)" % (adapter, ", ".join(self._adapters) or "none"))
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        self._pending.append((job, params, adapter, future))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch())
        return await future

    async def _dispatch(self) -> None:
        await asyncio.sleep(BATCH_WINDOW_S)  # let the samples of one request arrive together
        pending, self._pending = self._pending, []
        for group in self._groups(pending):
            task = asyncio.create_task(self._run_group(group))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _groups(self, pending: list[tuple[SampleJob, SamplingParams, str, asyncio.Future[Generation]]]) -> list[_Group]:
        by_key: dict[tuple[str, SamplingParams, str], list[tuple[SampleJob, asyncio.Future[Generation]]]] = {}
        for job, params, adapter, future in pending:
            by_key.setdefault((job.prompt, params, adapter), []).append((job, future))
        groups: list[_Group] = []
        for (prompt, params, adapter), jobs in by_key.items():
            jobs.sort(key=lambda item: item[0].seed)
            current: _Group | None = None
            for job, future in jobs:
                if current is None or len(current.jobs) >= self.slots or job.seed != current.jobs[-1][0].seed + 1:
                    current = _Group(prompt, params, adapter)
                    groups.append(current)
                current.jobs.append((job, future))
        return groups

    async def _run_group(self, group: _Group) -> None:
        idle = self._idle_condition()
        async with idle:
            await idle.wait_for(lambda: not self._reloading)
            self._in_flight += 1
        try:
            request = self._request(group)
            loop = asyncio.get_running_loop()
            futures = [future for _, future in group.jobs]

            def abandoned() -> bool:
                # read from the worker thread; a callers-gone group (cancelled RPC) or a closing
                # sampler stops generating at the next token instead of running to max_new_tokens
                return self._closing.is_set() or all(f.done() for f in futures)

            results = await loop.run_in_executor(
                self._pool, self._complete, self._server, request, len(group.jobs), abandoned
            )
            for (_, future), result in zip(group.jobs, results, strict=True):
                if not future.done():
                    future.set_result(result)
        except Exception as exc:
            for _, future in group.jobs:
                if not future.done():
                    future.set_exception(exc)
        finally:
            async with idle:
                self._in_flight -= 1
                idle.notify_all()

    def _request(self, group: _Group) -> dict[str, Any]:
        params = group.params
        ids = list(self._adapters)
        return {
            "prompt": group.prompt,
            "n_predict": params.max_new_tokens,
            # The transformers engine's distribution: generate() applies top_k=50 when it is unset, and
            # its order is temperature, top-k, top-p (llama.cpp's default takes top-p before temperature).
            "temperature": params.temperature,  # 0: greedy
            "top_k": TOP_K,
            "top_p": params.top_p,
            "samplers": ["top_k", "temperature", "top_p"],
            "min_p": 0.0,
            "repeat_penalty": 1.0,
            "seed": group.jobs[0][0].seed,
            "n_cmpl": len(group.jobs),
            "stop": list(params.stop),
            "cache_prompt": True,
            "stream": True,  # the last chunk of each child carries its own token counts
            "lora": [{"id": i, "scale": 1.0 if name == group.adapter else 0.0} for i, name in enumerate(ids)],
        }

    def close(self) -> None:
        """Stop every request at its next token and wait for the worker threads (they are not
        daemons: a request left running would keep a stopping sampler alive)."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _complete(
        server: Any, request: dict[str, Any], n: int, abandoned: Callable[[], bool] = lambda: False
    ) -> list[Generation]:
        texts: list[list[str]] = [[] for _ in range(n)]
        finals: dict[int, dict[str, Any]] = {}
        errors: list[str] = []

        def on_chunk(chunk: Any) -> bool:
            """True stops the request."""
            if abandoned():
                errors.append("request abandoned (its callers are gone or the sampler is stopping)")
                return True
            if not isinstance(chunk, dict) or "error" in chunk:
                errors.append(str(chunk.get("error") if isinstance(chunk, dict) else chunk))
                return True
            for choice in chunk.get("choices", ()):
                index = int(choice["index"])
                texts[index].append(choice.get("text") or "")
                if choice.get("finish_reason"):
                    finals[index] = {"finish": choice["finish_reason"], "usage": chunk.get("usage") or {}}
            return False

        callback: Callable[[Any], bool] = on_chunk
        server.handle_completions(request, callback)
        if errors:
            raise UnavailableError("llama.cpp: %s" % errors[0])
        if len(finals) != n:
            raise UnavailableError("llama.cpp finished %d of %d samples" % (len(finals), n))
        results = []
        for index in range(n):
            usage = finals[index]["usage"]
            finish = "length" if finals[index]["finish"] == "length" else "stop"  # "stop": EOS or a stop string
            results.append(
                Generation(
                    "".join(texts[index]),
                    int(usage.get("prompt_tokens", 0)),
                    int(usage.get("completion_tokens", 0)),
                    finish,
                )
            )
        return results
