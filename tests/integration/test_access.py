"""Access control on the real server: -allow_ip and CURVE over ZAP, and the HTTP switches.

Only loopback addresses exist here, so "outside the allow-list" is 127.0.0.2:
the server allows 127.0.0.1 only, and a socket bound to source address
127.0.0.2 (zmq's `tcp://127.0.0.2:0;127.0.0.1:port` syntax) plays the outsider.
Vectors are checked against transformers within 1e-4.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import zmq
import zmq.auth
from reference import TransformersReference
from server_process import ServerProcess, wait_until

from bert_serving.client import BertClient, BertClientTimeout
from bert_serving.proto import Command, encode_request

TOLERANCE = 1e-4
API_KEY = "probe-test-key"
TEXTS = ["access granted", "the right key opens it"]


def wait_for_line(server: ServerProcess, pattern: str, count: int = 1, timeout: float = 30) -> None:
    wait_until(lambda: len(re.findall(pattern, server.output)) >= count, timeout,
               lambda: f"{count} x {pattern!r} in:\n{server.output}")


@pytest.fixture(scope="module")
def allow_listed(graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-allow_ip", "127.0.0.1", "-api_key", API_KEY, "-open_metrics"]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


@pytest.fixture(scope="module")
def curve_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("curve")
    public, secret = zmq.auth.create_certificates(folder, "server")
    return Path(public), Path(secret)


@pytest.fixture(scope="module")
def curved(graph_cache: Path, curve_keys: tuple[Path, Path]) -> Iterator[ServerProcess]:
    args = ["-curve_secret_key", str(curve_keys[1]), "-api_key", API_KEY]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


# -- -allow_ip ---------------------------------------------------------------------------------


def test_an_address_outside_allow_ip_gets_nothing(allow_listed: ServerProcess) -> None:
    context = zmq.Context()
    identity = b"outsider"
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(f"tcp://127.0.0.2:0;127.0.0.1:{allow_listed.port}")
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, identity)
    sub.connect(f"tcp://127.0.0.2:0;127.0.0.1:{allow_listed.port_out}")
    push.send_multipart(encode_request(identity, 1, Command.SHOW_CONFIG), zmq.NOBLOCK)
    push.send_multipart(encode_request(b"0", 0, Command.TERMINATION), zmq.NOBLOCK)
    # ZAP refused both connections (logged): nothing of them reached the ventilator or sink.
    wait_for_line(allow_listed, r"connection from 127\.0\.0\.2 refused", count=2)
    assert sub.poll(1000) == 0
    context.destroy(linger=0)
    with BertClient(port=allow_listed.port, port_out=allow_listed.port_out) as client:
        statistic = client.server_status["statistic"]
        assert client.encode(TEXTS).shape == (2, 384)  # and TERMINATION did not stop it
    assert statistic["num_sys_request"] >= 1 and allow_listed.process.poll() is None
    assert "TERMINATION" not in allow_listed.output


def test_probes_are_open_and_metrics_has_its_own_switch(allow_listed: ServerProcess,
                                                        curved: ServerProcess) -> None:
    for server, metrics in ((allow_listed, 200), (curved, 401)):
        with httpx.Client(base_url=server.http_url, timeout=30) as anonymous:
            assert anonymous.get("/health").json() == {"status": "ok"}
            assert anonymous.get("/ready").json() == {"status": "ready"}
            assert anonymous.get("/metrics").status_code == metrics
            assert anonymous.post("/encode", json={"texts": ["hi"]}).status_code == 401


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_never_reach_a_json_body(allow_listed: ServerProcess,
                                                  constant: str) -> None:
    body = '{"id": ' + constant + ', "texts": ["NaN is fine inside a string"]}'
    reply = httpx.post(f"{allow_listed.http_url}/encode", content=body, timeout=30,
                       headers={"Authorization": f"Bearer {API_KEY}",
                                "Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert f"{constant} is not JSON" in reply.json()["description"]
    fine = httpx.post(f"{allow_listed.http_url}/encode", timeout=30,
                      json={"id": 1, "texts": ["NaN is fine inside a string"]},
                      headers={"Authorization": f"Bearer {API_KEY}"})
    assert fine.status_code == 200 and fine.json()["id"] == 1


# -- CURVE -------------------------------------------------------------------------------------


def test_curve_between_our_client_and_server(curved: ServerProcess, curve_keys: tuple[Path, Path],
                                             reference: TransformersReference) -> None:
    public = zmq.auth.load_certificate(curve_keys[0])[0]
    for key in (public, str(curve_keys[0])):  # the Z85 key, or its .key file
        with BertClient(port=curved.port, port_out=curved.port_out,
                        curve_server_key=key) as client:
            vectors = client.encode(TEXTS)
        np.testing.assert_allclose(vectors, reference.encode(TEXTS), atol=TOLERANCE, rtol=0)


def test_without_the_key_a_client_gets_nothing(curved: ServerProcess) -> None:
    with pytest.raises(BertClientTimeout):
        BertClient(port=curved.port, port_out=curved.port_out, timeout=2000)


def test_the_gateway_speaks_curve_to_its_own_server(curved: ServerProcess,
                                                    reference: TransformersReference) -> None:
    reply = httpx.post(f"{curved.http_url}/encode", json={"texts": TEXTS}, timeout=30,
                       headers={"Authorization": f"Bearer {API_KEY}"})
    assert reply.status_code == 200, reply.text
    np.testing.assert_allclose(np.asarray(reply.json()["result"], np.float32),
                               reference.encode(TEXTS), atol=TOLERANCE, rtol=0)


def test_termination_needs_the_key_on_a_curve_server(curved: ServerProcess,
                                                     curve_keys: tuple[Path, Path]) -> None:
    """Last in this file: it stops the `curved` server."""
    terminate = [sys.executable, "-c", "import sys; from bert_serving.server.cli import "
                 "terminate; sys.exit(terminate())", "-ip", "127.0.0.1", "-port", str(curved.port)]
    keyless = subprocess.run([*terminate, "-timeout", "1500"], capture_output=True, text=True,
                             timeout=60)
    assert keyless.returncode == 1 and curved.process.poll() is None, keyless.stderr
    public = zmq.auth.load_certificate(curve_keys[0])[0].decode()
    keyed = subprocess.run([*terminate, "-timeout", "30000", "-curve_server_key", public],
                           capture_output=True, text=True, timeout=60)
    assert keyed.returncode == 0, keyed.stderr
    assert curved.process.wait(timeout=60) == 0
