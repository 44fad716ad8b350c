"""Adding an adapter to TGI by rolling its Deployment, with the official Kubernetes client against
the Kubernetes API stand-in (tests/sampler/kube_api_server.py), which holds TGI's Deployment as
deploy/k8s/components/tgi/tgi.yaml declares it and allows what that file's Role allows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from next_common.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from next_sampler.backends import tgi_rollout
from next_sampler.backends.tgi_rollout import TgiDeployment, parse_lora_adapters, with_adapter
from next_sampler.engine import SamplerEngine, backend_registry
from next_sampler.settings import SamplerSettings
from nextapi.sampler.types import SamplingParams
from tests.sampler.kube_api_server import KubeApiStandIn
from tests.sampler.tgi_protocol_server import TgiProtocolServer

REPO = Path(__file__).resolve().parents[2]
TGI_MANIFESTS = REPO / "deploy" / "k8s" / "components" / "tgi" / "tgi.yaml"
NAMESPACE = "next"
ROUND_1 = "/shared/runs/mbpp-r/round-1/adapter"
ROUND_2 = "/shared/runs/mbpp-r/round-2/adapter"


def manifest(kind: str) -> dict[str, Any]:
    (found,) = [d for d in yaml.safe_load_all(TGI_MANIFESTS.read_text()) if d and d["kind"] == kind]
    return dict(found)


ROLE_RULES = manifest("Role")["rules"]


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeApiStandIn]:
    """The stand-in, and a kubeconfig (KUBECONFIG) that points the client at it; not in a pod."""
    with KubeApiStandIn(manifest("Deployment"), NAMESPACE, ROLE_RULES) as server:
        config = tmp_path / "kubeconfig"
        config.write_text(yaml.safe_dump(server.kubeconfig()))
        monkeypatch.setenv("KUBECONFIG", str(config))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setattr(tgi_rollout, "POLL_S", 0.01)
        yield server


def deployment(name: str = "next-tgi", timeout_s: float = 60.0) -> TgiDeployment:
    return TgiDeployment.from_environment(name, "", timeout_s)


def patches(kube: KubeApiStandIn) -> list[Any]:
    return [r.body for r in kube.requests if r.method == "PATCH"]


def test_lora_adapters_keep_their_entries_and_refuse_what_would_break_the_list() -> None:
    value = "predibase/dbpedia@rev2, round-1=/a/round-1"
    assert parse_lora_adapters(value) == {
        "predibase/dbpedia": "predibase/dbpedia@rev2",
        "round-1": "round-1=/a/round-1",
    }
    assert (
        with_adapter(value, "round-2", "/a/round-2") == "predibase/dbpedia@rev2,round-1=/a/round-1,round-2=/a/round-2"
    )
    assert with_adapter(value, "round-1", "/b/round-1") == "predibase/dbpedia@rev2,round-1=/b/round-1"
    assert with_adapter("", "round-1", "/a") == "round-1=/a"
    for name, path in (("a,b", "/a"), ("a=b", "/a"), ("", "/a"), ("round-1", "/a,b"), ("round-1", "")):
        with pytest.raises(InvalidArgumentError, match="LORA_ADAPTERS"):
            with_adapter(value, name, path)


async def test_an_adapter_is_added_with_a_guarded_json_patch_and_the_rollout_is_awaited(
    kube: KubeApiStandIn,
) -> None:
    tgi = deployment()
    assert tgi.namespace == NAMESPACE and tgi.adapters() == {}  # the kubeconfig's context names it
    rollout = await tgi.add_adapter("round-1", ROUND_1)
    assert rollout.patched and rollout.adapters == {"round-1": "round-1=" + ROUND_1}
    assert kube.env("next-tgi", "LORA_ADAPTERS") == "round-1=" + ROUND_1
    assert rollout.replica_set.startswith("next-tgi-") and rollout.replica_set in str(
        kube.deployments["next-tgi"]["status"]["conditions"]
    )
    (patch,) = patches(kube)
    # The manifest's `value: ""` is stored without a value; the test guards exactly that entry.
    env = manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    at = "/spec/template/spec/containers/0/env/%d" % [e["name"] for e in env].index("LORA_ADAPTERS")
    assert patch == [
        {"op": "test", "path": at, "value": {"name": "LORA_ADAPTERS"}},
        {"op": "replace", "path": at, "value": {"name": "LORA_ADAPTERS", "value": "round-1=" + ROUND_1}},
    ]
    patch_request = next(r for r in kube.requests if r.method == "PATCH")
    assert patch_request.content_type == "application/json-patch+json"
    assert patch_request.path.startswith("/apis/apps/v1/namespaces/next/deployments/next-tgi?")
    assert "fieldManager=next-sampler" in patch_request.path
    assert {r.authorization for r in kube.requests} == {"Bearer stand-in-token"}
    # Waited through every state the deployment controller reported, up to the available one.
    assert kube.pending[-1]["availableReplicas"] == 1 and len(kube.pending) == 1
    assert kube.deployments["next-tgi"]["metadata"]["generation"] == 2

    # The next round keeps the first adapter (evaluations and resumed rounds still use it).
    second = await tgi.add_adapter("round-2", ROUND_2)
    assert list(second.adapters) == ["round-1", "round-2"]
    assert kube.env("next-tgi", "LORA_ADAPTERS") == "round-1=%s,round-2=%s" % (ROUND_1, ROUND_2)
    assert patches(kube)[1][0]["value"] == {"name": "LORA_ADAPTERS", "value": "round-1=" + ROUND_1}

    # Activating it again (a retried or resumed stage) patches nothing and finds the rollout done.
    again = await tgi.add_adapter("round-2", ROUND_2)
    assert not again.patched and len(patches(kube)) == 2
    tgi.close()


async def test_a_change_made_meanwhile_is_kept_not_overwritten(kube: KubeApiStandIn) -> None:
    kube.set_env("next-tgi", "LORA_ADAPTERS", "round-1=" + ROUND_1)
    kube.before_patch = lambda k: k.set_env("next-tgi", "LORA_ADAPTERS", "round-1=%s,manual=/shared/manual" % ROUND_1)
    await deployment().add_adapter("round-2", ROUND_2)
    assert kube.env("next-tgi", "LORA_ADAPTERS") == "round-1=%s,manual=/shared/manual,round-2=%s" % (ROUND_1, ROUND_2)
    assert [r.method for r in kube.requests].count("PATCH") == 2  # the first one's test failed (422)


async def test_a_rollout_that_never_becomes_ready_times_out_naming_the_deployment(kube: KubeApiStandIn) -> None:
    kube.rollout = "stuck"  # e.g. the pod cannot load the adapter, or waits for a GPU
    with pytest.raises(DeadlineExceededError) as caught:
        await deployment(timeout_s=0.5).add_adapter("round-1", ROUND_1)
    message = str(caught.value)
    assert "deployment next/next-tgi did not finish rolling out adapter 'round-1' within 0.5 s" in message
    assert "0 of 1 replicas of next-tgi-" in message and "available" in message
    assert "kubectl -n next rollout status deploy/next-tgi" in message


async def test_a_progress_deadline_exceeded_fails_at_once(kube: KubeApiStandIn) -> None:
    kube.rollout = "deadline"
    with pytest.raises(FailedPreconditionError, match=r"exceeded its progress deadline: ReplicaSet .* has timed out"):
        await deployment(timeout_s=60.0).add_adapter("round-1", ROUND_1)


async def test_what_the_role_does_not_allow_is_a_clear_error(kube: KubeApiStandIn) -> None:
    kube.rules = [{**ROLE_RULES[0], "verbs": ["get"]}]  # a Role without patch
    with pytest.raises(FailedPreconditionError) as caught:
        await deployment().add_adapter("round-1", ROUND_1)
    message = str(caught.value)
    assert "forbids the sampler to patch deployment next/next-tgi (403)" in message
    assert 'User "system:serviceaccount:next:next-sampler" cannot patch resource "deployments"' in message
    assert "needs get and patch on deployments/next-tgi in namespace next" in message
    kube.rules = []
    with pytest.raises(FailedPreconditionError, match="forbids the sampler to get deployment next/next-tgi"):
        deployment().adapters()
    kube.rules = ROLE_RULES  # the Role covers this Deployment only
    with pytest.raises(FailedPreconditionError, match="forbids the sampler to get deployment next/other"):
        deployment("other").adapters()


async def test_a_missing_deployment_and_bad_credentials_are_named(kube: KubeApiStandIn, tmp_path: Path) -> None:
    kube.rules = [{**ROLE_RULES[0], "resourceNames": []}]
    with pytest.raises(NotFoundError, match=r'deployment next/other does not exist .*"other" not found'):
        deployment("other").adapters()
    kube.token = "another-token"
    with pytest.raises(FailedPreconditionError, match="did not accept the sampler's credentials"):
        deployment().adapters()


def test_no_kubernetes_configuration_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InvalidArgumentError, match="SAMPLER_TGI_DEPLOYMENT=next-tgi: no Kubernetes configuration"):
        TgiDeployment.from_environment("next-tgi")


def engine(tgi: TgiProtocolServer, **overrides: Any) -> SamplerEngine:
    options: dict[str, Any] = {"tgi_deployment": "next-tgi", "tgi_backoff_s": 0.01, **overrides}
    settings = SamplerSettings(backends=["tgi"], default_backend="tgi", tgi_url=tgi.url, **options)
    return SamplerEngine(settings, backend_registry(load_entry_points=False))


async def test_activation_through_the_sampler_rolls_tgi_then_verifies_with_the_canary(kube: KubeApiStandIn) -> None:
    with TgiProtocolServer(served=set()) as tgi:
        # TGI serves what LORA_ADAPTERS said when its pod started: the new pod, once it is ready.
        kube.on_ready = lambda d: setattr(
            tgi, "served", set(parse_lora_adapters(kube.env("next-tgi", "LORA_ADAPTERS") or ""))
        )
        eng = engine(tgi)
        assert eng.describe()[0][2] == []
        activation = await eng.activate("tgi", "round-1", ROUND_1, canary="def f():")
        assert activation.verified and activation.adapter_output.startswith("round-1|")
        assert activation.base_output.startswith("base|")
        assert eng.describe()[0][2] == ["round-1"]
        out = await eng.sample(["x"], SamplingParams(), adapter="round-1")
        assert out[0].text.startswith("round-1|")

    # A sampler started later (restarted mid-run) knows the adapters from the Deployment.
    with TgiProtocolServer() as tgi:
        assert engine(tgi).describe()[0][2] == ["round-1"]


async def test_without_a_deployment_tgi_still_cannot_load_adapters(kube: KubeApiStandIn) -> None:
    with TgiProtocolServer() as tgi:
        eng = engine(tgi, tgi_deployment="")
        with pytest.raises(
            InvalidArgumentError, match="cannot load adapters at run time without SAMPLER_TGI_DEPLOYMENT"
        ):
            await eng.activate("tgi", "round-1", ROUND_1)
    assert kube.requests == []


async def test_a_forbidden_rollout_fails_the_activation_and_leaves_the_adapter_unknown(kube: KubeApiStandIn) -> None:
    kube.rules = [{**ROLE_RULES[0], "verbs": ["get"]}]
    with TgiProtocolServer() as tgi:
        eng = engine(tgi)
        with pytest.raises(FailedPreconditionError, match=r"\(403\)"):
            await eng.activate("tgi", "round-1", ROUND_1)
        assert eng.describe()[0][2] == [] and tgi.requests == []
