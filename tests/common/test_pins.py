"""Honest pins: every lower bound in a pyproject admits only versions the code actually runs on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = sorted([*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")])
GENERATED = ROOT / "libs/common/src/nextapi"


def _requirements() -> list[tuple[str, Requirement]]:
    found = []
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        specs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            specs.extend(extra)
        found.extend((str(path.relative_to(ROOT)), Requirement(spec)) for spec in specs)
    return found


def _lower_bound(requirement: Requirement) -> Version | None:
    bounds = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    return max(bounds) if bounds else None


def _generated_version(pattern: str) -> Version:
    versions = {
        Version(match.group(1)) for path in GENERATED.rglob("*.py") if (match := re.search(pattern, path.read_text()))
    }
    assert len(versions) == 1, f"generated code disagrees on its generator's version: {versions}"
    return versions.pop()


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        (("grpcio", "grpcio-health-checking", "grpcio-reflection"), r"GRPC_GENERATED_VERSION = '([\d.]+)'"),
        (("protobuf",), r"# Protobuf Python Version: ([\d.]+)"),
    ],
)
def test_runtime_lower_bounds_cover_the_generated_code(names: tuple[str, ...], pattern: str) -> None:
    # The generated modules refuse to import on an older runtime, so a lower bound below the
    # generator's version would let pip install a set that fails at the first import.
    needed = _generated_version(pattern)
    for where, requirement in _requirements():
        if requirement.name in names:
            bound = _lower_bound(requirement)
            assert bound is not None and bound >= needed, f"{where}: {requirement} admits versions below {needed}"


def test_the_generator_is_pinned_to_the_version_that_made_the_checked_in_code() -> None:
    needed = _generated_version(r"GRPC_GENERATED_VERSION = '([\d.]+)'")
    dev = [
        Requirement(line)
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    (tools,) = [r for r in dev if r.name == "grpcio-tools"]
    assert str(tools.specifier) == f"=={needed}"


def test_transformers_lower_bound_is_the_major_version_the_code_uses() -> None:
    # The trainer and sampler call transformers 5 APIs (dtype=, no save on GGUF-loaded models).
    for where, requirement in _requirements():
        if requirement.name == "transformers":
            bound = _lower_bound(requirement)
            assert bound is not None and bound >= Version("5"), f"{where}: {requirement}"
