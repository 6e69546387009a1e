"""splade-tiny served with -head sparse through the whole server: ZeroMQ, workers, uvicorn.

`BertClient.encode_sparse` and `POST /embed_sparse` are compared with SPLADE's
formula on transformers (tests/splade_reference.py), same texts and -max_seq_len:
1e-4 per value over the whole vocabulary, and the same nonzero set except for
weights under SUPPORT_THRESHOLD in either (a logit within float error of 0 may fall
on either side of relu). The routes of the other kind refuse, naming the kind
loaded; a MiniLM server refuses /embed_sparse and encode_sparse the same way.

Only the nonzeros cross the wire to a client that asks (`encode_sparse`, the gateway):
checked on the raw frames, and equal to the dense rows the 1.10 client still gets
(bit for bit, in float32). Under -truncation chunk each term's weight is the max over
the text's windows, checked against the windows run through transformers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from reference import heldout_texts
from server_process import ServerProcess
from splade_reference import SpladeReference, densify, splade_tiny_dir

from bert_serving.client import BertClient, ConcurrentBertClient, ServerError
from bert_serving.proto import (
    EmbeddingReply,
    ErrorKind,
    ErrorReply,
    SparseReply,
    decode_reply,
    encode_request,
)

TOLERANCE = 1e-4
SUPPORT_THRESHOLD = 1e-4
VOCAB_SIZE = 30522
MAX_SEQ_LEN = 25
LONG_TEXT = " ".join(["sparse retrieval needs long documents too"] * 12)
CHUNK_LEN, CHUNK_OVERLAP = 16, 3
LEGACY_DENSE = """
import json, sys
from bert_serving.client import BertClient
bc = BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=60000)
rows = bc.encode(json.loads(sys.argv[3]))
at = rows.nonzero()
print(json.dumps({"dtype": str(rows.dtype), "shape": list(rows.shape),
                  "at": [a.tolist() for a in at], "values": rows[at].tolist()}))
"""


@pytest.fixture(scope="module")
def sparse_server(graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-model_dir", str(splade_tiny_dir()), "-head", "sparse",
            "-max_seq_len", str(MAX_SEQ_LEN), "-num_worker", "1"]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


@pytest.fixture(scope="module")
def embedding_server(minilm_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    with ServerProcess(["-model_dir", str(minilm_dir), "-num_worker", "1"], graph_cache,
                       http=True) as process:
        yield process


@pytest.fixture(scope="module")
def http(sparse_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sparse_server.http_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def client(sparse_server: ServerProcess) -> Iterator[BertClient]:
    with BertClient(port=sparse_server.port, port_out=sparse_server.port_out,
                    check_length=False) as bc:
        yield bc


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [*heldout_texts(), LONG_TEXT]


@pytest.fixture(scope="module")
def expected(texts: list[str]) -> np.ndarray:
    """What the ZeroMQ client gets: '|||' splits a text into a sentence pair (the protocol)."""
    return SpladeReference(splade_tiny_dir()).encode(texts, max_seq_len=MAX_SEQ_LEN)


@pytest.fixture(scope="module")
def expected_http(texts: list[str]) -> np.ndarray:
    """What the HTTP routes get: '|||' is text there, as TEI's clients mean it."""
    return SpladeReference(splade_tiny_dir()).encode(texts, max_seq_len=MAX_SEQ_LEN,
                                                     pairs=False)


def assert_matches(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)
    for row, (g, w) in enumerate(zip(got, want, strict=True)):
        missing = np.flatnonzero((w > SUPPORT_THRESHOLD) & (g == 0))
        extra = np.flatnonzero((g > SUPPORT_THRESHOLD) & (w == 0))
        assert not missing.size and not extra.size, (row, missing, extra)


def test_encode_sparse_matches_transformers(client: BertClient, texts: list[str],
                                            expected: np.ndarray) -> None:
    vectors = client.encode_sparse(texts)
    assert len(vectors) == len(texts)
    for vector in vectors:
        assert (np.diff(vector.indices) > 0).all() and (vector.values > 0).all()
    assert_matches(densify(vectors, VOCAB_SIZE), expected)


def test_encode_gives_the_same_weights_dense(client: BertClient, texts: list[str]) -> None:
    dense = client.encode(texts[:4])
    assert dense.shape == (4, VOCAB_SIZE) and client.model_head == "sparse"
    np.testing.assert_array_equal(dense, densify(client.encode_sparse(texts[:4]), VOCAB_SIZE))


def test_concurrent_client_encodes_sparse(sparse_server: ServerProcess, texts: list[str],
                                          expected: np.ndarray) -> None:
    with ConcurrentBertClient(max_concurrency=2, port=sparse_server.port,
                              port_out=sparse_server.port_out, check_length=False) as pool:
        assert_matches(densify(pool.encode_sparse(texts), VOCAB_SIZE), expected)


