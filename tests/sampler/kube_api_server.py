"""A Kubernetes API stand-in for tests (a protocol stand-in on loopback, never used by the product).

No cluster runs here, so the TGI rollout (``next_sampler.backends.tgi_rollout``) is tested with the
official Kubernetes client pointed at this small HTTP server, which answers the requests the
rollout makes with the shapes the API server gives them:

- ``GET`` and ``PATCH`` (``application/json-patch+json``, RFC 6902: add, remove, replace, test) of
  ``/apis/apps/v1/namespaces/{namespace}/deployments/{name}``, answered with the whole Deployment;
  a failed patch operation (a ``test`` that does not hold) is ``422 Invalid``, as the API server's
  patch handler answers it;
- ``metav1.Status`` bodies for 401 (no or a wrong bearer token), 403 (what the given Role's rules
  do not allow: the rules are the Role's own, ``resourceNames`` included), 404 and 415;
- the API server's serialization of an ``EnvVar`` (``value`` is ``omitempty``: an empty value is
  left out), ``metadata.generation`` raised by a spec change, ``resourceVersion`` by every change;
- the deployment controller, one step per ``GET`` after a pod template change, with the status
  fields and conditions of a ``Recreate`` rollout: the new generation unobserved, then observed
  with the old pods gone, the new ReplicaSet (named ``<deployment>-<pod-template-hash>``) created
  with its pod not ready, then available (``NewReplicaSetAvailable``). ``rollout="stuck"`` never
  gets the pod ready; ``rollout="deadline"`` ends in ``ProgressDeadlineExceeded``.

Every request is recorded (method, path, content type, authorization, body).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from tests.sampler.json_http_server import Answer, JsonHttpTestServer

DEPLOYMENT_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/?]+)(\?.*)?$")
HASH_LETTERS = "bcdfghjklmnpqrstvwxz2456789"  # what pod-template-hash values are made of
TIME = "2026-11-20T10:%02d:00Z"


@dataclass
class Request:
    method: str
    path: str
    content_type: str
    authorization: str
    body: Any


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def pod_template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(HASH_LETTERS[b % len(HASH_LETTERS)] for b in digest[:10])


def drop_empty_env_values(deployment: dict[str, Any]) -> None:
    """What the API server stores for ``value: ""`` (``omitempty``): no ``value`` at all."""
    for container in deployment["spec"]["template"]["spec"].get("containers", []):
        for env in container.get("env", []):
            if env.get("value") == "":
                del env["value"]


class JsonPatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise JsonPatchError("invalid path %r" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts[:-1]:
        try:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        except (KeyError, IndexError, ValueError):
            raise JsonPatchError("doc is missing path: %r" % path) from None
    return doc


def apply_json_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902's add, remove, replace and test, with the error texts of the API server's library."""
    doc = copy.deepcopy(doc)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        parts = _pointer(path)
        parent, key = _parent(doc, parts, path), parts[-1]
        if kind == "test":
            try:
                found = parent[int(key)] if isinstance(parent, list) else parent[key]
            except (KeyError, IndexError, ValueError):
                raise JsonPatchError("testing value %s failed: test failed" % path) from None
            if found != op.get("value"):
                raise JsonPatchError("testing value %s failed: test failed" % path)
        elif kind == "add":
            if isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if not 0 <= index <= len(parent):
                    raise JsonPatchError("Unable to access invalid index: %d" % index)
                parent.insert(index, op["value"])
            else:
                parent[key] = op["value"]
        elif kind in ("replace", "remove"):
            try:
                if isinstance(parent, list):
                    if not 0 <= int(key) < len(parent):
                        raise IndexError(key)
                elif key not in parent:
                    raise KeyError(key)
            except (KeyError, IndexError, ValueError):
                raise JsonPatchError("%s operation does not apply: doc is missing key: %s" % (kind, path)) from None
            if kind == "remove":
                del parent[int(key) if isinstance(parent, list) else key]
            else:
                parent[int(key) if isinstance(parent, list) else key] = op["value"]
        else:
            raise JsonPatchError("Unexpected kind: %s" % kind)
    return doc


