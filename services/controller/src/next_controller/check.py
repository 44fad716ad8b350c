"""``next run --check``: what a run needs, checked before anything starts.

One line per check, ``ok``, ``note`` (could not be checked from here; not a problem) or
``problem``, with what and where. ``next run`` runs the same checks first and refuses to start
on a problem. Each check is what the run itself does, done early: the config loader, the
algorithm's task loading, the filter registry, the tracer's trace formats (its registry in
embedded mode, ``ListFormats`` in remote mode), the model lookup of ``next_common.models``
(without asking the hub: a hub id that is not cached is a note), and the services' gRPC
health checks (remote mode, with a short timeout under ``--check``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import grpc

from next_common.cli import EXIT_USAGE
from next_common.errors import InvalidArgumentError, NextError
from next_common.models import GGUF_KIND, HUB_UNCHECKED_KIND, PACKAGED_KIND, check_model_exists
from next_controller.algorithm import load_task_set
from next_controller.config import RunConfig, dump_config, load_run_config
from next_controller.filters import run_filters
from next_controller.rundir import RunDir
from next_controller.services import tracer_target, wait_healthy
from nextapi.sampler.v1 import sampler_service_pb2 as sampler_pb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as sampler_grpc
from nextapi.tracer.v1 import tracer_service_pb2 as tracer_pb
from nextapi.tracer.v1 import tracer_service_pb2_grpc as tracer_grpc

OK, NOTE, PROBLEM = "ok", "note", "problem"
CHECK_TIMEOUT_S = 5.0  # --check: how long a service or an inference server may take to answer
EMBEDDED_HINT = "pip install 'next-controller[embedded]' (or scripts/install.sh dev)"
SERVICE_NAMES = {
    "tracer": "nextapi.tracer.v1.TracerService",
    "sampler": "nextapi.sampler.v1.SamplerService",
    "trainer": "nextapi.trainer.v1.TrainerService",
}


@dataclass(frozen=True)
class Check:
    status: str  # OK, NOTE or PROBLEM
    what: str  # the run file's key (or the service) it is about
    message: str

    def line(self) -> str:
        return "%-7s %s: %s" % (self.status, self.what, self.message)


def _problem(what: str, exc: BaseException) -> Check:
    message = str(exc)
    return Check(PROBLEM, what, message.removeprefix(what + ": "))


async def run_checks(
    path: str | Path, overrides: list[str] | None = None, service_timeout_s: float | None = None
) -> tuple[RunConfig | None, list[Check]]:
    """Every check of the run file at ``path``; ``service_timeout_s`` None waits as long as the run
    would (``services.connect_timeout_s``). The config is None when it does not load."""
    try:
        config = load_run_config(path, overrides)
    except (NextError, OSError) as exc:
        return None, [Check(PROBLEM, "config", str(exc))]
    checks = [Check(OK, "config", "%s: every key known, every value valid" % path)]
    return config, checks + await config_checks(config, service_timeout_s)


async def config_checks(config: RunConfig, service_timeout_s: float | None = None) -> list[Check]:
    """The checks of a loaded config: run directory, data, filters, model, services."""
    checks = [check_run_dir(config), *check_data(config), check_filters(config), check_model(config)]
    timeout = config.services.connect_timeout_s if service_timeout_s is None else service_timeout_s
    return checks + await check_services(config, timeout)


async def refuse_on_problems(config: RunConfig) -> None:
    """What ``StartRun`` does before a run starts: the same checks; any problem is the caller's error."""
    problems = [c.line() for c in await config_checks(config) if c.status == PROBLEM]
    if problems:
        raise InvalidArgumentError("the run cannot start: %s" % "; ".join(problems))


def check_run_dir(config: RunConfig) -> Check:
    root = config.path.absolute()
    try:
        resumes = RunDir(root).resumes(dump_config(config))
    except (NextError, OSError) as exc:
        return _problem("run_dir", exc)
    return Check(OK, "run_dir", "%s (%s)" % (root, "resumes the run there: same config" if resumes else "a new run"))


def check_data(config: RunConfig) -> list[Check]:
    checks = []
    for task_set in config.data.sets():
        try:
            tasks = load_task_set(task_set)
        except NextError as exc:
            checks.append(_problem(task_set.key, exc))
            continue
        limit = " (limit %d)" % task_set.limit if task_set.limit else ""
        checks.append(Check(OK, task_set.key, "%s: %d tasks%s" % (task_set.path, len(tasks), limit)))
    return checks


