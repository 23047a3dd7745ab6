"""The Kubernetes overlays, rendered and checked manifest by manifest.

kustomize_lite renders k8s/overlays/* as `kustomize build` would; every
object is then validated against the Kubernetes API schema of a pinned
version (kubernetes-validate, strict: unknown fields are errors), and the
operational rules of DESIGN §3 are checked on the result.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import kustomize_lite
import pytest
import yaml
from kustomize_lite import Manifest, containers

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
# The oldest Kubernetes release the manifests must be valid for.
KUBERNETES_VERSION = "1.30"
OVERLAYS = {"dev": "chat-dev", "prod": "chat"}
CHAT_SERVICES = {"auth": 8001, "message": 8002, "gateway": 8100}
INFRA = {"mongo", "redis", "rabbitmq"}
# Custom resources of the Prometheus Operator: no schema in kubernetes-validate.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
# Secrets are created by operators, never rendered from git; these are the
# names the manifests may refer to.
SECRETS = {"chat-backing", "chat-jwt", "chat-tls"}


def render(overlay: str) -> list[Manifest]:
    return kustomize_lite.build(K8S / "overlays" / overlay)


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    return request.param, render(request.param)


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in {"Deployment", "StatefulSet"}]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- schema ---


def test_every_manifest_is_valid_kubernetes(overlay: tuple[str, list[Manifest]]) -> None:
    name, manifests = overlay
    problems = []
    for manifest in manifests:
        what = f"{name}: {manifest['kind']}/{manifest['metadata']['name']}"
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
            assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}, what
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{what}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{what}: {error.message}")
    assert not problems, "\n".join(problems)


def test_names_are_unique(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    keys = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(keys) == len(set(keys))


def test_everything_lives_in_the_overlay_namespace(overlay: tuple[str, list[Manifest]]) -> None:
    name, manifests = overlay
    namespace = OVERLAYS[name]
    (ns,) = by_kind(manifests, "Namespace").values()
    assert ns["metadata"]["name"] == namespace
    # Pod Security "restricted": the API server itself refuses a pod that
    # breaks the rules checked below.
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == namespace, manifest["metadata"]["name"]


# --- workloads ---


def test_every_container_is_probed_sized_and_locked_down(
    overlay: tuple[str, list[Manifest]],
) -> None:
    name, manifests = overlay
    assert workloads(manifests)
    for workload in workloads(manifests):
        spec = pod_spec(workload)
        pod_security = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
        for container in containers(workload):
            what = f"{name}: {workload['metadata']['name']}/{container['name']}"
            assert container.get("readinessProbe"), f"{what}: no readiness probe"
            assert container.get("livenessProbe"), f"{what}: no liveness probe"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{what}: {bound}"
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, what
            assert security.get("readOnlyRootFilesystem") is True, what
            assert security.get("capabilities", {}).get("drop") == ["ALL"], what
            assert not security.get("capabilities", {}).get("add"), what
            assert not security.get("privileged"), what
            assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, what
            seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", what
            run_as = security.get("runAsUser", pod_security.get("runAsUser"))
            assert run_as, what
            assert run_as > 0, what


def test_images_are_pinned(overlay: tuple[str, list[Manifest]]) -> None:
    name, manifests = overlay
    for workload in workloads(manifests):
        for container in containers(workload):
            _, tag, digest = kustomize_lite.split_image(container["image"])
            assert (tag and tag != "latest") or digest, f"{name}: {container['image']}"
            assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(("service", "port"), sorted(CHAT_SERVICES.items()))
def test_chat_service_probes_and_settings(
    overlay: tuple[str, list[Manifest]], service: str, port: int
) -> None:
    _, manifests = overlay
    deployment = by_kind(manifests, "Deployment")[service]
    (container,) = containers(deployment)
    assert container["args"] == ["--host", "0.0.0.0", "--port", str(port)]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # /tmp is the one writable place on the read-only root filesystem.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # Non-secret settings from the ConfigMap, connection strings from a Secret.
    assert container["envFrom"] == [{"configMapRef": {"name": "chat-config"}}]
    env = {e["name"]: e for e in container["env"]}
    # A database and a MongoDB user per service; the gateway keeps nothing in MongoDB.
    if service == "gateway":
        assert "MONGODB_URL" not in env
    else:
        ref = {"name": "chat-backing", "key": f"{service}-mongodb-url"}
        assert env["MONGODB_URL"]["valueFrom"]["secretKeyRef"] == ref
        assert env["MONGODB_DB"]["value"] == f"chat_{service}"
    for variable, key in (
        ("REDIS_URL", "redis-url"),
        ("AMQP_URL", "amqp-url"),
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "chat-backing", "key": key}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == service
    assert service in by_kind(manifests, "ServiceAccount")


def test_config_map_carries_every_setting(overlay: tuple[str, list[Manifest]]) -> None:
    name, manifests = overlay
    data = by_kind(manifests, "ConfigMap")["chat-config"]["data"]
    expected = {
        "CHAT_ENV",
        "NAMESPACE",
        "LOG_LEVEL",
        "AUTH_URL",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "CORS_ORIGINS",
        "PUBLIC_AUTH_URL",
        "PUBLIC_MESSAGE_URL",
    }
    assert set(data) == expected
    assert data["CHAT_ENV"] == {"dev": "dev", "prod": "prod"}[name]
    assert data["AUTH_URL"] == "http://auth:8001"
    # Behind the Ingress the browser calls REST on the page's own origin.
    assert data["PUBLIC_AUTH_URL"] == data["PUBLIC_MESSAGE_URL"] == ""


def test_auth_reads_its_key_from_a_secret_volume(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    auth = by_kind(manifests, "Deployment")["auth"]
    (container,) = containers(auth)
    env = {e["name"]: e for e in container["env"]}
    volumes = {v["name"]: v for v in pod_spec(auth)["volumes"]}
    assert volumes["jwt"]["secret"]["secretName"] == "chat-jwt"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "jwt"]
    assert mount["readOnly"] is True
    key_file = env["JWT_PRIVATE_KEY_FILE"]["value"]
    assert key_file == f"{mount['mountPath']}/jwt-private.pem"
    assert "TRUST_FORWARDED_FOR" not in env
    assert "10.0.0.0/8" in env["TRUSTED_PROXIES"]["value"].split(",")
    # Readable by the service's group, and by nobody else.
    assert pod_spec(auth)["securityContext"]["fsGroup"] == 10001
    assert volumes["jwt"]["secret"]["defaultMode"] == 0o440


def test_no_secret_is_rendered_and_references_are_known(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, manifests = overlay
    for manifest in manifests:
        if manifest["kind"] == "Secret":
            what = f"Secret {manifest['metadata']['name']} carries data: secrets stay out of git"
            assert not manifest.get("data"), what
            assert not manifest.get("stringData"), what
    text = yaml.safe_dump_all(manifests)
    referenced = set(re.findall(r"secretName: (\S+)", text))
    referenced |= {
        ref["name"]
        for workload in workloads(manifests)
        for container in containers(workload)
        for env in container.get("env", [])
        if (ref := env.get("valueFrom", {}).get("secretKeyRef"))
    }
    assert referenced <= SECRETS, referenced - SECRETS


def test_no_kustomization_generates_secrets() -> None:
    for path in K8S.rglob("*.yaml"):
        text = path.read_text()
        assert "secretGenerator" not in text, path
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "Secret":
                pytest.fail(f"{path} defines a Secret: create it with kubectl instead")


def test_services_select_their_pods(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    pods = {w["metadata"]["name"]: w["spec"]["template"] for w in workloads(manifests)}
    for name, service in by_kind(manifests, "Service").items():
        selector = service["spec"]["selector"]
        matching = [p for p in pods.values() if labels_match(selector, p["metadata"]["labels"])]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} workloads"
        ports = {
            p["name"]
            for container in matching[0]["spec"]["containers"]
            for p in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (name, port)


def test_every_chat_service_has_a_disruption_budget(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    budgets = by_kind(manifests, "PodDisruptionBudget")
    deployments = by_kind(manifests, "Deployment")
    for service in CHAT_SERVICES:
        budget = budgets[service]
        assert budget["spec"]["maxUnavailable"] == 1
        labels = deployments[service]["spec"]["template"]["metadata"]["labels"]
        assert labels_match(budget["spec"]["selector"]["matchLabels"], labels)


def test_gateway_scales_and_drains(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    gateway = by_kind(manifests, "Deployment")["gateway"]
    # The autoscaler owns the replica count.
    assert "replicas" not in gateway["spec"]
    hpa = by_kind(manifests, "HorizontalPodAutoscaler")["gateway"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300

    spec = pod_spec(gateway)
    (container,) = containers(gateway)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # preStop, then the gateway's own drain (up to 30 s), inside the grace period.
    assert spec["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 30
    assert spec["terminationGracePeriodSeconds"] >= 60
    strategy = gateway["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_ingress_routes_and_websockets(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    ingresses = by_kind(manifests, "Ingress")
    routes: dict[str, str] = {}
    hosts = set()
    for ingress in ingresses.values():
        assert ingress["spec"]["ingressClassName"] == "nginx"
        for rule in ingress["spec"]["rules"]:
            hosts.add(rule["host"])
            for path in rule["http"]["paths"]:
                routes[path["path"]] = path["backend"]["service"]["name"]
                assert path["backend"]["service"]["port"] == {"name": "http"}
    assert len(hosts) == 1
    assert routes == {
        "/v1/auth": "auth",
        "/v1/users": "auth",
        "/.well-known": "auth",
        "/v1": "message",
        "/socket.io": "gateway",
        "/": "gateway",
        "/metrics": "gateway",
        "/readyz": "gateway",
    }
    gateway = ingresses["chat-gateway"]["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert int(gateway[prefix + "proxy-read-timeout"]) >= 600
    assert int(gateway[prefix + "proxy-send-timeout"]) >= 600
    # Long-polling sessions stick to one gateway.
    assert gateway[prefix + "affinity"] == "cookie"
    assert gateway[prefix + "session-cookie-name"]
    # /metrics and /readyz are not for the public.
    internal = ingresses["chat-internal-paths"]
    assert internal["metadata"]["annotations"][prefix + "denylist-source-range"] == "0.0.0.0/0,::/0"
    assert all(
        p["pathType"] == "Exact" for r in internal["spec"]["rules"] for p in r["http"]["paths"]
    )


def test_network_policies_deny_by_default(overlay: tuple[str, list[Manifest]]) -> None:
    _, manifests = overlay
    policies = by_kind(manifests, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert "allow-dns" in policies
    for service in CHAT_SERVICES:
        assert policies[service]["spec"]["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/name": service
        }
    # Only the Ingress controller and Prometheus reach the public services.
    gateway_ingress = policies["gateway"]["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in gateway_ingress
        for peer in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}


# --- per overlay ---


def test_dev_runs_its_own_backing_servers() -> None:
    manifests = render("dev")
    statefulsets = by_kind(manifests, "StatefulSet")
    assert set(statefulsets) == INFRA
    mongo = statefulsets["mongo"]
    (container,) = containers(mongo)
    # Transactions need a replica set; the member name must resolve before it is ready.
    assert container["args"][:2] == ["--replSet", "rs0"]
    assert "rs.initiate" in " ".join(container["lifecycle"]["postStart"]["exec"]["command"])
    assert "mongo-0.mongo:27017" in " ".join(container["lifecycle"]["postStart"]["exec"]["command"])
    service = by_kind(manifests, "Service")["mongo"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    # RabbitMQ's account comes from the same Secret as the services' AMQP URL.
    (rabbit,) = containers(statefulsets["rabbitmq"])
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in rabbit["env"]}
    assert refs == {
        "RABBITMQ_DEFAULT_USER": "chat-backing",
        "RABBITMQ_DEFAULT_PASS": "chat-backing",
    }
    for server in INFRA:
        assert server in by_kind(manifests, "NetworkPolicy"), server
    assert by_kind(manifests, "ConfigMap")["chat-config"]["data"]["CHAT_ENV"] == "dev"


def test_prod_uses_managed_servers_and_more_replicas() -> None:
    manifests = render("prod")
    assert not by_kind(manifests, "StatefulSet"), "prod runs no database of its own"
    deployments = by_kind(manifests, "Deployment")
    assert deployments["auth"]["spec"]["replicas"] >= 3
    assert deployments["message"]["spec"]["replicas"] >= 3
    assert by_kind(manifests, "HorizontalPodAutoscaler")["gateway"]["spec"]["minReplicas"] >= 3
    for service in CHAT_SERVICES:
        (container,) = containers(deployments[service])
        assert container["image"].startswith("registry.example.com/chat/"), container["image"]
    ingress = by_kind(manifests, "Ingress")["chat-gateway"]
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/session-cookie-secure"]
        == "true"
    )
    assert all(tls["secretName"] == "chat-tls" for tls in ingress["spec"]["tls"])


def test_prod_is_monitored() -> None:
    manifests = render("prod")
    monitors = by_kind(manifests, "ServiceMonitor")
    services = by_kind(manifests, "Service")
    assert set(monitors) == set(CHAT_SERVICES)
    for name, monitor in monitors.items():
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert labels_match(selector, services[name]["metadata"]["labels"])
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "http"
        assert endpoint["path"] == "/metrics"
    assert "chat" in by_kind(manifests, "PrometheusRule")


# --- the renderer itself ---


def test_renderer_strategic_merge() -> None:
    original = {
        "spec": {
            "replicas": 2,
            "containers": [
                {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
                {"name": "b", "image": "y"},
            ],
            "args": ["one"],
        }
    }
    patch = {
        "spec": {
            "replicas": None,
            "containers": [
                {"name": "a", "env": [{"name": "L", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
            ],
            "args": ["two"],
        }
    }
    assert kustomize_lite.strategic_merge(original, patch) == {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}],
                }
            ],
            "args": ["two"],
        }
    }


def test_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(kustomize_lite.KustomizeError, match="namePrefix"):
        kustomize_lite.build(tmp_path)


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("chat/auth", ("chat/auth", "", "")),
        ("chat/auth:dev", ("chat/auth", "dev", "")),
        ("registry:5000/chat/auth:1.2", ("registry:5000/chat/auth", "1.2", "")),
        ("mongo@sha256:abc", ("mongo", "", "sha256:abc")),
    ],
)
def test_renderer_splits_image_names(image: str, parts: tuple[str, str, str]) -> None:
    assert kustomize_lite.split_image(image) == parts
