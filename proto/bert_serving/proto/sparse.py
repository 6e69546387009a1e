"""Sparse rows (SPLADE's term weights) in CSR form: what a sparse model's server sends.

A sparse model's graph gives every text one weight per vocabulary term (30,522 for
BERT's vocabulary), of which a text has a few hundred nonzero. Dense, that is 4 bytes
a term on every hop (worker, sink, client); kept as compressed rows it is 8 bytes a
nonzero. The worker keeps the nonzeros (`SparseRows.from_dense`), the sink puts a
request's rows in order (`take`, `concatenate`, and `max_over` for -truncation chunk
windows), and the reply carries them unless the client asked for dense rows (the
1.10 client always does: it gets `to_dense()`, the array it got before).

One layout, for the worker's result and the client's reply alike (`sparse_frames`,
`read_sparse_frames`): header fields ``{"dtype", "shape": [rows, width], "layout":
"csr", "nnz"}`` and three raw frames::

    offsets   int64 [rows + 1]   row i is entries offsets[i]:offsets[i + 1]
    indices   int32 [nnz]        term ids, ascending within each row
    values    dtype [nnz]        float32 (float16 under -fp16)

`read_sparse_frames` is total: whatever arrives, it returns rows that satisfy every
rule above or raises SparseFormatError naming the broken one.

Usage::

    rows = SparseRows.from_dense(weights)         # (N, vocab) -> CSR
    fields, frames = sparse_frames(rows)
    again = read_sparse_frames(fields, frames)    # equal to rows
    indices, values = again.row(0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rows import ragged_positions

__all__ = [
    "SPARSE_DTYPES",
    "SPARSE_LAYOUT",
    "SparseFormatError",
    "SparseRows",
    "read_sparse_frames",
    "sparse_frames",
]

SPARSE_LAYOUT = "csr"
"""The `layout` header field of a sparse reply or result."""
SPARSE_DTYPES = ("float32", "float16")
"""What a sparse value may be: the server's reply dtypes."""


class SparseFormatError(ValueError):
    """Frames that are not sparse rows; the message names the rule they break."""


