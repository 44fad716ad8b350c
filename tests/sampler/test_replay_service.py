"""The sampler service over a real loopback channel with the replay backend."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from next_common.errors import InvalidArgumentError, NotFoundError
from next_common.plugins import hookimpl
from next_sampler.backends.replay import ReplayBackend, record_line
from next_sampler.engine import SamplerEngine, backend_registry
from next_sampler.server import start_server
from next_sampler.settings import SamplerSettings
from nextapi.sampler.types import Completion, SamplingParams
from nextapi.sampler.v1 import sampler_service_pb2 as pb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc

PROMPTS = ["Fix add.", "Fix sub."]


def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    lines = []
    for i, prompt in enumerate(PROMPTS):
        for j in range(3):
            for adapter in ("", "round-1"):
                c = Completion(i, j, "answer %d.%d%s" % (i, j, adapter and " by " + adapter), 5, 3, "stop", adapter, j)
                lines.append(record_line(prompt, c))
    path.write_text("\n".join(lines) + "\n")
    return path


def engine_for(path: Path, **overrides: object) -> SamplerEngine:
    fields = {"backends": ["replay"], "default_backend": "replay", "port": 0, "host": "127.0.0.1", **overrides}
    settings = SamplerSettings(replay_file=str(path), **fields)  # type: ignore[arg-type]
    return SamplerEngine(settings, backend_registry(load_entry_points=False))


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[pb_grpc.SamplerServiceStub]:
    engine = engine_for(recorded(tmp_path))
    service, _ = await start_server(engine.settings, engine)
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            yield pb_grpc.SamplerServiceStub(channel)
    finally:
        await service.stop(0)


async def test_replay_reproduces_the_recorded_run(tmp_path: Path) -> None:
    engine = engine_for(recorded(tmp_path))
    out = await engine.sample(PROMPTS, SamplingParams(n=3, temperature=0.8), adapter="round-1")
    assert [(c.prompt_index, c.sample_index, c.text, c.adapter, c.seed) for c in out] == [
        (i, j, "answer %d.%d by round-1" % (i, j), "round-1", j) for i in range(2) for j in range(3)
    ]
    # what it serves can be recorded again and replays identically
    again = tmp_path / "again.jsonl"
    again.write_text("\n".join(record_line(PROMPTS[c.prompt_index], c) for c in out) + "\n")
    replayed = await engine_for(again).sample(PROMPTS, SamplingParams(n=3), adapter="round-1")
    assert replayed == out


async def test_unrecorded_requests_and_bad_files_are_clear_errors(tmp_path: Path) -> None:
    engine = engine_for(recorded(tmp_path))
    with pytest.raises(NotFoundError, match="no recorded completion for prompt #0, sample 3"):
        await engine.sample(PROMPTS, SamplingParams(n=4))
    with pytest.raises(NotFoundError, match="has no adapter 'round-9'"):
        await engine.sample(PROMPTS, SamplingParams(), adapter="round-9")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "sample_index": 0, "text": "y"}\n{"prompt": "x"}\n')
    with pytest.raises(InvalidArgumentError, match=r"bad\.jsonl:2: field 'text' must be a str"):
        ReplayBackend(bad)
    with pytest.raises(InvalidArgumentError, match="unknown backend"):
        engine_for(recorded(tmp_path), backends=["vllm-typo"])
    with pytest.raises(InvalidArgumentError, match="needs SAMPLER_TGI_URL"):
        engine_for(recorded(tmp_path), backends=["tgi"], default_backend="tgi")


async def test_sample_and_stream_over_grpc(stub: pb_grpc.SamplerServiceStub) -> None:
    resp = await stub.Sample(pb.SampleRequest(prompts=PROMPTS, params=pb.SamplingParams(n=2, seed=0)))
    assert [c.text for c in resp.completions] == ["answer 0.0", "answer 0.1", "answer 1.0", "answer 1.1"]
    seen = []
    async for item in stub.SampleStream(
        pb.SampleStreamRequest(
            request=pb.SampleRequest(prompts=PROMPTS, params=pb.SamplingParams(n=3), adapter="round-1")
        )
    ):
        seen.append((item.done, item.total, item.completion.adapter))
    assert [d for d, _, _ in seen] == list(range(1, 7)) and {t for _, t, _ in seen} == {6}
    assert {a for _, _, a in seen} == {"round-1"}
    backends = await stub.ListBackends(pb.ListBackendsRequest())
    assert backends.default_backend == "replay" and list(backends.backends[0].adapters) == ["round-1"]


async def test_errors_map_to_status_codes_on_both_rpc_kinds(stub: pb_grpc.SamplerServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Sample(pb.SampleRequest(prompts=[]))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.SampleStream(pb.SampleStreamRequest(request=pb.SampleRequest(prompts=["unknown"]))):
            pass
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_backends_are_plugins() -> None:
    class Plugin:
        @hookimpl
        def next_register_sampler_backends(self, register):  # type: ignore[no-untyped-def]
            register("echo", lambda options: None)

    assert backend_registry([Plugin()], load_entry_points=False).names() == ["echo", "local", "openai", "replay", "tgi"]


def test_cli_samples_in_process(tmp_path: Path) -> None:
    path = recorded(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "next_sampler",
            "sample",
            "--prompt",
            PROMPTS[1],
            "-n",
            "2",
            "--backend",
            "replay",
            "--replay-file",
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert [c["text"] for c in json.loads(out.stdout)["completions"]] == ["answer 1.0", "answer 1.1"]


async def test_activate_over_grpc_refuses_unknown_adapters(stub: pb_grpc.SamplerServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ActivateAdapter(pb.ActivateAdapterRequest(adapter="round-9"))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


async def test_metrics_count_completions(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("next_sampler_completions_total", {"backend": "replay", "finish_reason": "stop"})
    await engine_for(recorded(tmp_path)).sample(PROMPTS, SamplingParams(n=2))
    after = REGISTRY.get_sample_value("next_sampler_completions_total", {"backend": "replay", "finish_reason": "stop"})
    assert (after or 0) - (before or 0) == 4
