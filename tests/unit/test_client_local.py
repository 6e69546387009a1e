"""BertClient against an in-test fake SERVER on real zmq sockets on 127.0.0.1.

The fake answers SHOW_CONFIG and echoes each text as a deterministic vector
(`fake_vector`), optionally holding replies and sending them in reverse order.
It tests the client's chunking, ordering, threading, timeouts and error
surfacing; it says nothing about whether the real server works.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from bert_serving.client import (
    BertClient,
    BertClientTimeout,
    ConcurrentBertClient,
    ServerError,
)
from bert_serving.client._assembly import RowAssembler
from bert_serving.proto import (
    PROTOCOL_VERSION,
    Command,
    Request,
    encode_embedding_reply,
    encode_error_reply,
    encode_json_reply,
    parse_request,
)
from bert_serving.proto.inputs import Dual, Ids, encode_inputs

FAIL_TEXT = "please fail"
WIDTH = 4


def fake_vector(text: str | list[str]) -> list[float]:
    """Row for one text: its length and a checksum, so a misplaced row shows.

    Every value is an integer below 2048, exact in float16 as in float32.
    """
    joined = " ".join(text) if isinstance(text, list) else text
    checksum = zlib.crc32(joined.encode())
    return [len(joined), checksum % 2048, (checksum >> 11) % 2048, 1.0]


def expected(texts: list[Any], dtype: str = "float32") -> np.ndarray:
    return np.array([fake_vector(t) for t in texts], dtype=dtype)


def fake_tokens(text: str) -> list[str]:
    return ["[CLS]", *text.split(), "[SEP]"]


class FakeServer:
    """PULL for requests, XPUB for replies; one thread; replies only once subscribed.

    `hold` > 1 keeps that many embedding replies and sends them newest first
    (also flushed after 20 ms without requests); `answer=False` never replies.
    """

    def __init__(
        self,
        *,
        answer: bool = True,
        hold: int = 1,
        dtype: str = "float32",
        show_tokens: bool = False,
        max_seq_len: int | None = 25,
        server_version: str = PROTOCOL_VERSION,
    ) -> None:
        self.answer, self.hold, self.dtype = answer, hold, dtype
        self.config = {
            "server_version": server_version,
            "max_seq_len": max_seq_len,
            "show_tokens_to_client": show_tokens,
        }
        self.requests: list[Request] = []
        self._held: list[list[Any]] = []
        self._subscribed: set[bytes] = set()
        self._context = zmq.Context()
        self._pull = self._context.socket(zmq.PULL)
        self._pub = self._context.socket(zmq.XPUB)
        self.port = self._pull.bind_to_random_port("tcp://127.0.0.1")
        self.port_out = self._pub.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pull.close(0)
        self._pub.close(0)
        self._context.term()

    @property
    def encode_requests(self) -> list[Request]:
        return [r for r in self.requests if r.command is None]

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._pull, zmq.POLLIN)
        poller.register(self._pub, zmq.POLLIN)
        while not self._stop.is_set():
            events = dict(poller.poll(20))
            if self._pub in events:
                self._read_subscriptions()
            if self._pull in events:
                self._handle(parse_request(self._pull.recv_multipart()))
            elif self._held:
                self._flush()

    def _read_subscriptions(self) -> None:
        while self._pub.poll(0):
            message = self._pub.recv()
            if message[:1] == b"\x01":
                self._subscribed.add(message[1:])

    def _handle(self, request: Request) -> None:
        self.requests.append(request)
        if not self.answer:
            return
        if request.command is not None:
            body = {**self.config, "client": request.client_id.decode()}
            self._publish(encode_json_reply(request.client_id, request.req_id, body))
            return
        texts = json.loads(request.payload)  # as the client sent them
        if isinstance(texts, dict) and "texts" in texts:
            texts = texts["texts"]  # the *ext* wrapper of a 1.10 list; "precision" ignored
        if FAIL_TEXT in texts:
            message = f"the fake server refuses {FAIL_TEXT!r}, as asked"
            self._publish(encode_error_reply(request.client_id, request.req_id, message))
            return
        self._held.append(self._embeddings(request, texts))
        if len(self._held) >= self.hold:
            self._flush()

    def _embeddings(self, request: Request, texts: list[Any]) -> list[Any]:
        tokens = [fake_tokens(t) for t in texts] if self.config["show_tokens_to_client"] else None
        array = expected(texts, self.dtype)
        return encode_embedding_reply(request.client_id, request.req_id, array, tokens)

    def _flush(self) -> None:
        for frames in reversed(self._held):
            self._publish(frames)
        self._held.clear()

    def _publish(self, frames: list[Any]) -> None:
        """Wait for the client's subscription: PUB drops what it sends before that."""
        deadline = time.monotonic() + 2
        while frames[0] not in self._subscribed and time.monotonic() < deadline:
            if self._pub.poll(20):
                self._read_subscriptions()
        self._pub.send_multipart(frames)