@dataclass(frozen=True)
class SparseRows:
    """Rows of term weights in compressed sparse row form, `width` terms wide."""

    offsets: np.ndarray
    """int64 [rows + 1]: where each row's entries start; offsets[-1] is the entry count."""
    indices: np.ndarray
    """int32 [nnz]: term ids, ascending within each row."""
    values: np.ndarray
    """[nnz]: the weights, float32 or float16."""
    width: int
    """Terms per row: the model's vocabulary size."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    @classmethod
    def from_dense(cls, rows: np.ndarray) -> SparseRows:
        """The nonzero entries of (N, width) rows; exact zeros (SPLADE's relu) are dropped."""
        if rows.ndim != 2:
            raise ValueError(f"sparse rows come from one row per text, got shape {rows.shape}")
        row_ids, indices = np.nonzero(rows)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(np.bincount(row_ids, minlength=len(rows)), out=offsets[1:])
        return cls(offsets, indices.astype(np.int32), rows[row_ids, indices], rows.shape[1])

    @classmethod
    def concatenate(cls, parts: Sequence[SparseRows]) -> SparseRows:
        """The rows of every part, one after the other (parts of one width and dtype)."""
        if not parts or len({part.width for part in parts}) != 1:
            raise ValueError(f"sparse rows to concatenate need one width, got "
                             f"{sorted({part.width for part in parts})}")
        if len(parts) == 1:
            return parts[0]
        ends = np.cumsum([part.nnz for part in parts]) - [part.nnz for part in parts]
        offsets = np.concatenate([[0], *(part.offsets[1:] + end
                                         for part, end in zip(parts, ends, strict=True))])
        return cls(offsets.astype(np.int64), np.concatenate([p.indices for p in parts]),
                   np.concatenate([p.values for p in parts]), parts[0].width)

    def row_ids(self) -> np.ndarray:
        """The row of each entry."""
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def row(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One row's (indices, values), as views."""
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.indices[start:end], self.values[start:end]

    def take(self, rows: Sequence[int] | np.ndarray) -> SparseRows:
        """These rows, in this order (one gather, no per-row objects)."""
        positions, counts = ragged_positions(np.diff(self.offsets), rows)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return SparseRows(offsets, self.indices[positions], self.values[positions], self.width)

    def __getitem__(self, rows: slice) -> SparseRows:
        """Consecutive rows, as `array[start:stop]` takes them."""
        return self.take(np.arange(len(self))[rows])

    def to_dense(self) -> np.ndarray:
        """(rows, width) in the values' dtype: what a client that asked for dense rows gets."""
        dense = np.zeros((len(self), self.width), dtype=self.values.dtype)
        dense[self.row_ids(), self.indices] = self.values
        return dense

    def max_over(self, per_group: Sequence[int]) -> SparseRows:
        """One row per group of consecutive rows: each term's largest weight in the group.

        -truncation chunk's rule for SPLADE, whose weight is already a max over tokens:
        the max over a text's windows is the max over every token of every window.
        A term missing from a row counts as 0, below any weight relu leaves.
        """
        counts = np.asarray(per_group, dtype=np.int64)
        groups = np.repeat(np.arange(len(counts)), counts)[self.row_ids()]
        keys = groups * self.width + self.indices
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], self.values[order]
        starts = np.flatnonzero(np.diff(keys, prepend=-1))
        maxima = (np.maximum.reduceat(values, starts) if len(values)
                  else values[:0])
        unique = keys[starts]
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(np.bincount(unique // self.width, minlength=len(counts)), out=offsets[1:])
        return SparseRows(offsets, (unique % self.width).astype(np.int32), maxima, self.width)


def sparse_frames(rows: SparseRows) -> tuple[dict[str, Any], list[memoryview]]:
    """The header fields and the three raw frames of `rows` (the arrays' own buffers)."""
    fields = {"dtype": str(rows.values.dtype), "shape": [len(rows), rows.width],
              "layout": SPARSE_LAYOUT, "nnz": rows.nnz}
    arrays = (np.ascontiguousarray(rows.offsets, np.int64),
              np.ascontiguousarray(rows.indices, np.int32), np.ascontiguousarray(rows.values))
    return fields, [array.data for array in arrays]


def read_sparse_frames(fields: Mapping[str, Any], frames: Sequence[bytes]) -> SparseRows:
    """Rows from `sparse_frames`' output, every rule checked; SparseFormatError otherwise."""
    if not isinstance(fields, Mapping) or fields.get("layout") != SPARSE_LAYOUT:
        raise SparseFormatError(f"the header's layout must be {SPARSE_LAYOUT!r}")
    if fields.get("dtype") not in SPARSE_DTYPES:
        raise SparseFormatError(f"sparse values must be one of {SPARSE_DTYPES}, "
                                f"got {str(fields.get('dtype'))[:40]!r}")
    num_rows, width = _shape(fields.get("shape"))
    if len(frames) != 3:
        raise SparseFormatError(f"sparse rows are 3 frames (offsets, indices, values), "
                                f"got {len(frames)}")
    offsets = _array(frames[0], np.int64, num_rows + 1, "offsets")
    if offsets[0] != 0 or (np.diff(offsets) < 0).any():
        raise SparseFormatError("offsets must start at 0 and never decrease")
    nnz = int(offsets[-1])
    if fields.get("nnz") != nnz:
        raise SparseFormatError(f"the header says {str(fields.get('nnz'))[:20]} entries, "
                                f"the offsets {nnz}")
    indices = _array(frames[1], np.int32, nnz, "indices")
    values = _array(frames[2], np.dtype(fields["dtype"]), nnz, "values")
    rows = SparseRows(offsets, indices, values, width)
    _check_indices(rows)
    return rows


def _shape(shape: Any) -> tuple[int, int]:
    if not (isinstance(shape, list) and len(shape) == 2
            and all(type(n) is int and 0 <= n < 2**31 for n in shape)):
        raise SparseFormatError(f"the shape must be [rows, width], got {str(shape)[:40]}")
    return shape[0], shape[1]


def _array(frame: bytes, dtype: np.dtype[Any] | type, count: int, name: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if len(frame) != size * count:
        raise SparseFormatError(f"{name} has {len(frame)} bytes; {count} entries of "
                                f"{np.dtype(dtype)} are {size * count}")
    return np.frombuffer(frame, dtype=dtype)


def _check_indices(rows: SparseRows) -> None:
    """Term ids inside the width, strictly ascending within each row."""
    indices = rows.indices
    if len(indices) and (indices.min() < 0 or indices.max() >= rows.width):
        raise SparseFormatError(f"term ids must lie in 0..{rows.width - 1}")
    rising = np.diff(indices.astype(np.int64)) > 0
    row_starts = rows.offsets[1:-1]
    crossings = row_starts[(row_starts > 0) & (row_starts < len(indices))] - 1
    rising[crossings] = True  # a row's first id need not exceed the last row's last
    if not rising.all():
        raise SparseFormatError("term ids must be strictly ascending within each row")