def check_filters(config: RunConfig) -> Check:
    try:
        run_filters(config.filters.names)
    except NextError as exc:
        return _problem("filters.names", exc)
    return Check(OK, "filters.names", "%s: registered" % ", ".join(config.filters.names))


def check_model(config: RunConfig) -> Check:
    name, services = config.base_model, config.services
    try:
        kind = check_model_exists(name, ask_hub=False)
    except NextError as exc:
        return _problem("base_model", exc)
    llamacpp = (
        services.mode == "embedded" and services.sampler_backend == "local" and services.local_engine == "llamacpp"
    )
    if llamacpp and kind not in (PACKAGED_KIND, GGUF_KIND):
        return Check(
            PROBLEM,
            "base_model",
            "%s is %s, but the embedded llama.cpp engine loads a GGUF file or a packaged model;"
            " set services.local_engine: transformers" % (name, kind),
        )
    return Check(NOTE if kind == HUB_UNCHECKED_KIND else OK, "base_model", "%s: %s" % (name, kind))


async def check_services(config: RunConfig, timeout_s: float) -> list[Check]:
    if config.services.mode == "embedded":
        return await _check_embedded(config, timeout_s)
    return await _check_remote(config, timeout_s)


# -- embedded: the services start here ---------------------------------------------------------------
async def _check_embedded(config: RunConfig, timeout_s: float) -> list[Check]:
    missing = [m for m in ("next_tracer", "next_sampler", "next_trainer") if importlib.util.find_spec(m) is None]
    if missing:
        return [
            Check(
                PROBLEM,
                "services.mode",
                "embedded starts %s here, not installed: %s" % (", ".join(missing), EMBEDDED_HINT),
            )
        ]
    checks = [Check(OK, "services.mode", "embedded: tracer, sampler and trainer start on loopback")]
    checks.append(_embedded_trace_format(config))
    checks.append(await _embedded_backend(config, timeout_s))
    return checks


def _embedded_trace_format(config: RunConfig) -> Check:
    from next_tracer.formats.registry import FormatRegistry  # installed: embedded mode runs the tracer here

    name = config.sampling.trace_format
    try:
        FormatRegistry().get(name)
    except NextError as exc:
        return _problem("sampling.trace_format", exc)
    return Check(OK, "sampling.trace_format", "%s: a trace format of the tracer" % name)


async def _embedded_backend(config: RunConfig, timeout_s: float) -> Check:
    """The settings the embedded sampler reads from this environment for the run's backend."""
    what, backend = "services.sampler_backend", config.services.sampler_backend
    if backend == "local":
        return Check(OK, what, "local (%s engine, base_model)" % config.services.local_engine)
    if backend == "replay":
        replay = config.services.replay_file
        if not replay or not Path(replay).is_file():
            return Check(PROBLEM, "services.replay_file", "%r: no such file (the replay backend needs one)" % replay)
        return Check(OK, what, "replay from %s" % replay)
    if backend == "openai":
        url, model = os.environ.get("SAMPLER_OPENAI_URL", ""), os.environ.get("SAMPLER_OPENAI_MODEL", "")
        if not url or not model:
            return Check(
                PROBLEM,
                what,
                "openai: set SAMPLER_OPENAI_URL (e.g. http://127.0.0.1:8000) and SAMPLER_OPENAI_MODEL"
                " (the name the server serves the base model as) for the embedded sampler",
            )
        try:
            listing = await asyncio.to_thread(_get_json, url.rstrip("/") + "/v1/models", timeout_s)
        except OSError as exc:
            return Check(PROBLEM, what, "openai: the server at %s does not answer (%s)" % (url, exc))
        data = listing.get("data")
        served = [m.get("id", "") for m in data if isinstance(m, dict)] if isinstance(data, list) else []
        if model not in served:
            return Check(PROBLEM, what, "openai: %s serves %s, not SAMPLER_OPENAI_MODEL=%r" % (url, served, model))
        return Check(OK, what, "openai: %s serves %s" % (url, model))
    if backend == "tgi":
        url = os.environ.get("SAMPLER_TGI_URL", "")
        if not url:
            return Check(
                PROBLEM, what, "tgi: set SAMPLER_TGI_URL (e.g. http://127.0.0.1:8080) for the embedded sampler"
            )
        try:
            await asyncio.to_thread(_get_json, url.rstrip("/") + "/info", timeout_s)
        except OSError as exc:
            return Check(PROBLEM, what, "tgi: the server at %s does not answer (%s)" % (url, exc))
        return Check(OK, what, "tgi: %s answers" % url)
    return Check(NOTE, what, "%s: a plugin backend, checked when the sampler starts" % backend)


