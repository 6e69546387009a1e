"""Texts longer than the model's window: -truncation chunk splits them, and joins the vectors.

A text (not a pair) whose tokens exceed ``-max_seq_len`` is cut into windows of
at most ``max_seq_len`` tokens, its special tokens included, the next window
starting ``overlap`` tokens before the previous one ended. Every window is a
row like any other (same scheduler, same batching by length); the sink puts
the windows' pooled vectors back into one row per text:

* ``REDUCE_MEAN``: the token-weighted mean of the windows' means, which is the
  mean over every token of every window (tokens in an overlap count twice);
  the weights are the tokens each window pooled (without [CLS]/[SEP] under
  -mask_cls_sep).
* ``REDUCE_MAX``: the element-wise max over the windows, the max over all tokens.
* ``REDUCE_MEAN_MAX``: the first half as REDUCE_MEAN, the second as REDUCE_MAX.
* CLS-type strategies (``CLS_TOKEN``/``FIRST_TOKEN``, ``SEP_TOKEN``/``LAST_TOKEN``,
  ``CLS_POOLED``) and ``MODEL``: each window has its own [CLS]; the text's vector
  is the token-weighted mean of those, an approximation, not the model's view
  of the whole text (no such view exists beyond its window).
* Normalized vectors (``MODEL`` with a Normalize module) are L2-normalized again
  after the reduction.
* ``NONE`` (one vector per token) does not chunk: the server refuses the flag pair.
* A sparse model (SPLADE, ``-head sparse``): per vocabulary term, the max over the
  windows. SPLADE's weight is already a max over a text's tokens, so this is the max
  over every token of every window, as ``REDUCE_MAX`` is.
* A classifier or cross-encoder does not chunk (refused at start): a logit per window
  has no agreed join, and no mean or max of them is the model's score of the text.

Pure numpy, no sockets: the tokenizer calls `window_starts`, the sink `ChunkReducer`.

Usage::

    starts = window_starts(num_tokens, width=23, overlap=4)
    reducer = ChunkReducer(per_text=[1, 3], weights=[9, 25, 25, 12], reduction="mean")
    vectors = reducer.reduce(window_vectors)     # [2, hidden]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bert_serving.proto.sparse import SparseRows

from ..errors import ConfigError
from .pooling import PoolingStrategy

__all__ = [
    "TRUNCATION_MODES",
    "ChunkReducer",
    "Reduction",
    "Truncation",
    "reduction_for",
    "window_starts",
]

Truncation = Literal["truncate", "error", "chunk"]
TRUNCATION_MODES: tuple[Truncation, ...] = ("truncate", "error", "chunk")
Reduction = Literal["mean", "max", "mean_max"]


def window_starts(num_tokens: int, width: int, overlap: int) -> list[int]:
    """Where each window of `width` tokens starts, so that every token is in one.

    ``window_starts(10, 4, 1) == [0, 3, 6]``: windows [0:4], [3:7], [6:10]. An
    empty text still has one (empty) window, so it keeps its row.
    """
    if not 0 <= overlap < width:
        raise ConfigError(f"-chunk_overlap {overlap} must be at least 0 and below the "
                          f"{width} text tokens of a window")
    return list(range(0, max(num_tokens - overlap, 1), width - overlap))


def reduction_for(strategy: PoolingStrategy) -> Reduction:
    """How windows of this pooling join (see the module docstring); NONE cannot."""
    if strategy is PoolingStrategy.NONE:
        raise ConfigError("-truncation chunk needs one vector per text: with -pooling_strategy "
                          "NONE (a vector per token) use -truncation truncate or error")
    if strategy is PoolingStrategy.REDUCE_MAX:
        return "max"
    if strategy is PoolingStrategy.REDUCE_MEAN_MAX:
        return "mean_max"
    return "mean"


@dataclass(frozen=True)
class ChunkReducer:
    """One request's window layout, and how to fold its window vectors into text vectors."""

    per_text: Sequence[int]
    """Windows of each text, in order (1 for a text that fit)."""
    weights: Sequence[int]
    """Tokens each window pooled, in window order."""
    reduction: Reduction = "mean"
    normalize: bool = False

    @property
    def num_windows(self) -> int:
        return len(self.weights)

    def reduce(self, vectors: np.ndarray) -> np.ndarray:
        """[windows, width] -> [texts, width], in the texts' order."""
        starts = np.cumsum(self.per_text) - np.asarray(self.per_text)
        as_float = vectors.astype(np.float32, copy=False)
        if self.reduction == "max":
            reduced = np.maximum.reduceat(as_float, starts, axis=0)
        elif self.reduction == "mean":
            reduced = self._weighted_mean(as_float, starts)
        else:
            half = vectors.shape[1] // 2
            reduced = np.concatenate([self._weighted_mean(as_float[:, :half], starts),
                                      np.maximum.reduceat(as_float[:, half:], starts, axis=0)],
                                     axis=1)
        if self.normalize:
            norms = np.linalg.norm(reduced, axis=1, keepdims=True)
            reduced = reduced / np.maximum(norms, 1e-12)
        return reduced.astype(vectors.dtype, copy=False)

    def reduce_sparse(self, rows: SparseRows) -> SparseRows:
        """[windows] -> [texts] sparse rows: each term's largest weight over a text's windows."""
        return rows.max_over(self.per_text)

    def _weighted_mean(self, vectors: np.ndarray, starts: np.ndarray) -> np.ndarray:
        weights = np.asarray(self.weights, dtype=np.float64)
        totals = np.add.reduceat(weights, starts)
        # A text whose windows pooled nothing (empty, -mask_cls_sep): the plain mean.
        weights = np.where(np.repeat(totals, self.per_text) > 0, weights, 1.0)
        totals = np.add.reduceat(weights, starts)
        summed = np.add.reduceat(vectors * weights[:, None], starts, axis=0)
        return (summed / totals[:, None]).astype(np.float32)

    def join_tokens(self, tokens: list[list[str]]) -> list[list[str]]:
        """Per text, its windows' tokens one after the other (each with its [CLS]/[SEP])."""
        out, at = [], 0
        for count in self.per_text:
            out.append([t for window in tokens[at: at + count] for t in window])
            at += count
        return out
