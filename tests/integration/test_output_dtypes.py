"""Quantized outputs on /v1/embeddings (OpenAI's SDK) and TEI's /embed, through the real server.

One server: the MiniLM on a plain start with -http_port (the routes serve its
own normalized embedding, so int8/uint8 use the unit-vector ranges). Each
quantized reply must equal `quantize()` (model/quantization.py, itself tested
equal to sentence-transformers' `quantize_embeddings`) applied to the same
route's float reply, exactly: the same floats under the same rule. Shapes and
dtypes are checked: int8/uint8 one value per dimension, binary/ubinary 384 / 8
= 48 packed values, in their ranges.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_process import ServerProcess

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
