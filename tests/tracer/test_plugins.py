"""Trace formats as plugins: a third-party package installed and used through the service."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from next_common.plugins import hookimpl
from next_common.plugins.manager import get_plugin_manager
from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from next_tracer.server import start_server
from nextapi.tracer.v1 import tracer_service_pb2 as pb
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc
from tests.conftest import REPO, make_settings

SAMPLE = REPO / "tests" / "sample_plugins" / "next_shout_format"


@pytest.fixture(scope="module")
def installed_sample_plugin() -> Iterator[None]:
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", str(SAMPLE)], check=True)
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "-y", "next-shout-format"], check=True)


@pytest.mark.slow
async def test_installed_plugin_format_through_grpc(installed_sample_plugin: None) -> None:
    settings = make_settings()
    # A fresh interpreter would see the new entry point; here importlib.metadata re-scans on each call.
    engine = TracerEngine(settings, FormatRegistry(load_entry_points=True))
    service, _ = await start_server(settings, engine)
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            stub = pb_grpc.TracerServiceStub(channel)
            names = {f.name for f in (await stub.ListFormats(pb.ListFormatsRequest())).formats}
            assert "shout" in names
            resp = await stub.Trace(
                pb.TraceRequest(
                    program="def f(x):\n    return x\n", test=pb.StatementTest(source="f(1)"), format="shout"
                )
            )
            assert resp.rendered == "0 X=1\n1 __RETURN__=1\n"
    finally:
        await service.stop(0)


class DuplicateFormat:
    @hookimpl
    def next_register_trace_formats(self, register):  # type: ignore[no-untyped-def]
        register("json", object())


def test_duplicate_format_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="two plugins register a trace format named 'json'"):
        FormatRegistry([DuplicateFormat()], load_entry_points=False)


def test_misspelled_hook_is_rejected() -> None:
    class Misspelled:
        @hookimpl
        def next_register_trace_format(self, register):  # type: ignore[no-untyped-def]
            pass

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Misspelled())
    with pytest.raises(Exception, match="unknown hook"):
        pm.check_pending()


def test_every_hook_is_documented() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text()
    pm = get_plugin_manager(load_entry_points=False)
    for name in pm.hook.__dict__:
        if name.startswith("next_"):
            assert "`%s(" % name in docs


async def test_registered_plugin_is_used_by_the_engine(engine: TracerEngine) -> None:
    class Lines:
        description = "lines"

        def render(self, trace, options):  # type: ignore[no-untyped-def]
            return "%d events" % len(trace.events)

    class Plugin:
        @hookimpl
        def next_register_trace_formats(self, register):  # type: ignore[no-untyped-def]
            register("count", Lines())

    from nextapi.tracer.types import TraceOptions

    other = TracerEngine(engine.settings, FormatRegistry([Plugin()], load_entry_points=False), engine.sandbox)
    result = await other.trace("def f():\n    return 1\n", "f()", TraceOptions(format="count"))
    assert result.rendered == "1 events"
