"""Quantized outputs through the real server: /v1/embeddings (OpenAI's SDK), TEI's /embed, and
`BertClient.encode(..., precision=...)`, which the server's sink quantizes.

The MiniLM on a plain start with -http_port: the routes (and a client's
`native=True`) get its own normalized embedding, so int8/uint8 use the
unit-vector ranges; the 1.10 protocol's vectors (layer -2's mean) are not unit
length, so without -embedding_ranges they take binary/ubinary only. A second
server (-pooling_strategy MODEL -embedding_ranges FILE) checks the file reaches
the client's int8. Each quantized reply must equal `quantize()`
(model/quantization.py, itself tested equal to sentence-transformers'
`quantize_embeddings`) applied to the same path's float reply, exactly: the same
floats under the same rule. Shapes and dtypes are checked: int8/uint8 one value per
dimension, binary/ubinary 384 / 8 = 48 packed values.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_process import ServerProcess, port_flags

from bert_serving.client import BertClient, ServerError
from bert_serving.server.model.quantization import quantize, unit_vector_ranges

TEXTS = ["The cat sat on the mat.", "Stock markets fell sharply on Friday.",
         "How do vaccines train the immune system?", "ok"]
DIM = 384
QUANTIZED = {"int8": (np.int8, DIM), "uint8": (np.uint8, DIM), "binary": (np.int8, DIM // 8),
             "ubinary": (np.uint8, DIM // 8)}


@pytest.fixture(scope="module")
def server(minilm_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    with ServerProcess(["-model_dir", str(minilm_dir), "-max_seq_len", "64"], graph_cache,
                       http=True) as process:
        yield process


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, timeout=60) as client:
        yield client


def expected(floats: np.ndarray, dtype: str) -> np.ndarray:
    return quantize(floats, dtype, unit_vector_ranges(floats.shape[-1]))  # type: ignore[arg-type]


def check_form(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    numpy_dtype, width = QUANTIZED[dtype]
    assert got.shape == (len(TEXTS), width), dtype
    assert (got >= np.iinfo(numpy_dtype).min).all() and (got <= np.iinfo(numpy_dtype).max).all()
    np.testing.assert_array_equal(got.astype(numpy_dtype), want, err_msg=dtype)
    assert want.dtype == numpy_dtype


@pytest.mark.parametrize("dtype", list(QUANTIZED))
def test_openai_output_dtype_as_numbers_and_packed_base64(server: ServerProcess,
                                                          dtype: str) -> None:
    import openai

    client = openai.OpenAI(api_key="unused", base_url=f"{server.http_url}/v1")
    floats = np.asarray([row.embedding for row in client.embeddings.create(
        model="m", input=TEXTS, encoding_format="float").data], dtype=np.float32)
    want = expected(floats, dtype)
    numbers = client.embeddings.create(model="m", input=TEXTS, encoding_format="float",
                                       extra_body={"output_dtype": dtype})
    got = np.asarray([row.embedding for row in numbers.data])
    check_form(got, want, dtype)
    packed = client.embeddings.create(model="m", input=TEXTS, encoding_format="base64",
                                      extra_body={"output_dtype": dtype})
    rows = [np.frombuffer(base64.b64decode(row.embedding), dtype=QUANTIZED[dtype][0])  # type: ignore[arg-type]
            for row in packed.data]
    check_form(np.stack(rows), want, dtype)


def test_openai_dimensions_then_int8_uses_the_cut_vectors(http: httpx.Client) -> None:
    body = {"input": TEXTS, "dimensions": 128}
    floats = np.asarray([row["embedding"] for row in
                         http.post("/v1/embeddings", json=body).json()["data"]], dtype=np.float32)
    reply = http.post("/v1/embeddings", json={**body, "output_dtype": "int8"})
    got = np.asarray([row["embedding"] for row in reply.json()["data"]])
    np.testing.assert_array_equal(got, expected(floats, "int8"))
    assert got.shape == (len(TEXTS), 128)


@pytest.mark.parametrize("dtype", list(QUANTIZED))
def test_tei_embed_output_dtype(http: httpx.Client, dtype: str) -> None:
    floats = np.asarray(http.post("/embed", json={"inputs": TEXTS}).json(), dtype=np.float32)
    reply = http.post("/embed", json={"inputs": TEXTS, "output_dtype": dtype})
    assert reply.status_code == 200, reply.text
    assert all(type(value) is int for value in reply.json()[0])  # JSON integers, not 3.0
    check_form(np.asarray(reply.json()), expected(floats, dtype), dtype)


def test_tei_embed_unnormalized_cut_has_no_int8_range(http: httpx.Client) -> None:
    # A cut of a unit vector, not renormalized, is not unit length: no default range.
    body = {"inputs": TEXTS, "dimensions": 64, "normalize": False}
    refused = http.post("/embed", json={**body, "output_dtype": "uint8"})
    assert refused.status_code == 422
    assert "uint8 needs each dimension's range" in refused.json()["error"]
    binary = http.post("/embed", json={**body, "output_dtype": "binary"})  # no range needed
    floats = np.asarray(http.post("/embed", json=body).json(), dtype=np.float32)
    np.testing.assert_array_equal(binary.json(), expected(floats, "binary"))


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("/v1/embeddings", {"input": "a", "output_dtype": "int4"}, 400, "output_dtype"),
    ("/v1/embeddings", {"input": "a", "output_dtype": "float16"}, 400, "output_dtype"),
    ("/embed", {"inputs": "a", "output_dtype": "INT8"}, 422, "output_dtype"),
    ("/embed", {"inputs": "a", "output_dtype": 8}, 422, "output_dtype"),
    ("/embed_all", {"inputs": "a", "output_dtype": "int8"}, 422,
     "int8 quantizes one vector per text"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD)
def test_bad_output_dtype_is_named(http: httpx.Client, path: str, body: dict[str, Any],
                                   status: int, words: str) -> None:
    reply = http.post(path, json=body)
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]
    text = message["message"] if isinstance(message, dict) else message
    assert words in text, text


# -- BertClient: quantized by the server's sink ----------------------------------------------


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[BertClient]:
    with BertClient(port=server.port, port_out=server.port_out) as bert_client:
        yield bert_client


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_client_encode_precision_on_the_10_vectors(client: BertClient, precision: str) -> None:
    floats = client.encode(TEXTS)
    got = client.encode(TEXTS, precision=precision)
    np.testing.assert_array_equal(got, quantize(floats, precision))  # type: ignore[arg-type]
    assert got.dtype == QUANTIZED[precision][0] and got.shape == (len(TEXTS), DIM // 8)


@pytest.mark.parametrize("precision", list(QUANTIZED))
def test_client_native_precision_equals_the_http_routes(client: BertClient, http: httpx.Client,
                                                        precision: str) -> None:
    floats, counts = client.encode_inputs(TEXTS, native=True)
    got, quantized_counts = client.encode_inputs(TEXTS, native=True, precision=precision)
    assert quantized_counts == counts
    check_form(got, expected(floats, precision), precision)
    tei = http.post("/embed", json={"inputs": TEXTS, "output_dtype": precision}).json()
    np.testing.assert_array_equal(got, np.asarray(tei))  # one rule, one place


def test_client_int8_without_a_range_is_refused_by_name(client: BertClient) -> None:
    with pytest.raises(ServerError, match="int8 needs each dimension's range.*-embedding_ranges"):
        client.encode(TEXTS, precision="int8")
    with pytest.raises(ValueError, match="precision must be float32 or one of int8"):
        client.encode(TEXTS, precision="int4")
    assert client.encode(TEXTS).dtype == np.float32  # the connection still serves


def test_client_precision_without_blocking(client: BertClient) -> None:
    client.encode(TEXTS, blocking=False, precision="ubinary")
    got = client.fetch_all(concat=True)
    np.testing.assert_array_equal(got, quantize(client.encode(TEXTS), "ubinary"))


@pytest.fixture(scope="module")
def ranges_file(client: BertClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    floats, _ = client.encode_inputs(TEXTS, native=True)
    path = tmp_path_factory.mktemp("ranges") / "ranges.npy"
    np.save(path, np.stack([floats.min(0), floats.max(0)]))
    return path


def test_embedding_ranges_reach_the_clients_int8(minilm_dir: Path, graph_cache: Path,
                                                 ranges_file: Path) -> None:
    args = ["-model_dir", str(minilm_dir), "-max_seq_len", "64", "-pooling_strategy", "MODEL",
            "-embedding_ranges", str(ranges_file)]
    with ServerProcess(args, graph_cache, http=True) as calibrated, \
            BertClient(port=calibrated.port, port_out=calibrated.port_out) as bert_client:
        floats = bert_client.encode(TEXTS)
        got = bert_client.encode(TEXTS, precision="uint8")
        # A cut the client does not renormalize leaves the file's full-width ranges behind:
        # refused by name (it was a 500 once), where the full width is served.
        body = {"inputs": TEXTS[:2], "output_dtype": "int8", "normalize": False}
        cut = httpx.post(calibrated.http_url + "/embed", json={**body, "dimensions": 64})
        full = httpx.post(calibrated.http_url + "/embed", json=body, timeout=60)
    np.testing.assert_array_equal(got, quantize(floats, "uint8", np.load(ranges_file)))
    assert not np.array_equal(got, quantize(floats, "uint8", unit_vector_ranges(DIM)))
    assert cut.status_code == 422 and "cut to 64 dimensions without renormalizing" in cut.text, \
        cut.text
    assert full.status_code == 200, full.text


def test_embedding_ranges_of_another_width_stop_the_start(minilm_dir: Path, graph_cache: Path,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "ranges.npy"
    np.save(path, np.stack([np.full(100, -0.2), np.full(100, 0.2)]).astype(np.float32))
    done = subprocess.run(
        [sys.executable, "-c", "from bert_serving.server.cli import start; "
         "import sys; sys.exit(start())", "-cpu", "-model_dir", str(minilm_dir),
         "-graph_tmp_dir", str(graph_cache), "-max_seq_len", "64", *port_flags(),
         "-embedding_ranges", str(path)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines()
              if line.startswith("bert-serving-start:")]
    assert len(errors) == 1, done.stderr
    assert "-embedding_ranges holds 100 dimensions; this server's vectors have 384" in errors[0]
