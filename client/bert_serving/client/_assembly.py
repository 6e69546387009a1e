"""Reassembly of a chunked `encode` into one array, without sockets.

Each chunk's rows are copied into a single output array as they arrive, so the
whole result is never held twice (once as replies, once concatenated).

Usage::

    rows = RowAssembler(total=5000)
    rows.put(start=0, count=1024, array=reply.array, tokens=reply.tokens)
    ...
    array, tokens = rows.result()
"""

from __future__ import annotations

import numpy as np

from bert_serving.proto import ServerError

__all__ = ["RowAssembler"]


class RowAssembler:
    """Rows of `total` texts, filled chunk by chunk in any order.

    The output is allocated when the first chunk shows the row shape and dtype.
    Token-level output (pooling NONE) can have a different sequence length per
    chunk when the server runs with `-max_seq_len NONE`; the output then widens to
    the longest and shorter rows are zero-padded.
    """

    def __init__(self, total: int) -> None:
        self._total = total
        self._out: np.ndarray | None = None
        self._filled = 0
        self._tokens: dict[int, list[list[str]]] = {}

    def put(
        self, start: int, count: int, array: np.ndarray, tokens: list[list[str]] | None
    ) -> None:
        """Copy the rows of texts[start:start + count]."""
        if array.ndim < 1 or array.shape[0] != count:
            raise ServerError(
                f"the server sent shape {list(array.shape)} for {count} texts", "BadReply"
            )
        out = self._fit(array)
        target = out[start : start + count]
        if array.shape[1:] != target.shape[1:]:
            target[...] = 0
        target[(slice(None), *(slice(0, n) for n in array.shape[1:]))] = array
        self._filled += count
        if tokens:
            self._tokens[start] = tokens

    def result(self) -> tuple[np.ndarray, list[list[str]]]:
        """The full array and the token lists in text order (empty when none were sent)."""
        if self._out is None or self._filled != self._total:
            raise RuntimeError(f"only {self._filled} of {self._total} rows have arrived")
        tokens = [t for start in sorted(self._tokens) for t in self._tokens[start]]
        return self._out, tokens

    def _fit(self, array: np.ndarray) -> np.ndarray:
        if self._out is None:
            self._out = np.empty((self._total, *array.shape[1:]), dtype=array.dtype)
        elif array.shape[1:] != self._out.shape[1:]:
            self._out = self._widened(array)
        return self._out

    def _widened(self, array: np.ndarray) -> np.ndarray:
        assert self._out is not None
        if array.ndim != self._out.ndim:
            raise ServerError(
                f"the server sent rows of shape {list(array.shape[1:])} after "
                f"{list(self._out.shape[1:])}",
                "BadReply",
            )
        shape = [max(a, b) for a, b in zip(self._out.shape, array.shape, strict=True)]
        shape[0] = self._total
        if list(self._out.shape) == shape:
            return self._out
        wider = np.zeros(shape, dtype=self._out.dtype)
        wider[tuple(slice(0, n) for n in self._out.shape)] = self._out
        return wider
