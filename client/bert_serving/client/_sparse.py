"""Sparse vectors (SPLADE's term weights) from the dense rows a sparse model's server sends.

A server started with `-head sparse` answers `encode` with one row of vocabulary-size
term weights per text, mostly zeros; `BertClient.encode_sparse` keeps each row's
nonzero entries. No scipy: a `SparseVector` is two numpy arrays, which
`scipy.sparse.csr_matrix((values, indices, indptr))` or a vector store takes as is.

Usage::

    vectors = to_sparse_vectors(rows)      # rows: (N, vocab_size) array
    vectors[0].indices, vectors[0].values  # int64 term ids (ascending), float32 weights
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["SPARSE_HEAD", "SparseVector", "to_sparse_vectors"]

SPARSE_HEAD = "sparse"
"""The server config's `model_head` of a sparse model."""


class SparseVector(NamedTuple):
    """One text's nonzero term weights: vocabulary ids, ascending, and their values."""

    indices: np.ndarray  # int64
    values: np.ndarray  # float32

    def to_dict(self) -> dict[int, float]:
        """{term id: weight}, the form many vector stores take."""
        return dict(zip(self.indices.tolist(), self.values.tolist(), strict=True))


def to_sparse_vectors(rows: np.ndarray) -> list[SparseVector]:
    """Each row's nonzero entries (exact zeros dropped: the graph's relu makes them)."""
    if rows.ndim != 2:
        raise ValueError(f"expected one row of term weights per text, got shape {rows.shape}")
    vectors = []
    for row in rows:
        indices = np.flatnonzero(row).astype(np.int64)
        vectors.append(SparseVector(indices, row[indices].astype(np.float32)))
    return vectors
