"""Sample filters, run configs refused before anything runs, unreachable services named."""

from __future__ import annotations

from pathlib import Path

import pytest

from next_common.errors import InvalidArgumentError, UnavailableError
from next_controller.config import load_run_config, parse_run_config
from next_controller.filters import Sample, apply_filters, filter_registry, tampering, trace_values
from next_controller.pipeline import sampling_params

GOOD = "def f(x):\n    return x + 1\n"


def sample(program: str | None, passed: bool = True, rationale: str = "r", task: str = "t", i: int = 0) -> Sample:
    return Sample(task, i, "text", rationale, program, passed, "def f(x):  # (0) x=41; __return__=40\n")


@pytest.mark.parametrize(
    ("program", "why"),
    [
        ("import sys\ndef f(x):\n    sys.exit(0)\n", "imports sys"),
        ("def f(x):\n    exit(0)\n", "exits early (exit)"),
        ("def f(x):\n    raise SystemExit\n\ndef g():\n    quit()\n", "exits early (quit)"),
        (
            "class A:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return A()\n",
            "defines a constant __eq__",
        ),
        ("def sorted(x):\n    return x\ndef f(x):\n    return x\n", "redefines the builtin sorted"),
        ("abs = lambda x: 0\ndef f(x):\n    return x\n", "rebinds the builtin abs"),
        ("def f(x):\n    __builtins__['print'] = None\n", "touches __builtins__"),
        ("import unittest.mock\ndef f(x):\n    return x\n", "imports unittest.mock"),
    ],
)
def test_test_tampering_is_recognised(program: str, why: str) -> None:
    assert tampering(program, "f") == why


def test_an_honest_fix_is_not_tampering() -> None:
    assert tampering(GOOD, "f") == ""
    assert tampering("def sum(xs):\n    return 0\n", "sum") == ""  # the task's own entry point may be a builtin name


def test_filters_apply_in_order_and_count_their_drops() -> None:
    registry = filter_registry(load_entry_points=False)
    samples = [
        sample(GOOD, rationale="x is 41 so"),
        sample(GOOD, rationale="x is 41  SO", i=1),  # duplicate after normalisation
        sample("def f(x):\n    return x+1  # same code\n", rationale="x is 41 so", i=2),  # same AST and rationale
        sample(GOOD, passed=False, i=3),
        sample("import os\ndef f(x):\n    return x + 1\n", i=4),
        sample(None, passed=False, i=5),
        sample(GOOD, rationale="no values here", i=6),
    ]
    names = ["passes-all-tests", "no-test-tampering", "dedupe", "max-length", "rationale-cites-trace"]
    kept, drops = apply_filters(samples, names, {"max_completion_chars": 100}, registry)
    assert drops == {
        "passes-all-tests": 2,
        "no-test-tampering": 1,
        "dedupe": 2,
        "max-length": 0,
        "rationale-cites-trace": 1,
    }
    assert [s.sample_index for s in kept] == [0]
    assert trace_values("def f(x):  # (0) x=41; __return__=40\n") == {"41", "40"}


def test_configs_are_checked_before_anything_runs(tmp_path: Path) -> None:
    base = {"run_dir": str(tmp_path / "r"), "data": {"train": "t.jsonl", "dev": "d.jsonl"}}
    with pytest.raises(InvalidArgumentError, match=r"sampling\.temprature: Extra inputs are not permitted"):
        parse_run_config({**base, "sampling": {"temprature": 0.8}})
    with pytest.raises(InvalidArgumentError, match=r"rounds: Input should be greater than or equal to 1"):
        parse_run_config({**base, "rounds": 0})
    with pytest.raises(
        InvalidArgumentError, match=r"services: Value error, remote mode needs targets for: sampler, trainer"
    ):
        parse_run_config({**base, "services": {"mode": "remote", "tracer": ["127.0.0.1:1"]}})
    path = tmp_path / "run.yaml"
    path.write_text("run_dir: r\ndata: {train: t.jsonl, dev: d.jsonl}\n")
    config = load_run_config(path, ["rounds=3", "sampling.temperature=0.5", "filters.names=[passes-all-tests]"])
    assert config.rounds == 3 and config.sampling.temperature == 0.5 and config.filters.names == ["passes-all-tests"]
    with pytest.raises(InvalidArgumentError, match="--set expects KEY=VALUE"):
        load_run_config(path, ["rounds"])
    with pytest.raises(InvalidArgumentError, match=r"sampling\.stop\.0: String should have at least 1 character"):
        parse_run_config({**base, "sampling": {"stop": [""]}})


def test_the_run_s_stop_strings_reach_every_sampling_request(tmp_path: Path) -> None:
    config = parse_run_config(
        {"run_dir": str(tmp_path / "r"), "data": {"train": "t", "dev": "d"}, "sampling": {"stop": ["\n```\n"]}}
    )
    assert sampling_params(config, 4, 0.8, 1).stop == ("\n```\n",)
    assert sampling_params(config, 1, 0.0, 0).stop == ("\n```\n",)  # greedy evaluation too


async def test_an_unreachable_service_is_named_with_its_address(tmp_path: Path) -> None:
    from next_controller.services import Services

    config = parse_run_config(
        {
            "run_dir": str(tmp_path / "r"),
            "data": {"train": "t.jsonl", "dev": "d.jsonl"},
            "services": {
                "mode": "remote",
                "tracer": ["127.0.0.1:9"],
                "sampler": "127.0.0.1:9",
                "trainer": "127.0.0.1:9",
                "connect_timeout_s": 1,
            },
        }
    )
    with pytest.raises(UnavailableError, match=r"the (tracer|sampler|trainer) at 127\.0\.0\.1:9 is unreachable"):
        async with Services.open(config, str(tmp_path / "logs")):
            pass


def test_several_tracer_replicas_become_one_round_robin_target() -> None:
    from next_controller.services import tracer_target

    assert tracer_target(["10.0.0.1:50051", "10.0.0.2:50051"]) == "ipv4:10.0.0.1:50051,10.0.0.2:50051"
    assert tracer_target(["dns:///tracer-headless:50051"]) == "dns:///tracer-headless:50051"
    with pytest.raises(InvalidArgumentError, match="must be IP:PORT"):
        tracer_target(["tracer-0:50051", "tracer-1:50051"])


async def test_tracer_calls_spread_over_replicas_and_survive_one_going_away() -> None:
    from next_controller.services import channel_options, tracer_target
    from next_tracer.server import start_server
    from nextapi.tracer.client import GrpcTracerClient
    from nextapi.tracer.types import Verdict
    from tests.conftest import make_settings

    servers = [await start_server(make_settings()) for _ in range(2)]
    counts = [0, 0]
    for i, (_, engine) in enumerate(servers):
        original = engine.run_tests

        async def counted(*args, _i=i, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            counts[_i] += 1
            return await _original(*args, **kwargs)

        engine.run_tests = counted  # type: ignore[method-assign]
    target = tracer_target(["127.0.0.1:%d" % s.port for s, _ in servers])
    client = GrpcTracerClient(target, timeout_s=30, channel_options=channel_options(5, round_robin=True))
    try:
        for _ in range(8):
            result = await client.run_tests(GOOD, ["assert f(1) == 2"])
            assert result.verdict is Verdict.PASSED
        assert counts[0] >= 2 and counts[1] >= 2, counts  # round robin, not pick-first
        await servers[0][0].stop(0)
        for _ in range(4):
            assert (await client.run_tests(GOOD, ["assert f(1) == 2"])).verdict is Verdict.PASSED
    finally:
        await client.close()
        for service, _ in servers:
            await service.stop(0)
