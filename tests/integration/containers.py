"""What the container tests share: podman, the image build, a served container and its checks.

Debian's buildah/podman, as root, with deploy/containers.conf (runc, ulimits, catatonit)
as CONTAINERS_CONF. The images are built once per session (tests/integration/conftest.py:
`runtime_image`, `baked_image`) and run by test_container_image.py (podman run),
test_compose.py (podman-compose), test_kube_play.py (podman kube play) and
test_replicas.py (two containers). Every container publishes its ports on 127.0.0.1 only,
and the tests talk to those published ports alone, never to a container's own address.

Where podman is missing or cannot run a container, the tests fail and say so: the
image is part of what CI proves, never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from server_process import free_ports, wait_until

__all__ = [
    "CONTAINERS_CONF",
    "INSTALL_HINT",
    "REPO",
    "RESTRICTED",
    "START_TIMEOUT_S",
    "Container",
    "Served",
    "build",
    "check_podman",
    "encode_http",
    "encode_legacy_plain",
    "in_flight",
    "make_base_image",
    "make_wheelhouse",
    "podman",
    "podman_env",
]

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "deploy" / "containers.conf"
START_TIMEOUT_S = 300
INSTALL_HINT = ("run .ci/run, or as root: apt-get install buildah podman debootstrap "
                "catatonit runc, and pip install podman-compose")
# As deploy/k8s runs the pods and deploy/compose.yaml the service: a read-only root with
# only /tmp (and the /cache volume) writable, no capabilities, no privilege escalation.
RESTRICTED = ("--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp", "--cap-drop", "ALL",
              "--security-opt", "no-new-privileges")


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    """`podman ARGS` with the project's containers.conf; a failure shows podman's output."""
    done = subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def check_podman() -> None:
    """Fail, saying how to fix it, where podman is missing or cannot run."""
    if subprocess.run(["which", "podman"], capture_output=True, check=False).returncode != 0:
        pytest.fail(f"podman is not installed, so the image cannot be tested: {INSTALL_HINT}")
    probe = podman("info", check=False)
    if probe.returncode != 0:
        pytest.fail(f"podman cannot run here ({INSTALL_HINT}):\n{probe.stderr[-3000:]}")


def make_base_image(image: str) -> None:
    """A local debootstrap (deploy/make_base_image.sh) as `image`, unless it exists already."""
    if podman("image", "exists", image, check=False).returncode == 0:
        return
    made = subprocess.run(["sh", str(REPO / "deploy" / "make_base_image.sh"), image],
                          env=podman_env(), capture_output=True, text=True, timeout=1200,
                          check=False)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]


def make_wheelhouse() -> Path:
    """deploy/wheelhouse filled for the CPU server, as a user of an air-gapped site would."""
    made = subprocess.run(["sh", str(REPO / "deploy" / "make_wheelhouse.sh"), "server"],
                          env={**os.environ, "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=1800, check=False)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    return REPO / "deploy" / "wheelhouse"


def build(target: str, base_image: str) -> str:
    """The image of one Dockerfile target, built offline in docker format (HEALTHCHECK kept)."""
    tag = f"localhost/bert-serving-test:{target}"
    podman("build", "--format", "docker", "--network", "none", "--target", target,
           "--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", "OFFLINE=1",
           "--tag", tag, str(REPO), timeout=3600)
    return tag


class Served:
    """A server in the container `name`, its three ports published on 127.0.0.1."""

    def __init__(self, name: str, port: int, port_out: int, http_port: int) -> None:
        self.name, self.port, self.port_out, self.http_port = name, port, port_out, http_port
        self.url = f"http://127.0.0.1:{http_port}"

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def ready_status(self) -> int | None:
        """/ready's status, or None where nothing answers (not listening yet, or gone)."""
        try:
            return httpx.get(f"{self.url}/ready", timeout=5).status_code
        except httpx.TransportError:
            return None

    def wait_ready(self) -> None:
        wait_until(lambda: self.ready_status() == 200 or not self.running(), START_TIMEOUT_S,
                   lambda: f"{self.name} to answer /ready:\n{self.logs()}")
        if self.ready_status() != 200:
            pytest.fail(f"{self.name} stopped before it answered /ready:\n{self.logs()}")

    def terminate(self) -> int:
        """SIGTERM to the server (PID 1, or catatonit's child), then its exit status."""
        podman("kill", "--signal", "TERM", self.name)
        return int(podman("wait", self.name, timeout=90).stdout.strip())


class Container(Served):
    """One detached, restricted `podman run` of `image`, with `volume` at /cache."""

    def __init__(self, image: str, volume: str, args: list[str], *, init: bool) -> None:
        super().__init__(f"bert-serving-test-{uuid.uuid4().hex[:8]}", *free_ports(3))
        podman("run", "--detach", "--name", self.name, *(["--init"] if init else []),
               *RESTRICTED,
               "--publish", f"127.0.0.1:{self.port}:5555",
               "--publish", f"127.0.0.1:{self.port_out}:5556",
               "--publish", f"127.0.0.1:{self.http_port}:8125",
               "--volume", f"{volume}:/cache", image, *args)

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


def encode_http(served: Served, texts: list[str]) -> np.ndarray:
    reply = httpx.post(f"{served.url}/encode", json={"texts": texts}, timeout=120)
    assert reply.status_code == 200, reply.text
    return np.asarray(reply.json()["result"], dtype=np.float32)


_PLAIN_LEGACY = """\
import json, sys
from bert_serving.client import BertClient
bc = BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=60000)
print(json.dumps({"encode": bc.encode(json.loads(sys.argv[3])).tolist(),
                  "version": bc.server_config["server_version"]}))
"""


def encode_legacy_plain(served: Served, legacy_python: Path, texts: list[str]
                        ) -> tuple[np.ndarray, str]:
    """The unmodified 1.10.0 client's `encode(texts)` over ZeroMQ, and the version it saw."""
    done = subprocess.run(
        [str(legacy_python), "-c", _PLAIN_LEGACY, str(served.port), str(served.port_out),
         json.dumps(texts)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr + served.logs()
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    return np.asarray(reply["encode"], dtype=np.float32), str(reply["version"])


def in_flight(served: Served) -> float:
    """The gateway's bert_serving_http_in_flight (a scrape counts itself)."""
    metrics = httpx.get(f"{served.url}/metrics", timeout=5).text
    (line,) = [line for line in metrics.splitlines()
               if line.startswith("bert_serving_http_in_flight")]
    return float(line.split()[-1])
