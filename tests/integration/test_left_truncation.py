"""TEI's `truncation_direction: left` on /rerank and /predict: the kept tokens are the last.

Two tiny random-weight models from scripts/make_random_classifier.py (logits spread
around 0 so scores tell inputs apart), each served at -max_seq_len 24 so every
input here is cut: an XLM-R cross-encoder (the folder's tokenizer.json, tokenizers'
pair rule) and a BERT classifier (Google's WordPiece). The reference is
transformers' tokenizer over the same folder with `truncation_side="left"` and
`truncation=True`, then AutoModelForSequenceClassification on torch CPU; scores
agree within 1e-4. BERT's pairs here have a short first part, where Google's pair
rule (the server's for BERT) and tokenizers' agree on how many tokens each part keeps.
Each test also checks that left and right answers differ, so the cut is exercised.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from make_random_classifier import write_random_classifier
from reference import ClassifierReference, file_tokenizer, pad_features, sigmoid, softmax
from server_process import ServerProcess

TOLERANCE = 1e-4
MAX_SEQ_LEN = 24
LONG = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the old "
    "wooden gate at the end of the field.",
    "Machine learning models turn sentences into vectors of numbers, and those vectors "
    "let a search engine find passages that mean the same thing.",
    "A man is playing a guitar on the street corner while people walk by and a few stop "
    "to listen before they hurry on.",
]
SHORT_QUERY = "what is a fox"
LONG_QUERY = ("tell me everything about the red fox, where it lives, what it eats and how "
              "it raises its cubs in spring")


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_classifier("xlm-roberta", tmp_path_factory.mktemp("left-ce"),
                                   spread=2.0)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_classifier("bert", tmp_path_factory.mktemp("left-bert"), spread=2.0)


def serve(folder: Path, graph_cache: Path) -> ServerProcess:
    return ServerProcess(["-model_dir", str(folder), "-num_worker", "1",
                          "-max_seq_len", str(MAX_SEQ_LEN)], graph_cache, http=True)


@pytest.fixture(scope="module")
def reranker(reranker_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    with serve(reranker_dir, graph_cache) as process:
        yield process


@pytest.fixture(scope="module")
def classifier(classifier_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    with serve(classifier_dir, graph_cache) as process:
        yield process


def post(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    reply = httpx.post(server.http_url + path, json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def left_logits(folder: Path, tokenizer: Any, rows: Sequence[tuple[str, str | None]]
                ) -> np.ndarray:
    """transformers' logits of each (text, pair text or None), cut on the left."""
    import torch

    tokenizer.truncation_side = "left"
    encoded = [tokenizer(a, b, truncation=True, max_length=MAX_SEQ_LEN,
                         return_token_type_ids=True) for a, b in rows]
    assert all(len(e["input_ids"]) == MAX_SEQ_LEN for e in encoded)  # every row was cut
    features = pad_features(encoded, pad_id=tokenizer.pad_token_id)
    model = ClassifierReference(folder).model
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in features.items()})
    return np.asarray(out.logits.numpy(), dtype=np.float64)


def rerank_scores(server: ServerProcess, query: str, direction: str) -> np.ndarray:
    ranks = post(server, "/rerank", {"query": query, "texts": LONG,
                                     "truncation_direction": direction})
    scores = np.zeros(len(LONG))
    for rank in ranks:
        scores[rank["index"]] = rank["score"]
    return scores


@pytest.mark.parametrize("query", [SHORT_QUERY, LONG_QUERY])
def test_rerank_left_matches_transformers(reranker: ServerProcess, reranker_dir: Path,
                                          query: str) -> None:
    logits = left_logits(reranker_dir, file_tokenizer(reranker_dir),
                         [(query, text) for text in LONG])
    left = rerank_scores(reranker, query, "LEFT")  # TEI's casing is accepted too
    np.testing.assert_allclose(left, sigmoid(logits[:, 0]), atol=TOLERANCE, rtol=0)
    right = rerank_scores(reranker, query, "right")
    assert np.abs(left - right).max() > 1e-3, (left, right)


