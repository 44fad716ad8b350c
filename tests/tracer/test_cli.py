"""The CLI's public contract: run-tests JSON shape, --tests-json, exit codes, errors."""

from __future__ import annotations

import json
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
    assert [t["status"] for t in result["tests"]] == ["PASSED", "PASSED", "FAILED"]
    assert set(result["tests"][0]) == {"status", "message", "duration_s"}


def test_trace_json_and_unknown_format() -> None:
    out = cli("trace", EXAMPLE, "--test", "assert separate_odd_and_even([1]) == ([1], [])", "--json")
    result = json.loads(out.stdout)
    assert result["verdict"] == "FAILED" and result["events"] and result["rendered"].startswith("def ")
    bad = cli("trace", EXAMPLE, "--test", "pass", "--format", "nope")
    assert bad.returncode == 2 and "unknown trace format 'nope'; available: json, next-inline, scratchpad" in bad.stderr


def test_missing_program_file_is_a_clear_error() -> None:
    out = cli("run-tests", "/nonexistent.py", "--test", "pass")
    assert out.returncode == 2 and "nonexistent.py" in out.stderr


def test_unsandboxed_mode_warns_loudly() -> None:
    out = cli("run-tests", EXAMPLE, "--sandbox", "none", "--test", "assert separate_odd_and_even([]) == ([], [])")
    assert out.returncode == 0, out.stderr
    assert "SANDBOX DISABLED" in out.stderr
