"""Reassembly of a chunked `encode` into one array, without sockets.

Each chunk's rows are copied into a single output array as they arrive, so the
whole result is never held twice (once as replies, once concatenated). A sparse
model's compact replies (`SparseRows`) are kept as they come and joined in text
order by `sparse_result`.

Usage::

    rows = RowAssembler(total=5000)
    rows.put(start=0, count=1024, array=reply.array, tokens=reply.tokens)
    ...
    array, tokens = rows.result()
"""

from __future__ import annotations

import numpy as np

from bert_serving.proto import ErrorKind, ServerError
from bert_serving.proto.rows import RowBuffer, RowShapeError
from bert_serving.proto.sparse import SparseRows

__all__ = ["RowAssembler"]


class RowAssembler:
    """Rows of `total` texts, filled chunk by chunk in any order.

    Token-level output (pooling NONE) can have a different sequence length per
    chunk when the server runs with `-max_seq_len NONE`; `RowBuffer` widens the
    output to the longest and zero-pads shorter rows.
    """

    def __init__(self, total: int) -> None:
        self._total = total
        self._rows = RowBuffer(total)
        self._sparse: dict[int, SparseRows] = {}
        self._filled = 0
        self._tokens: dict[int, list[list[str]]] = {}
        self._token_counts: dict[int, list[int] | None] = {}

    def put(
        self, start: int, count: int, array: np.ndarray | SparseRows,
        tokens: list[list[str]] | None, token_counts: list[int] | None = None,
    ) -> None:
        """Copy the rows of texts[start:start + count] (sparse ones are kept as they are)."""
        rows = len(array) if isinstance(array, SparseRows) else (
            array.shape[0] if array.ndim else None)
        if rows != count:
            raise ServerError(f"the server sent {rows} rows for {count} texts",
                              ErrorKind.BAD_REPLY)
        try:
            if isinstance(array, SparseRows):
                self._sparse[start] = array
            else:
                self._rows.write(slice(start, start + count), array)
        except RowShapeError as error:
            raise ServerError(f"the server sent {error}", ErrorKind.BAD_REPLY) from None
        self._filled += count
        if tokens:
            self._tokens[start] = tokens
        self._token_counts[start] = token_counts

    def result(self) -> tuple[np.ndarray, list[list[str]]]:
        """The full array and the token lists in text order (empty when none were sent)."""
        self._check_complete()
        if self._sparse:
            raise ServerError("the server sent sparse rows to a dense request",
                              ErrorKind.BAD_REPLY)
        tokens = [t for start in sorted(self._tokens) for t in self._tokens[start]]
        return self._rows.array, tokens

    def sparse_result(self) -> SparseRows:
        """The sparse rows of every text, in text order."""
        self._check_complete()
        if sum(len(part) for part in self._sparse.values()) != self._total:
            raise ServerError("the server sent dense rows to a sparse request",
                              ErrorKind.BAD_REPLY)
        parts = [self._sparse[start] for start in sorted(self._sparse)]
        widths = sorted({part.width for part in parts})
        if len(widths) > 1:
            raise ServerError(f"the server sent sparse rows of widths {widths} for one request",
                              ErrorKind.BAD_REPLY)
        return SparseRows.concatenate(parts)

    def token_counts(self) -> list[int] | None:
        """Tokens the model read per text, in text order; None if a reply did not say."""
        self._check_complete()
        parts = [self._token_counts[start] for start in sorted(self._token_counts)]
        if any(part is None for part in parts):
            return None
        return [n for part in parts if part is not None for n in part]

    def _check_complete(self) -> None:
        if self._filled != self._total:
            raise RuntimeError(f"only {self._filled} of {self._total} rows have arrived")
