"""Classifiers and cross-encoders through the whole server: /rerank, /predict, the client's.

Two tiny random-weight models from scripts/make_random_classifier.py, each
served by the real bert-serving-start (real ZeroMQ, real uvicorn, onnxruntime):
a BertForSequenceClassification with 3 labels and an
XLMRobertaForSequenceClassification cross-encoder (one logit). Scores are
compared with transformers' AutoModelForSequenceClassification on torch CPU
(tests/reference.py) within 1e-4: sigmoid of the logit for a cross-encoder,
softmax over the labels for a classifier, the logits themselves with raw_scores.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_random_classifier import LABELS, write_random_classifier
from openapi_fuzz import post_fuzzed_bodies
from reference import ClassifierReference, sigmoid, softmax
from server_process import ServerProcess

from bert_serving.client import BertClient, ConcurrentBertClient

TOLERANCE = 1e-4
QUERY = "what is a fox"
DOCUMENTS = [
    "The quick brown fox jumps over the lazy dog.",
    "hello world",
    "Machine learning models turn sentences into vectors of numbers.",
    "Le chat dort sur le canapé pendant que la pluie tombe dehors.",
    "Short text.",
    "A man is playing a guitar on the street corner while people walk by.",
]
MAX_SEQ_LEN = 128
SERVER_ARGS = ["-num_worker", "1", "-max_seq_len", str(MAX_SEQ_LEN)]


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_classifier("xlm-roberta", tmp_path_factory.mktemp("cross-encoder"))


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_classifier("bert", tmp_path_factory.mktemp("bert-classifier"))


@pytest.fixture(scope="module")
def reranker(reranker_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    with ServerProcess(["-model_dir", str(reranker_dir), *SERVER_ARGS], graph_cache,
                       http=True) as process:
        yield process


@pytest.fixture(scope="module")
def classifier(classifier_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    with ServerProcess(["-model_dir", str(classifier_dir), *SERVER_ARGS], graph_cache,
                       http=True) as process:
        yield process


def client_of(server: ServerProcess) -> BertClient:
    return BertClient(port=server.port, port_out=server.port_out, check_length=False)


def post(server: ServerProcess, path: str, body: object) -> httpx.Response:
    return httpx.post(server.http_url + path, json=body, timeout=60)


# -- the cross-encoder ------------------------------------------------------------------------


def test_rerank_matches_transformers_sorted_best_first(reranker: ServerProcess,
                                                       reranker_dir: Path) -> None:
    expected = sigmoid(ClassifierReference(reranker_dir).logits(
        [f"{QUERY} ||| {text}" for text in DOCUMENTS])[:, 0])
    reply = post(reranker, "/rerank", {"query": QUERY, "texts": DOCUMENTS, "return_text": True})
    assert reply.status_code == 200, reply.text
    ranks = reply.json()
    assert [r["index"] for r in ranks] == list(np.argsort(-expected, kind="stable"))
    for rank in ranks:
        assert rank["text"] == DOCUMENTS[rank["index"]]
        assert abs(rank["score"] - expected[rank["index"]]) < TOLERANCE
    scores = [r["score"] for r in ranks]
    assert scores == sorted(scores, reverse=True)


def test_rerank_raw_scores_are_the_logits(reranker: ServerProcess, reranker_dir: Path) -> None:
    logits = ClassifierReference(reranker_dir).logits(
        [f"{QUERY} ||| {text}" for text in DOCUMENTS])[:, 0]
    ranks = post(reranker, "/rerank", {"query": QUERY, "texts": DOCUMENTS,
                                       "raw_scores": True}).json()
    assert all("text" not in rank for rank in ranks)
    got = {rank["index"]: rank["score"] for rank in ranks}
    np.testing.assert_allclose([got[i] for i in range(len(DOCUMENTS))], logits,
                               atol=TOLERANCE, rtol=0)


def test_client_rerank_matches_transformers(reranker: ServerProcess, reranker_dir: Path) -> None:
    expected = sigmoid(ClassifierReference(reranker_dir).logits(
        [f"{QUERY} ||| {text}" for text in DOCUMENTS])[:, 0])
    with client_of(reranker) as client:
        ranks = client.rerank(QUERY, DOCUMENTS)
    with ConcurrentBertClient(2, port=reranker.port, port_out=reranker.port_out) as pool:
        pooled = {rank.index: rank.score for rank in pool.rerank(QUERY, DOCUMENTS)}
    for rank in ranks:
        assert abs(pooled[rank.index] - rank.score) < TOLERANCE
    assert sorted(rank.index for rank in ranks) == list(range(len(DOCUMENTS)))
    for rank in ranks:
        assert abs(rank.score - expected[rank.index]) < TOLERANCE
    assert [rank.index for rank in ranks] == list(np.argsort(-expected, kind="stable"))


def test_cohere_sdks_rerank_through_v1_and_v2(reranker: ServerProcess,
                                               reranker_dir: Path) -> None:
    """Cohere's own SDK, its v2 client (/v2/rerank, texts) and its v1 client (/v1/rerank,
    `{"text"}` documents, return_documents): the sigmoid scores, best first, top_n kept."""
    import cohere

    expected = sigmoid(ClassifierReference(reranker_dir).logits(
        [f"{QUERY} ||| {text}" for text in DOCUMENTS])[:, 0])
    best = [int(i) for i in np.argsort(-expected, kind="stable")]
    v2 = cohere.ClientV2(api_key="unused", base_url=reranker.http_url)
    top = v2.rerank(model="any-name", query=QUERY, documents=DOCUMENTS, top_n=3)
    assert [result.index for result in top.results] == best[:3]
    for result in top.results:
        assert abs(result.relevance_score - expected[result.index]) < TOLERANCE
    v1 = cohere.Client(api_key="unused", base_url=reranker.http_url)
    every = v1.rerank(query=QUERY, documents=[{"text": text} for text in DOCUMENTS],
                      return_documents=True)
    assert [result.index for result in every.results] == best
    for result in every.results:
        assert result.document is not None and result.document.text == DOCUMENTS[result.index]


def test_cohere_rerank_counts_the_pairs_tokens(reranker: ServerProcess,
                                               reranker_dir: Path) -> None:
    tokenizer = ClassifierReference(reranker_dir).tokenizer
    expected = sum(len(tokenizer(QUERY, text)["input_ids"]) for text in DOCUMENTS)
    reply = post(reranker, "/v1/rerank", {"model": "mine", "query": QUERY,
                                          "documents": DOCUMENTS, "top_n": 100})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "mine" and body["usage"] == {"total_tokens": expected}
    assert len(body["results"]) == len(DOCUMENTS)  # top_n past the documents: all of them
    assert all("document" not in result for result in body["results"])


def test_cohere_rerank_names_bad_inputs_in_openais_shape(classifier: ServerProcess,
                                                         reranker: ServerProcess) -> None:
    cases = [
        (reranker, {"query": QUERY, "documents": []}, "documents"),
        (reranker, {"query": QUERY, "documents": ["ok"], "top_n": 0}, "top_n"),
        (reranker, {"query": QUERY, "documents": [{"txt": "ok"}]}, "documents"),
        (classifier, {"query": QUERY, "documents": ["ok"]}, "3 labels"),
    ]
    for server, body, named in cases:
        for path in ("/v1/rerank", "/v2/rerank"):
            reply = post(server, path, body)
            assert reply.status_code == 400, (path, body, reply.text)
            assert named in reply.json()["error"]["message"], (path, body, reply.text)


def test_fuzzed_bodies_to_a_cross_encoder_never_get_a_5xx(reranker: ServerProcess) -> None:
    """The routes that compute on a cross-encoder (/rerank, /predict, Cohere's) and those
    that refuse it, with bodies drawn from the OpenAPI schema and any JSON."""

    def check_reply(path: str, body: object, reply: httpx.Response) -> None:
        if reply.status_code == 200 and path in ("/v1/rerank", "/v2/rerank"):
            assert isinstance(body, dict)
            wanted = min(len(body["documents"]), body.get("top_n") or len(body["documents"]))
            assert len(reply.json()["results"]) == wanted

    with httpx.Client(base_url=reranker.http_url, timeout=60) as http:
        post_fuzzed_bodies(http, max_examples=120, check_reply=check_reply)


def test_predict_on_a_cross_encoder_is_the_sigmoid(reranker: ServerProcess,
                                                   reranker_dir: Path) -> None:
    expected = sigmoid(ClassifierReference(reranker_dir).logits([f"{QUERY} ||| hello world"]))
    reply = post(reranker, "/predict", {"inputs": [QUERY, "hello world"]})
    assert reply.status_code == 200, reply.text
    [prediction] = reply.json()
    assert prediction["label"] == LABELS["xlm-roberta"][0]
    assert abs(prediction["score"] - expected[0, 0]) < TOLERANCE


def test_cross_encoder_info_says_reranker(reranker: ServerProcess) -> None:
    info = httpx.get(reranker.http_url + "/info", timeout=30).json()
    assert info["model_type"] == {"reranker": {"id2label": {"0": "relevance"},
                                               "label2id": {"relevance": 0}}}
    # -max_seq_len 128 is under the model's 256: the start says so
    assert "reads up to 256 tokens but -max_seq_len 128 cuts" in reranker.output


def test_zeromq_encode_on_a_classifier_answers_the_logits(reranker: ServerProcess,
                                                          reranker_dir: Path) -> None:
    texts = [f"{QUERY} ||| {DOCUMENTS[0]}", DOCUMENTS[1]]
    with client_of(reranker) as client:
        got = client.encode(texts)
        config = client.server_config
    assert config["model_head"] == "classifier" and config["output_dim"] == 1
    np.testing.assert_allclose(got, ClassifierReference(reranker_dir).logits(texts),
                               atol=TOLERANCE, rtol=0)


# -- the 3-label classifier -------------------------------------------------------------------


def test_predict_single_pair_and_batch_match_transformers(classifier: ServerProcess,
                                                          classifier_dir: Path) -> None:
    reference = ClassifierReference(classifier_dir)
    labels = LABELS["bert"]
    single = post(classifier, "/predict", {"inputs": DOCUMENTS[0]})
    assert single.status_code == 200, single.text
    check_predictions(single.json(), softmax(reference.logits([DOCUMENTS[0]]))[0], labels)
    pair = post(classifier, "/predict", {"inputs": [QUERY, DOCUMENTS[1]]}).json()
    check_predictions(pair, softmax(reference.logits([f"{QUERY} ||| {DOCUMENTS[1]}"]))[0],
                      labels)
    batch_inputs = [[DOCUMENTS[2]], [QUERY, DOCUMENTS[3]], [DOCUMENTS[4]]]
    batch = post(classifier, "/predict", {"inputs": batch_inputs, "raw_scores": True}).json()
    expected = reference.logits([DOCUMENTS[2], f"{QUERY} ||| {DOCUMENTS[3]}", DOCUMENTS[4]])
    assert len(batch) == 3
    for got, row in zip(batch, expected, strict=True):
        check_predictions(got, row, labels)


def check_predictions(got: list[dict], expected: np.ndarray, labels: tuple[str, ...]) -> None:
    """Every label once, best first, each score within the tolerance."""
    assert sorted(p["label"] for p in got) == sorted(labels)
    assert [p["score"] for p in got] == sorted((p["score"] for p in got), reverse=True)
    for prediction in got:
        assert abs(prediction["score"] - expected[labels.index(prediction["label"])]) < TOLERANCE


def test_client_predict_batches_pairs_with_singles(classifier: ServerProcess,
                                                   classifier_dir: Path) -> None:
    """Pairs and single texts of many lengths in one call; each row is its own."""
    items: list[str | list[str]] = []
    for index, text in enumerate(DOCUMENTS * 5):
        items.append(text if index % 2 else [QUERY * (1 + index % 3), text])
    wire = [item if isinstance(item, str) else " ||| ".join(item) for item in items]
    expected = softmax(ClassifierReference(classifier_dir).logits(wire))
    with client_of(classifier) as client:
        got = client.predict(items)
    assert len(got) == len(items)
    for row, want in zip(got, expected, strict=True):
        by_label = {p.label: p.score for p in row}
        np.testing.assert_allclose([by_label[label] for label in LABELS["bert"]], want,
                                   atol=TOLERANCE, rtol=0)


def test_classifier_info_lists_its_labels(classifier: ServerProcess) -> None:
    info = httpx.get(classifier.http_url + "/info", timeout=30).json()
    assert info["model_type"] == {"classifier": {
        "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
        "label2id": {"negative": 0, "neutral": 1, "positive": 2}}}


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/embed", "/", "/embed_all"])
def test_embedding_routes_refuse_a_classifier_in_tei_shape(classifier: ServerProcess,
                                                           path: str) -> None:
    reply = post(classifier, path, {"inputs": "hello"})
    assert reply.status_code == 422
    body = reply.json()
    assert body["error_type"] == "validation"
    assert "sequence-classification model" in body["error"] and "/predict" in body["error"]


def test_openai_embeddings_refuse_a_classifier_in_openai_shape(classifier: ServerProcess) -> None:
    reply = post(classifier, "/v1/embeddings", {"input": "hello"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "wrong_model_kind"
    assert "sequence-classification model" in error["message"]


def test_rerank_refuses_a_classifier_of_several_labels(classifier: ServerProcess) -> None:
    reply = post(classifier, "/rerank", {"query": QUERY, "texts": DOCUMENTS})
    assert reply.status_code == 422
    assert "3 labels" in reply.json()["error"] and "/predict" in reply.json()["error"]
    with client_of(classifier) as client, pytest.raises(ValueError, match="3 labels"):
        client.rerank(QUERY, DOCUMENTS)


def test_bad_inputs_are_named(classifier: ServerProcess, reranker: ServerProcess) -> None:
    cases = [
        (reranker, "/rerank", {"query": QUERY, "texts": []}, 400, "texts"),
        (reranker, "/rerank", {"query": QUERY, "texts": ["ok", "word " * 200],
                               "truncate": False}, 422, "texts[1]"),
        (classifier, "/predict", {"inputs": ["a", "b", "c"]}, 422, "inputs"),
        (classifier, "/predict", {"inputs": [["a"], ["b", "c", "d"]]}, 422, "inputs[1]"),
        (classifier, "/predict", {"inputs": 3}, 422, "inputs"),
    ]
    for server, path, body, status, named in cases:
        reply = post(server, path, body)
        assert reply.status_code == status, (body, reply.text)
        assert named in reply.json()["error"], (body, reply.text)
    # a long text with the default (the server cuts it) is answered
    long = post(reranker, "/rerank", {"query": QUERY, "texts": ["word " * 200]})
    assert long.status_code == 200, long.text


def test_classifier_routes_refuse_an_embedding_model(graph_cache: Path) -> None:
    with ServerProcess(["-num_worker", "1"], graph_cache, http=True) as minilm:
        for path, body in (("/rerank", {"query": "q", "texts": ["t"]}),
                           ("/predict", {"inputs": "t"})):
            reply = post(minilm, path, body)
            assert reply.status_code == 422, reply.text
            assert "serves an embedding model" in reply.json()["error"]
        reply = post(minilm, "/v1/rerank", {"query": "q", "documents": ["t"]})
        assert reply.status_code == 400, reply.text
        assert "serves an embedding model" in reply.json()["error"]["message"]
        assert post(minilm, "/embed", {"inputs": "t"}).status_code == 200
        with client_of(minilm) as client, pytest.raises(ValueError, match="embedding model"):
            client.predict(["t"])


@pytest.mark.parametrize("flags, named", [
    (["-pooling_strategy", "CLS_TOKEN", "-pooling_layer", "-1"], "-pooling_layer -1"),
    (["-truncation", "chunk"], "-truncation chunk does not apply to a classifier or "
                               "cross-encoder: its windows' logits have no agreed join"),
])
def test_flags_that_do_not_apply_stop_the_start_with_one_line(
        classifier_dir: Path, graph_cache: Path, flags: list[str], named: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from bert_serving.server.cli import start; "
         "import sys; sys.exit(start())", "-cpu", "-model_dir", str(classifier_dir),
         "-graph_tmp_dir", str(graph_cache), *flags],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines()
              if line.startswith("bert-serving-start:")]
    assert len(errors) == 1, done.stderr
    assert named in errors[0] and "classif" in errors[0]


TEXTS = st.one_of(st.text(max_size=20), st.sampled_from(["", " ", "a ||| b", "word " * 80]))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | TEXTS,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
FLAGS = {"raw_scores": JSON | st.booleans(), "truncate": JSON | st.booleans(),
         "return_text": JSON | st.booleans(), "truncation_direction": JSON | st.just("left")}
PREDICT_INPUTS = st.one_of(TEXTS, st.lists(TEXTS, max_size=3),
                           st.lists(st.lists(TEXTS, max_size=3), max_size=3), JSON)
BODIES = st.one_of(
    st.tuples(st.just("/rerank"), st.fixed_dictionaries(
        {"query": TEXTS | JSON, "texts": st.lists(TEXTS, max_size=4) | JSON}, optional=FLAGS)),
    st.tuples(st.just("/predict"), st.fixed_dictionaries({"inputs": PREDICT_INPUTS},
                                                         optional=FLAGS)),
    st.tuples(st.sampled_from(["/rerank", "/predict"]), JSON),
)


def test_fuzzed_classifier_bodies_never_get_a_5xx(reranker: ServerProcess) -> None:
    with httpx.Client(base_url=reranker.http_url, timeout=60) as http:

        @settings(max_examples=120, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(BODIES)
        def check(case: tuple[str, object]) -> None:
            path, body = case
            reply = http.post(path, json=body)
            assert reply.status_code < 500, (path, body, reply.text)
            if reply.status_code != 200:
                assert set(reply.json()) == {"error", "error_type"}, reply.text

        check()
        # and the server still answers
        assert http.post("/rerank", json={"query": "q", "texts": ["t"]}).status_code == 200
