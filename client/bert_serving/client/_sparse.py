"""Sparse vectors (SPLADE's term weights): what `BertClient.encode_sparse` returns.

A server started with `-head sparse` sends a request that asks (`encode_sparse`) only
each row's nonzeros, as compressed rows (`bert_serving.proto.sparse.SparseRows`);
`sparse_vectors` cuts them into one `SparseVector` per text, views of one buffer. The
dense `encode` of such a server (and the 1.10 client) still gets vocabulary-wide rows,
which `to_sparse_vectors` reduces the same way. No scipy: a `SparseVector` is two
numpy arrays, which `scipy.sparse.csr_matrix((values, indices, indptr))` or a vector
store takes as is.

Usage::

    vectors = sparse_vectors(rows)         # rows: SparseRows of N texts
    vectors[0].indices, vectors[0].values  # int64 term ids (ascending), float32 weights
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bert_serving.proto.sparse import SparseRows

__all__ = ["SPARSE_HEAD", "SparseVector", "sparse_vectors", "to_sparse_vectors"]

SPARSE_HEAD = "sparse"
"""The server config's `model_head` of a sparse model."""


class SparseVector(NamedTuple):
    """One text's nonzero term weights: vocabulary ids, ascending, and their values."""

    indices: np.ndarray  # int64
    values: np.ndarray  # float32

    def to_dict(self) -> dict[int, float]:
        """{term id: weight}, the form many vector stores take."""
        return dict(zip(self.indices.tolist(), self.values.tolist(), strict=True))


def sparse_vectors(rows: SparseRows) -> list[SparseVector]:
    """One vector per row: int64 ids and float32 weights, views into two arrays for all."""
    indices = rows.indices.astype(np.int64)
    values = rows.values.astype(np.float32)
    cuts = rows.offsets[1:-1]
    return [SparseVector(i, v) for i, v in zip(np.split(indices, cuts), np.split(values, cuts),
                                               strict=True)]


def to_sparse_vectors(rows: np.ndarray) -> list[SparseVector]:
    """Each dense row's nonzero entries (exact zeros dropped: the graph's relu makes them)."""
    if rows.ndim != 2:
        raise ValueError(f"expected one row of term weights per text, got shape {rows.shape}")
    return sparse_vectors(SparseRows.from_dense(rows))
