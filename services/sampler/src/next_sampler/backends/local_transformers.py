"""The ``local`` backend's transformers engine: plain PyTorch, any device, the reference the
llama.cpp engine is checked against.

Requests are gathered into batches (same sampling settings and adapter) and generated
together; LoRA adapters are loaded with PEFT next to the base weights and switched without
reloading the model. Models are named as in ``next_common.models`` (packaged, GGUF, folder, hub id).

A batch is seeded with its first job's seed: identical requests reproduce identical samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError, NotFoundError
from next_common.models import SMOLLM2, resolve_model
from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams

log = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.005


class TransformersEngine:
    description = "in-process transformers: batched generation, PEFT adapters switched in place"

    def __init__(
        self, model: str = SMOLLM2, batch_size: int = 16, device: str = "", model_obj: Any = None, tokenizer: Any = None
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if model_obj is None:
            path = resolve_model(model)
            try:
                tokenizer = AutoTokenizer.from_pretrained(path)
                dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
                model_obj = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            except OSError as exc:
                raise InvalidArgumentError("cannot load model %r: %s" % (model, exc)) from None
        self.model = model_obj.to(self.device).eval()
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size
        self._adapters: dict[str, str] = {}
        self._pending: list[tuple[SampleJob, SamplingParams, str, asyncio.Future[Generation]]] = []
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- adapters ----------------------------------------------------------------------
    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    async def load_adapter(self, name: str, path: str) -> None:
        if not (Path(path) / "adapter_config.json").is_file():
            raise NotFoundError("no adapter at %s (adapter_config.json missing)" % path)
        async with self._lock:
            await asyncio.to_thread(self._load_adapter, name, path)
        self._adapters[name] = path

    def _load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            if name in self.model.peft_config:
                self.model.delete_adapter(name)
            self.model.load_adapter(path, adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name).to(self.device).eval()

    # -- generation --------------------------------------------------------------------
    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        self._pending.append((job, params, adapter, future))
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.create_task(self._batches())
        assert self._wake is not None
        self._wake.set()
        return await future

    async def _batches(self) -> None:
        assert self._wake is not None
        while self._pending:
            await asyncio.sleep(BATCH_WINDOW_S)  # let concurrent requests join the batch
            first = self._pending[0]
            key = (first[1], first[2])
            batch = [p for p in self._pending if (p[1], p[2]) == key][: self.batch_size]
            for item in batch:
                self._pending.remove(item)
            try:
                async with self._lock:
                    results = await asyncio.to_thread(self._run, [b[0] for b in batch], key[0], key[1])
                for (_, _, _, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            except Exception as exc:
                for _, _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    def _run(self, jobs: list[SampleJob], params: SamplingParams, adapter: str) -> list[Generation]:
        torch = self.torch
        enc = self.tokenizer([j.prompt for j in jobs], return_tensors="pt", padding=True).to(self.device)
        context: Any = contextlib.nullcontext()
        if adapter:
            self.model.set_adapter(adapter)
        elif hasattr(self.model, "disable_adapter") and self._adapters:
            context = self.model.disable_adapter()
        torch.manual_seed(jobs[0].seed)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": params.temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        with context, torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        eos = self.tokenizer.eos_token_id
        results = []
        for row, attention in zip(out, enc["attention_mask"], strict=True):
            new = row[prompt_len:].tolist()
            finish = "length"
            if eos is not None and eos in new:
                new = new[: new.index(eos)]
                finish = "eos"
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            for stop in params.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            results.append(Generation(text, int(attention.sum()), len(new), finish))
        return results
