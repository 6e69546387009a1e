"""The HTTP gateway end to end: the real server with -http_port, real HTTP on 127.0.0.1, the MiniLM.

Two servers for the module: `server` (open, room for 128 requests in flight)
and `guarded` (an API key and small limits: 5 texts, 4 KiB bodies, 1 request
in flight). Vectors are checked against our BertClient on the same server,
token counts against transformers' tokenizer, and the OpenAPI schema is fuzzed
for 5xx. The last section checks the error map for the server-side failures a
healthy server cannot be made to show on demand (timeout, busy).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from openapi_fuzz import post_fuzzed_bodies
from reference import TransformersReference, heldout_texts
from server_process import ServerProcess, port_flags, wait_until

from bert_serving.client import BertClient, BertClientTimeout, ServerError
from bert_serving.proto import ErrorKind
from bert_serving.server.http.errors import SERVER_ERROR_STATUSES, problem_from, render

TOLERANCE = 1e-5
API_KEY = "test-key-Ω"
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa 你 好 世 界".split()
ORIGINAL_ERROR_KEYS = {"description", "type", "status"}
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}
GATEWAY_ARGS = ["-num_worker", "1", "-http_max_connect", "128", "-max_batch_size", "64"]


def make_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 12))) for _ in range(count)]


@pytest.fixture(scope="module")
def server(gateway: ServerProcess) -> ServerProcess:
    """The open server (conftest's `gateway`, started with GATEWAY_ARGS; `http` is its client)."""
    return gateway


@pytest.fixture(scope="module")
def guarded(graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-api_key", API_KEY, "-max_request_texts", "5", "-http_max_body_bytes", "4096",
            "-http_max_connect", "1"]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


@pytest.fixture(scope="module")
def keyed(guarded: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}".encode()}
    with httpx.Client(base_url=guarded.http_url, timeout=60, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def bert_client(server: ServerProcess) -> Iterator[BertClient]:
    with BertClient(port=server.port, port_out=server.port_out, check_length=False) as client:
        yield client


def embeddings(reply: httpx.Response) -> np.ndarray:
    assert reply.status_code == 200, reply.text
    items = reply.json()["data"]
    assert [item["index"] for item in items] == list(range(len(items)))
    rows = [item["embedding"] for item in items]
    if isinstance(rows[0], str):
        return np.stack([np.frombuffer(base64.b64decode(row), dtype="<f4") for row in rows])
    return np.asarray(rows, dtype=np.float32)


# -- vectors and tokens ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentence_transformer(minilm_dir: Path) -> Any:
    """The model's own embedding, cut where this server cuts (-max_seq_len 25)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    model.max_seq_length = 25
    return model


def own_embedding(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, convert_to_numpy=True), dtype=np.float32)


def test_encode_keeps_the_1_10_pooling_and_v1_gives_the_models_own(
        http: httpx.Client, bert_client: BertClient, sentence_transformer: Any,
        reference: TransformersReference) -> None:
    """A plain start: /encode and the 1.10 client get layer -2's masked mean (bert-as-service),
    OpenAI's route the MiniLM's own embedding (last layer mean, normalized), from one graph."""
    texts = heldout_texts()
    want = bert_client.encode(texts)
    np.testing.assert_allclose(want, reference.encode(texts, max_seq_len=25), atol=TOLERANCE,
                               rtol=0)
    reply = http.post("/encode", json={"id": {"any": ["json"]}, "texts": texts})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["id"] == {"any": ["json"]} and body["status"] == 200
    np.testing.assert_allclose(np.asarray(body["result"]), want, atol=TOLERANCE, rtol=0)
    # OpenAI's clients mean 'a ||| b' as text: sentence-transformers reads it so too.
    want = own_embedding(sentence_transformer, texts)
    for encoding_format in ("float", "base64"):
        got = embeddings(http.post("/v1/embeddings", json={
            "input": texts, "model": "anything", "encoding_format": encoding_format}))
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_tokenized_input_and_single_string(http: httpx.Client, bert_client: BertClient) -> None:
    want = bert_client.encode([["hello", "world"], ["good", "day"]], is_tokenized=True)
    reply = http.post("/encode", json={"id": 7, "texts": [["hello", "world"], ["good", "day"]],
                                       "is_tokenized": True})
    assert reply.status_code == 200, reply.text
    np.testing.assert_allclose(np.asarray(reply.json()["result"]), want, atol=TOLERANCE, rtol=0)
    one = embeddings(http.post("/v1/embeddings", json={"input": "hello world"}))
    np.testing.assert_allclose(one, bert_client.encode_inputs(["hello world"], native=True)[0],
                               atol=TOLERANCE, rtol=0)


def test_usage_counts_the_tokens_the_model_read(http: httpx.Client,
                                                reference: TransformersReference) -> None:
    # The server runs without -show_tokens_to_client: counts come from its own tokenizer.
    # CJK, one text truncated at -max_seq_len 25 (no 'a ||| b': OpenAI's input is plain text)
    texts = [text for text in heldout_texts() if "|||" not in text]
    reply = http.post("/v1/embeddings", json={"input": texts, "model": "my-model"})
    assert reply.status_code == 200, reply.text
    want = int(reference.features(texts, 25)["attention_mask"].sum())
    assert reply.json()["usage"] == {"prompt_tokens": want, "total_tokens": want}
    assert reply.json()["model"] == "my-model"
    unnamed = http.post("/v1/embeddings", json={"input": "hello world"}).json()
    assert unnamed["model"] == "all-MiniLM-L6-v2"
    assert unnamed["usage"]["prompt_tokens"] == 4  # [CLS] hello world [SEP]


# -- bad bodies ---------------------------------------------------------------------------------

# (path, body: JSON value or raw bytes, status, field named, words in the message)
BAD_BODIES: list[tuple[str, Any, int, str, str]] = [
    ("/encode", {"texts": "hello"}, 422, "texts", "must be a list of strings"),
    ("/encode", {"texts": []}, 422, "texts", "at least 1 item"),
    ("/encode", {"id": 1}, 422, "texts", "Field required"),
    ("/encode", {"texts": ["ok", 3]}, 422, "texts[1]", "valid string, got int 3"),
    ("/encode", {"texts": [["ok"], "flat"]}, 422, "texts[1]", "valid list"),
    ("/encode", {"texts": [["ok", 5]]}, 422, "texts[0][1]", "valid string"),
    ("/encode", {"texts": [[]], "is_tokenized": True}, 422, "texts[0]", "at least 1 item"),
    ("/encode", {"texts": ["  "]}, 422, "texts[0]", "non-blank"),
    ("/encode", b'{"texts": ["\\ud800"]}', 422, "texts[0]", "lone surrogate U+D800"),
    ("/encode", {"texts": ["a"], "is_tokenized": "yes"}, 422, "is_tokenized", "valid boolean"),
    ("/encode", {"texts": ["a"], "is_tokenized": True}, 422, "is_tokenized", "holds strings"),
    ("/encode", [1, 2], 422, "body", "valid dictionary"),
    ("/encode", b"{not json", 400, "body", "not valid JSON"),
    ("/encode", b"", 422, "body", "Field required"),
    ("/v1/embeddings", {"input": 3}, 400, "input", "string or a list of strings"),
    ("/v1/embeddings", {"input": []}, 400, "input", "at least 1 item"),
    ("/v1/embeddings", {"input": [[1, 2]]}, 400, "input[0]", "valid string"),
    ("/v1/embeddings", {"input": ""}, 400, "input", "non-blank"),
    ("/v1/embeddings", {"model": "m"}, 400, "input", "Field required"),
    ("/v1/embeddings", {"input": "a", "encoding_format": "hex"}, 400, "encoding_format",
     "'float' or 'base64'"),
    ("/v1/embeddings", {"input": "a", "dimensions": 385}, 400, "dimensions", "384 dimensions"),
    ("/v1/embeddings", {"input": "a", "dimensions": 0}, 400, "dimensions", "between 1 and"),
    ("/v1/embeddings", {"input": "a", "model": 5}, 400, "model", "valid string"),
    ("/v1/embeddings", b"input=hello", 400, "body", "not valid JSON"),
    ("/v1/embeddings", {"input": ["ok", "word " * 40], "truncation": "error"}, 400, "input",
     "input[1]: has 42 tokens"),
]


@pytest.mark.parametrize(("path", "body", "status", "field", "words"), BAD_BODIES)
def test_bad_body_gets_its_4xx_naming_the_field(http: httpx.Client, path: str, body: Any,
                                                status: int, field: str, words: str) -> None:
    sent = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = http.post(path, content=sent, headers={"Content-Type": "application/json"})
    assert reply.status_code == status, reply.text
    if path.startswith("/v1/"):
        error = reply.json()["error"]
        assert set(error) == OPENAI_ERROR_KEYS and error["type"] == "invalid_request_error"
        assert error["param"] == field and words in error["message"], error
    else:
        error = reply.json()
        assert set(error) == ORIGINAL_ERROR_KEYS and error["status"] == status
        assert error["description"].startswith(field) or field == "body", error
        assert words in error["description"], error


def test_form_content_type_is_still_read_as_json(http: httpx.Client) -> None:
    # curl -d sends application/x-www-form-urlencoded; the original gateway took it.
    reply = http.post("/encode", content=b'{"texts": ["hello"]}',
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["result"]) == 1


def test_unknown_route_and_wrong_method(http: httpx.Client) -> None:
    assert http.get("/nope").json() == {"description": "Not Found", "type": "NotFound",
                                        "status": 404}
    assert http.get("/encode").status_code == 405
    assert http.get("/v1/nope").json()["error"]["code"] == "not_found"


# -- limits and the API key (the guarded server) ------------------------------------------------


def test_too_many_texts_is_413_with_the_limit(keyed: httpx.Client) -> None:
    reply = keyed.post("/encode", json={"texts": make_texts(1, 6)})
    assert reply.status_code == 413
    assert reply.json()["type"] == "TooManyTexts" and "limit of 5" in reply.json()["description"]
    reply = keyed.post("/v1/embeddings", json={"input": make_texts(1, 6)})
    assert reply.status_code == 413 and reply.json()["error"]["param"] == "texts"
    assert keyed.post("/encode", json={"texts": make_texts(1, 5)}).status_code == 200


def test_body_over_the_limit_is_413(keyed: httpx.Client) -> None:
    big = {"texts": ["x" * 5000]}
    reply = keyed.post("/encode", json=big)
    assert reply.status_code == 413 and "4096 bytes" in reply.json()["description"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"texts": ["'
        yield b"y" * 5000
        yield b'"]}'

    reply = keyed.post("/v1/embeddings", content=chunked(),
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "body_too_large"


def test_api_key_is_required_except_for_probes(guarded: ServerProcess,
                                               keyed: httpx.Client) -> None:
    before = scrape(keyed)
    with httpx.Client(base_url=guarded.http_url, timeout=30) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY.encode()}):
            reply = anonymous.post("/encode", json={"texts": ["hi"]}, headers=headers)
            assert reply.status_code == 401 and reply.json()["type"] == "Unauthorized"
            assert reply.headers["WWW-Authenticate"] == "Bearer"
        reply = anonymous.post("/v1/embeddings", json={"input": "hi"})
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"
        for path in ("/metrics", "/docs", "/status/server", "/nope"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.get("/health").json() == {"status": "ok"}
        assert anonymous.get("/ready").json() == {"status": "ready"}  # probes hold no key
    # refused before routing, still counted under the route
    refused = 'bert_serving_http_errors_total{route="/encode",kind="Unauthorized"}'
    assert scrape(keyed)[refused] - before.get(refused, 0) == 3


def test_cors_preflight_needs_no_key_and_errors_carry_cors(guarded: ServerProcess) -> None:
    origin = {"Origin": "https://app.example"}
    with httpx.Client(base_url=guarded.http_url, timeout=30) as browser:
        preflight = browser.options("/v1/embeddings", headers={
            **origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        refused = browser.post("/v1/embeddings", json={"input": "hi"}, headers=origin)
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "*"


def test_requests_past_http_max_connect_get_429(keyed: httpx.Client) -> None:
    """-http_max_connect 1: a request whose body is still arriving holds the only slot."""
    release = threading.Event()
    slow_status: list[int] = []

    def slow_body() -> Iterator[bytes]:
        yield b'{"texts": ["held'
        release.wait(30)
        yield b' open"]}'

    def send_slowly() -> None:
        reply = keyed.post("/encode", content=slow_body(),
                           headers={"Content-Type": "application/json"})
        slow_status.append(reply.status_code)

    holder = threading.Thread(target=send_slowly)
    holder.start()
    try:
        _wait_for_in_flight(keyed, 2)  # the slow request, and the scrape asking
        reply = keyed.post("/encode", json={"texts": ["hi"]})
        assert reply.status_code == 429 and reply.headers["Retry-After"] == "1"
        assert reply.json()["type"] == "TooManyRequests"
        assert keyed.get("/health").status_code == 200  # probes are not limited
    finally:
        release.set()
        holder.join(30)
    assert slow_status == [200]


def _wait_for_in_flight(client: httpx.Client, count: int) -> None:
    wait_until(lambda: scrape(client)["bert_serving_http_in_flight"] >= count, 20,
               "the slow request to arrive")


# -- concurrency -------------------------------------------------------------------------------


def test_100_concurrent_requests_get_their_own_rows(server: ServerProcess,
                                                    bert_client: BertClient) -> None:
    requests = [make_texts(seed, 1 + seed % 8) for seed in range(100)]
    everything = [text for texts in requests for text in texts]
    want = bert_client.encode(everything)  # what /encode gets
    want_native, _ = bert_client.encode_inputs(everything, native=True)  # /v1/embeddings
    batches_before = bert_client.server_status["statistic"]["num_batches"]
    replies = asyncio.run(_send_all(server.http_url, requests))
    start = 0
    for index, (texts, got) in enumerate(zip(requests, replies, strict=True)):
        rows = (want_native if index % 2 else want)[start : start + len(texts)]
        np.testing.assert_allclose(got, rows, atol=1e-4, rtol=0, err_msg=f"request {index}")
        start += len(texts)
    batches = bert_client.server_status["statistic"]["num_batches"] - batches_before
    assert batches < len(requests), "HTTP requests did not reach the server together"


async def _send_all(url: str, requests: list[list[str]]) -> list[np.ndarray]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        return await asyncio.gather(*(_send_one(client, i, t) for i, t in enumerate(requests)))


async def _send_one(client: httpx.AsyncClient, index: int, texts: list[str]) -> np.ndarray:
    if index % 2:
        return embeddings(await client.post("/v1/embeddings", json={"input": texts}))
    reply = await client.post("/encode", json={"id": index, "texts": texts})
    assert reply.status_code == 200 and reply.json()["id"] == index, reply.text
    return np.asarray(reply.json()["result"], dtype=np.float32)


# -- metrics, probes, status, docs ----------------------------------------------------------------


def scrape(http: httpx.Client) -> dict[str, float]:
    reply = http.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in reply.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_what_was_done(http: httpx.Client,
                                     reference: TransformersReference) -> None:
    texts = ["hello world", "a longer text about the weather today", "你好"]
    tokens = int(reference.features(texts, 25)["attention_mask"].sum())
    before = scrape(http)
    for _ in range(2):
        assert http.post("/encode", json={"texts": texts}).status_code == 200
    assert http.post("/encode", json={"texts": []}).status_code == 422
    assert http.post("/v1/embeddings", json={"input": texts}).status_code == 200
    after = scrape(http)

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    gateway = "bert_serving_http_"
    assert moved(f'{gateway}requests_total{{route="/encode",method="POST",status="200"}}') == 2
    assert moved(f'{gateway}requests_total{{route="/encode",method="POST",status="422"}}') == 1
    assert moved(f'{gateway}requests_total{{route="/v1/embeddings",method="POST",'
                 'status="200"}') == 1
    assert moved(f'{gateway}errors_total{{route="/encode",kind="ValidationError"}}') == 1
    assert moved(f'{gateway}request_duration_seconds_count{{route="/encode"}}') == 3
    assert moved(f"{gateway}texts_total") == 9 and moved(f"{gateway}tokens_total") == 3 * tokens
    assert moved("bert_serving_texts_total") == 9
    assert moved("bert_serving_tokens_total") == 3 * tokens
    assert moved("bert_serving_data_requests_total") == 3
    assert after["bert_serving_up"] == 1 and after["bert_serving_worker_restarts_total"] == 0
    assert after["bert_serving_queue_texts"] == 0
    assert any(name.startswith("bert_serving_batches_by_size_total{") for name in after)


def test_probes_status_and_docs(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").json() == {"status": "ready"}
    status = http.get("/status/server").json()
    assert status["server_version"] == "1.10.0" and "num_data_request" in status["statistic"]
    client = http.get("/status/client").json()
    assert isinstance(client["identity"], str) and client["num_pending_request"] == 0
    assert "swagger" in http.get("/docs").text.lower()
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    for name in ("EncodeRequest", "EmbeddingsRequest", "EncodeReply", "EmbeddingsReply"):
        assert schemas[name]["examples"], name
    info = http.get("/info").json()
    assert info["native_embedding"] is True
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["pooling_by_route"] == {"tei_and_openai": "mean, normalized",
                                        "zeromq_and_encode": "REDUCE_MEAN of layer -2"}


def test_the_native_view_is_asked_for_by_name_and_refused_where_absent(
        bert_client: BertClient, graph_cache: Path) -> None:
    native, _ = bert_client.encode_inputs(["hello world"], native=True)
    served, _ = bert_client.encode_inputs(["hello world"])
    assert native.shape == served.shape == (1, 384)
    assert abs(np.linalg.norm(native) - 1) < 1e-5 and abs(np.linalg.norm(served) - 1) > 1e-3
    with ServerProcess(["-num_worker", "1"], graph_cache) as plain, BertClient(
            port=plain.port, port_out=plain.port_out) as client:
        with pytest.raises(ServerError, match="computes no second, native embedding"):
            client.encode_inputs(["hello world"], native=True)
        np.testing.assert_allclose(client.encode_inputs(["hello world"])[0], served,
                                   atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_outside(http: httpx.Client, page: str) -> None:
    """Swagger UI and ReDoc come from the server itself, so /docs works on an offline host."""
    html = http.get(page).text
    assets = re.findall(r'(?:src|href|url)\s*[=:]\s*[\'"]([^\'"]+)[\'"]', html)
    assert any(asset.endswith(".js") for asset in assets), html
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), asset
        fetched = http.get(asset)
        assert fetched.status_code == 200 and fetched.content, asset


def test_ready_is_503_until_workers_are_up_and_sigterm_answers_in_flight(
        graph_cache: Path) -> None:
    target = ServerProcess([], graph_cache, http=True)
    starting = threading.Thread(target=target.__enter__)
    starting.start()
    seen = []
    try:
        while not target.ready.is_set() and starting.is_alive():
            with contextlib.suppress(httpx.TransportError):
                seen.append(httpx.get(f"{target.http_url}/ready", timeout=5).status_code)
            time.sleep(0.02)  # the probe's pace: sampling /ready while it starts is the test
        starting.join()
        assert target.ready.is_set(), target.output
        assert 503 in seen, f"the gateway answered {seen} while the worker loaded"
        assert httpx.get(f"{target.http_url}/ready").status_code == 200
        assert _status_of_request_in_flight_at_sigterm(target) == 200
    finally:
        assert target.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{target.http_url}/health")


def _status_of_request_in_flight_at_sigterm(target: ServerProcess) -> int:
    statuses: list[int] = []

    def send() -> None:
        reply = httpx.post(f"{target.http_url}/encode", json={"texts": make_texts(3, 500)},
                           timeout=120)
        statuses.append(reply.status_code)

    sender = threading.Thread(target=send)
    sender.start()
    with httpx.Client(base_url=target.http_url) as probe:
        _wait_for_in_flight(probe, 2)
    target.process.send_signal(signal.SIGTERM)
    sender.join(120)
    assert target.process.wait(60) == 0
    return statuses[0]


def test_http_port_in_use_is_a_one_line_start_error(graph_cache: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", "from bert_serving.server.cli import start; import sys; "
             "sys.exit(start())", "-cpu", "-bind_ip", "127.0.0.1", *port_flags(),
             "-graph_tmp_dir", str(graph_cache),
             "-http_port", str(port)],
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 1
    assert f"bert-serving-start: cannot bind HTTP 127.0.0.1:{port}" in done.stderr


# -- fuzzing the OpenAPI schema ------------------------------------------------------------------


def test_fuzzed_bodies_never_get_a_5xx(http: httpx.Client) -> None:
    """On this embedding model; /rerank, /predict and Cohere's rerank refuse it, Cohere's
    embed answers one row per text in each form asked."""

    def check_reply(path: str, body: Any, reply: httpx.Response) -> None:
        if reply.status_code == 200 and path == "/encode":
            assert len(reply.json()["result"]) == len(body["texts"])
        if reply.status_code == 200 and path == "/v1/embeddings":
            count = 1 if isinstance(body["input"], str) else len(body["input"])
            assert len(reply.json()["data"]) == count
        if reply.status_code == 200 and path in ("/v1/embed", "/v2/embed"):
            for rows in _cohere_forms(reply.json()["embeddings"]):
                assert len(rows) == len(body["texts"])

    post_fuzzed_bodies(http, max_examples=150, check_reply=check_reply)


def _cohere_forms(embeddings: Any) -> list[Any]:
    """Cohere's v1 floats are the rows themselves; by type, each form is a list of rows."""
    return [embeddings] if isinstance(embeddings, list) else list(embeddings.values())


# -- the error map for failures a healthy server will not show on demand -------------------------


@pytest.mark.parametrize(("error", "status", "kind"), [
    (BertClientTimeout("no answer"), 504, "Timeout"),
    (ServerError("server busy: 10 texts are waiting", "ServerBusy"), 429, "ServerBusy"),
    (ServerError("payload is an empty list", "BadRequest"), 422, "BadRequest"),
    (ServerError("shape mismatch", "BadReply"), 502, "BadReply"),
    (RuntimeError("a bug"), 500, "InternalError"),
])
def test_error_map(error: Exception, status: int, kind: str) -> None:
    problem = problem_from(error)
    assert (problem.status, problem.kind) == (status, kind)
    original = render(problem, {"type": "http", "path": "/encode"})
    assert original.status_code == status
    assert json.loads(original.body)["type"] == kind
    openai = render(problem, {"type": "http", "path": "/v1/embeddings"})
    assert openai.status_code == (400 if kind == "BadRequest" else status)
    assert json.loads(openai.body)["error"]["code"] == "".join(
        f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
    if status == 429:
        assert original.headers["Retry-After"] == "1"



@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_server_error_kind_has_its_own_status(kind: ErrorKind) -> None:
    """No kind falls through to another's status: each renders as itself, in every family."""
    assert kind in SERVER_ERROR_STATUSES
    problem = problem_from(ServerError("it went wrong", kind))
    assert (problem.status, problem.kind) == (SERVER_ERROR_STATUSES[kind], kind.value)
    # Refused texts and a full queue are the sender's to fix (4xx); the rest is the server's.
    sender_fixes_it = kind in (ErrorKind.BAD_REQUEST, ErrorKind.SERVER_BUSY)
    assert (problem.status < 500) == sender_fixes_it
    for path in ("/encode", "/v1/embeddings", "/embed"):
        response = render(problem, {"type": "http", "path": path})
        assert response.status_code >= 400
        if problem.status >= 500:
            assert response.status_code >= 424  # TEI's backend error, or a 5xx
