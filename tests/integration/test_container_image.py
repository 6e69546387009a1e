"""The container image, built from the Dockerfile and run for real with podman.

Debian's buildah/podman, as root, with deploy/containers.conf (runc, ulimits) as
CONTAINERS_CONF. The base image is a local debootstrap (deploy/make_base_image.sh)
unless BERT_SERVING_TEST_BASE_IMAGE names one; the build is offline: a wheelhouse
made on this host (deploy/make_wheelhouse.sh), `--build-arg OFFLINE=1`, and no
network at all inside the build (`--network none`). For the `runtime` and the
`baked` targets, each container is then started on free ports published on
127.0.0.1, restricted as the Kubernetes pods are (read-only root, no
capabilities, no privilege escalation), and must: answer /ready; encode over
HTTP and, with the unmodified bert-serving-client 1.10.0 from PyPI, over
ZeroMQ, both matching transformers (1e-4); answer a request that is in flight
when it gets SIGTERM, and exit 0; start again on the same cache volume without
converting.

Where podman is missing or cannot run a container, the tests fail and say so:
the image is part of what CI proves, never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from reference import TransformersReference, heldout_texts
from server_process import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "deploy" / "containers.conf"
LEGACY_SCRIPT = Path(__file__).with_name("legacy_client_script.py")
BASE_IMAGE = os.environ.get("BERT_SERVING_TEST_BASE_IMAGE", "")
TOLERANCE = 1e-4
LEGACY_FLAGS = ["-show_tokens_to_client"]  # legacy_client_script.py asks for tokens
START_TIMEOUT_S = 300
INSTALL_HINT = ("run .ci/run, or as root: apt-get install buildah podman debootstrap "
                "catatonit runc")


def podman(*args: str, timeout: float = 120, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    """`podman ARGS` with the project's containers.conf; a failure shows podman's output."""
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    done = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def base_image() -> str:
    """A base image podman can run: the named one, or a local debootstrap made once."""
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed, so the image cannot be tested: {INSTALL_HINT}")
    probe = podman("info", check=False)
    if probe.returncode != 0:
        pytest.fail(f"podman cannot run here ({INSTALL_HINT}):\n{probe.stderr[-3000:]}")
    if BASE_IMAGE:
        podman("image", "exists", BASE_IMAGE)
        return BASE_IMAGE
    image = "localhost/bert-serving-base:test"
    if podman("image", "exists", image, check=False).returncode != 0:
        made = subprocess.run(["sh", str(REPO / "deploy" / "make_base_image.sh"), image],
                              env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
                              capture_output=True, text=True, timeout=1200, check=False)
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    return image


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
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


# As deploy/k8s runs the pods and deploy/compose.yaml the service: a read-only root with
# only /tmp (and the /cache volume) writable, no capabilities, no privilege escalation.
RESTRICTED = ("--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp", "--cap-drop", "ALL",
              "--security-opt", "no-new-privileges")


class Container:
    """One detached `podman run` of the image, its three ports published on 127.0.0.1."""

    def __init__(self, image: str, volume: str, args: list[str], *, init: bool) -> None:
        self.name = f"bert-serving-test-{uuid.uuid4().hex[:8]}"
        self.port, self.port_out, self.http_port = free_port(), free_port(), free_port()
        podman("run", "--detach", "--name", self.name, *(["--init"] if init else []),
               *RESTRICTED,
               "--publish", f"127.0.0.1:{self.port}:5555",
               "--publish", f"127.0.0.1:{self.port_out}:5556",
               "--publish", f"127.0.0.1:{self.http_port}:8125",
               "--volume", f"{volume}:/cache", image, *args)
        self.url = f"http://127.0.0.1:{self.http_port}"

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def answers_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False  # the port is published before the gateway listens

    def wait_ready(self) -> None:
        wait_until(lambda: self.answers_ready() or not self.running(), START_TIMEOUT_S,
                   lambda: f"{self.name} to answer /ready:\n{self.logs()}")
        if not self.answers_ready():
            pytest.fail(f"{self.name} stopped before it answered /ready:\n{self.logs()}")

    def terminate(self) -> int:
        """SIGTERM to the server (PID 1), then its exit status."""
        podman("kill", "--signal", "TERM", self.name)
        return int(podman("wait", self.name, timeout=90).stdout.strip())

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


@pytest.fixture
def cache_volume() -> Iterator[str]:
    name = f"bert-serving-test-cache-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


def encode_http(container: Container, texts: list[str]) -> np.ndarray:
    reply = httpx.post(f"{container.url}/encode", json={"texts": texts}, timeout=120)
    assert reply.status_code == 200, reply.text
    return np.asarray(reply.json()["result"], dtype=np.float32)


def encode_legacy(container: Container, legacy_python: Path, texts: list[str]) -> dict:
    done = subprocess.run(
        [str(legacy_python), str(LEGACY_SCRIPT), str(container.port), str(container.port_out),
         json.dumps(texts)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + container.logs()
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_flight(container: Container) -> float:
    metrics = httpx.get(f"{container.url}/metrics", timeout=5).text
    (line,) = [line for line in metrics.splitlines()
               if line.startswith("bert_serving_http_in_flight")]
    return float(line.split()[-1])


def sigterm_during_a_request(container: Container) -> tuple[int, int]:
    """SIGTERM while a large /encode is being served: (its HTTP status, the exit status)."""
    # Seconds of work on two busy cores: in flight when the signal comes, and well inside
    # the server's 30 s drain (a request that outlasts the drain is cut off, by design).
    texts = [f"sentence number {i} for the drain on shutdown" for i in range(500)]
    answered: list[tuple[int, int, float]] = []

    def send() -> None:
        reply = httpx.post(f"{container.url}/encode", json={"texts": texts}, timeout=120)
        rows = len(reply.json()["result"]) if reply.status_code == 200 else 0
        answered.append((reply.status_code, rows, time.monotonic()))

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: in_flight(container) >= 2, 60,  # it, and this scrape
               lambda: f"the request to reach the gateway:\n{container.logs()}")
    signalled = time.monotonic()
    status = container.terminate()
    sender.join(120)
    (code, rows, at), = answered
    assert at > signalled, "the request was answered before SIGTERM: it proves nothing"
    assert rows == len(texts), f"HTTP {code} to the request in flight:\n{container.logs()}"
    return code, status


def check_serves(container: Container, legacy_python: Path,
                 reference: TransformersReference) -> None:
    texts = heldout_texts()
    want = reference.encode(texts)
    np.testing.assert_allclose(encode_http(container, texts), want, atol=TOLERANCE, rtol=0)
    legacy = encode_legacy(container, legacy_python, texts)
    np.testing.assert_allclose(np.asarray(legacy["encode"], np.float32), want,
                               atol=TOLERANCE, rtol=0)
    assert legacy["config"]["server_version"] == "1.10.0"
    assert legacy["bad"].startswith("TypeError") and "texts[1]" in legacy["bad"]


def run_twice(image: str, volume: str, args: list[str], legacy_python: Path,
              reference: TransformersReference, *, init: bool) -> tuple[str, str]:
    """Start, serve, SIGTERM mid-request; start again on the same volume. Both logs."""
    logs = []
    for _ in range(2):
        container = Container(image, volume, args, init=init)
        try:
            container.wait_ready()
            check_serves(container, legacy_python, reference)
            code, status = sigterm_during_a_request(container)
            assert (code, status) == (200, 0), container.logs()
            logs.append(container.logs())
        finally:
            container.remove()
    return logs[0], logs[1]


def test_runtime_image_serves_drains_and_reuses_its_cache(
        base_image: str, wheelhouse: Path, legacy_python: Path,
        reference: TransformersReference, cache_volume: str) -> None:
    image = build("runtime", base_image)
    health = podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image)
    assert "/health" in health.stdout  # kept: built with --format docker
    # with an init as PID 1 (catatonit), as compose's `init: true` runs it
    first, second = run_twice(image, cache_volume, ["-cpu", *LEGACY_FLAGS], legacy_python,
                              reference, init=True)
    assert "graph converted" in first, first
    assert "graph found in cache" in second and "converting" not in second, second


def test_baked_image_serves_its_graph_read_only(
        base_image: str, wheelhouse: Path, legacy_python: Path,
        reference: TransformersReference, cache_volume: str) -> None:
    image = build("baked", base_image)
    writable = podman("run", "--rm", "--entrypoint", "python3", image, "-c",
                      "import os; print([os.access(p, os.W_OK) for p in "
                      "('/model', '/model/model.onnx')], os.getuid(), os.getgid())")
    assert writable.stdout.split() == ["[False,", "False]", "10001", "10001"], writable.stdout
    args = ["-model_dir", "/model/model.onnx", "-cpu", *LEGACY_FLAGS]
    # the server itself as PID 1, as Kubernetes runs it
    first, second = run_twice(image, cache_volume, args, legacy_python, reference, init=False)
    for log in (first, second):
        assert "converting" not in log and "/model/model.onnx" in log, log
