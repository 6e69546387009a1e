"""Reassembling one request's rows from the batches they ran in, in the order sent.

Pure logic for the sink. Rows arrive in any order, from any worker, possibly
twice (a batch re-run after its worker died after sending): each row is written
once into one preallocated array, so the reply is never held twice. A sparse
model's rows arrive as nonzeros (`SparseRows`) and stay so: the pieces are kept
and put in order once, when the last arrives.

Usage::

    job = JobAssembly(JobKey(b"client", 3), num_rows=5, want_tokens=False)   # proto.internal
    job.add([4, 0], vectors)          # rows 4 and 0 of the request
    if job.complete: publish(job.result())
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bert_serving.proto.internal import JobKey
from bert_serving.proto.rows import RowBuffer
from bert_serving.proto.sparse import SparseRows

from ..model.chunking import ChunkReducer

__all__ = ["JobAssembly"]


class JobAssembly:
    """The rows of one request, filled in as batches finish."""

    def __init__(self, key: JobKey, num_rows: int, *, want_tokens: bool = False,
                 chunks: ChunkReducer | None = None, token_counts: list[int] | None = None,
                 min_tokens: int = 0, columns: slice = slice(None),
                 sparse_reply: bool = False,
                 finish: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.key = key
        self.finish = finish
        """The last step of the dense rows, once folded (a requested precision's quantizing)."""
        self.sparse_reply = sparse_reply
        """The client asked for a sparse model's nonzeros, not dense rows."""
        self.columns = columns
        """The columns of the graph's rows this request gets (a graph may pool two ways)."""
        self.chunks = chunks
        """-truncation chunk: rows are windows, folded into one per text by `result`."""
        self.token_counts = token_counts
        """Tokens the model read per text, for the reply header."""
        self.num_rows = num_rows
        self.created = time.monotonic()
        self._rows = RowBuffer(num_rows, min_tokens=min_tokens)
        self._sparse: list[tuple[np.ndarray, SparseRows]] = []  # (target rows, their rows)
        self._filled = np.zeros(num_rows, dtype=bool)
        self._filled_count = 0
        self._tokens: list[list[str]] | None = (
            [[] for _ in range(num_rows)] if want_tokens else None
        )

    @property
    def complete(self) -> bool:
        return self._filled_count == self.num_rows

    def add(
        self, rows: list[int], vectors: np.ndarray | SparseRows,
        tokens: list[list[str]] | None = None
    ) -> None:
        """Write `vectors[i]` to row `rows[i]`; rows already filled are left as they are."""
        index = np.asarray(rows, dtype=np.int64)
        fresh = ~self._filled[index]
        if not fresh.any():
            return
        if isinstance(vectors, SparseRows):
            self._sparse.append((index[fresh], vectors.take(np.flatnonzero(fresh))))
        else:
            self._rows.write(index[fresh], vectors[fresh][..., self.columns])
        self._filled[index[fresh]] = True
        self._filled_count += int(fresh.sum())
        if self._tokens is not None and tokens is not None:
            for row, row_tokens, is_fresh in zip(rows, tokens, fresh, strict=False):
                if is_fresh:
                    self._tokens[row] = row_tokens

    def result(self) -> tuple[np.ndarray | SparseRows, list[list[str]] | None]:
        """The rows in the request's order (windows folded, then `finish`ed), sparse if they
        came sparse."""
        rows, tokens = self._folded()
        if self.finish is not None and isinstance(rows, np.ndarray):
            rows = self.finish(rows)
        return rows, tokens

    def _folded(self) -> tuple[np.ndarray | SparseRows, list[list[str]] | None]:
        assert self.complete
        rows = self._sparse_rows() if self._sparse else self._rows.array
        if self.chunks is None:
            return rows, self._tokens
        tokens = self.chunks.join_tokens(self._tokens) if self._tokens is not None else None
        if isinstance(rows, SparseRows):
            return self.chunks.reduce_sparse(rows), tokens
        return self.chunks.reduce(rows), tokens

    def _sparse_rows(self) -> SparseRows:
        targets = np.concatenate([target for target, _ in self._sparse])
        rows = SparseRows.concatenate([piece for _, piece in self._sparse])
        return rows.take(np.argsort(targets, kind="stable"))

    def age(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.created
