"""The run files under examples/runs are valid configs whose filters, formats and model exist, each
headed by what it is for and how to run it, and ``next run --check`` on each, with task files
built into a temporary folder, finds no problem but those of the machine it is not meant for."""

from __future__ import annotations

from pathlib import Path

import pytest

from next_common.models import PACKAGED, check_model_exists
from next_controller.check import NOTE, OK, PROBLEM, run_checks
from next_controller.cli import build_parser
from next_controller.config import load_run_config
from next_controller.filters import filter_registry
from tests.controller.run_files import EXAMPLES, data_overrides, header_commands, mbpp_r, mbpp_source, next_argv

__all__ = ["mbpp_r", "mbpp_source"]  # fixtures

RUN_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_the_examples_are_there() -> None:
    # ignored or missing files would skip silently
    assert [p.name for p in RUN_FILES] == ["cluster-tgi.yaml", "cpu.yaml", "gpu-vllm.yaml", "learning-cpu.yaml"]


@pytest.mark.parametrize("path", RUN_FILES, ids=[p.name for p in RUN_FILES])
def test_example_run_files_validate(path: Path) -> None:
    config = load_run_config(path)
    known = filter_registry(load_entry_points=False).names()
    assert set(config.filters.names) <= set(known), set(config.filters.names) - set(known)
    if config.services.mode == "embedded" and config.services.sampler_backend == "local":
        assert config.base_model in PACKAGED or Path(config.base_model).suffix == ".gguf"


@pytest.mark.parametrize("path", RUN_FILES, ids=[p.name for p in RUN_FILES])
def test_each_run_file_says_what_it_is_for_and_its_commands_parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    header = text[: text.index("\nrun_dir:")]
    assert all(line.startswith("#") for line in header.splitlines()), "a comment header before the first key"
    assert len(header.splitlines()) >= 5
    commands = [argv for argv in map(next_argv, header_commands(path)) if argv is not None]
    rel = str(path.relative_to(EXAMPLES.parents[1]))
    config = load_run_config(path)
    runs = [argv for argv in commands if argv[0] == "run"]
    if config.services.mode == "embedded":  # the remote one runs as the Kubernetes Job's `next run`
        assert runs, "the header shows how to run it"
    for argv in commands:
        args = build_parser().parse_args(argv)  # exits (SystemExit) on an unknown subcommand or option
        if argv[0] == "run":
            assert args.config == rel
            load_run_config(args.config, args.set or [])  # its --set overrides are valid too
        if argv[0] in ("report", "status"):
            assert args.run_dir == config.run_dir
        if argv[:2] == ["data", "build-mbpp-r"]:
            assert config.data.train == str(Path(args.out) / "train.jsonl")


async def test_check_finds_only_what_the_machine_lacks(
    mbpp_r: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Here: no vLLM server, no cluster; the packaged models may or may not be installed."""
    monkeypatch.delenv("SAMPLER_OPENAI_URL", raising=False)
    monkeypatch.delenv("SAMPLER_OPENAI_MODEL", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    seen = {}
    for path in RUN_FILES:
        overrides = data_overrides(path, mbpp_r, tmp_path / path.stem)
        config, checks = await run_checks(path, overrides, service_timeout_s=1.0)
        assert config is not None
        seen[path.name] = {c.what: c.status for c in checks}
        by_key = {c.what: c for c in checks}
        assert by_key["data.train"].status == OK and by_key["data.dev"].status == OK, checks
        assert by_key["filters.names"].status == OK and by_key["run_dir"].status == OK
        if config.base_model in PACKAGED:
            try:
                check_model_exists(config.base_model)
                installed = True
            except Exception:
                installed = False
            assert by_key["base_model"].status == (OK if installed else PROBLEM), by_key["base_model"]
    # the small CPU run: nothing missing
    assert set(seen["cpu.yaml"].values()) == {OK}, seen["cpu.yaml"]
    # the GPU run needs vLLM's address; its hub model is not looked up (a note, unless cached)
    gpu = seen["gpu-vllm.yaml"]
    assert {k for k, s in gpu.items() if s == PROBLEM} == {"services.sampler_backend"}
    assert gpu["base_model"] in (OK, NOTE) and gpu["sampling.trace_format"] == OK
    # the cluster run: no cluster here, so its services and the model on its volume are missing
    tgi = seen["cluster-tgi.yaml"]
    assert {k for k, s in tgi.items() if s == PROBLEM} == {
        "base_model",
        "services.tracer",
        "services.sampler",
        "services.trainer",
    }
    assert tgi["sampling.trace_format"] == NOTE and tgi["services.sampler_backend"] == NOTE
