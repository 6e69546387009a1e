"""-truncation chunk's pure parts: where windows start, how their vectors fold into a text's."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from bert_serving.proto.inputs import Dual
from bert_serving.proto.internal import JobKey, JobMessage, decode_sink_control, encode_job
from bert_serving.server.errors import ConfigError
from bert_serving.server.model.chunking import ChunkReducer, reduction_for, window_starts
from bert_serving.server.model.pooling import PoolingStrategy
from bert_serving.server.model.wordpiece import WordPieceTokenizer
from bert_serving.server.pipeline.assembly import JobAssembly


@pytest.mark.parametrize(("count", "width", "overlap", "want"), [
    (0, 4, 1, [0]), (3, 4, 1, [0]), (4, 4, 1, [0]), (5, 4, 1, [0, 3]), (10, 4, 1, [0, 3, 6]),
    (10, 4, 0, [0, 4, 8]), (7, 4, 3, [0, 1, 2, 3]),
])
def test_windows_cover_every_token_with_the_overlap(count: int, width: int, overlap: int,
                                                    want: list[int]) -> None:
    starts = window_starts(count, width, overlap)
    assert starts == want
    covered = sorted({i for s in starts for i in range(s, min(s + width, count))})
    assert covered == list(range(count))
    assert all(b - a == width - overlap for a, b in itertools.pairwise(starts))


@pytest.mark.parametrize("overlap", [-1, 4, 9])
def test_an_overlap_that_cannot_advance_is_a_config_error(overlap: int) -> None:
    with pytest.raises(ConfigError, match=f"-chunk_overlap {overlap} must be"):
        window_starts(10, 4, overlap)


def test_token_level_pooling_cannot_chunk() -> None:
    with pytest.raises(ConfigError, match="NONE"):
        reduction_for(PoolingStrategy.NONE)
    assert reduction_for(PoolingStrategy.REDUCE_MAX) == "max"
    assert reduction_for(PoolingStrategy.CLS_TOKEN) == "mean"


def test_weighted_mean_is_the_mean_over_all_tokens() -> None:
    rng = np.random.default_rng(0)
    token_states = [rng.normal(size=(n, 3)).astype(np.float32) for n in (5, 7, 2, 4)]
    windows = np.stack([s.mean(0) for s in token_states])
    reducer = ChunkReducer(per_text=[1, 3], weights=[5, 7, 2, 4], reduction="mean")
    got = reducer.reduce(windows)
    np.testing.assert_allclose(got[0], token_states[0].mean(0), atol=1e-6)
    np.testing.assert_allclose(got[1], np.concatenate(token_states[1:]).mean(0), atol=1e-6)


def test_max_and_mean_max_and_normalize() -> None:
    windows = np.array([[1, -2, 0, 5], [3, -4, 2, 1], [0, 0, 9, 9]], dtype=np.float32)
    maxed = ChunkReducer([2, 1], [1, 3, 1], "max").reduce(windows)
    np.testing.assert_array_equal(maxed, [[3, -2, 2, 5], [0, 0, 9, 9]])
    both = ChunkReducer([2, 1], [1, 3, 1], "mean_max").reduce(windows)
    np.testing.assert_allclose(both[0], [2.5, -3.5, 2, 5])
    unit = ChunkReducer([3], [1, 1, 1], "mean", normalize=True).reduce(windows)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)


def test_windows_that_pooled_nothing_fall_back_to_the_plain_mean() -> None:
    windows = np.array([[2.0, 4.0], [4.0, 8.0]], dtype=np.float32)
    got = ChunkReducer([2], [0, 0], "mean").reduce(windows)
    np.testing.assert_allclose(got, [[3.0, 6.0]])


def test_tokens_of_a_text_are_its_windows_in_order() -> None:
    reducer = ChunkReducer([1, 2], [1, 1, 1])
    assert reducer.join_tokens([["a"], ["b", "c"], ["d"]]) == [["a"], ["b", "c", "d"]]


def test_tokenizer_windows_are_the_full_text_cut_with_specials(minilm_dir: Path) -> None:
    tokenizer = WordPieceTokenizer(minilm_dir / "vocab.txt", max_seq_len=8)
    long_text = " ".join(f"word{i}" for i in range(20))
    full = [p.id for p in tokenizer.pieces(long_text)]
    rows, per_text = tokenizer.tokenize_windows(["short", long_text, Dual("a", "b")], overlap=2)
    windows = [rows.row(i).tolist() for i in range(len(rows))]
    cls, sep = tokenizer.cls_id, tokenizer.sep_id
    starts = window_starts(len(full), 6, 2)
    assert per_text == [1, len(starts), 1]
    assert windows[0] == tokenizer.tokenize_rows(["short"]).row(0).tolist()
    assert windows[1:-1] == [[cls, *full[s: s + 6], sep] for s in starts]
    assert windows[-1] == tokenizer.tokenize_rows([Dual("a", "b")]).row(0).tolist()
    assert tokenizer.full_lengths(["short", long_text, Dual("a", "b")]) == [
        len(windows[0]), len(full) + 2, 5]


def test_a_chunked_job_crosses_the_sink_as_one_row_per_text() -> None:
    """The ventilator's JOB message carries the layout; the sink's assembly folds on completion."""
    job = JobMessage(JobKey(b"client", 7), 3, True, [9, 5], windows=[2, 1], weights=[4, 2, 5])
    again = decode_sink_control(encode_job(job))
    assert again == job
    plain = decode_sink_control(encode_job(JobMessage(JobKey(b"c", 1), 2, False, [3, 3])))
    assert isinstance(plain, JobMessage) and plain.windows is None
    assert isinstance(again, JobMessage)
    assert again.windows is not None and again.weights is not None
    assembly = JobAssembly(again.key, again.num_rows, want_tokens=True,
                           chunks=ChunkReducer(again.windows, again.weights, "mean"))
    windows = np.array([[1.0, 0.0], [4.0, 3.0], [7.0, 7.0]], dtype=np.float32)
    assembly.add([2, 0], windows[[2, 0]], [["[CLS]", "c", "[SEP]"], ["[CLS]", "a", "[SEP]"]])
    assert not assembly.complete
    assembly.add([1], windows[[1]], [["[CLS]", "b", "[SEP]"]])
    vectors, tokens = assembly.result()
    np.testing.assert_allclose(vectors, [[2.0, 1.0], [7.0, 7.0]])  # (4*[1,0] + 2*[4,3]) / 6
    assert tokens == [["[CLS]", "a", "[SEP]", "[CLS]", "b", "[SEP]"], ["[CLS]", "c", "[SEP]"]]
