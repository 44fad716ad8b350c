"""Adding an adapter to TGI by rolling its Kubernetes Deployment.

TGI loads LoRA adapters only when it starts, from ``LORA_ADAPTERS`` (``name=/path,...``). To serve
a new adapter, the sampler's ``tgi`` backend (``SAMPLER_TGI_DEPLOYMENT``) appends ``name=path`` to
that variable on TGI's Deployment and waits until the Deployment has rolled out, with the official
Kubernetes client (``next-sampler[k8s]``):

1. ``GET`` the Deployment and find the container that declares ``LORA_ADAPTERS`` (or its only one).
2. If the adapter is listed with that path already (a retried or resumed activation), skip to 4.
3. ``PATCH`` it with a JSON patch that first tests the variable's current value and then replaces
   it (adds it when the container has none): a concurrent change fails the test (422) instead of
   being overwritten, and is retried from a fresh read. Earlier adapters stay in the list, so the
   adapters of earlier rounds keep working after the restart.
4. Poll the Deployment (``GET``, what ``kubectl rollout status`` does) until the deployment
   controller has observed the new generation and the new ReplicaSet has all replicas updated
   and available with no old pod left, failing early when the Deployment's ``Progressing``
   condition says ``ProgressDeadlineExceeded``, and after ``timeout_s`` otherwise.

It reads and patches only that one Deployment, so the Role it needs is ``get`` and ``patch`` on
``deployments/<name>`` (``deploy/k8s/components/tgi``). The caller then verifies the adapter with
the usual canary. Configuration: in a pod, the service account's in-cluster configuration;
elsewhere, the kubeconfig (``KUBECONFIG``) like kubectl.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from next_common.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NextError,
    NotFoundError,
    UnavailableError,
)

log = logging.getLogger(__name__)

LORA_ADAPTERS = "LORA_ADAPTERS"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
REQUEST_TIMEOUT_S = 30.0
POLL_S = 2.0  # between reads of the Deployment while it rolls out
PATCH_ATTEMPTS = 3
T = TypeVar("T")


def parse_lora_adapters(value: str) -> dict[str, str]:
    """TGI's ``LORA_ADAPTERS`` as ``{name: entry}``, in order. ``name=/path`` is a local adapter
    named ``name``; a hub id (``org/adapter`` or ``org/adapter@revision``) is named ``org/adapter``."""
    entries: dict[str, str] = {}
    for raw in value.split(","):
        entry = raw.strip()
        if entry:
            name = entry.split("=", 1)[0] if "=" in entry else entry.split("@", 1)[0]
            entries[name.strip()] = entry
    return entries


def with_adapter(value: str, name: str, path: str) -> str:
    """``value`` with ``name=path`` in it: appended, or replacing an entry of the same name."""
    if not name or any(c in name for c in ",=") or name != name.strip():
        raise InvalidArgumentError("adapter name %r cannot go into LORA_ADAPTERS (no ',', '=' or spaces)" % name)
    if not path or "," in path:
        raise InvalidArgumentError("adapter path %r cannot go into LORA_ADAPTERS (empty or with ',')" % path)
    entries = parse_lora_adapters(value)
    entries[name] = "%s=%s" % (name, path)
    return ",".join(entries.values())


@dataclass(frozen=True)
class RolloutState:
    done: bool
    message: str  # what is being waited for, or what finished
    failed: bool = False


def rollout_state(deployment: k8s.V1Deployment, generation: int) -> RolloutState:
    """Where the rollout of ``generation`` stands, judged like ``kubectl rollout status``."""
    status = deployment.status or k8s.V1DeploymentStatus()
    observed = status.observed_generation or 0
    if observed < generation:
        return RolloutState(False, "waiting for the deployment controller to observe generation %d" % generation)
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    replica_set = new_replica_set(deployment) or "the new ReplicaSet"
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return RolloutState(False, "it exceeded its progress deadline: %s" % progressing.message, failed=True)
    want = deployment.spec.replicas if deployment.spec and deployment.spec.replicas is not None else 1
    updated, replicas = status.updated_replicas or 0, status.replicas or 0
    available = status.available_replicas or 0
    if updated < want:
        return RolloutState(False, "%d of %d replicas of %s created" % (updated, want, replica_set))
    if replicas > updated:
        return RolloutState(False, "%d old replicas are still terminating" % (replicas - updated))
    if available < updated:
        return RolloutState(False, "%d of %d replicas of %s available" % (available, updated, replica_set))
    return RolloutState(True, "%s is available (%d of %d replicas)" % (replica_set, available, want))


def new_replica_set(deployment: k8s.V1Deployment) -> str:
    """The new ReplicaSet's name, as the deployment controller reports it in ``Progressing``."""
    status = deployment.status or k8s.V1DeploymentStatus()
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.message:
            found = re.search(r'ReplicaSet "([^"]+)"', condition.message)
            if found:
                return found.group(1)
    return ""


