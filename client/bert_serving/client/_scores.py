"""Classifier logits as rankings and predictions: what `rerank` and `predict` return.

A server that serves a sequence-classification model answers `encode` (and
`encode_inputs`, where a sentence pair is a `Dual`) with its logits, one row of
num_labels per text or pair.
These pure functions turn those rows into scores on the client
side, as text-embeddings-inference does on its side:

- one logit (a cross-encoder): the score is sigmoid(logit);
- several logits (a classifier): softmax over them;
- `raw_scores`: the logits themselves.

Usage::

    ranks = ranked(logits[:, 0], raw_scores=False)          # best first
    labels = predictions(logits, ("neg", "pos"), raw_scores=False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Prediction", "Rank", "predictions", "ranked", "scores"]


@dataclass(frozen=True)
class Rank:
    """One text of a `rerank`: its index in the texts sent, and its score."""

    index: int
    score: float


@dataclass(frozen=True)
class Prediction:
    """One label of a `predict` and its score."""

    label: str
    score: float


def scores(logits: np.ndarray, *, raw_scores: bool) -> np.ndarray:
    """(N, L) logits as scores: sigmoid for L == 1, softmax over L > 1, or as they are."""
    values = np.asarray(logits, dtype=np.float64)
    if raw_scores:
        return values
    if values.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-values))
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def ranked(logits: np.ndarray, *, raw_scores: bool) -> list[Rank]:
    """Texts by score, best first (ties keep the texts' order); `logits` is (N, 1)."""
    values = scores(logits, raw_scores=raw_scores)[:, 0]
    order = np.argsort(-values, kind="stable")
    return [Rank(int(i), float(values[i])) for i in order]


def predictions(logits: np.ndarray, labels: Sequence[str], *,
                raw_scores: bool) -> list[list[Prediction]]:
    """Per text, every label with its score, best first."""
    values = scores(logits, raw_scores=raw_scores)
    rows = []
    for row in values:
        order = np.argsort(-row, kind="stable")
        rows.append([Prediction(labels[i], float(row[i])) for i in order])
    return rows