def _get_json(url: str, timeout_s: float) -> dict[str, object]:
    headers = {}
    if os.environ.get("SAMPLER_OPENAI_API_KEY"):
        headers["Authorization"] = "Bearer " + os.environ["SAMPLER_OPENAI_API_KEY"]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as reply:
            data = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise OSError("HTTP %d from %s" % (exc.code, url)) from None
    except ValueError:
        raise OSError("%s: not JSON" % url) from None
    return data if isinstance(data, dict) else {}


# -- remote: the services are reached at their targets ------------------------------------------------
async def _check_remote(config: RunConfig, timeout_s: float) -> list[Check]:
    services = config.services
    checks: list[Check] = []
    targets = {"sampler": services.sampler, "trainer": services.trainer}
    try:
        targets = {"tracer": tracer_target(services.tracer), **targets}
    except InvalidArgumentError as exc:
        checks.append(_problem("services.tracer", exc))

    async def healthy(name: str, target: str) -> Check:
        try:
            await wait_healthy(target, SERVICE_NAMES[name], name, timeout_s)
        except NextError as exc:
            return _problem("services." + name, exc)
        return Check(OK, "services." + name, "%s: SERVING" % target)

    health = await asyncio.gather(*(healthy(name, target) for name, target in targets.items()))
    checks += health
    up = {c.what.removeprefix("services."): c.status == OK for c in health}
    if up.get("tracer"):
        checks.append(await _ask("sampling.trace_format", _remote_trace_format(config, targets["tracer"], timeout_s)))
    else:
        checks.append(Check(NOTE, "sampling.trace_format", "not checked: the tracer does not answer"))
    if up.get("sampler"):
        checks.append(await _ask("services.sampler_backend", _remote_backend(config, targets["sampler"], timeout_s)))
    else:
        checks.append(Check(NOTE, "services.sampler_backend", "not checked: the sampler does not answer"))
    return checks


async def _ask(what: str, call: Awaitable[Check]) -> Check:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        return Check(PROBLEM, what, "%s: %s" % (exc.code().name, exc.details()))


async def _remote_trace_format(config: RunConfig, target: str, timeout_s: float) -> Check:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await tracer_grpc.TracerServiceStub(channel).ListFormats(
            tracer_pb.ListFormatsRequest(), timeout=timeout_s
        )
    names = sorted(f.name for f in reply.formats)
    name = config.sampling.trace_format
    if name not in names:
        return Check(
            PROBLEM,
            "sampling.trace_format",
            "the tracer at %s has no format %r; it has: %s" % (target, name, ", ".join(names)),
        )
    return Check(OK, "sampling.trace_format", "%s: a trace format of the tracer at %s" % (name, target))


async def _remote_backend(config: RunConfig, target: str, timeout_s: float) -> Check:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await sampler_grpc.SamplerServiceStub(channel).ListBackends(
            sampler_pb.ListBackendsRequest(), timeout=timeout_s
        )
    served = sorted(b.name for b in reply.backends)
    wanted = [config.services.sampler_backend]
    if config.evaluation.proxy.enabled and config.evaluation.proxy.backend:
        wanted.append(config.evaluation.proxy.backend)
    missing = [b for b in wanted if b not in served]
    if missing:
        return Check(
            PROBLEM,
            "services.sampler_backend",
            "the sampler at %s serves %s, not %s" % (target, ", ".join(served), ", ".join(missing)),
        )
    return Check(OK, "services.sampler_backend", "%s: served by the sampler at %s" % (", ".join(wanted), target))


# -- the commands ----------------------------------------------------------------------------------
async def check_command(path: str | Path, overrides: list[str] | None = None) -> int:
    """``next run --check``: print every check; 0 when none is a problem, 2 otherwise."""
    _, checks = await run_checks(path, overrides, CHECK_TIMEOUT_S)
    for check in checks:
        print(check.line(), flush=True)
    problems = sum(c.status == PROBLEM for c in checks)
    if problems:
        print("%d problem(s): the run would not start" % problems)
        return EXIT_USAGE
    print("all checks passed: next run %s" % path)
    return 0


async def preflight(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """``next run``'s first step: the same checks; notes and problems are printed (stderr), and a
    problem refuses the run before any service starts."""
    config, checks = await run_checks(path, overrides)
    for check in checks:
        if check.status != OK:
            print(check.line(), file=sys.stderr, flush=True)
    problems = sum(c.status == PROBLEM for c in checks)
    if config is None or problems:
        raise InvalidArgumentError(
            "%s: the run cannot start: %d problem(s), listed above (`next run --check %s` lists every check)"
            % (path, problems, path)
        )
    return config
