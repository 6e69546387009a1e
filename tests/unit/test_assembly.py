"""Reassembly of a request's rows from batches arriving in any order, possibly twice."""

from __future__ import annotations

import numpy as np
import pytest

from bert_serving.proto.internal import JobKey
from bert_serving.proto.rows import RowBuffer, RowShapeError
from bert_serving.proto.sparse import SparseRows
from bert_serving.server.model.chunking import ChunkReducer
from bert_serving.server.pipeline.assembly import JobAssembly


def test_rows_land_in_request_order_whatever_the_batch_order() -> None:
    job = JobAssembly(JobKey(b"c", 1), 6)
    vectors = np.arange(6 * 3, dtype=np.float32).reshape(6, 3)
    job.add([5, 1], vectors[[5, 1]])
    assert not job.complete
    job.add([0, 2, 4], vectors[[0, 2, 4]])
    job.add([3], vectors[[3]])
    assert job.complete
    array, tokens = job.result()
    np.testing.assert_array_equal(array, vectors)
    assert tokens is None


def test_a_rerun_batch_does_not_count_twice() -> None:
    job = JobAssembly(JobKey(b"c", 1), 3)
    first = np.ones((2, 4), np.float32)
    job.add([0, 1], first)
    job.add([0, 1], first * 7)  # the same batch again, after a worker restart
    assert not job.complete
    job.add([2], np.full((1, 4), 2, np.float32))
    array, _ = job.result()
    np.testing.assert_array_equal(array[:2], first)


def test_token_level_rows_of_different_lengths_are_zero_padded() -> None:
    job = JobAssembly(JobKey(b"c", 1), 2, want_tokens=True)
    job.add([1], np.ones((1, 5, 2), np.float32), [["[CLS]", "long", "[SEP]"]])
    job.add([0], np.full((1, 3, 2), 2, np.float32), [["[CLS]", "[SEP]"]])
    array, tokens = job.result()
    assert array.shape == (2, 5, 2)
    np.testing.assert_array_equal(array[0, 3:], 0)
    assert tokens == [["[CLS]", "[SEP]"], ["[CLS]", "long", "[SEP]"]]


def test_token_level_rows_are_at_least_min_tokens_long() -> None:
    """-max_seq_len N with pooling NONE: every reply is N tokens long, as the original's."""
    job = JobAssembly(JobKey(b"c", 1), 2, min_tokens=6)
    job.add([0, 1], np.ones((2, 3, 2), np.float32))
    array, _ = job.result()
    assert array.shape == (2, 6, 2)
    np.testing.assert_array_equal(array[:, 3:], 0)
    np.testing.assert_array_equal(array[:, :3], 1)


def test_pooled_rows_ignore_min_tokens_and_must_agree_in_width() -> None:
    rows = RowBuffer(3, min_tokens=6)
    rows.write(slice(0, 2), np.ones((2, 4), np.float32))
    assert rows.array.shape == (3, 4)
    with pytest.raises(RowShapeError, match=r"rows of shape \[5\] after rows of shape \[4\]"):
        rows.write(slice(2, 3), np.ones((1, 5), np.float32))


def test_a_wider_token_chunk_widens_earlier_rows_and_a_narrower_one_is_padded() -> None:
    rows = RowBuffer(3)
    rows.write(slice(0, 1), np.full((1, 2, 2), 1, np.float32))
    rows.write(slice(1, 2), np.full((1, 4, 2), 2, np.float32))
    rows.write(slice(2, 3), np.full((1, 3, 2), 3, np.float32))
    assert rows.array.shape == (3, 4, 2)
    assert rows.array[:, :, 0].tolist() == [[1, 1, 0, 0], [2, 2, 2, 2], [3, 3, 3, 0]]


def _term_weights(rows: int, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    weights = generator.random((rows, 40), dtype=np.float32)
    weights[weights < 0.8] = 0
    return weights


def test_sparse_rows_land_in_request_order_once_each() -> None:
    job = JobAssembly(JobKey(b"c", 1), 5)
    dense = _term_weights(5)
    job.add([4, 1], SparseRows.from_dense(dense[[4, 1]]))
    job.add([4, 1], SparseRows.from_dense(dense[[4, 1]] * 9))  # a re-run batch
    job.add([3, 0, 2], SparseRows.from_dense(dense[[3, 0, 2]]))
    assert job.complete
    rows, _ = job.result()
    assert isinstance(rows, SparseRows)
    np.testing.assert_array_equal(rows.to_dense(), dense)


def test_a_sparse_text_s_windows_fold_into_the_max_per_term() -> None:
    windows = _term_weights(4, seed=1)  # text 0: windows 0, 1, 2; text 1: window 3
    job = JobAssembly(JobKey(b"c", 1), 4, chunks=ChunkReducer([3, 1], [9, 9, 5, 4], "max"))
    job.add([2, 3], SparseRows.from_dense(windows[[2, 3]]))
    job.add([0, 1], SparseRows.from_dense(windows[[0, 1]]))
    rows, _ = job.result()
    assert isinstance(rows, SparseRows)
    np.testing.assert_array_equal(rows.to_dense(), np.stack([windows[:3].max(axis=0),
                                                               windows[3]]))
