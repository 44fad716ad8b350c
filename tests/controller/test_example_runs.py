"""The run files under examples/runs are valid configs whose filters, formats and model exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from next_common.models import PACKAGED
from next_controller.config import load_run_config
from next_controller.filters import filter_registry

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "runs").glob("*.yaml"))


def test_the_examples_are_there() -> None:
    assert [p.name for p in EXAMPLES] == ["learning-cpu.yaml"]  # ignored or missing files would skip silently


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_run_files_validate(path: Path) -> None:
    config = load_run_config(path)
    known = filter_registry(load_entry_points=False).names()
    assert set(config.filters.names) <= set(known), set(config.filters.names) - set(known)
    if config.services.mode == "embedded" and config.services.sampler_backend == "local":
        assert config.base_model in PACKAGED or Path(config.base_model).suffix == ".gguf"