@dataclass(frozen=True)
class Rollout:
    adapters: dict[str, str]  # LORA_ADAPTERS after the rollout, {name: entry}
    patched: bool  # False: the adapter was there already
    replica_set: str
    seconds: float


class TgiDeployment:
    """TGI's Deployment, seen through the Kubernetes API: its adapters, and adding one."""

    def __init__(
        self,
        api: k8s.ApiClient,
        name: str,
        namespace: str,
        timeout_s: float = 1800.0,
        poll_s: float | None = None,
    ) -> None:
        if not name or not namespace:
            raise InvalidArgumentError("a TGI Deployment needs a name and a namespace")
        self.api = api
        self.apps = k8s.AppsV1Api(api)
        self.name = name
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.poll_s = POLL_S if poll_s is None else poll_s

    @classmethod
    def from_environment(cls, name: str, namespace: str = "", timeout_s: float = 1800.0) -> TgiDeployment:
        """In a pod: its service account; elsewhere: the kubeconfig. ``namespace`` "": the pod's
        own namespace, or the kubeconfig context's."""
        configuration = k8s.Configuration()
        try:
            if os.environ.get("KUBERNETES_SERVICE_HOST"):
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                namespace = namespace or _read(SERVICE_ACCOUNT_NAMESPACE)
            else:
                kubeconfig = os.environ.get("KUBECONFIG") or "~/.kube/config"  # read now, not at import
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    kubeconfig, client_configuration=configuration, persist_config=False
                )
                if not namespace:
                    _, context = k8s_config.list_kube_config_contexts(kubeconfig)  # type: ignore[no-untyped-call]
                    namespace = str(context.get("context", {}).get("namespace", "")) if context else ""
        except ConfigException as exc:
            raise InvalidArgumentError(
                "SAMPLER_TGI_DEPLOYMENT=%s: no Kubernetes configuration (neither in a pod with a service account "
                "token nor a kubeconfig): %s" % (name, exc)
            ) from None
        return cls(k8s.ApiClient(configuration), name, namespace or "default", timeout_s)

    @property
    def where(self) -> str:
        return "deployment %s/%s" % (self.namespace, self.name)

    # -- the API calls (blocking; the async methods run them in a thread) -----------------------------
    def read(self) -> k8s.V1Deployment:
        return self._call(
            "get",
            lambda: self.apps.read_namespaced_deployment(self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT_S),
        )

    def _patch(self, operations: list[dict[str, Any]]) -> k8s.V1Deployment | None:
        """The patched Deployment, or None when a test failed (it changed since it was read)."""
        return self._call(
            "patch",
            lambda: self.apps.patch_namespaced_deployment(
                self.name,
                self.namespace,
                operations,
                field_manager="next-sampler",
                _content_type="application/json-patch+json",
                _request_timeout=REQUEST_TIMEOUT_S,
            ),
            changed_meanwhile=True,
        )

    @overload
    def _call(self, verb: str, call: Callable[[], T]) -> T: ...

    @overload
    def _call(self, verb: str, call: Callable[[], T], changed_meanwhile: Literal[True]) -> T | None: ...

    def _call(self, verb: str, call: Callable[[], T], changed_meanwhile: bool = False) -> T | None:
        try:
            return call()
        except ApiException as exc:
            if changed_meanwhile and exc.status in (409, 422):  # a failed JSON patch test is 422
                log.info("%s changed while it was patched (%s: %s)", self.where, exc.status, _status_message(exc))
                return None
            raise self._api_error(verb, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UnavailableError(
                "the Kubernetes API at %s cannot be reached (%s %s): %s"
                % (self.api.configuration.host, verb, self.where, exc)
            ) from None

    def _api_error(self, verb: str, exc: ApiException) -> NextError:
        message = _status_message(exc)
        if exc.status == 401:
            return FailedPreconditionError(
                "the Kubernetes API did not accept the sampler's credentials (401) to %s %s: %s"
                % (verb, self.where, message)
            )
        if exc.status == 403:
            return FailedPreconditionError(
                "the Kubernetes API forbids the sampler to %s %s (403): %s. Its service account needs get and "
                "patch on deployments/%s in namespace %s (the Role in deploy/k8s/components/tgi)"
                % (verb, self.where, message, self.name, self.namespace)
            )
        if exc.status == 404:
            return NotFoundError(
                "%s does not exist (SAMPLER_TGI_DEPLOYMENT, SAMPLER_TGI_NAMESPACE): %s" % (self.where, message)
            )
        return UnavailableError(
            "the Kubernetes API refused to %s %s (%s %s): %s" % (verb, self.where, exc.status, exc.reason, message)
        )

    # -- LORA_ADAPTERS ---------------------------------------------------------------------------------
    def _container(self, deployment: k8s.V1Deployment) -> tuple[int, k8s.V1Container]:
        pod = deployment.spec.template.spec if deployment.spec else None
        containers = list(pod.containers or []) if pod else []
        declaring = [(i, c) for i, c in enumerate(containers) if any(e.name == LORA_ADAPTERS for e in c.env or [])]
        if len(declaring) == 1:
            return declaring[0]
        if not declaring and len(containers) == 1:
            return 0, containers[0]
        raise FailedPreconditionError(
            "%s: cannot tell which container is TGI (%d of its containers %s declare %s)"
            % (self.where, len(declaring), ", ".join(c.name for c in containers), LORA_ADAPTERS)
        )

    def adapters(self, deployment: k8s.V1Deployment | None = None) -> dict[str, str]:
        """``{name: entry}`` of the Deployment's ``LORA_ADAPTERS`` (read now if not given)."""
        _, container = self._container(deployment or self.read())
        env = next((e for e in container.env or [] if e.name == LORA_ADAPTERS), None)
        if env is not None and env.value_from is not None:
            raise FailedPreconditionError(
                "%s sets %s from a reference (valueFrom); the sampler can only extend a literal value"
                % (self.where, LORA_ADAPTERS)
            )
        return parse_lora_adapters(env.value or "" if env is not None else "")

    def _operations(self, deployment: k8s.V1Deployment, value: str) -> list[dict[str, Any]]:
        """Test the variable as it was read, then replace it (or add it to a container without it):
        if someone changed it meanwhile, the test fails (422) rather than their change being lost."""
        index, container = self._container(deployment)
        base = "/spec/template/spec/containers/%d" % index
        env = list(container.env or [])
        variable = {"name": LORA_ADAPTERS, "value": value}
        at = next((j for j, e in enumerate(env) if e.name == LORA_ADAPTERS), None)
        if at is not None:
            seen: dict[str, Any] = {"name": LORA_ADAPTERS}
            if env[at].value:  # the API leaves an empty value out of the object
                seen["value"] = env[at].value
            path = "%s/env/%d" % (base, at)
            return [{"op": "test", "path": path, "value": seen}, {"op": "replace", "path": path, "value": variable}]
        operations: list[dict[str, Any]] = [{"op": "test", "path": base + "/name", "value": container.name}]
        if env:
            return [*operations, {"op": "add", "path": base + "/env/-", "value": variable}]
        return [*operations, {"op": "add", "path": base + "/env", "value": [variable]}]

    # -- adding an adapter -----------------------------------------------------------------------------
    async def add_adapter(self, name: str, path: str) -> Rollout:
        """Put ``name=path`` into ``LORA_ADAPTERS`` and wait until the Deployment has rolled out."""
        started = time.monotonic()
        patched = False
        for attempt in range(1, PATCH_ATTEMPTS + 1):
            deployment = await asyncio.to_thread(self.read)
            current = self.adapters(deployment)
            if current.get(name) == "%s=%s" % (name, path):
                log.info("%s already lists adapter %s=%s; waiting for its rollout", self.where, name, path)
                break
            value = with_adapter(",".join(current.values()), name, path)
            done = await asyncio.to_thread(self._patch, self._operations(deployment, value))
            if done is not None:
                deployment, patched = done, True
                log.info("%s: %s=%s (rolling out)", self.where, LORA_ADAPTERS, value)
                break
            if attempt == PATCH_ATTEMPTS:
                raise UnavailableError(
                    "%s kept changing while the sampler patched %s (%d attempts)" % (self.where, LORA_ADAPTERS, attempt)
                )
        generation = deployment.metadata.generation if deployment.metadata else None
        replica_set = await self._wait(int(generation or 0), name, started)
        return Rollout(self.adapters(deployment), patched, replica_set, time.monotonic() - started)

    async def _wait(self, generation: int, adapter: str, started: float) -> str:
        deadline = started + self.timeout_s
        last = ""
        while True:
            deployment = await asyncio.to_thread(self.read)
            state = rollout_state(deployment, generation)
            if state.message != last:
                log.info("%s: %s", self.where, state.message)
                last = state.message
            if state.failed:
                raise FailedPreconditionError(
                    "%s did not roll out adapter %r: %s (kubectl -n %s describe deploy/%s)"
                    % (self.where, adapter, state.message, self.namespace, self.name)
                )
            if state.done:
                return new_replica_set(deployment)
            if time.monotonic() >= deadline:
                raise DeadlineExceededError(
                    "%s did not finish rolling out adapter %r within %g s: %s (kubectl -n %s rollout status "
                    "deploy/%s)" % (self.where, adapter, self.timeout_s, state.message, self.namespace, self.name)
                )
            await asyncio.sleep(self.poll_s)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the API's ``Status`` body, else the body or the reason."""
    body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
    try:
        status = json.loads(body or "")
    except ValueError:
        return (body or str(exc.reason or "")).strip()[:500]
    if isinstance(status, dict) and status.get("message"):
        causes = [c.get("message", "") for c in (status.get("details") or {}).get("causes", []) if isinstance(c, dict)]
        return "; ".join([str(status["message"]), *filter(None, causes)])[:500]
    return str(body)[:500]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
