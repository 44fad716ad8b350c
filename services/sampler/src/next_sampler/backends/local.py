"""``local``: generation inside the sampler process, the embedded default that needs no server.

Two engines behind one backend, chosen by ``local_engine``: ``llamacpp`` (the default: GGUF
weights, continuous batching and shared prompt prefixes on CPUs, see ``local_llamacpp``) and
``transformers`` (PyTorch on any device, see ``local_transformers``). Both take the same model
names (``next_common.models``): a packaged model, a .gguf file, a Hugging Face folder or hub id.
"""

from __future__ import annotations

from typing import Any

from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_sampler.backends.base import Backend

DEFAULT_MODEL = "smollm2-135m-instruct"


def make_local(options: dict[str, Any]) -> Backend:
    model = str(options.get("local_model") or DEFAULT_MODEL)
    if options.get("local_engine", "llamacpp") == "transformers":
        from next_sampler.backends.local_transformers import TransformersEngine

        return TransformersEngine(model, int(options.get("local_batch_size", 16)))
    from next_sampler.backends.local_llamacpp import DEFAULT_PRECISION, LlamaCppEngine

    return LlamaCppEngine(
        model,
        slots=int(options.get("local_slots", 32)),
        context=int(options.get("local_context", 4096)),
        threads=int(options.get("local_threads", 0)),
        precision=str(options.get("local_precision", DEFAULT_PRECISION)),
    )


@hookimpl
def next_register_sampler_backends(register: RegisterFn) -> None:
    register("local", make_local)
