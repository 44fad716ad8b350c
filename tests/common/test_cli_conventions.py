"""One command-line contract for next-tracer, next-sampler, next-trainer and next: --log-level
on every command, the exit-status epilog, and progress that is a bar only on a terminal."""

from __future__ import annotations

import argparse
import io
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from next_common.cli import EXIT_FAILED, EXIT_OK, EXIT_STATUS_HELP, EXIT_USAGE, setup_logging
from next_common.progress import Progress, note


def _parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from next_controller.cli import build_parser as controller
    from next_sampler.cli import build_parser as sampler
    from next_tracer.cli import build_parser as tracer
    from next_trainer.cli import build_parser as trainer

    return {"next-tracer": tracer, "next-sampler": sampler, "next-trainer": trainer, "next": controller}


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of a CLI with the words that reach it: the top level, groups and leaves."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_the_exit_codes_are_the_documented_ones() -> None:
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE) == (0, 1, 2)
    assert "0 passed" in EXIT_STATUS_HELP and "1 ran but did not pass" in EXIT_STATUS_HELP
    assert "2 usage or input error" in EXIT_STATUS_HELP


@pytest.mark.parametrize("cli", ["next-tracer", "next-sampler", "next-trainer", "next"])
def test_every_command_takes_log_level_and_documents_exit_codes(cli: str) -> None:
    commands = list(_commands(_parsers()[cli]()))
    assert len(commands) >= 3  # the top level and at least two commands
    for path, parser in commands:
        assert "--log-level" in parser._option_string_actions, (cli, path)
        assert parser.epilog == EXIT_STATUS_HELP, (cli, path)
        assert parser._option_string_actions["--log-level"].choices == ("DEBUG", "INFO", "WARNING", "ERROR")


def test_log_level_goes_before_or_after_the_command_and_is_case_blind() -> None:
    parser = _parsers()["next"]()
    assert parser.parse_args(["--log-level", "debug", "status", "r"]).log_level == "DEBUG"
    assert parser.parse_args(["status", "r", "--log-level", "Error"]).log_level == "ERROR"
    assert parser.parse_args(["data", "--log-level", "info", "stats", "f"]).log_level == "INFO"
    assert not hasattr(parser.parse_args(["status", "r"]), "log_level")  # the environment decides
    with pytest.raises(SystemExit) as usage:
        parser.parse_args(["status", "r", "--log-level", "LOUD"])
    assert usage.value.code == EXIT_USAGE


@pytest.mark.parametrize("module", ["next_tracer", "next_sampler", "next_trainer", "next_controller"])
def test_help_shows_log_level_and_the_exit_status(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "--log-level {DEBUG,INFO,WARNING,ERROR}" in text
    assert " ".join(EXIT_STATUS_HELP.split()) in text


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_flag_over_environment_over_default(root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACER_LOG_LEVEL", raising=False)
    setup_logging(argparse.Namespace(), "TRACER_")
    assert root_logging.level == logging.WARNING  # one-shot commands print results, not logs
    setup_logging(argparse.Namespace(), "TRACER_", serving=True)
    assert root_logging.level == logging.INFO
    monkeypatch.setenv("TRACER_LOG_LEVEL", "debug")
    setup_logging(argparse.Namespace(), "TRACER_")
    assert root_logging.level == logging.DEBUG
    setup_logging(argparse.Namespace(log_level="ERROR"), "TRACER_", serving=True)
    assert root_logging.level == logging.ERROR
    monkeypatch.setenv("TRACER_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as usage:
        setup_logging(argparse.Namespace(), "TRACER_")
    assert usage.value.code == EXIT_USAGE


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


def test_off_a_terminal_progress_is_plain_lines() -> None:
    out = io.StringIO()
    with Progress("traces", 3, "sample", stream=out, interval_s=0) as bar:
        bar.update()
        bar.set_postfix(loss="0.5000")
        bar.update(2)
    note("stage prepare: done", out)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert all(re.match(STAMP, line) for line in lines), lines
    assert lines[0].endswith("traces: started, 3 samples")
    assert re.search(r"traces: 1/3 samples \(33%\), [\d.]+s, [\d.]+ sample/s$", lines[1]), lines[1]
    assert lines[2].endswith("loss=0.5000")
    assert re.search(r"traces: done in [\d.]+s, 3/3 samples \(100%\), loss=0.5000$", lines[3]), lines[3]
    assert lines[4].endswith("stage prepare: done") and len(lines) == 5


def test_plain_lines_are_periodic_and_a_total_can_come_later() -> None:
    out = io.StringIO()
    bar = Progress("round-1 train", unit="step", stream=out, interval_s=3600)
    for step in (1, 2, 5):
        bar.advance_to(step)
    bar.advance_to(4)  # never backwards
    bar.set_total(8)
    bar.close()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("round-1 train: started")  # no line within the interval
    assert "done in" in lines[1] and lines[1].endswith("5/8 steps (62%)")


def test_on_a_terminal_progress_is_a_bar_and_off_it_stays_silent() -> None:
    tty = Terminal()
    with Progress("traces", 2, "sample", stream=tty, interval_s=0) as bar:
        bar.update(2)
    assert "\r" in tty.getvalue() and "traces" in tty.getvalue()
    quiet = io.StringIO()
    with Progress("traces", 2, stream=quiet, enabled=False) as bar:
        bar.update(2)
    assert quiet.getvalue() == ""
