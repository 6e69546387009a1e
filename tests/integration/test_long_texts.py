"""-truncation error and chunk through the real server, against transformers on the same windows.

The reference tokenizes each text whole with transformers' BertTokenizer, cuts the
ids into windows exactly as the issue defines them (``max_seq_len - 2`` text tokens,
each starting ``-chunk_overlap`` before the previous ended, [CLS]/[SEP] around each),
runs BertModel on every window, pools as the original, and folds the windows:
token-weighted mean for REDUCE_MEAN, max for REDUCE_MAX. Tolerance 1e-4.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from reference import TransformersReference, heldout_texts, pool, text_windows, window_features
from server_process import ServerProcess

from bert_serving.client import BertClient, ServerError

TOLERANCE = 1e-4
MAX_SEQ_LEN, OVERLAP = 16, 3


def client_for(server: ServerProcess) -> BertClient:
    return BertClient(port=server.port, port_out=server.port_out, timeout=600_000)


def reference_windows(reference: TransformersReference, text: str) -> list[list[int]]:
    return text_windows(reference.tokenizer, text, max_seq_len=MAX_SEQ_LEN, overlap=OVERLAP)


def reference_native(reference: TransformersReference, texts: list[str], *,
                     chunked: bool) -> np.ndarray:
    """The MiniLM's own embedding (last layer mean, normalized) of each text's windows, or of
    its first window alone (truncated), joined as the server joins a normalized model's:
    the token-weighted mean of the window vectors, normalized again."""
    rows = []
    for text in texts:
        windows = reference_windows(reference, text)[: None if chunked else 1]
        _, mask, features = window_features(windows)
        weights = mask.astype(np.float32)
        pooled = pool(reference.hidden_states(features)[-1], weights, weights, "REDUCE_MEAN")
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        joined = (pooled * weights.sum(1)[:, None]).sum(0)
        rows.append(joined / np.linalg.norm(joined))
    return np.stack(rows)


def reference_chunked(reference: TransformersReference, texts: list[str], strategy: str,
                      mask_cls_sep: bool) -> tuple[np.ndarray, list[int]]:
    rows, counts = [], []
    for text in texts:
        windows = reference_windows(reference, text)
        ids, mask, features = window_features(windows)
        states = reference.hidden_states(features)[-2]
        pool_mask = mask.astype(np.float32)
        if mask_cls_sep:
            special = np.isin(ids, [reference.tokenizer.cls_token_id,
                                    reference.tokenizer.sep_token_id])
            pool_mask[special] = 0.0
        pooled = pool(states, mask.astype(np.float32), pool_mask, strategy)
        if strategy == "REDUCE_MAX":
            rows.append(pooled.max(0))
        else:
            weights = pool_mask.sum(1)
            rows.append((pooled * weights[:, None]).sum(0) / weights.sum())
        counts.append(len(windows))
    return np.stack(rows), counts


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (ventilator and sink are its threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def long_texts() -> list[str]:
    heldout = heldout_texts()
    return [heldout[0], " ".join(heldout[:6]), "short one", " ".join(heldout[3:5]) * 2, "a"]


@pytest.fixture(scope="module", params=[("REDUCE_MEAN", False), ("REDUCE_MEAN", True),
                                        ("REDUCE_MAX", False)],
                ids=["mean", "mean-mask_cls_sep", "max"])
def chunk_server(request: pytest.FixtureRequest,
                 graph_cache: Path) -> Iterator[tuple[ServerProcess, str, bool]]:
    strategy, mask_cls_sep = request.param
    args = ["-truncation", "chunk", "-chunk_overlap", str(OVERLAP), "-max_seq_len",
            str(MAX_SEQ_LEN), "-pooling_strategy", strategy, "-show_tokens_to_client",
            "-max_batch_size", "64", *(["-mask_cls_sep"] if mask_cls_sep else [])]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process, strategy, mask_cls_sep


def test_chunked_texts_match_transformers_on_the_same_windows(
    chunk_server: tuple[ServerProcess, str, bool], reference: TransformersReference
) -> None:
    server, strategy, mask_cls_sep = chunk_server
    texts = long_texts()
    want, counts = reference_chunked(reference, texts, strategy, mask_cls_sep)
    assert max(counts) > 3  # some texts really are chunked
    with client_for(server) as client:
        got, tokens = client.encode(texts, show_tokens=True)
    assert got.shape == (len(texts), 384)
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)
    # Each window brings its own [CLS]: the reply's tokens say how many windows ran.
    assert [row.count("[CLS]") for row in tokens] == counts


def test_a_100000_word_text_is_answered(chunk_server: tuple[ServerProcess, str, bool],
                                        reference: TransformersReference) -> None:
    server, strategy, mask_cls_sep = chunk_server
    if strategy != "REDUCE_MEAN" or mask_cls_sep:
        pytest.skip("one server is enough for the size test")
    words = heldout_texts()[0].split()
    huge = " ".join(words[i % len(words)] for i in range(100_000))
    before = peak_rss_mb(server.process.pid)
    with client_for(server) as client:
        got, tokens = client.encode([huge, "after it"], show_tokens=True)
        # Tokens, windows and their vectors are each a few tens of MB for this text; a
        # copy per window or a quadratic step would be far above this bound.
        assert peak_rss_mb(server.process.pid) - before < 400
        assert np.isfinite(got).all() and got.shape == (2, 384)
        assert tokens[0].count("[CLS]") == len(reference_windows(reference, huge))
        # The next request is served as ever, and so is a short text in the same one.
        want, _ = reference_chunked(reference, ["after it"], strategy, mask_cls_sep)
        np.testing.assert_allclose(got[1:], want, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(client.encode(["after it"]), want, atol=TOLERANCE, rtol=0)


def test_http_routes_chunk_by_default_and_truncate_or_refuse_on_request(
    chunk_server: tuple[ServerProcess, str, bool], reference: TransformersReference
) -> None:
    server, strategy, mask_cls_sep = chunk_server
    if strategy != "REDUCE_MEAN" or mask_cls_sep:
        pytest.skip("one server is enough for the HTTP options")
    texts = long_texts()[:3]
    # A plain start with -http_port: these routes get the MiniLM's own embedding.
    chunked = reference_native(reference, texts, chunked=True)
    cut = reference_native(reference, texts, chunked=False)
    with httpx.Client(base_url=server.http_url, timeout=120) as http:
        def embed(**options: object) -> np.ndarray:
            reply = http.post("/embed", json={"inputs": texts, "normalize": False, **options})
            assert reply.status_code == 200, reply.text
            return np.array(reply.json(), dtype=np.float32)

        np.testing.assert_allclose(embed(), chunked, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(embed(truncate=True), cut, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(embed(truncation="truncate"), cut, atol=TOLERANCE, rtol=0)
        refused = http.post("/embed", json={"inputs": texts, "truncation": "error"})
        assert refused.status_code == 422 and "inputs[1]: has" in refused.text
        openai = http.post("/v1/embeddings", json={"input": texts})
        got = np.array([row["embedding"] for row in openai.json()["data"]], dtype=np.float32)
        np.testing.assert_allclose(got, chunked, atol=TOLERANCE, rtol=0)
        read = sum(len(w) for text in texts for w in reference_windows(reference, text))
        assert openai.json()["usage"]["prompt_tokens"] == read  # every window's tokens
        assert http.get("/info").json()["auto_truncate"] is False


def test_error_mode_names_the_text_and_its_length(graph_cache: Path,
                                                  reference: TransformersReference) -> None:
    texts = ["fits", " ".join(heldout_texts()[:6]), "fits too"]
    length = len(reference.tokenizer(texts[1])["input_ids"])
    assert length > MAX_SEQ_LEN
    args = ["-truncation", "error", "-max_seq_len", str(MAX_SEQ_LEN)]
    with ServerProcess(args, graph_cache) as server, client_for(server) as client:
        with pytest.raises(ServerError, match=f"text 1 has {length} tokens, more than the "
                                              f"{MAX_SEQ_LEN} of -max_seq_len"):
            client.encode(texts)
        want = reference.encode(["fits", "fits too"], max_seq_len=MAX_SEQ_LEN)
        np.testing.assert_allclose(client.encode(["fits", "fits too"]), want,
                                   atol=TOLERANCE, rtol=0)


def test_chunk_with_token_level_pooling_is_refused_at_start(graph_cache: Path) -> None:
    args = ["-truncation", "chunk", "-pooling_strategy", "NONE"]
    with (pytest.raises(RuntimeError, match="-pooling_strategy NONE"),
          ServerProcess(args, graph_cache, start_timeout=120)):
        pass
