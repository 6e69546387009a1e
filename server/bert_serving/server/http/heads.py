"""Which routes a served model answers: one server, one model, one kind of output.

Every route that computes something names the heads it serves and calls
`require_head` first; a request for another kind is answered 400 (422 in
TEI's shape on TEI's routes, OpenAI's 400 under /v1) with a message naming the
kind that is loaded and the routes that kind does answer. `/encode` (the
original route) answers an embedding model's vectors and a classifier's logits;
a sparse model's rows (one weight per vocabulary term) go through
`/embed_sparse`, which keeps only the nonzeros. The ZeroMQ `encode` answers
every head with the graph's rows.

Usage::

    require_head(model, ModelHead.EMBEDDING)     # first line of /embed
"""

from __future__ import annotations

from ..model.head import ModelHead
from .errors import GatewayError, Problem
from .preparation import ServedModel

__all__ = ["ROUTES_OF_HEAD", "require_cross_encoder", "require_head", "require_pooled"]

ROUTES_OF_HEAD = {
    ModelHead.EMBEDDING: "/embed, /embed_all, /v1/embeddings and /encode",
    ModelHead.CLASSIFIER: "/predict, /rerank, /v1/rerank and /encode (its logits)",
    ModelHead.SPARSE: "/embed_sparse",
}
"""What each kind of model answers, for the refusal's message."""

_DESCRIPTIONS = {
    ModelHead.EMBEDDING: "an embedding model",
    ModelHead.CLASSIFIER: "a sequence-classification model (classifier or cross-encoder)",
    ModelHead.SPARSE: "a sparse (SPLADE) model",
}


def require_head(model: ServedModel, *heads: ModelHead) -> None:
    """Refuse, naming the loaded kind, unless the served model's head is one of `heads`."""
    if model.head in heads:
        return
    wanted = " or ".join(_DESCRIPTIONS[head] for head in heads)
    raise GatewayError(Problem(
        "WrongModelKind", 400,
        f"this route needs {wanted}, but this server serves {_DESCRIPTIONS[model.head]} "
        f"({model.name}), which answers {ROUTES_OF_HEAD[model.head]}"))


def require_pooled(model: ServedModel, instead: str) -> None:
    """An embedding model's pooled vectors: refused, with `instead`, under -pooling_strategy
    NONE, whose rows are token vectors."""
    require_head(model, ModelHead.EMBEDDING)
    if model.token_level:
        raise GatewayError(Problem(
            "ValidationError", 422,
            f"this server returns token vectors (-pooling_strategy NONE): {instead}"))


def require_cross_encoder(model: ServedModel) -> None:
    """Reranking needs a sequence classifier with one logit (a cross-encoder)."""
    require_head(model, ModelHead.CLASSIFIER)
    if len(model.labels) != 1:
        raise GatewayError(Problem(
            "WrongModelKind", 400, f"reranking needs a cross-encoder (one logit); this "
            f"server's classifier has {len(model.labels)} labels ({', '.join(model.labels)}): "
            "use /predict"))
