"""The real server end to end: processes, ZeroMQ sockets on 127.0.0.1, onnxruntime, the MiniLM.

Vectors are checked against the in-process engine (itself checked against
transformers in tests/unit/test_engine_reference.py) and against transformers
directly for the client path, within 1e-4.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from reference import TransformersReference, heldout_texts
from server_process import READY_MARK, ServerProcess, wait_until

from bert_serving.client import BertClient, ServerError
from bert_serving.proto.internal import encode_ready
from bert_serving.server.model.engine import Engine, EngineOptions

TOLERANCE = 1e-4
WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
    "pi rho sigma tau upsilon phi chi psi omega 你 好 世 界"
).split()


def make_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(count)]


@pytest.fixture(scope="module")
def server(graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-num_worker", "2", "-max_batch_size", "32", "-show_tokens_to_client"]
    with ServerProcess(args, graph_cache) as process:
        yield process


@pytest.fixture(scope="module")
def engine(minilm_dir: Path, graph_cache: Path) -> Engine:
    return Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))


def client_for(server: ServerProcess, **kwargs: object) -> BertClient:
    return BertClient(port=server.port, port_out=server.port_out, **kwargs)  # type: ignore[arg-type]


def statistic(watcher: BertClient) -> dict[str, Any]:
    """The server's counters now (the ventilator answers them between batches)."""
    return dict(watcher.server_status["statistic"])


def wait_until_received(watcher: BertClient, before: int, count: int) -> None:
    """Wait until the ventilator has taken `count` texts more than `before` (num_total_seq):
    a request sent with blocking=False is then queued in the scheduler, not in a socket."""
    wait_until(lambda: statistic(watcher)["num_total_seq"] >= before + count, 60,
               f"the server to receive {count} texts")


def test_encode_matches_transformers(server: ServerProcess,
                                     reference: TransformersReference) -> None:
    texts = heldout_texts()
    # one held-out text is longer than max_seq_len: the client warns
    with client_for(server) as client, pytest.warns(UserWarning, match="max_seq_len=25"):
        got = client.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    np.testing.assert_allclose(got, reference.encode(texts), atol=TOLERANCE, rtol=0)


