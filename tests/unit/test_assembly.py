"""Reassembly of a request's rows from batches arriving in any order, possibly twice."""

from __future__ import annotations

import numpy as np

from bert_serving.server.assembly import JobAssembly, JobKey


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
