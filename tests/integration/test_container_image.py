"""The container image, built from the Dockerfile and run for real with podman.

The images come from conftest.py (built once per session, offline: a wheelhouse made on
this host, `--build-arg OFFLINE=1`, `--network none`). For the `runtime` and the
`baked` targets, each container is started on free ports published on 127.0.0.1,
restricted as the Kubernetes pods are (read-only root, no capabilities, no privilege
escalation), and must: answer /ready; encode over HTTP and, with the unmodified
bert-serving-client 1.10.0 from PyPI, over ZeroMQ, both matching transformers (1e-4);
answer a request that is in flight when it gets SIGTERM, and exit 0; start again on the
same cache volume without converting.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from containers import Container, encode_http, in_flight, podman
from reference import TransformersReference, heldout_texts
from server_process import wait_until

LEGACY_SCRIPT = Path(__file__).with_name("legacy_client_script.py")
TOLERANCE = 1e-4
LEGACY_FLAGS = ["-show_tokens_to_client"]  # legacy_client_script.py asks for tokens


@pytest.fixture
def cache_volume() -> Iterator[str]:
    name = f"bert-serving-test-cache-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


def encode_legacy(container: Container, legacy_python: Path, texts: list[str]) -> dict:
    done = subprocess.run(
        [str(legacy_python), str(LEGACY_SCRIPT), str(container.port), str(container.port_out),
         json.dumps(texts)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + container.logs()
    return json.loads(done.stdout.strip().splitlines()[-1])


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
        runtime_image: str, legacy_python: Path, reference: TransformersReference,
        cache_volume: str) -> None:
    image = runtime_image
    health = podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image)
    assert "/health" in health.stdout  # kept: built with --format docker
    # with an init as PID 1 (catatonit), as compose's `init: true` runs it
    first, second = run_twice(image, cache_volume, ["-cpu", *LEGACY_FLAGS], legacy_python,
                              reference, init=True)
    assert "graph converted" in first, first
    assert "graph found in cache" in second and "converting" not in second, second


def test_baked_image_serves_its_graph_read_only(
        baked_image: str, legacy_python: Path, reference: TransformersReference,
        cache_volume: str) -> None:
    image = baked_image
    writable = podman("run", "--rm", "--entrypoint", "python3", image, "-c",
                      "import os; print([os.access(p, os.W_OK) for p in "
                      "('/model', '/model/model.onnx')], os.getuid(), os.getgid())")
    assert writable.stdout.split() == ["[False,", "False]", "10001", "10001"], writable.stdout
    args = ["-model_dir", "/model/model.onnx", "-cpu", *LEGACY_FLAGS]
    # the server itself as PID 1, as Kubernetes runs it
    first, second = run_twice(image, cache_volume, args, legacy_python, reference, init=False)
    for log in (first, second):
        assert "converting" not in log and "/model/model.onnx" in log, log
