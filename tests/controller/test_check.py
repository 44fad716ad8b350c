"""``next run --check`` names every problem of a run before anything starts, ``next run`` refuses to
start on one, and ``next config defaults`` prints a run file that loads once its paths are filled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from next_common.config_files import apply_overrides, parse_mapping
from next_common.errors import InvalidArgumentError
from next_controller.check import NOTE, OK, PROBLEM, Check, run_checks
from next_controller.cli import main
from next_controller.config import DataConfig, RunConfig, dump_config, parse_run_config
from tests.controller.run_files import mbpp_r, mbpp_source

__all__ = ["mbpp_r", "mbpp_source"]  # fixtures


def write_run(tmp_path: Path, data: Path, **changes: Any) -> Path:
    config: dict[str, Any] = {
        "run_dir": str(tmp_path / "run"),
        "data": {"train": str(data / "train.jsonl"), "dev": str(data / "dev.jsonl")},
        "sampling": {"samples_per_problem": 2},
    }
    for key, value in changes.items():
        node = config
        *parents, leaf = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def statuses(checks: list[Check]) -> dict[str, str]:
    return {c.what: c.status for c in checks}


def problems(checks: list[Check]) -> dict[str, str]:
    return {c.what: c.message for c in checks if c.status == PROBLEM}


async def test_a_good_embedded_run_passes_every_check(mbpp_r: Path, tmp_path: Path) -> None:
    config, checks = await run_checks(write_run(tmp_path, mbpp_r), service_timeout_s=1)
    assert config is not None
    assert statuses(checks) == {
        "config": OK,
        "run_dir": OK,
        "data.train": OK,
        "data.dev": OK,
        "filters.names": OK,
        "base_model": OK,  # smollm2-135m-instruct, installed with every target that loads a model
        "services.mode": OK,
        "sampling.trace_format": OK,
        "services.sampler_backend": OK,
    }
    assert "%s: 4 tasks" % (mbpp_r / "train.jsonl") in [c.message for c in checks]


async def test_each_problem_is_named_with_what_and_where(mbpp_r: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text((mbpp_r / "dev.jsonl").read_text().splitlines()[0] + "\n{not json\n")
    (tmp_path / "empty.jsonl").write_text("")
    path = write_run(
        tmp_path,
        mbpp_r,
        data__train=str(tmp_path / "missing.jsonl"),
        data__dev=str(broken),
        data__test={"held": str(tmp_path / "empty.jsonl")},
        filters__names=["passes-all-tests", "passes-al-tests"],
        sampling__trace_format="next-inlined",
        base_model=str(tmp_path / "model.gguf"),
        services__sampler_backend="replay",
        services__replay_file=str(tmp_path / "replay.jsonl"),
    )
    _, checks = await run_checks(path, service_timeout_s=1)
    found = problems(checks)
    assert found["data.train"] == "%s: cannot read task file: No such file or directory" % (tmp_path / "missing.jsonl")
    assert found["data.dev"].startswith("%s:2: " % broken)  # the file and the line
    assert found["data.test.held"] == "%s holds no tasks" % (tmp_path / "empty.jsonl")
    assert found["filters.names"].startswith("unknown filter 'passes-al-tests'; available: ")
    assert (
        found["sampling.trace_format"]
        == "unknown trace format 'next-inlined'; available: json, next-inline, scratchpad"
    )
    assert found["base_model"] == "GGUF model %s: no such file" % (tmp_path / "model.gguf")
    assert found["services.replay_file"].startswith("%r: no such file" % str(tmp_path / "replay.jsonl"))
    assert statuses(checks)["config"] == OK and statuses(checks)["run_dir"] == OK


async def test_models_the_engine_cannot_load_and_hub_ids_that_cannot_be_checked(
    mbpp_r: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    # a Hugging Face folder is fine for the trainer, not for the llama.cpp engine
    _, checks = await run_checks(write_run(tmp_path, mbpp_r, base_model=str(tiny_model)), service_timeout_s=1)
    assert "the embedded llama.cpp engine loads a GGUF file or a packaged model" in problems(checks)["base_model"]
    path = write_run(tmp_path, mbpp_r, base_model=str(tiny_model), services__local_engine="transformers")
    _, checks = await run_checks(path, service_timeout_s=1)
    assert statuses(checks)["base_model"] == OK
    # a hub id that is not cached: said, not failed, and never looked up from here
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    path = write_run(tmp_path, mbpp_r, base_model="someone/some-coder-7b", services__local_engine="transformers")
    _, checks = await run_checks(path, service_timeout_s=1)
    base = next(c for c in checks if c.what == "base_model")
    assert base.status == NOTE and "not checked offline" in base.message
    assert not problems(checks)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # then the run could not download it: a problem
    _, checks = await run_checks(path, service_timeout_s=1)
    assert "HF_HUB_OFFLINE is set" in problems(checks)["base_model"]


async def test_a_run_dir_holding_another_run_is_a_problem(mbpp_r: Path, tmp_path: Path) -> None:
    path = write_run(tmp_path, mbpp_r)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("rounds: 7\n")
    _, checks = await run_checks(path, service_timeout_s=1)
    assert "holds a run with another configuration" in problems(checks)["run_dir"]
    config = parse_run_config(yaml.safe_load(path.read_text()))
    (tmp_path / "run" / "config.yaml").write_text(dump_config(config))
    _, checks = await run_checks(path, service_timeout_s=1)
    assert "resumes the run there" in next(c.message for c in checks if c.what == "run_dir")


async def test_remote_services_are_asked_for_health_formats_and_backends(mbpp_r: Path, tmp_path: Path) -> None:
    from next_sampler.server import start_server as start_sampler
    from next_sampler.settings import SamplerSettings
    from next_tracer.server import start_server as start_tracer
    from next_trainer.server import start_server as start_trainer
    from next_trainer.settings import TrainerSettings
    from tests.conftest import make_settings

    (tmp_path / "replay.jsonl").write_text("")
    sampler_settings = SamplerSettings(
        host="127.0.0.1",
        port=0,
        backends=["replay"],
        default_backend="replay",
        replay_file=str(tmp_path / "replay.jsonl"),
    )
    tracer, _ = await start_tracer(make_settings(host="127.0.0.1"))
    sampler, _ = await start_sampler(sampler_settings)
    trainer, manager = await start_trainer(TrainerSettings(host="127.0.0.1", port=0, storage_root=str(tmp_path)))
    try:
        services = {
            "mode": "remote",
            "tracer": ["127.0.0.1:%d" % tracer.port],
            "sampler": "127.0.0.1:%d" % sampler.port,
            "trainer": "127.0.0.1:%d" % trainer.port,
            "sampler_backend": "replay",
        }
        _, checks = await run_checks(write_run(tmp_path, mbpp_r, services=services), service_timeout_s=5)
        assert set(statuses(checks).values()) == {OK}, checks
        wrong = {**services, "sampler_backend": "tgi", "trainer": "127.0.0.1:9"}
        path = write_run(tmp_path, mbpp_r, services=wrong, sampling__trace_format="next-inlined")
        _, checks = await run_checks(path, service_timeout_s=1)
        found = problems(checks)
        assert found["services.sampler_backend"] == "the sampler at %s serves replay, not tgi" % services["sampler"]
        assert found["sampling.trace_format"].startswith(
            "the tracer at %s has no format 'next-inlined'" % services["tracer"][0]
        )
        assert found["services.trainer"].startswith("the trainer at 127.0.0.1:9 is unreachable")
        assert set(found) == {"services.sampler_backend", "sampling.trace_format", "services.trainer"}
    finally:
        await manager.close()
        for server in (tracer, sampler, trainer):
            await server.stop(0)


def test_check_prints_one_line_per_check_and_exits_0_or_2(
    mbpp_r: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_run(tmp_path, mbpp_r)
    assert main(["run", "--check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 10 and all(line.startswith("ok ") for line in out[:-1]), out
    assert out[-1] == "all checks passed: next run %s" % path
    assert main(["run", "--check", str(path), "--set", "data.dev=nowhere.jsonl"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert "problem data.dev: nowhere.jsonl: cannot read task file: No such file or directory" in out
    assert out[-1] == "1 problem(s): the run would not start"
    assert main(["run", "--check", str(path), "--set", "sampling.temprature=0.5"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "problem config: %s: sampling.temprature: Extra inputs are not permitted" % path
    assert not (tmp_path / "run").exists()  # checking writes nothing


def test_next_run_refuses_to_start_on_a_problem(
    mbpp_r: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_run(tmp_path, mbpp_r, data__dev=str(tmp_path / "nowhere.jsonl"), filters__names=["dedup"])
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "problem data.dev: %s: cannot read task file" % (tmp_path / "nowhere.jsonl") in err
    assert "problem filters.names: unknown filter 'dedup'" in err
    assert "error: %s: the run cannot start: 2 problem(s)" % path in err
    assert not (tmp_path / "run").exists()  # no service started, no run directory claimed


def test_config_defaults_lists_every_key_and_loads_once_paths_are_filled(
    mbpp_r: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "defaults"]) == 0
    text = capsys.readouterr().out
    raw = parse_mapping(text, "defaults")
    with pytest.raises(InvalidArgumentError) as unfilled:
        parse_run_config(raw, "defaults")
    for key in ("run_dir", "data.train", "data.dev"):
        assert "%s: String should have at least 1 character" % key in str(unfilled.value)
    assert "# REQUIRED: Where the run keeps everything" in text
    assert "local_engine: llamacpp  # Embedded mode with the local backend" in text
    filled = {"run_dir": str(tmp_path / "run"), "train": str(mbpp_r / "train.jsonl"), "dev": str(mbpp_r / "dev.jsonl")}
    pairs = ["run_dir=%(run_dir)s" % filled, "data.train=%(train)s" % filled, "data.dev=%(dev)s" % filled]
    config = parse_run_config(apply_overrides(raw, pairs), "defaults")
    # every default, exactly: nothing left out or written differently
    assert config == RunConfig(run_dir=filled["run_dir"], data=DataConfig(train=filled["train"], dev=filled["dev"]))
    assert set(raw) == set(RunConfig.model_fields)
    # and `next run` accepts it: the same file passes --check
    path = tmp_path / "defaults.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["run", "--check", str(path), *(x for p in pairs for x in ("--set", p))]) == 0
