"""Reassembling one request's rows from the batches they ran in, in the order sent.

Pure logic for the sink. Rows arrive in any order, from any worker, possibly
twice (a batch re-run after its worker died after sending): each row is written
once into one preallocated array, so the reply is never held twice.

Usage::

    job = JobAssembly(JobKey(b"client", 3), num_rows=5, want_tokens=False)
    job.add([4, 0], vectors)          # rows 4 and 0 of the request
    if job.complete: publish(job.result())
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .chunking import ChunkReducer

__all__ = ["JobAssembly", "JobKey"]


@dataclass(frozen=True, order=True)
class JobKey:
    """A request is named by its client and that client's request id."""

    client_id: bytes
    req_id: int


class JobAssembly:
    """The rows of one request, filled in as batches finish."""

    def __init__(self, key: JobKey, num_rows: int, *, want_tokens: bool = False,
                 chunks: ChunkReducer | None = None) -> None:
        self.key = key
        self.chunks = chunks
        """-truncation chunk: rows are windows, folded into one per text by `result`."""
        self.num_rows = num_rows
        self.created = time.monotonic()
        self._array: np.ndarray | None = None
        self._filled = np.zeros(num_rows, dtype=bool)
        self._filled_count = 0
        self._tokens: list[list[str]] | None = (
            [[] for _ in range(num_rows)] if want_tokens else None
        )

    @property
    def complete(self) -> bool:
        return self._filled_count == self.num_rows

    def add(
        self, rows: list[int], vectors: np.ndarray, tokens: list[list[str]] | None = None
    ) -> None:
        """Write `vectors[i]` to row `rows[i]`; rows already filled are left as they are."""
        index = np.asarray(rows, dtype=np.int64)
        fresh = ~self._filled[index]
        if not fresh.any():
            return
        array = self._storage_for(vectors)
        target, source = index[fresh], vectors[fresh]
        if array.ndim == 3:  # token vectors: shorter batches are zero-padded on the right
            array[target, : source.shape[1]] = source
        else:
            array[target] = source
        self._filled[target] = True
        self._filled_count += int(fresh.sum())
        if self._tokens is not None and tokens is not None:
            for row, row_tokens, is_fresh in zip(rows, tokens, fresh, strict=False):
                if is_fresh:
                    self._tokens[row] = row_tokens

    def _storage_for(self, vectors: np.ndarray) -> np.ndarray:
        """The output array, allocated on the first batch, widened for longer token rows."""
        if self._array is None:
            self._array = np.zeros((self.num_rows, *vectors.shape[1:]), dtype=vectors.dtype)
        elif vectors.ndim == 3 and vectors.shape[1] > self._array.shape[1]:
            wider = np.zeros((self.num_rows, *vectors.shape[1:]), dtype=self._array.dtype)
            wider[:, : self._array.shape[1]] = self._array
            self._array = wider
        return self._array

    def result(self) -> tuple[np.ndarray, list[list[str]] | None]:
        assert self._array is not None and self.complete
        if self.chunks is None:
            return self._array, self._tokens
        tokens = self.chunks.join_tokens(self._tokens) if self._tokens is not None else None
        return self.chunks.reduce(self._array), tokens

    def age(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.created
