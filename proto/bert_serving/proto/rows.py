"""Rows of one result, written in any order into one preallocated array.

Shared by the server's sink (a request's rows from many batches) and the client
(a long `encode` from many requests), so how rows of different shapes are put
together is decided here only: pooled rows (N, width) must all have the same
shape; token-level rows (N, tokens, width) may come with different token
counts (each batch is padded to its own longest text), and the array then takes
the longest, but at least `min_tokens`, zero-padding the shorter rows on the
right.

Usage::

    rows = RowBuffer(total=5, min_tokens=25)
    rows.write(np.array([4, 0]), vectors)     # or a slice: rows.write(slice(0, 2), vectors)
    array = rows.array
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["RowBuffer", "RowShapeError", "ragged_positions"]


def ragged_positions(lengths: np.ndarray,
                     rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the entries of `rows` lie in ragged rows of `lengths` laid end to end, and their
    lengths: a gather of whole rows in one step, for token ids and sparse rows alike."""
    index = np.asarray(rows, dtype=np.int64)
    taken = lengths[index]
    starts = (np.cumsum(lengths) - lengths)[index]
    placed = np.cumsum(taken) - taken
    positions = np.arange(int(taken.sum())) + np.repeat(starts - placed, taken)
    return positions, taken


class RowShapeError(ValueError):
    """Rows whose shape cannot join the rows already written."""


class RowBuffer:
    """The output array of `total` rows, allocated when the first rows show shape and dtype."""

    def __init__(self, total: int, *, min_tokens: int = 0) -> None:
        self.total = total
        self.min_tokens = min_tokens
        """Token-level rows are at least this long (-max_seq_len, as the original sent them)."""
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            raise RuntimeError("no rows have been written")
        return self._array

    def write(self, target: np.ndarray | slice, values: np.ndarray) -> None:
        """Put `values[i]` at row `target[i]`, widening token-level output if need be.

        Each row is written once (the array starts as zeros, which pad shorter rows).
        """
        array = self._fit(values)
        if values.ndim == 3 and values.shape[1] < array.shape[1]:
            array[target, : values.shape[1]] = values
        else:
            array[target] = values

    def _fit(self, values: np.ndarray) -> np.ndarray:
        if values.ndim < 1:
            raise RowShapeError("a scalar is not rows")
        if self._array is None:
            shape = list(values.shape)
            if values.ndim == 3:
                shape[1] = max(shape[1], self.min_tokens)
            self._array = np.zeros((self.total, *shape[1:]), dtype=values.dtype)
        elif values.ndim != self._array.ndim or (
                values.shape[2:] if values.ndim == 3 else values.shape[1:]) != (
                self._array.shape[2:] if values.ndim == 3 else self._array.shape[1:]):
            raise RowShapeError(f"rows of shape {list(values.shape[1:])} after rows of shape "
                                f"{list(self._array.shape[1:])}")
        elif values.ndim == 3 and values.shape[1] > self._array.shape[1]:
            wider = np.zeros((self.total, *values.shape[1:]), dtype=self._array.dtype)
            wider[:, : self._array.shape[1]] = self._array
            self._array = wider
        return self._array
