"""What a served model's graph outputs, and so which jobs (and HTTP routes) it answers.

One server serves one model. An embedding model pools encoder states into sentence
vectors; a classifier (sequence classification, cross-encoders) outputs logits; a
sparse model (SPLADE, a masked-LM head) outputs one weight per vocabulary term. The
head is decided once, when the model is converted, and recorded in the graph's
metadata so every later reader (worker, HTTP routes, /info) agrees.
"""

from __future__ import annotations

import enum

__all__ = ["ModelHead"]


class ModelHead(str, enum.Enum):
    """The kind of output a graph computes; its value is what `/info` reports."""

    EMBEDDING = "embedding"
    """Pooled sentence vectors, shape (N, output_width) (or token vectors for NONE)."""
    CLASSIFIER = "classifier"
    """Sequence-classification logits, shape (N, num_labels): classifiers and rerankers."""
    SPARSE = "sparse"
    """SPLADE term weights log(1 + relu(logits)) max-pooled over real tokens, (N, vocab)."""

    def __str__(self) -> str:
        return self.value