class KubeApiStandIn(JsonHttpTestServer):
    def __init__(
        self,
        deployment: dict[str, Any],
        namespace: str,
        rules: list[dict[str, Any]],
        token: str = "stand-in-token",
        user: str = "system:serviceaccount:next:next-sampler",
        rollout: str = "ready",
    ) -> None:
        assert rollout in ("ready", "stuck", "deadline")
        self.namespace = namespace
        self.rules = rules
        self.token = token
        self.user = user
        self.rollout = rollout
        super().__init__()
        self.requests: list[Request] = []
        self.before_patch: Callable[[KubeApiStandIn], None] | None = None  # runs before a PATCH is applied
        self.on_ready: Callable[[dict[str, Any]], None] | None = None  # a rollout's new pods are ready
        self._rolling = False
        self.pending: list[dict[str, Any]] = []  # the deployment controller's next status updates
        self._version = 1000
        self._minute = 0
        self.deployments: dict[str, dict[str, Any]] = {}
        self.add(deployment)

    # -- the objects -----------------------------------------------------------------------------------
    def add(self, manifest: dict[str, Any]) -> None:
        """A Deployment as the API server holds it once created from ``manifest`` and rolled out."""
        deployment = copy.deepcopy(manifest)
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        drop_empty_env_values(deployment)
        deployment["apiVersion"], deployment["kind"] = "apps/v1", "Deployment"
        deployment["metadata"].update(
            namespace=self.namespace,
            uid="6f1c2e0a-4b7d-4e8a-9c3f-%012d" % len(self.deployments),
            generation=1,
            creationTimestamp=TIME % 0,
            annotations={"deployment.kubernetes.io/revision": "1"},
        )
        deployment["status"] = self._settled(deployment, 1)
        self._bump(deployment)
        self.deployments[name] = deployment

    def env(self, name: str, variable: str) -> str | None:
        for container in self.deployments[name]["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"] == variable:
                    return str(env.get("value", ""))
        return None

    def set_env(self, name: str, variable: str, value: str) -> None:
        """What ``kubectl set env`` would do (no rollout simulated)."""
        for container in self.deployments[name]["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"] == variable:
                    env["value"] = value
        self._bump(self.deployments[name])

    def _bump(self, deployment: dict[str, Any]) -> None:
        self._version += 1
        deployment["metadata"]["resourceVersion"] = str(self._version)

    def _time(self) -> str:
        self._minute += 1
        return TIME % (self._minute % 60)

    def _condition(self, kind: str, ok: str, reason: str, message: str) -> dict[str, Any]:
        now = self._time()
        return {
            "type": kind,
            "status": ok,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }

    def _settled(self, deployment: dict[str, Any], generation: int) -> dict[str, Any]:
        replica_set = "%s-%s" % (deployment["metadata"]["name"], pod_template_hash(deployment["spec"]["template"]))
        n = deployment["spec"]["replicas"]
        return {
            "observedGeneration": generation,
            "replicas": n,
            "updatedReplicas": n,
            "readyReplicas": n,
            "availableReplicas": n,
            "conditions": [
                self._condition(
                    "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
                ),
                self._condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    'ReplicaSet "%s" has successfully progressed.' % replica_set,
                ),
            ],
        }

    def _plan_rollout(self, deployment: dict[str, Any]) -> None:
        """The statuses the deployment controller writes as it recreates the pods (one per GET)."""
        generation = deployment["metadata"]["generation"]
        replica_set = "%s-%s" % (deployment["metadata"]["name"], pod_template_hash(deployment["spec"]["template"]))
        n = deployment["spec"]["replicas"]
        unavailable = self._condition(
            "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
        )
        progressing = self._condition(
            "Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "%s" is progressing.' % replica_set
        )
        old = copy.deepcopy(deployment["status"])
        scaled_down = {
            "observedGeneration": generation,
            "unavailableReplicas": n,
            "conditions": [unavailable, progressing],
        }
        starting = {
            "observedGeneration": generation,
            "replicas": n,
            "updatedReplicas": n,
            "unavailableReplicas": n,
            "conditions": [unavailable, progressing],
        }
        self.pending = [old, scaled_down, starting]
        self._rolling = True
        if self.rollout == "ready":
            self.pending.append(self._settled(deployment, generation))
        elif self.rollout == "deadline":
            timed_out = self._condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                'ReplicaSet "%s" has timed out progressing.' % replica_set,
            )
            self.pending.append({**starting, "conditions": [unavailable, timed_out]})

    # -- the protocol ----------------------------------------------------------------------------------
    def respond(self, method: str, path: str, headers: Message, raw: bytes) -> Answer:
        status, payload = self.serve(method, path, headers, raw)
        return status, payload, {}

    def serve(self, method: str, path: str, headers: Any, raw: bytes | None) -> tuple[int, dict[str, Any]]:
        body = json.loads(raw) if raw else None
        authorization = headers.get("Authorization", "")
        content_type = headers.get("Content-Type", "")
        with self.lock:
            self.requests.append(Request(method, path, content_type, authorization, body))
            if authorization != "Bearer %s" % self.token:
                return 401, status(401, "Unauthorized", "Unauthorized")
            found = DEPLOYMENT_PATH.match(path)
            if not found:
                return 404, status(404, "NotFound", "the server could not find the requested resource")
            namespace, name = found.group(1), found.group(2)
            verb = {"GET": "get", "PATCH": "patch"}[method]
            if not self._allowed(verb, "apps", "deployments", name):
                return 403, status(
                    403,
                    "Forbidden",
                    'deployments.apps "%s" is forbidden: User "%s" cannot %s resource "deployments" in API group '
                    '"apps" in the namespace "%s"' % (name, self.user, verb, namespace),
                    {"name": name, "group": "apps", "kind": "deployments"},
                )
            deployment = self.deployments.get(name) if namespace == self.namespace else None
            if deployment is None:
                return 404, status(
                    404,
                    "NotFound",
                    'deployments.apps "%s" not found' % name,
                    {"name": name, "group": "apps", "kind": "deployments"},
                )
            if method == "GET":
                if self.pending:
                    deployment["status"] = self.pending.pop(0) if len(self.pending) > 1 else self.pending[0]
                    self._bump(deployment)
                    ready = deployment["status"].get("availableReplicas") == deployment["spec"]["replicas"]
                    if (
                        self._rolling
                        and ready
                        and deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]
                    ):
                        self._rolling = False
                        if self.on_ready is not None:
                            self.on_ready(copy.deepcopy(deployment))
                return 200, copy.deepcopy(deployment)
            if content_type != "application/json-patch+json":
                return 415, status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media "
                    "types include: application/json-patch+json (in this stand-in)",
                )
            return self._patch(name, deployment, body)

    def _patch(self, name: str, deployment: dict[str, Any], operations: Any) -> tuple[int, dict[str, Any]]:
        if self.before_patch is not None:  # e.g. someone else's change, just before ours arrives
            hook, self.before_patch = self.before_patch, None
            hook(self)
            deployment = self.deployments[name]
        try:
            patched = apply_json_patch(deployment, operations)
        except (JsonPatchError, KeyError, TypeError) as exc:
            return 422, status(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                {"causes": [{"reason": "UnexpectedServerResponse", "message": str(exc)}]},
            )
        drop_empty_env_values(patched)
        if patched["spec"] != deployment["spec"]:
            patched["metadata"]["generation"] = deployment["metadata"]["generation"] + 1
        if patched["spec"]["template"] != deployment["spec"]["template"]:
            revision = int(deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) + 1
            patched["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(revision)
            self._plan_rollout(patched)
        self._bump(patched)
        self.deployments[name] = patched
        return 200, copy.deepcopy(patched)

    def _allowed(self, verb: str, group: str, resource: str, name: str) -> bool:
        return any(
            group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and (not rule.get("resourceNames") or name in rule["resourceNames"])
            for rule in self.rules
        )

    # -- the server ------------------------------------------------------------------------------------
    def kubeconfig(self, namespace: str | None = None) -> dict[str, Any]:
        """A kubeconfig that points kubectl, or the Kubernetes client, at this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "next-sampler", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "stand-in",
                    "context": {
                        "cluster": "stand-in",
                        "user": "next-sampler",
                        "namespace": namespace or self.namespace,
                    },
                }
            ],
            "current-context": "stand-in",
        }