def test_predict_left_matches_transformers(classifier: ServerProcess,
                                           classifier_dir: Path) -> None:
    rows: list[tuple[str, str | None]] = [(text, None) for text in LONG]
    rows += [(SHORT_QUERY, text) for text in LONG]
    inputs = [[a] if b is None else [a, b] for a, b in rows]
    tokenizer = ClassifierReference(classifier_dir).tokenizer
    expected = softmax(left_logits(classifier_dir, tokenizer, rows))
    answers = {}
    for direction in ("left", "right"):
        predictions = post(classifier, "/predict", {"inputs": inputs,
                                                    "truncation_direction": direction})
        labels = sorted(predictions[0], key=lambda p: p["label"])
        names = [p["label"] for p in labels]
        answers[direction] = np.array([[next(p["score"] for p in row if p["label"] == name)
                                        for name in names] for row in predictions])
    label_order = [ClassifierReference(classifier_dir).model.config.id2label[i]
                   for i in range(expected.shape[1])]
    order = [label_order.index(name) for name in names]
    np.testing.assert_allclose(answers["left"], expected[:, order], atol=TOLERANCE, rtol=0)
    assert np.abs(answers["left"] - answers["right"]).max() > 1e-3


def test_left_with_truncate_false_still_refuses(reranker: ServerProcess) -> None:
    reply = httpx.post(reranker.http_url + "/rerank", timeout=60, json={
        "query": SHORT_QUERY, "texts": LONG, "truncate": False, "truncation_direction": "left"})
    assert reply.status_code == 422 and "texts[0]: has" in reply.json()["error"]


def test_unknown_direction_is_named(reranker: ServerProcess) -> None:
    reply = httpx.post(reranker.http_url + "/rerank", timeout=60, json={
        "query": SHORT_QUERY, "texts": LONG, "truncation_direction": "middle"})
    assert reply.status_code == 422 and "truncation_direction" in reply.json()["error"]


@pytest.fixture(scope="module")
def refusing(reranker_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    """The cross-encoder under -truncation error."""
    with ServerProcess(["-model_dir", str(reranker_dir), "-num_worker", "1",
                        "-max_seq_len", str(MAX_SEQ_LEN), "-truncation", "error"],
                       graph_cache, http=True) as process:
        yield process


def test_a_refusing_server_cuts_what_truncate_true_asks_and_names_the_rest(
        reranker: ServerProcess, refusing: ServerProcess, reranker_dir: Path) -> None:
    """Under -truncation error, /rerank follows /embed's rule (model/admission.py): without
    `truncate` a long pair is refused from either side, naming its count as transformers
    makes it (specials included); `truncate: true` cuts it in the gateway, from either side,
    to the scores of a server that cuts it itself."""
    count = len(file_tokenizer(reranker_dir)(SHORT_QUERY, LONG[0])["input_ids"])
    for direction in ("right", "left"):
        reply = httpx.post(refusing.http_url + "/rerank", timeout=60, json={
            "query": SHORT_QUERY, "texts": LONG, "truncation_direction": direction})
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"].startswith(
            f"texts[0]: has {count} tokens (special tokens included), more than this "
            f"server's limit of {MAX_SEQ_LEN} (-max_seq_len): send truncate: true")
    for direction in ("right", "left"):
        ranks = post(refusing, "/rerank", {"query": SHORT_QUERY, "texts": LONG,
                                           "truncate": True, "truncation_direction": direction})
        cut = np.zeros(len(LONG))
        for rank in ranks:
            cut[rank["index"]] = rank["score"]
        np.testing.assert_allclose(cut, rerank_scores(reranker, SHORT_QUERY, direction),
                                   atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank"])
def test_cohere_rerank_cuts_long_documents_on_a_refusing_server(
        reranker: ServerProcess, refusing: ServerProcess, path: str) -> None:
    """Cohere's rerank has no refusal of a long document (it truncates at its
    `max_tokens_per_doc`): under -truncation error the gateway cuts the pairs by the
    server's pair rule, to the scores of a server that cuts them itself."""
    reply = post(refusing, path, {"query": SHORT_QUERY, "documents": LONG})
    cut = np.zeros(len(LONG))
    for result in reply["results"]:
        cut[result["index"]] = result["relevance_score"]
    np.testing.assert_allclose(cut, rerank_scores(reranker, SHORT_QUERY, "right"),
                               atol=TOLERANCE, rtol=0)
