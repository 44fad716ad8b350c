"""``next-sampler sample``: exit 0 with its completions, 2 for any usage or input error; --log-level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from next_sampler.backends.replay import record_line
from nextapi.sampler.types import Completion


def sample(replay: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "next_sampler", "sample", "--backend", "replay", "--replay-file", str(replay)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def test_exit_codes_and_log_level(tmp_path: Path) -> None:
    replay = tmp_path / "replay.jsonl"
    replay.write_text(record_line("hi", Completion(0, 0, "hello", 1, 1, "stop", "", 0)) + "\n")
    done = sample(replay, "--prompt", "hi", "--json", "--log-level", "debug")
    assert done.returncode == 0, done.stderr
    assert [c["text"] for c in json.loads(done.stdout)["completions"]] == ["hello"]
    assert " DEBUG " in done.stderr

    bad_jsonl = tmp_path / "prompts.jsonl"
    bad_jsonl.write_text('{"prompt": "hi"}\n{oops\n')
    for args in (
        (),  # no prompt
        ("--prompt", "never recorded"),
        ("--prompts-jsonl", str(bad_jsonl)),
        ("--prompts-jsonl", str(tmp_path / "missing.jsonl")),
        ("--prompt", "hi", "--target", "127.0.0.1:1"),  # nothing listens there
    ):
        out = sample(replay, *args)
        assert out.returncode == 2 and out.stderr.startswith("error: "), (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert "prompts.jsonl:2: not valid JSON" in sample(replay, "--prompts-jsonl", str(bad_jsonl)).stderr