def test_embed_sparse_route_matches_transformers(http: httpx.Client, texts: list[str],
                                                 expected_http: np.ndarray) -> None:
    reply = http.post("/embed_sparse", json={"inputs": texts})
    assert reply.status_code == 200, reply.text
    rows = reply.json()
    assert len(rows) == len(texts)
    pairs = [([v["index"] for v in row], [v["value"] for v in row]) for row in rows]
    assert all(set(v) == {"index", "value"} and v["value"] > 0 for row in rows for v in row)
    assert_matches(densify(pairs, VOCAB_SIZE), expected_http)


def test_embed_sparse_takes_one_string(http: httpx.Client, texts: list[str],
                                       expected: np.ndarray) -> None:
    reply = http.post("/embed_sparse", json={"inputs": texts[0]})
    assert reply.status_code == 200, reply.text
    [row] = reply.json()
    got = densify([([v["index"] for v in row], [v["value"] for v in row])], VOCAB_SIZE)
    assert_matches(got, expected[:1])


def test_embed_sparse_truncates_on_the_left_when_asked(http: httpx.Client) -> None:
    """The word-piece path: the gateway cuts the text's start and sends its last pieces."""
    texts = ["cats and dogs play in the garden " * 3 + "rockets reach orbit around planets " * 3,
             "short one"]
    reply = http.post("/embed_sparse", json={"inputs": texts, "truncation_direction": "left"})
    assert reply.status_code == 200, reply.text
    pairs = [([v["index"] for v in row], [v["value"] for v in row]) for row in reply.json()]
    reference = SpladeReference(splade_tiny_dir())
    want = reference.encode(texts, max_seq_len=MAX_SEQ_LEN, pairs=False, side="left")
    got = densify(pairs, VOCAB_SIZE)
    assert_matches(got, want)
    right = reference.encode(texts[:1], max_seq_len=MAX_SEQ_LEN, pairs=False)
    assert np.abs(got[0] - right[0]).max() > 0.1  # the other end really was cut


def test_embed_sparse_truncate_false_refuses_a_long_text(http: httpx.Client) -> None:
    reply = http.post("/embed_sparse", json={"inputs": ["short", LONG_TEXT], "truncate": False})
    assert reply.status_code == 422
    assert reply.json()["error"].startswith("inputs[1]: has ")
    assert http.post("/embed_sparse", json={"inputs": []}).status_code == 400


def test_info_reports_a_splade_model(http: httpx.Client) -> None:
    assert http.get("/info").json()["model_type"] == {"embedding": {"pooling": "splade"}}


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/embed", {"inputs": "hi"}, 422),
    ("/", {"inputs": "hi"}, 422),
    ("/embed_all", {"inputs": "hi"}, 422),
    ("/v1/embeddings", {"input": "hi"}, 400),
    ("/encode", {"id": 1, "texts": ["hi"]}, 400),
])
def test_embedding_routes_refuse_a_sparse_model(http: httpx.Client, path: str, body: dict,
                                                status: int) -> None:
    reply = http.post(path, json=body)
    assert reply.status_code == status
    assert "this server serves a sparse (SPLADE) model" in reply.text
    assert "which answers /embed_sparse" in reply.text


def test_embedding_server_refuses_sparse_requests(embedding_server: ServerProcess) -> None:
    with httpx.Client(base_url=embedding_server.http_url, timeout=60) as http:
        reply = http.post("/embed_sparse", json={"inputs": "hi"})
        assert reply.status_code == 422
        assert "needs a sparse (SPLADE) model, but this server serves an embedding model" in (
            reply.json()["error"])
        assert http.post("/embed", json={"inputs": "hi"}).status_code == 200
    with BertClient(port=embedding_server.port, port_out=embedding_server.port_out) as bc:
        assert bc.model_head == "embedding"
        with pytest.raises(ServerError, match="this one serves an embedding model: use encode"):
            bc.encode_sparse(["hi"])
        assert bc.encode(["hi"]).shape == (1, 384)
    [reply] = embedding_server.exchange(
        [encode_request(b"asks-for-sparse", 1, ["hi"], sparse=True)])
    refused = decode_reply(reply)
    assert isinstance(refused, ErrorReply) and refused.error.kind is ErrorKind.BAD_REQUEST
    assert "this server's model is not a sparse one" in str(refused.error)


def test_only_the_nonzeros_cross_the_wire(sparse_server: ServerProcess,
                                          texts: list[str]) -> None:
    identity = b"sparse-wire-probe"
    compact, dense = sparse_server.exchange([
        encode_request(identity, 1, texts, sparse=True), encode_request(identity, 2, texts)])
    assert len(compact) == 6 and len(dense) == 4
    dense_bytes, compact_bytes = len(dense[2]), sum(map(len, compact[2:5]))
    assert dense_bytes == len(texts) * VOCAB_SIZE * 4
    sparse_reply, dense_reply = decode_reply(compact), decode_reply(dense)
    assert isinstance(sparse_reply, SparseReply) and isinstance(dense_reply, EmbeddingReply)
    nnz = sparse_reply.rows.nnz
    assert compact_bytes == 8 * (len(texts) + 1) + 8 * nnz < dense_bytes / 20
    np.testing.assert_array_equal(sparse_reply.rows.to_dense(), dense_reply.array)
    assert sparse_reply.token_counts == dense_reply.token_counts


