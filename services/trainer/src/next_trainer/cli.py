"""``next-trainer``: run one training job (in-process or on a server at ``--target``), or serve.

``train`` exits 0 when the job SUCCEEDED, 1 when it ran and FAILED or was CANCELLED, and 2 when
it could not start (an invalid config, missing data or model, an unreachable ``--target``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from next_common.cli import EXIT_FAILED, EXIT_OK, add_common_options, run_command, setup_logging
from next_common.progress import Progress
from next_trainer.inprocess import InProcessTrainerClient
from next_trainer.settings import TrainerSettings
from nextapi.trainer.client import GrpcTrainerClient, TrainerClient
from nextapi.trainer.config import load_config
from nextapi.trainer.types import JobState, JobStatus


async def _follow(client: TrainerClient, started: JobStatus) -> JobStatus:
    job = started
    with Progress("training", unit="step", leave=True) as bar:
        async for job in client.watch(started.job_id):
            p = job.progress
            if p.total_steps:
                bar.set_total(p.total_steps)
            bar.advance_to(p.step)  # a resumed job starts part of the way
            if p.step:
                bar.set_postfix(loss="%.4f" % p.loss, lr="%.2e" % p.learning_rate, tok_s="%.0f" % p.tokens_per_second)
    return job


async def _train(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set or [])
    client: TrainerClient = GrpcTrainerClient(args.target) if args.target else InProcessTrainerClient()
    try:
        job = await client.start(config)
        print("job %s: %s -> %s" % (job.job_id, config.data_path, config.output_dir), file=sys.stderr)
        try:
            job = await _follow(client, job)
        except (KeyboardInterrupt, asyncio.CancelledError):
            job = await client.cancel(job.job_id)
    finally:
        await client.close()
    if job.data:
        d = job.data
        print("data: %d examples, %d kept, %d truncated, %d dropped" % (d.examples, d.kept, d.truncated, d.dropped))
    if job.state is JobState.SUCCEEDED:
        resumed = " (resumed from step %d)" % job.resumed_from_step if job.resumed_from_step else ""
        print("adapter: %s%s, final loss %.4f" % (job.adapter_path, resumed, job.final_loss))
        return EXIT_OK
    print("job %s %s: %s" % (job.job_id, job.state.value, job.reason), file=sys.stderr)
    return EXIT_FAILED


async def _serve(args: argparse.Namespace) -> int:
    from next_trainer.server import serve

    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.storage_root:
        overrides["storage_root"] = args.storage_root
    await serve(TrainerSettings(**overrides))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="next-trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="run one job and follow it (it resumes from its checkpoints if rerun)")
    p.add_argument("--config", required=True, help="YAML file of training settings")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, e.g. optim.max_steps=50")
    p.add_argument("--target", help="HOST:PORT of a trainer server (default: in-process)")
    p.set_defaults(run=_train)
    p = sub.add_parser("serve", help="run the gRPC TrainerService")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--storage-root", help="confine data and outputs to this folder")
    p.set_defaults(run=_serve)
    return add_common_options(parser, "TRAINER_")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args, "TRAINER_", serving=args.command == "serve")
    return run_command(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
