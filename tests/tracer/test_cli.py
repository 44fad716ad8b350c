"""The CLI's public contract: run-tests JSON shape, --tests-json, exit codes, errors, --log-level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

EXAMPLE = str(REPO / "examples" / "separate_odd_and_even.py")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "next_tracer", *args], capture_output=True, text=True)


def test_run_tests_json_shape_and_order(tmp_path: Path) -> None:
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps(["assert separate_odd_and_even([]) == ([], [])", "assert False"]))
    out = cli(
        "run-tests",
        EXAMPLE,
        "--test",
        "assert separate_odd_and_even([2]) == ([2], [])",
        "--tests-json",
        str(tests),
        "--timeout",
        "2",
        "--memory-mb",
        "256",
        "--json",
    )
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    assert result["verdict"] == "FAILED"
    assert [t["verdict"] for t in result["tests"]] == ["PASSED", "PASSED", "FAILED"]
    assert set(result["tests"][0]) == {"verdict", "message", "duration_s"}  # one name for a verdict everywhere


def test_trace_json_and_unknown_format() -> None:
    out = cli("trace", EXAMPLE, "--test", "assert separate_odd_and_even([1]) == ([1], [])", "--json")
    result = json.loads(out.stdout)
    assert result["verdict"] == "FAILED" and result["events"] and result["rendered"].startswith("def ")
    bad = cli("trace", EXAMPLE, "--test", "pass", "--format", "nope")
    assert bad.returncode == 2 and "unknown trace format 'nope'; available: json, next-inline, scratchpad" in bad.stderr


PASSING = "assert separate_odd_and_even([2]) == ([2], [])"
FAILING = "assert separate_odd_and_even([1]) == ([1], [])"  # the example's bug


def test_exit_codes_follow_the_verdict_and_usage_errors_are_2(tmp_path: Path) -> None:
    for command in ("run-tests", "trace"):
        passed = cli(command, EXAMPLE, "--test", PASSING, "--json")
        assert passed.returncode == 0, passed.stderr
        assert json.loads(passed.stdout)["verdict"] == "PASSED"
        failed = cli(command, EXAMPLE, "--test", FAILING, "--json")
        assert failed.returncode == 1, failed.stderr
        assert json.loads(failed.stdout)["verdict"] == "FAILED"
    plain = cli("run-tests", EXAMPLE, "--test", FAILING)
    assert plain.returncode == 1 and plain.stdout.endswith("verdict: FAILED\n")
    bad_json = tmp_path / "tests.json"
    bad_json.write_text("[not json")
    for args in (
        ("run-tests", EXAMPLE),  # no test
        ("trace", EXAMPLE, "--test", PASSING, "--test", FAILING),  # trace takes one
        ("run-tests", EXAMPLE, "--tests-json", str(bad_json)),
        ("run-tests", EXAMPLE, "--test", PASSING, "--log-level", "LOUD"),
        ("run-tests", EXAMPLE, "--test", PASSING, "--target", "127.0.0.1:1"),  # nothing listens there
    ):
        out = cli(*args)
        assert out.returncode == 2 and out.stderr and "Traceback" not in out.stderr, (args, out.stderr)


def test_log_level_flag_overrides_the_environment() -> None:
    loud = cli("--log-level", "debug", "run-tests", EXAMPLE, "--test", PASSING)
    assert loud.returncode == 0 and " DEBUG " in loud.stderr, loud.stderr
    env = {**os.environ, "TRACER_LOG_LEVEL": "DEBUG"}
    quiet = subprocess.run(
        [sys.executable, "-m", "next_tracer", "run-tests", EXAMPLE, "--test", PASSING, "--log-level", "ERROR"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_missing_program_file_is_a_clear_error() -> None:
    out = cli("run-tests", "/nonexistent.py", "--test", "pass")
    assert out.returncode == 2 and "nonexistent.py" in out.stderr


def test_unsandboxed_mode_warns_loudly() -> None:
    out = cli("run-tests", EXAMPLE, "--sandbox", "none", "--test", "assert separate_odd_and_even([]) == ([], [])")
    assert out.returncode == 0, out.stderr
    assert "SANDBOX DISABLED" in out.stderr