def test_compact_replies_hold_the_reference_s_terms_exactly(
        client: BertClient, texts: list[str], expected: np.ndarray) -> None:
    """The same nonzero terms as transformers, exactly, and weights within 1e-5 (the float32
    sums of two runtimes: measured 6.3e-6; the smallest weight here is 5.8e-4, far from
    relu's edge)."""
    got = densify(client.encode_sparse(texts), VOCAB_SIZE)
    np.testing.assert_array_equal(got > 0, expected > 0)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_the_1_10_client_still_gets_dense_rows(legacy_python: Path,
                                               sparse_server: ServerProcess,
                                               client: BertClient, texts: list[str]) -> None:
    plain = [text for text in texts if "|||" not in text][:6]
    done = subprocess.run(
        [str(legacy_python), "-c", LEGACY_DENSE, str(sparse_server.port),
         str(sparse_server.port_out), json.dumps(plain)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    legacy = json.loads(done.stdout.strip().splitlines()[-1])
    assert legacy["dtype"] == "float32" and legacy["shape"] == [len(plain), VOCAB_SIZE]
    vectors = client.encode_sparse(plain)
    rows = np.concatenate([np.full(len(v.indices), i) for i, v in enumerate(vectors)])
    assert legacy["at"] == [rows.tolist(), np.concatenate([v.indices for v in vectors]).tolist()]
    np.testing.assert_array_equal(np.float32(legacy["values"]),
                                  np.concatenate([v.values for v in vectors]))


def test_embed_sparse_gives_the_dense_rows_nonzeros(http: httpx.Client,
                                                   client: BertClient) -> None:
    """/embed_sparse's JSON is what it was when it came from the dense rows, value for value."""
    plain = [text for text in heldout_texts() if "|||" not in text]
    reply = http.post("/embed_sparse", json={"inputs": plain})
    assert reply.status_code == 200, reply.text
    dense = client.encode(plain)
    want = [[{"index": int(i), "value": float(row[i])} for i in np.flatnonzero(row)]
            for row in dense]
    assert reply.json() == want


@pytest.fixture(scope="module")
def chunk_server(graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-model_dir", str(splade_tiny_dir()), "-head", "sparse", "-truncation", "chunk",
            "-max_seq_len", str(CHUNK_LEN), "-chunk_overlap", str(CHUNK_OVERLAP),
            "-num_worker", "1"]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


def test_chunked_texts_take_each_term_s_max_over_their_windows(
        chunk_server: ServerProcess) -> None:
    texts = [text for text in [*heldout_texts(), LONG_TEXT] if "|||" not in text]
    reference = SpladeReference(splade_tiny_dir())
    want = reference.encode_chunked(texts, max_seq_len=CHUNK_LEN, overlap=CHUNK_OVERLAP)
    with BertClient(port=chunk_server.port, port_out=chunk_server.port_out) as bc:
        vectors, counts = bc.encode_sparse_inputs(texts)
        dense = bc.encode(texts)
    got = densify(vectors, VOCAB_SIZE)
    assert_matches(got, want)
    np.testing.assert_array_equal(got, dense)  # the 1.10 path folds the windows alike
    assert counts[-1] > 3 * CHUNK_LEN  # the long text really ran as several windows
    truncated = reference.encode(texts[-1:], max_seq_len=CHUNK_LEN)
    assert (want[-1] > truncated[0] + 0.1).any()  # later windows add terms or weight
    with httpx.Client(base_url=chunk_server.http_url, timeout=60) as http:
        reply = http.post("/embed_sparse", json={"inputs": texts})
    assert reply.status_code == 200, reply.text
    pairs = [([v["index"] for v in row], [v["value"] for v in row]) for row in reply.json()]
    np.testing.assert_array_equal(densify(pairs, VOCAB_SIZE), got)


def test_a_chunking_server_s_refusal_gives_advice_embed_sparse_can_follow(
        chunk_server: ServerProcess) -> None:
    """/embed_sparse has no `truncation` field: its `truncate: false` refusal on a chunking
    server says to leave `truncate` out, and the same request without it is chunked."""
    with httpx.Client(base_url=chunk_server.http_url, timeout=60) as http:
        refused = http.post("/embed_sparse", json={"inputs": [LONG_TEXT], "truncate": False})
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]
        assert message.startswith("inputs[0]: has ") and "truncation" not in message, message
        assert "send truncate: true, or send no truncate, or " in message, message
        assert http.post("/embed_sparse", json={"inputs": [LONG_TEXT]}).status_code == 200