@pytest.fixture
def make_server() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def make(**options: Any) -> FakeServer:
        servers.append(FakeServer(**options))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., BertClient]]:
    clients: list[BertClient] = []

    def make(server: FakeServer, **kwargs: Any) -> BertClient:
        kwargs.setdefault("timeout", 5000)
        clients.append(BertClient("127.0.0.1", server.port, server.port_out, **kwargs))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def server(make_server: Callable[..., FakeServer]) -> FakeServer:
    return make_server()


def texts_of(count: int, prefix: str = "text") -> list[str]:
    return [f"{prefix} {'word ' * (i % 7)}number {i}" for i in range(count)]


def test_constructor_reads_the_server_config(server: FakeServer, connect: Any) -> None:
    bc = connect(server)
    assert (bc.length_limit, bc.token_info_available) == (25, False)
    assert bc.server_config["client"] == bc.identity.decode()
    assert len(bc.identity) == 36
    assert bc.status["client_version"] == PROTOCOL_VERSION
    assert server.requests[0].command is Command.SHOW_CONFIG


def test_version_mismatch_is_refused(make_server: Any, connect: Any) -> None:
    with pytest.raises(AttributeError, match=r"0\.9\.9"):
        connect(make_server(server_version="0.9.9"))


def test_encode_returns_rows_in_order(server: FakeServer, connect: Any) -> None:
    texts = ["a", "hello world", "naïve café ||| 東京"]
    vectors = connect(server).encode(texts)
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, expected(texts))
    assert vectors.flags.writeable


def test_chunked_encode_keeps_order_with_replies_reversed(
    make_server: Any, connect: Any
) -> None:
    server = make_server(hold=5)
    texts = texts_of(5000)
    vectors = connect(server, chunk_size=64).encode(texts)
    np.testing.assert_array_equal(vectors, expected(texts))
    assert [r.msg_len for r in server.encode_requests] == [64] * 78 + [8]


def test_non_blocking_replies_out_of_order_are_matched(make_server: Any, connect: Any) -> None:
    server = make_server(hold=3)
    bc = connect(server)
    batches = [texts_of(2, "first"), texts_of(3, "second"), texts_of(1, "third")]
    for batch in batches:
        assert bc.encode(batch, blocking=False) is None
    arrival = list(bc.fetch())
    assert [r.id for r in arrival] == [4, 3, 2]  # request 1 was SHOW_CONFIG
    np.testing.assert_array_equal(arrival[0].embedding, expected(batches[2]))
    assert bc.fetch_all() is None


def test_fetch_all_sort_and_concat(make_server: Any, connect: Any) -> None:
    bc = connect(make_server(hold=3))
    batches = [texts_of(2, "first"), texts_of(3, "second"), texts_of(1, "third")]

    def send_all() -> None:
        for batch in batches:
            bc.encode(batch, blocking=False)

    send_all()
    unsorted = bc.fetch_all(sort=False)
    assert [len(r) for r in unsorted] == [1, 3, 2]
    send_all()
    ordered = bc.fetch_all(sort=True)
    for result, batch in zip(ordered, batches, strict=True):
        np.testing.assert_array_equal(result, expected(batch))
    send_all()
    joined = bc.fetch_all(sort=True, concat=True)
    np.testing.assert_array_equal(joined, expected([t for b in batches for t in b]))


