"""``next-sampler``: sample in-process or against ``--target``, or serve.

``sample`` has no verdict: it exits 0 with every completion, or 2 (no prompt, a bad file, an
unknown backend, a prompt the replay file does not hold, an unreachable ``--target``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import grpc

from next_common.cli import EXIT_OK, add_common_options, run_command, setup_logging
from next_common.errors import InvalidArgumentError
from next_sampler.engine import SamplerEngine
from next_sampler.settings import SamplerSettings
from nextapi.sampler.convert import params_from_proto
from nextapi.sampler.types import Completion, SamplingParams
from nextapi.sampler.v1 import sampler_service_pb2 as pb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc


def _settings(args: argparse.Namespace) -> SamplerSettings:
    overrides: dict[str, Any] = {}
    if getattr(args, "backend", None):
        overrides["backends"] = list(args.backend)
        overrides["default_backend"] = args.backend[0]
    if getattr(args, "replay_file", None):
        overrides["replay_file"] = args.replay_file
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    return SamplerSettings(**overrides)


def _prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompt or [])
    if args.prompts_jsonl:
        for number, line in enumerate(Path(args.prompts_jsonl).read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InvalidArgumentError(
                        "%s:%d: not valid JSON (%s)" % (args.prompts_jsonl, number, exc)
                    ) from None
                prompt = record.get("prompt") if isinstance(record, dict) else record
                if not isinstance(prompt, str):
                    where = "%s:%d" % (args.prompts_jsonl, number)
                    raise InvalidArgumentError('%s: expected a string or {"prompt": ...}' % where)
                prompts.append(prompt)
    if not prompts:
        raise InvalidArgumentError("give --prompt TEXT or --prompts-jsonl FILE")
    return prompts


def _as_json(c: Completion) -> dict[str, Any]:
    return {
        "prompt_index": c.prompt_index,
        "sample_index": c.sample_index,
        "text": c.text,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "finish_reason": c.finish_reason,
        "adapter": c.adapter,
        "seed": c.seed,
    }


async def _sample(args: argparse.Namespace) -> int:
    request = pb.SampleRequest(
        prompts=_prompts(args),
        backend=(args.backend or [""])[0],
        adapter=args.adapter or "",
        params=pb.SamplingParams(
            n=args.n, temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed
        ),
    )
    if args.target:
        async with grpc.aio.insecure_channel(args.target) as channel:
            resp = await pb_grpc.SamplerServiceStub(channel).Sample(request, timeout=3600)
        completions = [
            Completion(
                c.prompt_index,
                c.sample_index,
                c.text,
                c.prompt_tokens,
                c.completion_tokens,
                c.finish_reason,
                c.adapter,
                c.seed,
            )
            for c in resp.completions
        ]
    else:
        engine = SamplerEngine(_settings(args))
        params: SamplingParams = params_from_proto(request.params)
        try:
            completions = await engine.sample(list(request.prompts), params, request.backend, request.adapter)
        finally:
            await engine.aclose()
    if args.json:
        print(json.dumps({"completions": [_as_json(c) for c in completions]}))
    else:
        for c in completions:
            print("--- prompt %d, sample %d (%s)\n%s" % (c.prompt_index, c.sample_index, c.finish_reason, c.text))
    return EXIT_OK


async def _serve(args: argparse.Namespace) -> int:
    from next_sampler.server import serve

    await serve(_settings(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="next-sampler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sample")
    p.add_argument("--prompt", action="append")
    p.add_argument("--prompts-jsonl")
    p.add_argument("-n", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adapter")
    p.add_argument("--backend", action="append", help="backend name (first one is used)")
    p.add_argument("--replay-file", help="recorded completions for the replay backend")
    p.add_argument("--target", help="HOST:PORT of a sampler server (default: in-process)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_sample)
    p = sub.add_parser("serve")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--backend", action="append", help="backends to serve (repeatable)")
    p.add_argument("--replay-file")
    p.set_defaults(run=_serve)
    return add_common_options(parser, "SAMPLER_")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args, "SAMPLER_", serving=args.command == "serve")
    return run_command(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
