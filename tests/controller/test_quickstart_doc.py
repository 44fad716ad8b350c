"""Every command in docs/quickstart-gpu.md is covered: the `next` commands parse and run here as far
as a machine without a GPU and vLLM allows (the data command on a few MBPP problems, `--check`
and `next run` against the example run with that data), and the commands for vLLM, the
environment and the installs agree with the run file and the packages."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest

from next_controller.check import PROBLEM, run_checks
from next_controller.cli import build_parser, main
from next_controller.config import load_run_config
from next_tasks import sources
from tests.conftest import DATA, REPO
from tests.controller.run_files import (
    bash_blocks,
    data_overrides,
    mbpp_r,
    mbpp_source,
    next_argv,
    shell_commands,
    split_env,
)

__all__ = ["mbpp_r", "mbpp_source"]  # fixtures

DOC = REPO / "docs" / "quickstart-gpu.md"
RUN_FILE = "examples/runs/gpu-vllm.yaml"


def doc_commands() -> list[list[str]]:
    return [c for block in bash_blocks(DOC.read_text(encoding="utf-8")) for c in shell_commands(block)]


def test_the_doc_has_its_steps() -> None:
    argvs = [a for a in map(next_argv, doc_commands()) if a is not None]
    assert ["run", "--check", RUN_FILE] in argvs and ["run", RUN_FILE] in argvs
    assert any(a[:2] == ["data", "build-mbpp-r"] for a in argvs) and any(a[0] == "report" for a in argvs)


def test_every_command_of_the_doc_is_covered(
    mbpp_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from next_sampler.settings import SamplerSettings

    config = load_run_config(REPO / RUN_FILE)
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    run_dir = tmp_path / "run"
    exported: dict[str, str] = {}
    vllm: dict[str, str] = {}
    built: Path | None = None
    covered: list[str] = []
    for command in doc_commands():
        env, words = split_env(command)
        line = " ".join(command)
        argv = next_argv(command)
        if argv is not None:
            args = build_parser().parse_args(argv)  # SystemExit on anything argparse refuses
            if argv[:2] == ["data", "build-mbpp-r"] and args.source:
                # the same command on eight MBPP problems laid out like ../shared/data
                assert args.source == "../shared/data" and args.out == str(Path(config.data.train).parent)
                built = tmp_path / "mbpp-r"
                swapped = [{args.source: str(mbpp_source), args.out: str(built)}.get(a, a) for a in argv]
                assert main(swapped) == 0
                assert (built / "train.jsonl").exists() and (built / "dev.jsonl").exists()
            elif argv[:2] == ["data", "build-mbpp-r"]:
                # the hub route: the loader asks for `datasets`; without it, it says which package
                assert args.out == str(Path(config.data.train).parent)
                if importlib.util.find_spec("datasets") is None:
                    assert main([*argv[:-1], str(tmp_path / "hub")]) == 2
                    assert "needs 'datasets' (pip install next-tasks[hub])" in capsys.readouterr().err
            elif argv[:2] == ["data", "stats"]:
                assert built is not None and args.file == config.data.train
                assert main(["data", "stats", str(built / "train.jsonl")]) == 0
            elif argv[:2] == ["data", "build-hefix-plus"]:
                # not built here (minutes of sandboxed runs); the folder it reads is laid out as the doc says
                assert args.source == "../shared/data"
                doc = DOC.read_text(encoding="utf-8")
                for part in (sources.HUMANEVAL, sources.HUMANEVALPACK, sources.HUMANEVALPLUS):
                    assert "`%s`" % part in doc
                    if DATA.exists():
                        assert (DATA / part).exists(), part
                load_run_config(RUN_FILE, ["data.test.hefix-plus=%s" % args.out])
            elif argv[0] == "run":
                assert args.config == RUN_FILE and built is not None
                overrides = [*data_overrides(REPO / RUN_FILE, built, run_dir), *(args.set or [])]
                for name, value in exported.items():
                    monkeypatch.setenv(name, value)
                if args.check:
                    _, checks = asyncio.run(run_checks(args.config, overrides, service_timeout_s=1))
                    # all but vLLM, which this machine does not run
                    assert {c.what for c in checks if c.status == PROBLEM} == {"services.sampler_backend"}, checks
                    assert "%s does not answer" % exported["SAMPLER_OPENAI_URL"] in str(checks)
                else:  # refused before anything starts, for the same reason
                    assert main([*argv, *(x for o in overrides for x in ("--set", o))]) == 2
                    err = capsys.readouterr().err
                    assert "problem services.sampler_backend: openai:" in err and "the run cannot start" in err
                    assert not run_dir.exists()
                load_run_config(args.config, ["rounds=1"])  # the first try the doc suggests
            elif argv[0] in ("status", "report"):
                assert args.run_dir == config.run_dir
            elif argv[:2] == ["config", "defaults"]:
                assert main(argv) == 0 and capsys.readouterr().out.count("# REQUIRED: ") == 3
            else:
                pytest.fail("no coverage for %r" % line)
        elif words[:1] == ["scripts/bootstrap.sh"]:
            assert os.access(REPO / words[0], os.X_OK)
        elif words[:3] == ["python3", "-m", "venv"]:
            vllm["venv"] = words[3]  # vLLM's own environment: not made here
        elif words[1:] == ["install", "vllm"]:
            assert words[0] == vllm["venv"] + "/bin/pip"
        elif words[:5] == [".venv/bin/python", "-m", "pip", "install", words[-1]]:
            pyproject = tomllib.loads((REPO / "libs" / "tasks" / "pyproject.toml").read_text())
            assert pyproject["project"]["optional-dependencies"]["hub"] == [words[-1]]
        elif words[1:2] == ["serve"] and words[0] == vllm["venv"] + "/bin/vllm":
            # what the run needs from vLLM: runtime adapter loading, the base model, LoRA rank >= r
            assert env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
            assert words[2] == config.base_model and "--enable-lora" in words
            assert int(words[words.index("--max-lora-rank") + 1]) >= config.training.lora.r
            vllm["port"] = words[words.index("--port") + 1]
        elif words[:1] == ["export"]:
            exported.update(split_env(words[1:])[0])
            fields = {"SAMPLER_" + name.upper() for name in SamplerSettings.model_fields}
            assert set(exported) <= fields, set(exported) - fields
            assert exported["SAMPLER_OPENAI_MODEL"] == config.base_model
            assert str(urlparse(exported["SAMPLER_OPENAI_URL"]).port) == vllm["port"]
        else:
            pytest.fail("no coverage for %r" % line)
        covered.append(line)
    assert len(covered) == len(doc_commands()) >= 14
