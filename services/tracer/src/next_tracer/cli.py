"""``next-tracer``: run tests, trace, list formats, or serve; in-process or against ``--target``.

``run-tests`` and ``trace`` exit 0 when the verdict is PASSED and 1 otherwise (the output and
``--json``'s ``verdict`` say which); 2 is a usage or input error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from next_common.cli import EXIT_FAILED, EXIT_OK, add_common_options, run_command, setup_logging
from next_common.errors import InvalidArgumentError
from next_tracer.inprocess import InProcessTracerClient
from next_tracer.settings import TracerSettings
from nextapi.tracer.client import GrpcTracerClient, TracerClient
from nextapi.tracer.types import Limits, TraceOptions, Verdict


def _settings(args: argparse.Namespace) -> TracerSettings:
    overrides: dict[str, object] = {}
    if getattr(args, "sandbox", None):
        overrides["sandbox"] = args.sandbox
    if getattr(args, "python", None):
        overrides["python"] = args.python
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    return TracerSettings(**overrides)  # type: ignore[arg-type]


def _client(args: argparse.Namespace) -> TracerClient:
    if args.target:
        return GrpcTracerClient(args.target)
    return InProcessTracerClient(_settings(args))


def _read_tests(args: argparse.Namespace) -> list[str]:
    tests = list(args.test or [])
    if args.tests_json:
        try:
            loaded = json.loads(Path(args.tests_json).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InvalidArgumentError("--tests-json %s: not valid JSON (%s)" % (args.tests_json, exc)) from None
        if not isinstance(loaded, list) or not all(isinstance(t, str) for t in loaded):
            raise InvalidArgumentError("--tests-json must hold a JSON list of test strings")
        tests += loaded
    return tests


def _limits(args: argparse.Namespace) -> Limits | None:
    if not (args.timeout or args.memory_mb):
        return None
    s = TracerSettings()
    return Limits(
        timeout_s=args.timeout or s.default_timeout_s,
        memory_mb=args.memory_mb or s.default_memory_mb,
        output_bytes=s.default_output_bytes,
    )


def _exit(verdict: Verdict) -> int:
    return EXIT_OK if verdict is Verdict.PASSED else EXIT_FAILED


async def _run_tests(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        tests = _read_tests(args)
        if not tests:
            raise InvalidArgumentError("give at least one --test or --tests-json")
        program = Path(args.program).read_text(encoding="utf-8")
        result = await client.run_tests(program, tests, _limits(args), entry_points=args.entry_point or ())
    finally:
        await client.close()
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        for i, t in enumerate(result.tests):
            print("test %d: %s %s" % (i, t.verdict.value, t.message))
        print("verdict: %s" % result.verdict.value)
    return _exit(result.verdict)


async def _trace(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        tests = _read_tests(args)
        if len(tests) != 1:
            raise InvalidArgumentError("trace takes exactly one test")
        options = TraceOptions(format=args.format, max_states_per_line=args.max_states_per_line)
        program = Path(args.program).read_text(encoding="utf-8")
        result = await client.trace(program, tests[0], options, _limits(args), entry_points=args.entry_point or ())
    finally:
        await client.close()
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        sys.stdout.write(result.rendered)
    return _exit(result.test.verdict)


async def _formats(args: argparse.Namespace) -> int:
    engine = InProcessTracerClient(_settings(args)).engine
    for name, description in engine.formats.describe():
        print("%-14s %s" % (name, description))
    return 0


async def _serve(args: argparse.Namespace) -> int:
    from next_tracer.server import serve

    await serve(_settings(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="next-tracer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", help="HOST:PORT of a tracer server (default: run in-process)")
        p.add_argument("--sandbox", choices=["nsjail", "none"], help="in-process only; 'none' disables the sandbox")
        p.add_argument("--python", help="interpreter to run programs with (in-process only)")

    for name in ("run-tests", "trace"):
        p = sub.add_parser(name)
        p.add_argument("program", help="Python file with the program")
        p.add_argument("--test", action="append", help="a test: statements such as 'assert f(1) == 2'")
        p.add_argument("--tests-json", help="JSON file holding a list of test strings")
        p.add_argument("--timeout", type=float, default=0.0, help="seconds per test")
        p.add_argument("--memory-mb", type=int, default=0, help="memory limit of the program process")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument(
            "--entry-point", action="append", help="a program name the tests may call although it shadows a builtin"
        )
        common(p)
        if name == "trace":
            p.add_argument("--format", default="next-inline", help="trace format plugin (see 'formats')")
            p.add_argument("--max-states-per-line", type=int, default=3)
    p = sub.add_parser("formats", help="list trace formats")
    common(p)
    p = sub.add_parser("serve", help="run the gRPC server")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--sandbox", choices=["nsjail", "none"])
    p.add_argument("--python")
    return add_common_options(parser, "TRACER_")


COMMANDS = {"run-tests": _run_tests, "trace": _trace, "formats": _formats, "serve": _serve}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args, "TRACER_", serving=args.command == "serve")
    return run_command(COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
