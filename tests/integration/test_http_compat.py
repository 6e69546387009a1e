"""TEI's and OpenAI's clients against the gateway: the real server, real HTTP on 127.0.0.1.

`native` runs the MiniLM with -pooling_strategy MODEL -max_seq_len 256 (its
sentence-transformers max_seq_length), so every pooled vector is compared with
sentence-transformers' own `encode` on the same texts, offline from the folder:
1e-4 absolute on every element (observed ~2e-7). The clients are the PyPI
packages themselves: `openai` and `huggingface_hub`. `tokens` runs a copy of the
MiniLM's folder with prompts added, at -pooling_strategy NONE, for /embed_all
and prompt_name; tokens are compared with transformers' tokenizer of the folder.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from reference import TransformersReference, heldout_texts
from server_process import ServerProcess

from bert_serving.client import BertClient, ServerError

TOLERANCE = 1e-4
TEI_ERROR_KEYS = {"error", "error_type"}
PROMPTS = {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None}
TEXTS = [*heldout_texts(), "the bars ||| are text here, not a sentence pair"]
GATEWAY_ARGS = ["-pooling_strategy", "MODEL", "-max_seq_len", "256"]


@pytest.fixture(scope="module")
def native(gateway: ServerProcess) -> ServerProcess:
    """The model's own embedding (conftest's `gateway` with GATEWAY_ARGS; `http` its client)."""
    return gateway


@pytest.fixture(scope="module")
def sentence_transformer(minilm_dir: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


def st_encode(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, convert_to_numpy=True), dtype=np.float32)


def close(got: Any, want: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


# -- the model's own embedding, through each route and client ---------------------------------


@pytest.mark.parametrize("path", ["/embed", "/"])
def test_tei_embed_matches_sentence_transformers(http: httpx.Client, sentence_transformer: Any,
                                                 path: str) -> None:
    want = st_encode(sentence_transformer, TEXTS)
    reply = http.post(path, json={"inputs": TEXTS})
    assert reply.status_code == 200, reply.text
    close(reply.json(), want)
    one = http.post(path, json={"inputs": TEXTS[0], "normalize": True})
    close(one.json(), want[:1])


def test_openai_client_matches_sentence_transformers(native: ServerProcess,
                                                     sentence_transformer: Any) -> None:
    from openai import OpenAI

    want = st_encode(sentence_transformer, TEXTS)
    client = OpenAI(base_url=native.http_url + "/v1", api_key="unused", max_retries=0)
    # Left out, the package asks for base64 and decodes it itself.
    for encoding_format in ("float", "base64", None):
        options = {"encoding_format": encoding_format} if encoding_format else {}
        reply = client.embeddings.create(input=TEXTS, model="all-MiniLM-L6-v2",
                                         user="someone", **options)  # type: ignore[arg-type]
        rows = [item.embedding for item in reply.data]
        if encoding_format == "base64":  # the package hands base64 back as the string
            rows = [np.frombuffer(base64.b64decode(row), dtype="<f4") for row in rows]
        close(rows, want)
    assert reply.usage.prompt_tokens > len(TEXTS)
    cut = client.embeddings.create(input=TEXTS[:3], model="m", dimensions=64)
    matryoshka = want[:3, :64] / np.linalg.norm(want[:3, :64], axis=1, keepdims=True)
    close([item.embedding for item in cut.data], matryoshka)


def test_huggingface_hub_client_matches_sentence_transformers(native: ServerProcess,
                                                              sentence_transformer: Any) -> None:
    from huggingface_hub import InferenceClient

    want = st_encode(sentence_transformer, TEXTS[:4])
    client = InferenceClient(base_url=native.http_url)
    close(client.feature_extraction(TEXTS[0]), want[:1])
    close(client.feature_extraction(TEXTS[:4]), want)  # type: ignore[arg-type]
    # LangChain's HuggingFaceEndpointEmbeddings.embed_documents, as its source calls it.
    langchain = InferenceClient(model=native.http_url)
    close(langchain.feature_extraction(text=TEXTS[:4]), want)  # type: ignore[arg-type]
    cut = client.feature_extraction(TEXTS[0], dimensions=32, normalize=True)
    close(cut, want[:1, :32] / np.linalg.norm(want[:1, :32]))


def test_llama_index_request_shape(http: httpx.Client, sentence_transformer: Any) -> None:
    # What llama-index's TextEmbeddingsInference._call_api posts (read from its source):
    # /embed with inputs and truncate.
    reply = http.post("/embed", json={"inputs": TEXTS[:2], "truncate": True})
    close(reply.json(), st_encode(sentence_transformer, TEXTS[:2]))


# -- TEI's options ----------------------------------------------------------------------------


def test_truncation_direction_and_truncate_false(http: httpx.Client) -> None:
    head, tail = "alpha " * 300, "omega beta gamma"
    left = http.post("/embed", json={"inputs": head + tail, "truncation_direction": "left"})
    right = http.post("/embed", json={"inputs": head + tail})
    assert left.status_code == right.status_code == 200, (left.text, right.text)
    kept = " ".join((head + tail).split()[-254:])  # one piece per word, 256 with [CLS]/[SEP]
    close(left.json(), np.asarray(http.post("/embed", json={"inputs": kept}).json()))
    assert not np.allclose(left.json(), right.json(), atol=1e-3)
    refused = http.post("/embed", json={"inputs": head, "truncate": False})
    assert refused.status_code == 422
    assert refused.json()["error"].startswith("inputs[0]: has 302 tokens")


def test_a_text_the_server_fits_is_embedded_as_bertclient_embeds_it(
    native: ServerProcess, http: httpx.Client, reference: TransformersReference
) -> None:
    """The routes count the server's own pieces. 'İ ΟΔΟΣ' is 4 (ο ##δ ##ος: Σ is final on
    the cleaned text) to the server and Google's tokenizer; with 250 one-piece words it
    fills -max_seq_len 256 exactly, so truncate: false takes it, and the vector is the one
    BertClient gets from the same server (1e-6; the same graph on the same ids)."""
    text = "İ ΟΔΟΣ" + " a" * 250
    assert len(reference.tokenizer(text)["input_ids"]) == 256
    reply = http.post("/embed", json={"inputs": text, "truncate": False, "normalize": False})
    assert reply.status_code == 200, reply.text
    with BertClient(port=native.port, port_out=native.port_out) as bert:
        want = bert.encode([text])
    np.testing.assert_allclose(np.asarray(reply.json(), np.float32), want, atol=1e-6, rtol=0)
    texts = ["İ ΟΔΟΣ", "ΑΣ\x01Α"]  # ##σ: the control character goes before Σ is lowered
    shown = http.post("/tokenize", json={"inputs": texts}).json()
    assert [[t["id"] for t in row] for row in shown] == [
        reference.tokenizer(t)["input_ids"] for t in texts]
    assert [t["text"] for t in shown[0][1:-1]] == ["İ", "Ο", "Δ", "ΟΣ"]


def test_normalize_false_keeps_the_models_unit_vectors(http: httpx.Client) -> None:
    # The MiniLM normalizes (its Normalize module), so its own embedding is unit length.
    rows = np.asarray(http.post("/embed", json={"inputs": ["a", "b"], "normalize": False}).json())
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_info_says_what_the_server_runs(http: httpx.Client) -> None:
    info = http.get("/info").json()
    assert info["model_id"] == "all-MiniLM-L6-v2"
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["native_embedding"] is True
    assert info["max_input_length"] == 256 and info["auto_truncate"] is True


def test_tokenize_and_decode_match_transformers(http: httpx.Client, minilm_dir: Path) -> None:
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(minilm_dir))
    texts = ["Héllo wörld, tokenization!", "你好 world"]
    reply = http.post("/tokenize", json={"inputs": texts})
    assert reply.status_code == 200, reply.text
    for text, tokens in zip(texts, reply.json(), strict=True):
        assert [t["id"] for t in tokens] == reference(text)["input_ids"]
        assert tokens[0] == {"id": 101, "text": "[CLS]", "special": True,
                             "start": None, "stop": None}
        raw = text.encode("utf-8")
        for token in tokens[1:-1]:
            assert raw[token["start"]:token["stop"]].decode("utf-8") == token["text"]
    bare = http.post("/tokenize", json={"inputs": "hello", "add_special_tokens": False}).json()
    assert [t["id"] for t in bare[0]] == [7592]
    ids = reference(texts)["input_ids"]
    decoded = http.post("/decode", json={"ids": ids}).json()
    assert decoded == [reference.decode(row, skip_special_tokens=True) for row in ids]
    single = http.post("/decode", json={"ids": ids[0], "skip_special_tokens": False}).json()
    assert single == [reference.decode(ids[0])]


# -- TEI's errors -----------------------------------------------------------------------------

# (path, body: JSON value or raw bytes, status, error_type, words in the message)
TEI_BAD_BODIES: list[tuple[str, Any, int, str, str]] = [
    ("/embed", {"inputs": []}, 400, "empty", "cannot be empty"),
    ("/embed", {"inputs": 3}, 422, "validation", "string or a list of strings"),
    ("/embed", {"inputs": [[101, 102]]}, 422, "validation", "inputs[0]"),
    ("/embed", {"inputs": " "}, 422, "validation", "non-blank"),
    ("/embed", {}, 422, "validation", "Field required"),
    ("/embed", {"inputs": "a", "dimensions": 0}, 422, "validation", "between 1 and"),
    ("/embed", {"inputs": "a", "dimensions": 385}, 422, "validation", "384 dimensions"),
    ("/embed", {"inputs": "a", "prompt_name": "query"}, 422, "validation", "prompts"),
    ("/embed", {"inputs": "a", "truncation_direction": "up"}, 422, "validation",
     "truncation_direction"),
    ("/", b"{not json", 422, "validation", "not valid JSON"),
    ("/embed_all", {"inputs": "a"}, 422, "validation", "-pooling_strategy NONE"),
    ("/tokenize", {"inputs": 5}, 422, "validation", "inputs"),
    ("/decode", {"ids": [10**9]}, 422, "validation", "not in this model's vocabulary"),
    ("/decode", {"ids": [-1]}, 422, "validation", "ids"),
]


@pytest.mark.parametrize(("path", "body", "status", "error_type", "words"), TEI_BAD_BODIES)
def test_bad_body_gets_teis_error_shape(http: httpx.Client, path: str, body: Any, status: int,
                                        error_type: str, words: str) -> None:
    sent = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = http.post(path, content=sent, headers={"Content-Type": "application/json"})
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == TEI_ERROR_KEYS
    assert reply.json()["error_type"] == error_type and words in reply.json()["error"]


def test_openai_dimensions_out_of_range_is_openais_error(http: httpx.Client) -> None:
    reply = http.post("/v1/embeddings", json={"input": "a", "dimensions": 385})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "dimensions"


# -- token vectors and prompts: a copy of the folder with prompts, -pooling_strategy NONE -------


@pytest.fixture(scope="module")
def tokens(minilm_dir: Path, graph_cache: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("prompted") / "minilm"
    shutil.copytree(minilm_dir, folder)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(PROMPTS))
    args = ["-model_dir", str(folder), "-pooling_strategy", "NONE"]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


def test_embed_all_and_prompts(tokens: ServerProcess) -> None:
    with (httpx.Client(base_url=tokens.http_url, timeout=60) as http,
          BertClient(port=tokens.port, port_out=tokens.port_out) as bert):
        texts = ["hello world", "good day to you"]
        rows = http.post("/embed_all", json={"inputs": texts}).json()
        want = bert.encode(texts)  # padded to -max_seq_len; TEI's rows stop at the last token
        assert [len(row) for row in rows] == [4, 6]
        for got, padded in zip(rows, want, strict=True):
            np.testing.assert_allclose(got, padded[:len(got)], atol=1e-5, rtol=0)
        prompted = http.post("/embed_all", json={"inputs": "hello", "prompt_name": "query"})
        spelled = http.post("/embed_all", json={"inputs": "query: hello"})
        np.testing.assert_allclose(prompted.json(), spelled.json(), atol=1e-6, rtol=0)
        shown = http.post("/tokenize", json={"inputs": "hello", "prompt_name": "passage"}).json()
        assert [t["text"] for t in shown[0]] == ["[CLS]", "passage", ":", "hello", "[SEP]"]
        refused = http.post("/embed", json={"inputs": "hello"})
        assert refused.status_code == 422 and "/embed_all" in refused.json()["error"]
        assert http.get("/info").json()["prompts"] == PROMPTS["prompts"]


def test_token_vectors_take_no_quantized_form(tokens: ServerProcess) -> None:
    """output_dtype and a client's precision quantize one vector per text: refused by name."""
    with (httpx.Client(base_url=tokens.http_url, timeout=60) as http,
          BertClient(port=tokens.port, port_out=tokens.port_out) as bert):
        openai = http.post("/v1/embeddings", json={"input": "hi", "output_dtype": "binary"})
        assert openai.status_code == 400 and openai.json()["error"]["param"] == "output_dtype"
        assert "binary quantizes one vector per text" in openai.json()["error"]["message"]
        with pytest.raises(ServerError, match="precision int8: this server answers token "
                                              r"vectors \(-pooling_strategy NONE\)"):
            bert.encode(["hi"], precision="int8")