def test_threads_sharing_one_client_get_their_own_rows(make_server: Any, connect: Any) -> None:
    bc = connect(make_server(hold=3), chunk_size=16, chunks_in_flight=3)
    start = threading.Barrier(8)
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        start.wait()
        results[index] = bc.encode(texts_of(150 + index, f"thread {index}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(results) == list(range(8))
    for index, vectors in results.items():
        np.testing.assert_array_equal(vectors, expected(texts_of(150 + index, f"thread {index}")))
    assert bc.status["num_pending_request"] == 0


def test_timeout_names_the_ports(make_server: Any, connect: Any) -> None:
    server = make_server(answer=False)
    started = time.monotonic()
    with pytest.raises(BertClientTimeout) as caught:
        connect(server, timeout=300)
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert f"tcp://127.0.0.1:{server.port}" in message
    assert f"port_out={server.port_out}" in message
    assert isinstance(caught.value, TimeoutError)


def test_encode_timeout_forgets_the_request(make_server: Any, connect: Any) -> None:
    bc = connect(make_server(answer=False), timeout=200, ignore_all_checks=True)
    with pytest.raises(BertClientTimeout, match="request 1"):
        bc.encode(["hello"])
    assert bc.status["num_pending_request"] == 0


def test_server_error_is_raised_with_its_message(server: FakeServer, connect: Any) -> None:
    bc = connect(server, chunk_size=2)
    with pytest.raises(ServerError, match="refuses 'please fail'") as caught:
        bc.encode(["fine", "also fine", FAIL_TEXT, "never mind"])
    assert caught.value.kind == "BadRequest"
    np.testing.assert_array_equal(bc.encode(["again"]), expected(["again"]))
    assert bc.status["num_pending_request"] == 0


def test_a_server_that_ignored_the_precision_is_detected_blocking_or_not(
    server: FakeServer, connect: Any,
) -> None:
    """The fake server, like a 1.10 one, ignores "precision" and sends float32 rows."""
    bc = connect(server)
    with pytest.raises(ServerError, match="asked for int8 rows, the server sent float32"):
        bc.encode(["hello"], precision="int8")
    assert bc.encode(["hello"], blocking=False, precision="ubinary") is None
    with pytest.raises(ServerError, match="asked for ubinary rows, the server sent float32"):
        bc.fetch_all()
    bc.encode(["again"], blocking=False)  # float32 asked, float32 sent: no error
    np.testing.assert_array_equal(bc.fetch_all(concat=True), expected(["again"]))
    assert bc.status["num_pending_request"] == 0


@pytest.mark.parametrize(
    ("texts", "is_tokenized", "error", "match"),
    [
        ("hello", False, TypeError, r"must be a list.*wrap"),
        ([], False, ValueError, "empty list"),
        (["a", "b", 3], False, TypeError, r"texts\[2\] is an int, not a str"),
        (["a", "  "], False, ValueError, r"texts\[1\]"),
        ([["a", "b"]], False, TypeError, r"texts\[0\].*is_tokenized=True"),
        (["a b"], True, TypeError, r"texts\[0\] is a str"),
        ([["a"], ["b", 2]], True, TypeError, r"texts\[1\]\[1\]"),
        ([["a"], []], True, ValueError, r"texts\[1\] is an empty token list"),
    ],
)
def test_bad_input_is_refused_before_sending(
    server: FakeServer, connect: Any, texts: Any, is_tokenized: bool, error: type, match: str
) -> None:
    bc = connect(server)
    with pytest.raises(error, match=match):
        bc.encode(texts, is_tokenized=is_tokenized)
    assert bc.request_id == 1  # only SHOW_CONFIG went out


def test_tokenized_input(server: FakeServer, connect: Any) -> None:
    tokens = [["hello", "world"], ["a", "|||", "b"]]
    np.testing.assert_array_equal(connect(server).encode(tokens, is_tokenized=True),
                                  expected(tokens))


def test_encode_inputs_sends_rows_verbatim_in_the_ext_payload(server: FakeServer,
                                                               connect: Any) -> None:
    rows = [" keep  edges ", "a ||| b", Dual("q", " d ||| e"), Ids((3, 4))]
    client = connect(server)
    with pytest.raises(ServerError):  # the fake server answers 1.10 payloads only
        client.encode_inputs(rows)
    assert server.requests[-1].payload == encode_inputs(rows)
    assert server.requests[-1].msg_len == len(rows)
    with pytest.raises(TypeError, match=r"inputs\[0\].first is an int"):
        client.encode_inputs([Dual(1, "x")])  # type: ignore[arg-type]


def test_output_fmt_list_and_tokens_in_order(make_server: Any, connect: Any) -> None:
    bc = connect(make_server(show_tokens=True, hold=2), output_fmt="list", chunk_size=3)
    texts = texts_of(10)
    vectors, tokens = bc.encode(texts, show_tokens=True)
    assert vectors == expected(texts).tolist()
    assert tokens == [fake_tokens(t) for t in texts]


def test_show_tokens_without_server_support_warns(server: FakeServer, connect: Any) -> None:
    with pytest.warns(UserWarning, match="show_tokens_to_client"):
        vectors = connect(server).encode(["a"], show_tokens=True)
    assert isinstance(vectors, np.ndarray)


def test_long_texts_warn_about_max_seq_len(make_server: Any, connect: Any) -> None:
    bc = connect(make_server(max_seq_len=3))
    with pytest.warns(UserWarning, match="max_seq_len=3"):
        bc.encode(["one two three four five"])


def test_server_dtype_is_kept(make_server: Any, connect: Any) -> None:
    texts = texts_of(9)
    vectors = connect(make_server(dtype="float16"), chunk_size=4).encode(texts)
    assert vectors.dtype == np.float16
    np.testing.assert_array_equal(vectors, expected(texts, "float16"))


def test_encode_async_yields_every_batch(make_server: Any, connect: Any) -> None:
    bc = connect(make_server(hold=2))
    batches = [texts_of(i + 1, f"batch {i}") for i in range(7)]
    responses = sorted(bc.encode_async(iter(batches), delay=0), key=lambda r: r.id)
    assert len(responses) == 7
    for response, batch in zip(responses, batches, strict=True):
        np.testing.assert_array_equal(response.embedding, expected(batch))


def test_encode_async_raises_the_senders_error(server: FakeServer, connect: Any) -> None:
    bc = connect(server)
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        list(bc.encode_async(iter([["fine"], [5]]), delay=0))


def test_concurrent_client_pool(server: FakeServer) -> None:
    with ConcurrentBertClient(
        max_concurrency=2, ip="127.0.0.1", port=server.port, port_out=server.port_out,
        timeout=5000,
    ) as pool:
        np.testing.assert_array_equal(pool.encode(["a", "bb"]), expected(["a", "bb"]))
        assert pool.server_config["server_version"] == PROTOCOL_VERSION
        assert pool.status["port"] == server.port
        borrowed = [pool.encode_async(iter([["x"]]), delay=0) for _ in range(2)]
        for generator in borrowed:
            next(generator)  # each holds a client until exhausted
        with pytest.raises(RuntimeError, match="max_concurrency"):
            pool.encode(["a"])
        for generator in borrowed:
            assert list(generator) == []
        assert pool.encode(["c"]).shape == (1, WIDTH)
        with pytest.raises(NotImplementedError):
            pool.fetch_all()


def test_assembler_pads_token_level_chunks_of_different_length() -> None:
    rows = RowAssembler(total=3)
    rows.put(0, 2, np.ones((2, 3, 2), dtype=np.float32), None)
    rows.put(2, 1, np.full((1, 5, 2), 2, dtype=np.float32), None)
    array, tokens = rows.result()
    assert array.shape == (3, 5, 2)
    assert tokens == []
    np.testing.assert_array_equal(array[:2, :3], 1)
    np.testing.assert_array_equal(array[:2, 3:], 0)
    np.testing.assert_array_equal(array[2], 2)


def test_assembler_refuses_a_wrong_row_count() -> None:
    with pytest.raises(ServerError, match="for 3 texts"):
        RowAssembler(total=3).put(0, 3, np.ones((2, 4)), None)


def test_assembler_joins_token_counts_in_text_order_whatever_the_arrival_order() -> None:
    rows = RowAssembler(total=3)
    rows.put(2, 1, np.ones((1, 4)), None, [9])
    rows.put(0, 2, np.ones((2, 4)), None, [3, 5])
    assert rows.token_counts() == [3, 5, 9]
    silent = RowAssembler(total=2)
    silent.put(0, 1, np.ones((1, 4)), None, [3])
    silent.put(1, 1, np.ones((1, 4)), None, None)  # a server that does not send them
    assert silent.token_counts() is None


def test_assembler_refuses_rows_of_another_width() -> None:
    rows = RowAssembler(total=2)
    rows.put(0, 1, np.ones((1, 4)), None)
    with pytest.raises(ServerError, match=r"rows of shape \[5\] after rows of shape \[4\]"):
        rows.put(1, 1, np.ones((1, 5)), None)


def test_importing_the_client_imports_no_server_code() -> None:
    code = (
        "import sys, bert_serving.client\n"
        "heavy = ('bert_serving.server', 'onnxruntime', 'tokenizers')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "[]"
