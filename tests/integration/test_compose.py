"""deploy/compose.yaml with deploy/compose.cpu.yaml brought up for real with podman-compose.

On the image the tests build (BERT_SERVING_IMAGE), the MiniLM as BERT_MODEL_DIR, and
free host ports on 127.0.0.1 (BERT_SERVING_PORT, _PORT_OUT, _HTTP_PORT): `up` starts the
service as the files say (read-only root, no capabilities, catatonit as init, the
bert-cache volume, stop_grace_period), it must answer /ready, encode over HTTP and with
the unmodified bert-serving-client 1.10.0 as transformers does (1e-4), and `down`
must answer a request in flight and leave the server's exit status 0.

compose.yaml alone reserves an NVIDIA GPU (podman-compose asks podman for the CDI
device nvidia.com/gpu=0), which this host has none of: the test checks that the file
asks for it and that the CPU override removes it, from podman-compose's own command lines.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from containers import (
    INSTALL_HINT,
    REPO,
    Served,
    encode_http,
    encode_legacy_plain,
    in_flight,
    podman,
    podman_env,
)
from reference import TransformersReference, heldout_texts
from server_process import free_ports, wait_until

GPU_FILE = REPO / "deploy" / "compose.yaml"
CPU_OVERRIDE = REPO / "deploy" / "compose.cpu.yaml"
TOLERANCE = 1e-4
IN_FLIGHT_TEXTS = [f"sentence {i} in flight while compose takes the stack down"
                   for i in range(2000)]


class Stack:
    """One podman-compose project of the compose files, on free ports and its own name."""

    def __init__(self, files: list[Path], image: str, model_dir: Path) -> None:
        self.project = f"bert-serving-test-{uuid.uuid4().hex[:8]}"
        self.files = files
        self.served = Served(f"{self.project}_bert-serving_1", *free_ports(3))
        self.env = {**podman_env(), "BERT_SERVING_IMAGE": image,
                    "BERT_MODEL_DIR": str(model_dir),
                    "BERT_SERVING_PORT": str(self.served.port),
                    "BERT_SERVING_PORT_OUT": str(self.served.port_out),
                    "BERT_SERVING_HTTP_PORT": str(self.served.http_port)}

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "podman_compose", "-p", self.project]
        for path in self.files:
            command += ["-f", str(path)]
        done = subprocess.run([*command, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, f"{command + list(args)}:\n{done.stdout}{done.stderr}"
        return done

    def run_command(self) -> str:
        """The `podman create` podman-compose would run (its --dry-run, verbose)."""
        done = self.compose("--verbose", "--dry-run", "up", "--no-build", "-d")
        (line,) = [line for line in (done.stdout + done.stderr).splitlines()
                   if "podman create" in line]
        return line

    def remove(self) -> None:
        self.compose("down", "-v", "-t", "0")
        self.forget()

    def forget(self) -> None:
        """What `down` (and a --dry-run `up`) leave behind: the volume and the network."""
        podman("volume", "rm", "--force", f"{self.project}_bert-cache", check=False)
        podman("network", "rm", "--force", f"{self.project}_default", check=False)


@pytest.fixture(autouse=True)
def podman_compose() -> None:
    if importlib.util.find_spec("podman_compose") is None:
        pytest.fail(f"podman-compose is not installed, so compose cannot be run: {INSTALL_HINT}")


@pytest.fixture
def stack(runtime_image: str, minilm_dir: Path) -> Iterator[Stack]:
    made = Stack([GPU_FILE, CPU_OVERRIDE], runtime_image, minilm_dir)
    yield made
    made.remove()


def test_compose_with_the_cpu_override_serves_and_down_drains(
        stack: Stack, legacy_python: Path, reference: TransformersReference) -> None:
    stack.compose("up", "-d", "--no-build")
    server = stack.served
    server.wait_ready()
    check_runs_as_the_file_says(server)
    texts = heldout_texts()
    want = reference.encode(texts)
    np.testing.assert_allclose(encode_http(server, texts), want, atol=TOLERANCE, rtol=0)
    legacy, version = encode_legacy_plain(server, legacy_python, texts)
    np.testing.assert_allclose(legacy, want, atol=TOLERANCE, rtol=0)
    assert version == "1.10.0"
    check_down_answers_in_flight(stack)


def check_runs_as_the_file_says(server: Served) -> None:
    config = podman("inspect", "--format",
                    "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Init}} "
                    "{{.HostConfig.SecurityOpt}}", server.name)
    assert config.stdout.split() == ["true", "true", "[no-new-privileges]"], config.stdout
    capabilities = podman("exec", server.name, "grep", "CapEff", "/proc/1/status")
    assert capabilities.stdout.split()[-1] == "0000000000000000", capabilities.stdout


def check_down_answers_in_flight(stack: Stack) -> None:
    server = stack.served
    replies: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: replies.append(httpx.post(
        f"{server.url}/encode", json={"texts": IN_FLIGHT_TEXTS}, timeout=120)))
    sender.start()
    wait_until(lambda: in_flight(server) >= 2, 60, "the large request to reach the gateway")
    # podman-compose's `stop` (and `down`) give the container stop_grace_period (45 s)
    stopped: list[Exception | None] = []
    stopping = threading.Thread(target=lambda: stopped.append(call(stack.compose, "stop",
                                                                   timeout=120)))
    stopping.start()
    # SIGTERM has reached the server once /ready says 503; the request must still be running
    wait_until(lambda: server.ready_status() == 503, 30, "/ready to turn 503")
    assert sender.is_alive(), "the large request was answered before the stop: no drain seen"
    for thread in (sender, stopping):
        thread.join(120)
    assert stopped == [None], stopped
    (reply,) = replies
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["result"]) == len(IN_FLIGHT_TEXTS)
    state = podman("inspect", "--format", "{{.State.ExitCode}}", server.name).stdout.strip()
    assert state == "0", server.logs()


def call(function: Callable[..., object], *args: object, **kwargs: object) -> Exception | None:
    """Run `function`; what it raised, or None (an assertion in a thread is otherwise lost)."""
    try:
        function(*args, **kwargs)
    except Exception as error:
        return error
    return None


def test_compose_file_reserves_the_gpu_and_the_cpu_override_removes_it(
        runtime_image: str, minilm_dir: Path) -> None:
    gpu, cpu = (Stack(files, runtime_image, minilm_dir)
                for files in ([GPU_FILE], [GPU_FILE, CPU_OVERRIDE]))
    try:
        gpu_run, cpu_run = gpu.run_command(), cpu.run_command()
    finally:
        for dry in (gpu, cpu):
            dry.forget()
    assert "--device nvidia.com/gpu=" in gpu_run, gpu_run
    assert "nvidia.com/gpu" not in cpu_run and "-cpu" in cpu_run, cpu_run
