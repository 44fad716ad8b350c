"""The Kubernetes manifests, rendered with kustomize and validated offline against a pinned
Kubernetes version's schemas, plus what must hold of them (probes, limits, privileges...)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "gpu", "gpu-vllm")
KUBERNETES_VERSION = "1.33.0"  # the oldest release with pod user namespaces on by default
OUR_REGISTRY = "ghcr.io/next-system/"
WORKLOADS = ("Deployment", "Job")


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with kustomize) is not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(docs: tuple[dict[str, Any], ...], *kinds: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in kinds]


def named(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert found, "%s/%s missing" % (kind, name)
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(docs: tuple[dict[str, Any], ...]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(w, c) for w in of_kind(docs, *WORKLOADS) for c in pod_spec(w)["containers"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_validates_strictly(overlay: str) -> None:
    import kubernetes_validate

    docs = render(overlay)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "next-dev" if overlay == "dev" else "next"
    }
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_limits_and_least_privilege_everywhere(overlay: str) -> None:
    docs = render(overlay)
    for workload, c in containers(docs):
        where = "%s/%s" % (workload["metadata"]["name"], c["name"])
        limits = c.get("resources", {}).get("limits", {})
        assert "cpu" in limits and "memory" in limits, where
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not sc.get("privileged"), where
        if workload["kind"] == "Deployment":
            assert "readinessProbe" in c and "livenessProbe" in c, where
            if c["image"].startswith(OUR_REGISTRY):  # our services answer gRPC health checks
                port = c["ports"][0]["containerPort"]
                assert c["readinessProbe"]["grpc"]["port"] == port == c["livenessProbe"]["grpc"]["port"], where
        if c["image"].startswith(OUR_REGISTRY) and workload["metadata"]["name"] != "next-tracer":
            spec = pod_spec(workload)
            assert spec["securityContext"]["runAsNonRoot"] is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_tracer_gets_what_nsjail_needs_and_nothing_else(overlay: str) -> None:
    docs = render(overlay)
    tracer = named(docs, "Deployment", "next-tracer")
    spec = pod_spec(tracer)
    assert spec["hostUsers"] is False and spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sorted(sc["capabilities"]["add"]) == ["KILL", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_CHROOT"]
    assert "env" not in c or all("secretKeyRef" not in str(e) for e in c["env"])  # no secrets near hostile code
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in spec["volumes"])  # /tmp for the jails
    policy = named(docs, "NetworkPolicy", "next-tracer")
    assert "Egress" in policy["spec"]["policyTypes"] and policy["spec"]["egress"] == []
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "next-tracer"}
    headless = named(docs, "Service", "next-tracer-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert named(docs, "PodDisruptionBudget", "next-tracer") and named(docs, "HorizontalPodAutoscaler", "next-tracer")
    assert named(docs, "NetworkPolicy", "default-deny")["spec"]["podSelector"] == {}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_match_the_pods_they_select(overlay: str) -> None:
    docs = render(overlay)
    pods = [(w["metadata"]["name"], w["spec"]["template"]["metadata"]["labels"]) for w in of_kind(docs, *WORKLOADS)]
    for w in of_kind(docs, "Deployment"):
        selector = w["spec"]["selector"]["matchLabels"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), w["metadata"]["name"]
    for s in of_kind(docs, "Service"):
        selector = s["spec"]["selector"]
        if "job-name" in selector:  # the multi-node trainer's pods carry their Job's name
            named(docs, "Job", selector["job-name"])
            continue
        assert any(selector.items() <= labels.items() for _, labels in pods), s["metadata"]["name"]
    for p in of_kind(docs, "PodDisruptionBudget", "NetworkPolicy"):
        selector = p["spec"].get("selector", p["spec"].get("podSelector", {})).get("matchLabels", {})
        if selector:
            assert any(selector.items() <= labels.items() for _, labels in pods), p["metadata"]["name"]
    for h in of_kind(docs, "HorizontalPodAutoscaler"):
        named(docs, h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"])


def _dockerfile_images() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return set(re.findall(r"^(next-[a-z-]+): ; \$\(call build,", makefile, re.M))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned_and_ours_come_from_our_dockerfiles(overlay: str) -> None:
    built = _dockerfile_images()
    for _, c in containers(render(overlay)):
        image = c["image"]
        name, _, tag = image.rpartition(":")
        assert (name and tag and tag != "latest" and "/" not in tag) or "@sha256:" in image, image
        if image.startswith(OUR_REGISTRY):
            assert name.removeprefix(OUR_REGISTRY) in built, "%s has no Dockerfile target in the Makefile" % image


def test_every_image_target_has_a_dockerfile_that_installs_with_the_ci_script() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = re.findall(
        r"^next-[a-z-]+: ; \$\(call build,([a-z]+),(--target ([a-z-]+))?,(next-[a-z-]+)\)", makefile, re.M
    )
    assert {t[3] for t in targets} == {
        "next-tracer",
        "next-sampler",
        "next-sampler-local",
        "next-trainer",
        "next-controller",
    }
    for dockerfile, _, stage, _ in targets:
        text = (REPO / "deploy" / "docker" / ("%s.Dockerfile" % dockerfile)).read_text()
        if stage:
            assert re.search(r"^FROM .* AS %s$" % stage, text, re.M), (dockerfile, stage)
        for base in re.findall(r"^FROM (\S+)", text, re.M):
            assert base in {"build", "build-local"} or (":" in base and not base.endswith(":latest")), base
        installs = [
            line for line in text.splitlines() if line.startswith("RUN") and "install" in line and "apt-get" not in line
        ]
        assert installs and all("scripts/install.sh" in line for line in installs), dockerfile


def test_the_hub_token_reaches_only_the_pods_that_download_models() -> None:
    for overlay in OVERLAYS:
        for workload, c in containers(render(overlay)):
            uses = any(
                e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "next-hub-token" for e in c.get("env", [])
            )
            allowed = workload["metadata"]["name"] in {"next-sampler", "next-trainer", "next-tgi", "next-vllm"}
            assert uses == allowed or (not uses), workload["metadata"]["name"]
            if not allowed:
                assert not uses, workload["metadata"]["name"]


def test_gpu_overlays_serve_on_gpus_and_train_across_nodes() -> None:
    for overlay, server in (("gpu", "next-tgi"), ("gpu-vllm", "next-vllm")):
        docs = render(overlay)
        inference = named(docs, "Deployment", server)
        spec = pod_spec(inference)
        (c,) = spec["containers"]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
        shm = [v for v in spec["volumes"] if v["name"] == "dshm"]
        assert shm and shm[0]["emptyDir"]["medium"] == "Memory"
        assert any(m["mountPath"] == "/dev/shm" for m in c["volumeMounts"])
        probe = c["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 1200  # weight loading takes minutes
        assert named(docs, "Deployment", "next-trainer")["spec"]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ]["nvidia.com/gpu"]
        job = named(docs, "Job", "next-trainer-multinode")
        assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["suspend"] is True
        assert pod_spec(job)["subdomain"] == "next-trainer-nodes"
        assert named(docs, "Service", "next-trainer-nodes")["spec"]["clusterIP"] == "None"
        controller = yaml.safe_load(named(docs, "ConfigMap", "next-run")["data"]["run.yaml"])
        assert controller["services"]["sampler_backend"] == ("tgi" if server == "next-tgi" else "openai")
        sampler = named(docs, "ConfigMap", "next-sampler")["data"]
        assert "SAMPLER_TGI_URL" in sampler if server == "next-tgi" else "SAMPLER_OPENAI_URL" in sampler


def test_the_sampler_may_roll_tgi_and_nothing_else_the_controller_gets_no_token() -> None:
    docs = render("gpu")
    role = named(docs, "Role", "next-sampler-tgi-adapters")
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["next-tgi"], "verbs": ["get", "patch"]}
    ]
    binding = named(docs, "RoleBinding", "next-sampler-tgi-adapters")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "next-sampler", "namespace": "next"}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert [r["metadata"]["name"] for r in of_kind(docs, "Role", "RoleBinding")] == [role["metadata"]["name"]] * 2
    assert of_kind(docs, "ClusterRole", "ClusterRoleBinding") == []
    sampler = named(docs, "Deployment", "next-sampler")
    assert (
        pod_spec(sampler)["serviceAccountName"] == "next-sampler" and pod_spec(sampler)["automountServiceAccountToken"]
    )
    # The Deployment it rolls is the one the Role names, and its container declares LORA_ADAPTERS.
    config = named(docs, "ConfigMap", "next-sampler")["data"]
    assert config["SAMPLER_TGI_DEPLOYMENT"] == "next-tgi" and "SAMPLER_TGI_NAMESPACE" not in config
    tgi = named(docs, "Deployment", config["SAMPLER_TGI_DEPLOYMENT"])
    (c,) = pod_spec(tgi)["containers"]
    assert [e for e in c["env"] if e["name"] == "LORA_ADAPTERS"] == [{"name": "LORA_ADAPTERS", "value": ""}]
    # One GPU per pod: a surge pod would wait for a second one; the deadline covers the startup probe.
    assert tgi["spec"]["strategy"] == {"type": "Recreate"}
    probe = c["startupProbe"]
    assert tgi["spec"]["progressDeadlineSeconds"] >= probe["periodSeconds"] * probe["failureThreshold"]
    # TGI loads the adapter from the path the trainer wrote: the same volume at the same place.
    shared = [m for m in c["volumeMounts"] if m["name"] == "shared"]
    assert shared and shared[0]["mountPath"] == "/shared"
    run = yaml.safe_load(named(docs, "ConfigMap", "next-run")["data"]["run.yaml"])
    assert run["services"]["adapter_loading"] == "path" and run["run_dir"].startswith("/shared/")
    from next_sampler.settings import SamplerSettings

    assert {"tgi_deployment", "tgi_namespace", "tgi_rollout_timeout_s"} <= set(SamplerSettings.model_fields)
    # The sampler may reach the API server; the controller may not, and has no token anywhere.
    egress = named(docs, "NetworkPolicy", "next-sampler")["spec"]["egress"]
    assert {6443, 443} <= {p["port"] for rule in egress for p in rule.get("ports", [])}
    controller_egress = named(docs, "NetworkPolicy", "next-controller")["spec"]["egress"]
    assert not {443, 6443} & {p["port"] for rule in controller_egress for p in rule.get("ports", [])}
    for overlay in OVERLAYS:
        rendered = render(overlay)
        assert pod_spec(named(rendered, "Job", "next-controller"))["automountServiceAccountToken"] is False
        assert named(rendered, "ServiceAccount", "next-controller")["automountServiceAccountToken"] is False
        if overlay != "gpu":
            assert not of_kind(rendered, "Role", "RoleBinding")  # vLLM loads adapters at run time: no RBAC
            assert pod_spec(named(rendered, "Deployment", "next-sampler"))["automountServiceAccountToken"] is False


def test_run_configs_in_the_manifests_are_valid_runs() -> None:
    from next_controller.config import parse_run_config

    for overlay in OVERLAYS:
        raw = yaml.safe_load(named(render(overlay), "ConfigMap", "next-run")["data"]["run.yaml"])
        config = parse_run_config(raw, "%s next-run" % overlay)
        assert config.services.mode == "remote" and config.services.tracer == ["dns:///next-tracer-headless:50051"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tracer", "sampler", "sampler-local", "trainer", "controller"])
def test_each_image_s_install_step_resolves(target: str) -> None:
    # What the Dockerfiles run, resolved against this environment (no network, nothing installed).
    env = dict(os.environ, PIP="%s -m pip" % (REPO / ".venv" / "bin" / "python"))
    env["INSTALL_FLAGS"] = "--dry-run --no-build-isolation --no-index"
    done = subprocess.run([str(REPO / "scripts" / "install.sh"), target], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tracer_jails_times_concurrency_fit_the_pod_memory_limit(overlay: str) -> None:
    from next_tracer.sandbox.jail_limits import server_memory_mb
    from next_tracer.settings import TracerSettings

    docs = render(overlay)
    deployment = named(docs, "Deployment", "next-tracer")
    (container,) = pod_spec(deployment)["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    fields = TracerSettings.model_fields
    settings = TracerSettings(
        **{k[len("TRACER_") :].lower(): v for k, v in env.items() if k[len("TRACER_") :].lower() in fields}
    )  # type: ignore[arg-type]
    need = server_memory_mb(
        settings.max_concurrency,
        settings.max_memory_mb,
        settings.tmpfs_mb,
        settings.max_report_mb,
        settings.jail_memory_mb,
    )
    limit = _mebibytes(container["resources"]["limits"]["memory"])
    assert need <= limit, "tracer needs up to %d MiB with %s, its limit is %d MiB" % (need, env, limit)


def _mebibytes(quantity: str) -> int:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(int(quantity) / (1 << 20))


# -- metrics: every service serves them, Prometheus may scrape them, the ServiceMonitor finds them --

SERVICES = {  # workload -> its settings' environment prefix and class
    "next-tracer": ("TRACER_", "next_tracer.settings.TracerSettings"),
    "next-sampler": ("SAMPLER_", "next_sampler.settings.SamplerSettings"),
    "next-trainer": ("TRAINER_", "next_trainer.settings.TrainerSettings"),
    "next-controller": ("CONTROLLER_", "next_controller.settings.ControllerSettings"),
}
LABEL = "app.kubernetes.io/name"
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def container_env(docs: tuple[dict[str, Any], ...], container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def render_with_component(overlay: str, component: str, tmp_path: Path) -> tuple[dict[str, Any], ...]:
    """The overlay plus an optional component, as a user's overlay on top of ours would add it."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with kustomize) is not installed")
    namespace = "next-dev" if overlay == "dev" else "next"
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                # kustomize refuses absolute paths
                "resources": [os.path.relpath(K8S / "overlays" / overlay, tmp_path)],
                "components": [os.path.relpath(K8S / "components" / component, tmp_path)],
            }
        )
    )
    out = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_serves_metrics_that_prometheus_may_scrape(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    docs = render(overlay)
    for name, (prefix, settings_class) in SERVICES.items():
        workload = named(docs, "Job" if name == "next-controller" else "Deployment", name)
        (c,) = pod_spec(workload)["containers"]
        # on by default: the service's own settings read the port the manifests give it
        value = container_env(docs, c)[prefix + "METRICS_PORT"]
        module, _, cls = settings_class.rpartition(".")
        monkeypatch.setenv(prefix + "METRICS_PORT", value)
        port = getattr(importlib.import_module(module), cls)().metrics_port
        assert port > 0 and {"name": "metrics", "containerPort": port} in c["ports"], name
        template = workload["spec"]["template"]["metadata"]
        assert template["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, name
        # a Service with a port named for scraping, labelled so that a ServiceMonitor selects it alone
        (service,) = [s for s in of_kind(docs, "Service") if s["metadata"].get("labels", {}).get(LABEL) == name]
        assert service["spec"]["selector"].items() <= template["labels"].items(), name
        assert {"name": "metrics", "port": port, "targetPort": "metrics"} in service["spec"]["ports"], name
        # the network policies let the monitoring namespace in, on the metrics port only
        policy = named(docs, "NetworkPolicy", name)["spec"]
        assert "Ingress" in policy["policyTypes"], name
        from_monitoring = [rule for rule in policy["ingress"] if MONITORING in rule.get("from", [])]
        assert from_monitoring == [{"from": [MONITORING], "ports": [{"port": port}]}], name
    tracer = named(docs, "NetworkPolicy", "next-tracer")["spec"]
    assert tracer["egress"] == [] and len(tracer["ingress"]) == 2  # the controller's gRPC calls, and metrics


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_servicemonitor_component_finds_every_service_s_metrics(overlay: str, tmp_path: Path) -> None:
    import kubernetes_validate

    docs = render_with_component(overlay, "servicemonitor", tmp_path)
    monitors = of_kind(docs, "ServiceMonitor")
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(SERVICES)
    services = of_kind(docs, "Service")
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["namespace"] == ("next-dev" if overlay == "dev" else "next")
        assert "namespaceSelector" not in monitor["spec"]  # its own namespace, where the Services are
        wanted = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [s for s in services if wanted.items() <= s["metadata"].get("labels", {}).items()]
        assert service["spec"]["selector"][LABEL] == monitor["metadata"]["name"]
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
            assert endpoint["path"] == "/metrics"
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            # A CRD of the Prometheus Operator: kubernetes-validate ships Kubernetes' own schemas
            # only, so the assertions above check it instead. Should it ever learn the kind, this
            # fails and the skip goes.
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_local_base_model_path_is_mounted_where_the_controller_and_trainer_read_it(overlay: str) -> None:
    import yaml

    docs = render(overlay)
    base_model = yaml.safe_load(named(docs, "ConfigMap", "next-run")["data"]["run.yaml"])["base_model"]
    if not base_model.startswith("/"):
        return  # a packaged model name or a hub id: nothing to mount
    for kind, name in (("Job", "next-controller"), ("Deployment", "next-trainer")):
        (container,) = pod_spec(named(docs, kind, name))["containers"]
        mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
        assert any(base_model.startswith(m.rstrip("/") + "/") for m in mounts), (overlay, name, base_model, mounts)
