"""deploy/k8s's Deployment run for real with `podman kube play`, on the image the tests build.

The pod spec is deployment.yaml's, with its ConfigMap made from flags.env as
kustomization.yaml's configMapGenerator makes it (passed with `--configmap`), its
securityContext, probes, emptyDirs and model claim (a podman volume holding the MiniLM).
What the test changes, and why:

- the image: the local tag, `imagePullPolicy: Never` (no registry here);
- `hostPort` with `hostIP: 127.0.0.1` on the three ports (podman publishes no other way);
- `-device_map $(DEVICE_MAP)` becomes `-cpu` (no GPU here; the nvidia.com/gpu resource,
  nodeSelector and tolerations are ignored by podman);
- the `$(KEY)` references in args are expanded from the ConfigMap as the kubelet does
  (podman 4.3, Debian 12's, passes them verbatim); the ConfigMap still reaches the
  container's environment through envFrom, which the test checks.

Podman 4.3 runs no httpGet probe (it turns a liveness probe into a curl health check,
and the image has no curl), so the test does the kubelet's part: each probe's path on
its named port, through the published port. The pod is stopped as the kubelet stops one:
SIGTERM to the server container (podman has no preStop), up to
terminationGracePeriodSeconds for it to exit, and only then the pod's sandbox (`podman
kube down`). (Podman 4.3's `kube down` alone stops the pod's infra container, which holds
its network and published ports, alongside the server: connections in flight are reset
however well the server drains.) The request in flight must get all its rows, /ready
must say 503 meanwhile, and the server must exit 0 by itself, inside the grace period.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from containers import REPO, Served, encode_http, in_flight, podman, podman_env
from reference import TransformersReference, heldout_texts
from server_process import free_ports, wait_until

K8S = REPO / "deploy" / "k8s"
TOLERANCE = 1e-4
# Seconds of work on two busy cores: in flight when SIGTERM comes, and answered well
# inside the server's 30 s drain.
IN_FLIGHT_TEXTS = [f"sentence {i} in flight while the pod is taken down" for i in range(2000)]


def configmap_from_flags(name: str) -> dict[str, Any]:
    """The ConfigMap configMapGenerator makes of flags.env (less the hash in its name)."""
    data = {}
    for line in (K8S / "flags.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            data[key] = value
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def kubelet_args(args: list[str], env: dict[str, str]) -> list[str]:
    """`$(KEY)` in each argument replaced by env[KEY], as the kubelet expands them."""
    expanded = []
    for arg in args:
        for key, value in env.items():
            arg = arg.replace(f"$({key})", value)
        expanded.append(arg)
    return expanded


def on_cpu(args: list[str]) -> list[str]:
    """`-device_map X` replaced by `-cpu`: the pod runs where there is no GPU."""
    at = args.index("-device_map")
    return [*args[:at], "-cpu", *args[at + 2:]]


def local_deployment(name: str, image: str, claim: str, host_ports: dict[str, int],
                     env: dict[str, str]) -> dict[str, Any]:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    deployment["metadata"]["name"] = name
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    container["image"], container["imagePullPolicy"] = image, "Never"
    container["args"] = on_cpu(kubelet_args(container["args"], env))
    for port in container["ports"]:
        port["hostPort"], port["hostIP"] = host_ports[port["name"]], "127.0.0.1"
    (model,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    model["persistentVolumeClaim"]["claimName"] = claim
    return deployment


def fill_volume(volume: str, folder: Path) -> None:
    """A podman volume holding `folder`'s files, as fill-model-job.yaml fills the claim."""
    podman("volume", "create", volume)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(folder, arcname=".")
    subprocess.run(["podman", "volume", "import", volume, "-"], input=archive.getvalue(),
                   env=podman_env(), check=True, capture_output=True, timeout=120)