def test_show_tokens_and_tokenized_input(server: ServerProcess, engine: Engine) -> None:
    with client_for(server) as client:
        vectors, tokens = client.encode(["hello world", "Good DAY"], show_tokens=True)
        assert tokens == [["[CLS]", "hello", "world", "[SEP]"], ["[CLS]", "good", "day", "[SEP]"]]
        tokenized = client.encode([["hello", "world"], ["good", "day"]], is_tokenized=True)
    np.testing.assert_allclose(tokenized, vectors, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(vectors, engine.encode(["hello world", "Good DAY"]),
                               atol=TOLERANCE, rtol=0)


def test_config_and_status(server: ServerProcess) -> None:
    with client_for(server) as client:
        client.encode(["count me"])
        config = client.server_config
        status = client.server_status
    assert config["server_version"] == "1.10.0"
    assert config["max_seq_len"] == 25 and config["show_tokens_to_client"] is True
    assert config["pooling_strategy"] == 2 and config["pooling_layer"] == [-2]
    assert config["max_batch_tokens"] == 4096  # the CPU default
    # each worker ran its largest batch before it took requests: 4096 // 25 rows, capped at 32
    assert server.output.count("warmed up on 1x8 and 32x25") == 2
    assert status["statistic"]["num_data_request"] >= 1
    assert status["statistic"]["num_total_seq"] >= 1


def test_six_concurrent_clients_get_their_rows_in_order(server: ServerProcess,
                                                        engine: Engine) -> None:
    sizes = [1, 7, 33, 120, 257, 400]  # several above -max_batch_size 32
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            texts = make_texts(index, sizes[index])
            with client_for(server) as client:
                if index % 2:
                    results[index] = client.encode(texts)
                else:  # async: two halves, fetched back in order
                    half = max(1, len(texts) // 2)
                    client.encode(texts[:half], blocking=False)
                    if texts[half:]:
                        client.encode(texts[half:], blocking=False)
                    results[index] = client.fetch_all(sort=True, concat=True)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not errors, errors
    for index, size in enumerate(sizes):
        want = engine.encode(make_texts(index, size))
        np.testing.assert_allclose(results[index], want, atol=TOLERANCE, rtol=0)


BAD_PAYLOADS = {
    b"{not json": "not valid UTF-8 JSON",
    b'{"a": 1}': "must be a JSON list",
    b"[]": "empty list",
    b'["ok", 3]': "texts[1]",
    b'[["ok"], "flat"]': "texts[1]",
    b'[["ok", 5]]': "texts[0][1]",
}


@pytest.mark.parametrize("payload", list(BAD_PAYLOADS))
def test_bad_payload_gets_an_error_and_server_keeps_serving(server: ServerProcess,
                                                            payload: bytes) -> None:
    context = zmq.Context.instance()
    identity = b"bad-payload-client-" + str(time.monotonic_ns()).encode()
    receiver = context.socket(zmq.SUB)
    receiver.setsockopt(zmq.SUBSCRIBE, identity)
    receiver.connect(f"tcp://127.0.0.1:{server.port_out}")
    sender = context.socket(zmq.PUSH)
    sender.connect(f"tcp://127.0.0.1:{server.port}")
    sender.send_multipart([identity, payload, b"1", b"1"])
    assert receiver.poll(10_000), "no error reply within 10 s"
    frames = receiver.recv_multipart()
    header = json.loads(frames[1])
    assert BAD_PAYLOADS[payload] in header["error"]["message"]
    sender.close(0)
    receiver.close(0)
    with client_for(server) as client:
        assert client.encode(["still serving"]).shape == (1, 384)


def test_too_many_texts_is_refused_by_our_client_path(graph_cache: Path) -> None:
    with (
        ServerProcess(["-max_request_texts", "10"], graph_cache) as small,
        client_for(small, chunk_size=100) as client,
        pytest.raises(ServerError, match="more than the server's limit of 10"),
    ):
        client.encode(make_texts(1, 11))


def test_malformed_frames_are_counted_not_fatal(server: ServerProcess) -> None:
    context = zmq.Context.instance()
    sender = context.socket(zmq.PUSH)
    sender.connect(f"tcp://127.0.0.1:{server.port}")
    with client_for(server) as watcher:
        before = statistic(watcher)["num_malformed_request"]
        sender.send_multipart([b"x", b"only two"])
        sender.send_multipart([b"y", b'["a"]', b"not-a-number", b"1"])
        wait_until(lambda: statistic(watcher)["num_malformed_request"] >= before + 2, 30,
                   "both malformed messages to be counted")
        sender.close(0)
        assert watcher.encode(["still serving"]).shape == (1, 384)


def test_small_request_overtakes_a_large_one(server: ServerProcess) -> None:
    """The small request is answered while rows of the large one still wait in the
    scheduler; a first-come-first-served scheduler would leave none waiting by then."""
    big_texts = ["a few short words here"] * 20_000
    with (
        client_for(server, timeout=300_000) as big,
        client_for(server, timeout=300_000) as small,  # on FIFO: answered last, then fails
        client_for(server) as watcher,
    ):
        before = statistic(watcher)["num_total_seq"]
        big.encode(big_texts, blocking=False)
        wait_until_received(watcher, before, len(big_texts))  # queued ahead of the small one
        small.encode(["one text"])
        waiting_after_small = statistic(watcher)["pending_texts"]
        result = big.fetch_all(concat=True)
    assert waiting_after_small > 0, "the small request waited for all of the large one"
    assert result.shape == (20_000, 384)


def test_kill_minus_nine_of_a_worker_loses_nothing(server: ServerProcess, engine: Engine) -> None:
    texts = make_texts(99, 3000)
    with client_for(server, timeout=300_000) as client, client_for(server) as watcher:
        before = statistic(watcher)["num_total_seq"]
        client.encode(texts, blocking=False)
        wait_until_received(watcher, before, len(texts))  # the workers are on it now
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        got = client.fetch_all(concat=True)
    np.testing.assert_allclose(got, engine.encode(texts), atol=TOLERANCE, rtol=0)
    with client_for(server) as client:  # and the restarted worker serves
        assert client.encode(["after the restart"]).shape == (1, 384)
    assert "restarting" in server.output


def test_no_work_for_a_peer_that_is_not_a_live_worker(graph_cache: Path) -> None:
    """READY on the worker socket from a peer the server did not start or from a worker
    of its own that died (a READY sent just before, read after the death) is ignored:
    the batch goes to the live worker. Before, such a peer's 100 credits won it the
    batch and the client waited for ever. The internal sockets are Unix sockets in a
    directory of the server's own (no port another process or a container's port
    forward could hold), removed when it stops."""
    with ServerProcess([], graph_cache) as target:
        os.kill(target.worker_pids()[0], signal.SIGKILL)
        wait_until(lambda: "re-running its" in target.output, 60,  # the ventilator knows
                   "the ventilator to hear of the death")
        died = re.search(r"worker (worker-0-0-[0-9a-f]+) died", target.output)
        assert died, target.output
        internal = target.internal_addresses()
        assert len(internal) == 2, internal  # the worker socket and the sink's results
        directory = {Path(address.removeprefix("ipc://")).parent for address in internal}
        [private] = directory
        assert private.stat().st_mode & 0o777 == 0o700  # no other local user gets in
        context = zmq.Context()
        strangers = []  # held: a socket collected as garbage closes, its READY unsent
        try:
            for identity in (b"worker-0-1", died.group(1).encode()):
                for address in internal:  # a socket each: a DEALER deals round-robin
                    stranger = context.socket(zmq.DEALER)
                    stranger.setsockopt(zmq.IDENTITY, identity)
                    stranger.setsockopt(zmq.LINGER, 0)
                    stranger.connect(address)
                    stranger.send_multipart(encode_ready(100))
                    strangers.append(stranger)
            wait_until(lambda: target.output.count("not one of this server's live workers") == 2,
                       60, "the server to ignore both peers")
            with client_for(target, timeout=60_000) as client:
                assert client.encode(["a text for a live worker"]).shape == (1, 384)
        finally:
            context.destroy(linger=0)
    assert not private.exists()  # removed with the server


def test_terminate_stops_the_server(graph_cache: Path) -> None:
    with ServerProcess([], graph_cache) as target:
        done = subprocess.run(
            [sys.executable, "-c", "from bert_serving.server.cli import terminate; "
             "import sys; sys.exit(terminate())", "-ip", "127.0.0.1",
             "-port", str(target.port), "-timeout", "30000"],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert target.process.wait(30) == 0


def test_sigterm_answers_in_flight_requests_then_exits_zero(graph_cache: Path) -> None:
    with (
        ServerProcess([], graph_cache) as target,
        client_for(target, timeout=60_000) as client,
        client_for(target) as watcher,
    ):
        texts = make_texts(5, 500)
        client.encode(texts, blocking=False)
        wait_until_received(watcher, 0, len(texts))  # in flight, not still in a socket
        target.process.send_signal(signal.SIGTERM)
        result = client.fetch_all(concat=True)
        assert result.shape == (500, 384)
        assert target.process.wait(60) == 0


def test_sigterm_while_the_workers_load_stops_at_once(graph_cache: Path) -> None:
    """SIGTERM during the start (a large model loading; here a load that never ends) stops
    the server with exit 0 and no ready line, within Kubernetes' default 30 s grace: the
    requests that came meanwhile cannot be computed, so they are not drained. Before, it
    waited for its workers (up to 600 s), and then the drain took 30 s more."""
    import httpx

    target = ServerProcess(["-num_worker", "2"], graph_cache, http=True, fault="worker_load")
    target.launch()
    answers: list[object] = []

    def post_encode() -> None:
        try:
            answers.append(httpx.post(f"{target.http_url}/encode", json={"texts": ["waits"]},
                                      timeout=120).status_code)
        except httpx.HTTPError as error:  # the connection closed unanswered
            answers.append(error)

    try:
        wait_until(lambda: len(target.worker_pids()) == 2, 120, "both worker processes")
        wait_until(lambda: "HTTP gateway serving" in target.output, 60, "the gateway")
        with client_for(target, timeout=30_000) as queued, client_for(target) as watcher:
            queued.encode(["queued over ZeroMQ"], blocking=False)
            poster = threading.Thread(target=post_encode)
            poster.start()
            wait_until(lambda: statistic(watcher)["num_total_seq"] >= 2, 60,
                       "both requests to be queued")
            target.process.send_signal(signal.SIGTERM)
            code = target.process.wait(25)  # the contract: inside the 30 s grace, not speed
            poster.join(60)
    finally:
        target.stop()
    assert code == 0, target.output
    assert "shutdown asked for while the workers load" in target.output
    assert READY_MARK not in target.output
    assert len(answers) == 1 and answers[0] != 200, answers


def test_port_in_use_is_a_one_line_start_error(server: ServerProcess, graph_cache: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from bert_serving.server.cli import start; import sys; "
         "sys.exit(start())", "-cpu", "-bind_ip", "127.0.0.1", "-port", str(server.port),
         "-port_out", str(server.port_out), "-graph_tmp_dir", str(graph_cache)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert f"ports {server.port}/{server.port_out}" in done.stderr


def test_a_client_that_leaves_has_its_queued_texts_dropped(server: ServerProcess) -> None:
    with client_for(server) as watcher:
        before = statistic(watcher)["num_total_seq"]
        leaving = client_for(server)
        leaving.encode(["words for a client that will not wait"] * 20_000, blocking=False)
        wait_until_received(watcher, before, 20_000)
        leaving.close()  # its subscription ends: nobody will claim the reply
        wait_until(lambda: statistic(watcher)["pending_texts"] == 0, 20,
                   "the departed client's queued texts to be dropped")
        assert watcher.encode(["the server is free again"]).shape == (1, 384)
    assert "queued texts dropped" in server.output


def test_a_full_queue_answers_server_busy(graph_cache: Path) -> None:
    with (
        ServerProcess(["-max_queue_texts", "6000"], graph_cache) as small,
        client_for(small, timeout=300_000) as first,
        client_for(small) as second,
    ):
        first.encode(["fill the queue with these words"] * 5000, blocking=False)
        wait_until_received(second, 0, 5000)
        with pytest.raises(ServerError, match="server busy") as error:
            second.encode(["one more"] * 2000)
        assert error.value.kind == "ServerBusy"
        assert first.fetch_all(concat=True).shape == (5000, 384)  # the first is still served
