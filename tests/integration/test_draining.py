"""SIGTERM on the real server with -http_port: it drains, and says so to probes and clients.

While a large /encode is in flight the server gets SIGTERM; until that request is
answered the gateway keeps listening: /ready answers 503 (a readiness probe takes
the replica out), /health 200 (the liveness probe does not kill it), and new work
gets 503 ShuttingDown with Retry-After (a client retries it on another replica).
The request in flight gets all its rows, equal to transformers' (1e-4), and the
process exits 0. Before SIGTERM, bert_serving_queue_texts (what deploy/k8s/hpa.yaml scales
on) must count the request's waiting texts.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import numpy as np
from reference import TransformersReference
from server_process import ServerProcess, wait_until

TOLERANCE = 1e-4
KILLED_AFTER_S = 45  # deploy/compose.yaml's stop_grace_period, the tighter of the two
# Seconds of work on two busy cores, well inside the server's 30 s drain, and longer
# than the probes below take: each text differs, so nothing is cached.
IN_FLIGHT_TEXTS = [f"text {i} of the request that is in flight when SIGTERM comes"
                   for i in range(3000)]


def gauge(url: str, name: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    (line,) = [line for line in metrics.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[-1])


def test_sigterm_drains_ready_503_new_work_503_in_flight_answered(
        graph_cache: Path, reference: TransformersReference) -> None:
    with ServerProcess([], graph_cache, http=True) as server:
        url = server.http_url
        replies: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: replies.append(httpx.post(
            f"{url}/encode", json={"texts": IN_FLIGHT_TEXTS}, timeout=120)))
        sender.start()
        wait_until(lambda: gauge(url, "bert_serving_http_in_flight") >= 2, 60,
                   "the large request to reach the gateway")
        # the HPA's signal (deploy/k8s/hpa.yaml) counts the texts waiting behind it
        wait_until(lambda: gauge(url, "bert_serving_queue_texts") > 0, 30,
                   "bert_serving_queue_texts to count the queued texts")
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{url}/ready", timeout=5).status_code == 503, 10,
                   "/ready to turn 503 after SIGTERM")
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        refused = httpx.post(f"{url}/encode", json={"texts": ["a new request"]}, timeout=30)
        openai = httpx.post(f"{url}/v1/embeddings", json={"input": "a new request"}, timeout=30)
        tei = httpx.post(f"{url}/embed", json={"inputs": "a new request"}, timeout=30)
        assert sender.is_alive(), "the large request was answered before the probes: no drain seen"
        sender.join(120)
        assert server.process.wait(60) == 0, server.output
    assert refused.status_code == 503 and refused.json()["type"] == "ShuttingDown", refused.text
    assert "another replica" in refused.json()["description"]
    assert refused.headers["Retry-After"] == "1"
    assert openai.status_code == 503, openai.text
    assert openai.json()["error"]["code"] == "shutting_down"
    assert tei.status_code == 503 and tei.json()["error_type"] == "overloaded", tei.text
    (reply,) = replies
    assert reply.status_code == 200, reply.text
    got = np.asarray(reply.json()["result"], dtype=np.float32)
    assert got.shape[0] == len(IN_FLIGHT_TEXTS)
    sample = slice(0, None, 100)  # 30 rows across the batch against the reference
    np.testing.assert_allclose(got[sample], reference.encode(IN_FLIGHT_TEXTS[sample]),
                               atol=TOLERANCE, rtol=0)


def process_gone(pid: int) -> bool:
    """No such process, or a zombie (exited, not yet reaped by whoever inherited it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_stop_with_a_stuck_request_ends_within_the_stop_budget(graph_cache: Path) -> None:
    """A request that cannot finish (its workers hang: SIGSTOP) gets the drain's 30 s once,
    not once in the gateway and again in the pipeline, and the hung workers are killed:
    the server exits 0 before compose's stop_grace_period (45 s) would SIGKILL it."""
    with ServerProcess([], graph_cache, http=True) as server:
        url = server.http_url
        outcome: list[object] = []

        def send() -> None:
            try:
                outcome.append(httpx.post(f"{url}/encode", json={"texts": IN_FLIGHT_TEXTS},
                                          timeout=120))
            except httpx.HTTPError as error:  # dropped at the deadline: what is expected
                outcome.append(error)

        sender = threading.Thread(target=send)
        sender.start()
        wait_until(lambda: gauge(url, "bert_serving_http_in_flight") >= 2, 60,
                   "the large request to reach the gateway")
        workers = server.worker_pids()
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{url}/ready", timeout=5).status_code == 503, 10,
                   "/ready to turn 503 after SIGTERM")
        assert sender.is_alive(), "the request was answered before the workers hung"
        # the bound is the contract (SIGKILL comes then), not a speed claim
        assert server.process.wait(KILLED_AFTER_S) == 0, server.output
        sender.join(30)
    assert all(process_gone(pid) for pid in workers), "a hung worker outlived the server"
    (result,) = outcome
    assert not isinstance(result, httpx.Response) or result.status_code != 200, \
        "a request whose workers hung was answered"
    assert "ignored SIGTERM: killed" in server.output, server.output