class Pod:
    """The played Deployment: its files, its server container, its probes."""

    def __init__(self, tmp: Path, image: str, model_dir: Path) -> None:
        self.name = f"bert-serving-test-{uuid.uuid4().hex[:8]}"
        self.claim = f"{self.name}-model"
        self.ports = dict(zip(("zmq-in", "zmq-out", "http"), free_ports(3), strict=True))
        self.configmap = configmap_from_flags("bert-serving-flags")
        self.deployment = local_deployment(self.name, image, self.claim, self.ports,
                                           self.configmap["data"])
        self.files = tmp / "configmap.yaml", tmp / "deployment.yaml"
        for path, document in zip(self.files, (self.configmap, self.deployment), strict=True):
            path.write_text(yaml.safe_dump(document))
        fill_volume(self.claim, model_dir)

    def play(self) -> Served:
        played = podman("kube", "play", "--configmap", str(self.files[0]), str(self.files[1]),
                        timeout=300)
        container_id = played.stdout.split("Container:")[1].split()[0]
        name = podman("inspect", "--format", "{{.Name}}", container_id).stdout.strip()
        return Served(name, self.ports["zmq-in"], self.ports["zmq-out"], self.ports["http"])

    def probe(self, kind: str) -> int:
        """The status of `kind` (startupProbe, ...)'s httpGet, as the kubelet sends it."""
        (container,) = self.deployment["spec"]["template"]["spec"]["containers"]
        get = container[kind]["httpGet"]
        url = f"http://127.0.0.1:{self.ports[get['port']]}{get['path']}"
        return httpx.get(url, timeout=container[kind]["timeoutSeconds"]).status_code

    def stop_server(self, server: Served) -> None:
        """SIGTERM, then SIGKILL after terminationGracePeriodSeconds, as the kubelet does."""
        grace = self.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        podman("stop", "--time", str(grace), server.name, timeout=grace + 60)

    def down(self) -> subprocess.CompletedProcess[str]:
        return podman("kube", "down", str(self.files[1]), timeout=120, check=False)

    def remove(self) -> None:
        self.down()
        podman("volume", "rm", "--force", self.claim, check=False)


@pytest.fixture
def pod(tmp_path: Path, runtime_image: str, minilm_dir: Path) -> Iterator[Pod]:
    played = Pod(tmp_path, runtime_image, minilm_dir)
    yield played
    played.remove()


def test_deployment_pod_serves_probes_answer_and_kube_down_drains(
        pod: Pod, reference: TransformersReference) -> None:
    server = pod.play()
    server.wait_ready()  # the startup probe's condition, within START_TIMEOUT_S
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert pod.probe(probe) == 200, probe
    check_runs_as_the_manifest_says(pod, server)
    texts = heldout_texts()
    np.testing.assert_allclose(encode_http(server, texts), reference.encode(texts),
                               atol=TOLERANCE, rtol=0)
    check_kube_down_answers_in_flight(pod, server)


def check_runs_as_the_manifest_says(pod: Pod, server: Served) -> None:
    """The ConfigMap in the environment, user 10001, the root read-only, /cache writable."""
    script = ("import os; print(os.environ['MODEL_DIR'], os.environ['MAX_SEQ_LEN'], "
              "os.getuid(), os.getgid(), os.access('/', os.W_OK), "
              "os.access('/cache', os.W_OK), os.access('/tmp', os.W_OK))")
    seen = podman("exec", server.name, "python3", "-c", script).stdout.split()
    flags = pod.configmap["data"]
    assert seen == [flags["MODEL_DIR"], flags["MAX_SEQ_LEN"], "10001", "10001", "False",
                    "True", "True"], seen


def check_kube_down_answers_in_flight(pod: Pod, server: Served) -> None:
    replies: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: replies.append(httpx.post(
        f"{server.url}/encode", json={"texts": IN_FLIGHT_TEXTS}, timeout=120)))
    sender.start()
    wait_until(lambda: in_flight(server) >= 2, 60, "the large request to reach the gateway")
    stopping = threading.Thread(target=pod.stop_server, args=(server,))
    stopping.start()
    # the kubelet's readiness probe sees the drain while the request is answered
    wait_until(lambda: pod.probe("readinessProbe") == 503, 30, "/ready to turn 503")
    assert sender.is_alive(), "the large request was answered before the stop: no drain seen"
    for thread in (sender, stopping):
        thread.join(120)
    (reply,) = replies
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["result"]) == len(IN_FLIGHT_TEXTS)
    state = podman("inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}",
                   server.name).stdout.split()
    assert state == ["0", "false"], server.logs()  # it stopped by itself, not killed
    down = pod.down()
    assert down.returncode == 0, down.stdout + down.stderr
