"""Helpers for the tests of run files and of the commands the docs show: real Mbpp-R task files
built by `next data build-mbpp-r` from a few MBPP problems, and the shell commands of a text."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO

EXAMPLES = REPO / "examples" / "runs"
# MBPP task ids 1-10 and 511-974 are Mbpp-R's train split, 11-510 its dev split
MBPP_IDS = (1, 2, 3, 4, 11, 12, 13, 14)


@pytest.fixture(scope="session")
def mbpp_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like ../shared/data holding eight of MBPP's problems."""
    full = DATA / "mbpp" / "mbpp.jsonl"
    if not full.exists():
        pytest.skip("needs ../shared/data/mbpp/mbpp.jsonl")
    root = tmp_path_factory.mktemp("mbpp-source")
    rows = [line for line in full.read_text(encoding="utf-8").splitlines() if json.loads(line)["task_id"] in MBPP_IDS]
    (root / "mbpp").mkdir()
    (root / "mbpp" / "mbpp.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def mbpp_r(mbpp_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.jsonl and dev.jsonl built by the command the run files' headers show (real sandbox)."""
    from next_controller.cli import main

    out = tmp_path_factory.mktemp("mbpp-r")
    argv = ["data", "build-mbpp-r", "--bugs", "mutation", "--per-problem", "1", "--source", str(mbpp_source)]
    assert main([*argv, "--out", str(out), "--concurrency", "2"]) == 0
    return out


def data_overrides(path: Path, data: Path, run_dir: Path) -> list[str]:
    """``--set`` pairs that point a run file's task files at ``data`` and its run at ``run_dir``."""
    from next_controller.config import load_run_config

    config = load_run_config(path)
    pairs = ["run_dir=%s" % run_dir, "data.train=%s" % (data / "train.jsonl"), "data.dev=%s" % (data / "dev.jsonl")]
    return pairs + ["data.test.%s=%s" % (name, data / "dev.jsonl") for name in config.data.test]


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of shell text: continuation lines joined, comments dropped, split at
    ``&&``, ``||``, ``;`` and ``|``, output redirections (``> FILE``) removed."""
    commands: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        tokens = list(lexer)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in ("&&", "||", ";", "|"):
                commands.append(current)
                current = []
            elif token in (">", ">>", "2>"):
                i += 1  # and its file
            else:
                current.append(token)
            i += 1
        commands.append(current)
    return [c for c in commands if c]


def split_env(command: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` assignments, and the command after them."""
    env: dict[str, str] = {}
    while command and "=" in command[0] and command[0].split("=", 1)[0].isidentifier():
        name, value = command[0].split("=", 1)
        env[name] = value
        command = command[1:]
    return env, command


def next_argv(command: list[str]) -> list[str] | None:
    """The arguments of a `next` command (``next ...`` or ``.venv/bin/next ...``), else None."""
    _, command = split_env(command)
    if command and command[0] in ("next", ".venv/bin/next"):
        return command[1:]
    return None


def header_commands(path: Path) -> list[list[str]]:
    """The commands in a run file's header comment: its lines indented by three or more spaces."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            lines.append(line[1:])
    return shell_commands("\n".join(lines))


def bash_blocks(markdown: str) -> list[str]:
    """The contents of a markdown text's ```bash blocks."""
    blocks, current, inside = [], [], False
    for line in markdown.splitlines():
        if not inside and line.strip() == "```bash":
            inside, current = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append("\n".join(current))
        elif inside:
            current.append(line)
    return blocks
