"""``next``: the user-facing command. ``next data ...`` builds and inspects repair-task files."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import grpc

from next_common.errors import NextError
from next_common.logging import configure_logging
from next_tasks.hefix import build_hefix_plus, summarize
from next_tasks.record import TaskFormatError, load_tasks, save_tasks
from next_tasks.sources import SourceError, load_humaneval_hub, load_humaneval_local
from next_tracer.client import GrpcTracerClient, InProcessTracerClient, TracerClient


def _tracer(args: argparse.Namespace) -> TracerClient:
    return GrpcTracerClient(args.target) if args.target else InProcessTracerClient()


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    for key, value in summary.items():
        if key != "dropped_tasks":
            print("%-16s %s" % (key, value))


async def _build_hefix_plus(args: argparse.Namespace) -> int:
    sources = load_humaneval_local(args.source) if args.source else load_humaneval_hub()
    tracer = _tracer(args)
    try:
        tasks, report = await build_hefix_plus(sources, tracer, args.concurrency)
    finally:
        await tracer.close()
    save_tasks(args.out, tasks)
    _print(report.to_json(), args.json)
    return 0


async def _stats(args: argparse.Namespace) -> int:
    _print(summarize(load_tasks(args.file)), args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="next", description=__doc__)
    sub = parser.add_subparsers(dest="group", required=True)
    data = sub.add_parser("data", help="build and inspect repair-task files").add_subparsers(
        dest="command", required=True
    )
    p = data.add_parser("build-hefix-plus", help="HumanEvalFix buggy programs graded with HumanEval+ inputs")
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.add_argument("--source", help="directory laid out like shared/data (default: the Hugging Face hub)")
    p.add_argument("--target", help="HOST:PORT of a tracer server (default: an in-process sandbox)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(run=_build_hefix_plus)
    p = data.add_parser("stats", help="counts of a task file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING")
    try:
        code: int = asyncio.run(args.run(args))
        return code
    except (NextError, SourceError, TaskFormatError, OSError) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print("error: %s: %s" % (exc.code().name, exc.details()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
