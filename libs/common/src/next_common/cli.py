"""What every NExT command line does around its async command: errors become one line and exit 2."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable

import grpc

from next_common.errors import NextError

EXIT_USAGE = 2


def run_command(command: Awaitable[int], user_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``command``; a domain, I/O or RPC error prints ``error: ...`` and returns exit code 2."""
    expected: tuple[type[Exception], ...] = (NextError, OSError, *user_errors)
    try:
        return asyncio.run(command)  # type: ignore[arg-type]
    except expected as exc:
        print("error: %s" % exc, file=sys.stderr)
    except grpc.aio.AioRpcError as exc:
        print("error: %s: %s" % (exc.code().name, exc.details()), file=sys.stderr)
    return EXIT_USAGE
