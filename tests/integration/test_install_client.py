"""The client-only install (`pip install .`), in a fresh venv: numpy and pyzmq, nothing else.

The server runs from the test venv; the fresh venv's client encodes against it,
its `bert-serving-benchmark` measures it and its `bert-serving-terminate` stops it.
The server commands say which extra to install instead of dying on a missing module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fresh_venv import REPO, FreshVenv, encode_with
from server_process import ServerProcess, free_port

from bert_serving.client import BertClient

TEXTS = ["the client needs numpy and pyzmq only", "hello world"]


@pytest.fixture(scope="module")
def client_venv(module_tmp_path: Path) -> Iterator[FreshVenv]:
    venv = FreshVenv.create(module_tmp_path / "venv")
    venv.pip("install", str(REPO))
    yield venv


def test_the_client_install_has_no_server_dependencies(client_venv: FreshVenv) -> None:
    installed = client_venv.distributions()
    assert "bert-serving-onnx" in installed
    for absent in ("onnxruntime", "onnxruntime-gpu", "onnx", "tokenizers", "fastapi", "torch"):
        assert absent not in installed, installed


@pytest.mark.parametrize("command", ["bert-serving-start", "bert-serving-export"])
def test_server_commands_name_the_extra_to_install(client_venv: FreshVenv, command: str) -> None:
    result = client_venv.run(command, "-h")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{command}: this is a client-only install")
    assert f"pip install '{REPO}[server]'" in lines[0]
    assert "[gpu]" in lines[0]


def test_client_commands_fail_fast_when_no_server_answers(client_venv: FreshVenv) -> None:
    port = free_port()
    for command in ("bert-serving-benchmark", "bert-serving-terminate"):
        result = client_venv.run(command, "-port", str(port), timeout=30)
        assert result.returncode == 1, result
        assert "no server is listening on" in result.stderr and str(port) in result.stderr


def test_encode_benchmark_and_terminate_against_a_server_from_another_venv(
        client_venv: FreshVenv, graph_cache: Path, minilm_dir: Path) -> None:
    with ServerProcess(["-model_dir", str(minilm_dir)], graph_cache) as server:
        ports = (str(server.port), str(server.port_out))
        got = encode_with(client_venv, server, TEXTS)
        with BertClient(port=server.port, port_out=server.port_out) as ours:
            expected = ours.encode(TEXTS)
        # Same server, same texts: the fresh venv's client must get the very same vectors.
        np.testing.assert_array_equal(got, expected)

        bench = client_venv.run("bert-serving-benchmark", "-port", ports[0], "-port_out",
                                ports[1], "-client_batch_size", "2", "-num_client", "1",
                                "-num_repeat", "1", "-rounds", "1", timeout=120)
        assert bench.returncode == 0, bench.stderr
        assert "sentences/s" in bench.stdout

        stop = client_venv.run("bert-serving-terminate", "-port", ports[0], "-timeout", "60000",
                               timeout=90)
        assert stop.returncode == 0, stop.stderr
        assert server.process.wait(60) == 0, server.output
