"""Shared library: the error-to-status table, the registry, settings, and package boundaries."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from next_common import errors
from next_common.interceptors import status_for
from next_common.plugins.manager import Registry
from next_tracer.settings import TracerSettings
from tests.requirements import pulled_by


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgumentError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFoundError("x"), grpc.StatusCode.NOT_FOUND),
        (errors.ResourceExhaustedError("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.UnavailableError("down"), grpc.StatusCode.UNAVAILABLE),
        (errors.DeadlineExceededError("late"), grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_domain_errors_map_to_status_codes(error: Exception, code: grpc.StatusCode) -> None:
    assert status_for(error) == (code, str(error))


def test_unknown_errors_are_internal_without_details() -> None:
    assert status_for(RuntimeError("secret path /etc/x")) == (grpc.StatusCode.INTERNAL, "internal error")


def test_registry_rejects_duplicates_and_bad_names() -> None:
    registry = Registry("thing")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="two plugins register a thing named 'a'"):
        registry.register("a", 2)
    with pytest.raises(ValueError, match="empty or non-string name"):
        registry.register("", 3)
    assert registry.names() == ["a"] and "a" in registry and registry.get("a") == 1


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACER_MAX_CONCURRENCY", "7")
    monkeypatch.setenv("TRACER_SANDBOX", "none")
    settings = TracerSettings()
    assert settings.max_concurrency == 7 and settings.sandbox == "none"
    monkeypatch.setenv("TRACER_SANDBOX", "docker")
    with pytest.raises(ValueError, match="sandbox"):
        TracerSettings()


def test_the_tracer_does_not_pull_in_torch() -> None:
    assert "torch" not in pulled_by("next-tracer")  # through any chain of requirements
    code = "import sys, next_tracer.server, next_tracer.cli; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
