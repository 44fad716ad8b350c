"""What every NExT command line shares: exit codes, ``--log-level``, and errors as one line.

Exit codes, the same for ``next-tracer``, ``next-sampler``, ``next-trainer`` and ``next``:

- ``EXIT_OK`` (0): the command ran and passed or succeeded (tests passed, a job or run finished).
- ``EXIT_FAILED`` (1): it ran and its result did not pass (a test failed, a training job or a
  run failed). A JSON result says why in its ``verdict`` (or the job's state).
- ``EXIT_USAGE`` (2): nothing meaningful ran because of the input: bad arguments, a missing or
  unreadable file, an invalid config, or a service that cannot be reached (a wrong address and
  a service that is down are both fixed by the caller, then the same command is run again).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable

import grpc

from next_common.errors import NextError
from next_common.logging import configure_logging
from next_common.settings import LogSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# One-shot commands print results, not logs, unless asked; servers log their requests.
COMMAND_LOG_LEVEL = "WARNING"
SERVER_LOG_LEVEL = "INFO"

EXIT_STATUS_HELP = (
    "exit status: 0 passed or succeeded; 1 ran but did not pass (a test failed, a training job or "
    "a run failed); 2 usage or input error (bad arguments, a missing or invalid file or config, "
    "an unreachable service)."
)


def add_common_options(parser: argparse.ArgumentParser, env_prefix: str) -> argparse.ArgumentParser:
    """``--log-level`` and the exit-status epilog on ``parser`` and on every subcommand below it.

    Called once on the finished parser, so subcommands added later get them too. The default is
    ``SUPPRESS`` so that ``--log-level`` works before or after the subcommand without one
    level's default overwriting the other's value.
    """
    if "--log-level" not in parser._option_string_actions:
        parser.add_argument(
            "--log-level",
            type=str.upper,
            choices=LOG_LEVELS,
            default=argparse.SUPPRESS,
            help="log level; default: $%sLOG_LEVEL, else %s (serve: %s)"
            % (env_prefix, COMMAND_LOG_LEVEL, SERVER_LOG_LEVEL),
        )
    if parser.epilog is None:
        parser.epilog = EXIT_STATUS_HELP
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                add_common_options(sub, env_prefix)
    return parser


def setup_logging(args: argparse.Namespace, env_prefix: str, serving: bool = False) -> None:
    """Logging at ``--log-level``, else ``PREFIX_LOG_LEVEL``, else the command's or server's default.

    An unknown level in the environment is a usage error (exit 2), not a traceback.
    """
    env = LogSettings(_env_prefix=env_prefix)
    default = SERVER_LOG_LEVEL if serving else COMMAND_LOG_LEVEL
    level = getattr(args, "log_level", None) or (env.log_level if "log_level" in env.model_fields_set else default)
    if level.upper() not in logging.getLevelNamesMapping():
        print("error: %sLOG_LEVEL=%s: expected one of %s" % (env_prefix, level, ", ".join(LOG_LEVELS)), file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    configure_logging(level, env.log_json)


def run_command(command: Awaitable[int], user_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``command``; a domain, I/O or RPC error prints ``error: ...`` and returns ``EXIT_USAGE``."""
    expected: tuple[type[Exception], ...] = (NextError, OSError, *user_errors)
    try:
        return asyncio.run(command)  # type: ignore[arg-type]
    except expected as exc:
        print("error: %s" % exc, file=sys.stderr)
    except grpc.aio.AioRpcError as exc:
        print("error: %s: %s" % (exc.code().name, exc.details()), file=sys.stderr)
    return EXIT_USAGE
