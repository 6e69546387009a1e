"""Two replicas behind one client, one of them stopped mid-run: every row answered exactly once.

Two containers of the baked image (no conversion, so both start at once), each
publishing its ports on 127.0.0.1, stand in for a Deployment's pods behind a Service.
The client spreads its requests round-robin over both, as a Service without affinity
does; a request whose replica refuses it (503 ShuttingDown while draining) or is gone
(connection refused or reset) goes to the other replica, as a load balancer retries an
idempotent request on another endpoint. One replica gets SIGTERM once a third of the
requests are answered. Every request must get one reply, with one row per text, equal to
transformers' (1e-4), in order; the stopped replica must exit 0; both must have served,
and at least one request must have failed over. The replicas' own counts (the line each
logs when it stops) must add up to the requests and texts sent: none computed twice (a
request that a replica was computing when its answer was lost, then retried) or lost.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from containers import Container, podman
from reference import TransformersReference
from server_process import wait_until

TOLERANCE = 1e-4
REQUESTS, TEXTS_PER_REQUEST, SENDERS = 90, 20, 4
ARGS = ["-model_dir", "/model/model.onnx", "-cpu"]


class RoundRobin:
    """Sends each request to the next replica; on a refusal or a lost replica, to the other."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.turn = itertools.count()
        self.lock = threading.Lock()
        self.served_by: Counter[str] = Counter()
        self.failovers = 0

    def encode(self, texts: list[str]) -> list[list[float]]:
        with self.lock:
            first = next(self.turn) % len(self.urls)
        for url in self.urls[first:] + self.urls[:first]:
            try:
                reply = httpx.post(f"{url}/encode", json={"texts": texts}, timeout=120)
            except httpx.TransportError:  # refused, reset: the replica is gone
                reply = None
            if reply is not None and reply.status_code == 200:
                with self.lock:
                    self.served_by[url] += 1
                return list(reply.json()["result"])
            if reply is not None and reply.status_code != 503:
                raise AssertionError(f"{url} answered {reply.status_code}: {reply.text}")
            with self.lock:
                self.failovers += 1
        raise AssertionError(f"no replica answered {texts[0]!r}")


def stopped_counts(replica: Container) -> tuple[int, int]:
    """(encode requests received, texts computed) from the line the server logs as it stops."""
    (line,) = [line for line in replica.logs().splitlines() if "bert-serving stopped:" in line]
    found = re.search(r"(\d+) encode requests of \d+ texts received, (\d+) texts computed", line)
    assert found, line
    return int(found[1]), int(found[2])


@pytest.fixture
def replicas(baked_image: str) -> Iterator[list[Container]]:
    volumes = [f"bert-serving-test-cache-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    started: list[Container] = []
    try:
        for volume in volumes:
            podman("volume", "create", volume)
            started.append(Container(baked_image, volume, ARGS, init=False))
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.remove()
        for volume in volumes:
            podman("volume", "rm", "--force", volume, check=False)


def test_one_replica_stopped_mid_run_every_row_answered_once(
        replicas: list[Container], reference: TransformersReference) -> None:
    requests = [[f"request {r} text {t}: which replica embeds me" for t in range(TEXTS_PER_REQUEST)]
                for r in range(REQUESTS)]
    client = RoundRobin([replica.url for replica in replicas])
    answered = threading.Semaphore(0)

    def send(texts: list[str]) -> tuple[list[str], list[list[float]]]:
        rows = client.encode(texts)
        answered.release()
        return texts, rows

    stopped = replicas[0]
    with ThreadPoolExecutor(SENDERS) as pool:
        futures = [pool.submit(send, texts) for texts in requests]
        for _ in range(REQUESTS // 3):
            wait_until(lambda: answered.acquire(timeout=1), 120, "a third of the requests")
        exit_status = stopped.terminate()
        results = [future.result() for future in futures]
    assert replicas[1].terminate() == 0, replicas[1].logs()
    # each request received and computed by exactly one replica, by the replicas' own count
    received, computed = zip(*(stopped_counts(replica) for replica in replicas), strict=True)
    assert sum(received) == REQUESTS, received
    assert sum(computed) == REQUESTS * TEXTS_PER_REQUEST, computed
    # one row per text, each the text's own
    assert [len(rows) for _, rows in results] == [TEXTS_PER_REQUEST] * REQUESTS
    texts = [text for texts, _ in results for text in texts]
    got = np.asarray([row for _, rows in results for row in rows], dtype=np.float32)
    np.testing.assert_allclose(got, reference.encode(texts), atol=TOLERANCE, rtol=0)
    assert exit_status == 0, stopped.logs()
    assert set(client.served_by) == {replica.url for replica in replicas}, client.served_by
    assert client.failovers > 0, "no request met the stopped replica: the stop proved nothing"
