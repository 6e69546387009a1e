"""text-embeddings-inference's `/rerank` and `/predict`, over the client's `rerank`/`predict`.

They answer only when the server serves a sequence-classification model
(`require_head`); `/rerank` also needs a cross-encoder, one logit. Scores are
the client's: sigmoid of the single logit for `/rerank` (and for `/predict` on
a cross-encoder), softmax over the labels for `/predict` on a classifier, the
logits with `raw_scores`, as TEI's. Pairs go to the server as pairs (`Dual`),
each text exactly as sent ('|||' and whitespace included), and are batched by
length with every other text. A long input is cut or refused by the one length
rule (`admit_rows`, over `model.admission`), as on /embed: `truncate: true` cuts,
`false` refuses, absent the server's -truncation decides (truncate cuts, error
refuses); a cut keeps the last tokens with `truncation_direction: left`, and one
the server would not make so (left, or on a refusing server) is made here and sent
as ids. Errors come back in TEI's shape.

Usage::

    curl localhost:8125/rerank -d '{"query": "What is Deep Learning?", "texts": ["a", "b"]}'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import Response

from bert_serving.client import Prediction
from bert_serving.proto.inputs import Dual, TextInput

from ..model.head import ModelHead
from .classifier_schemas import PredictRequest, RerankRequest
from .deps import Model, Service
from .heads import require_cross_encoder, require_head
from .preparation import Direction, ServedModel, admit_rows, request_truncation
from .replies import json_reply
from .tei_schemas import TEIErrorReply

__all__ = ["classifier_routes"]

classifier_routes = APIRouter(tags=["text-embeddings-inference"], responses={
    "4XX": {"model": TEIErrorReply, "description": "bad request, or a model of another kind"},
    "5XX": {"model": TEIErrorReply, "description": "the server failed or did not answer"}})


@classifier_routes.post("/rerank", response_model=list[dict[str, Any]])
async def rerank(body: RerankRequest, service: Service, model: Model) -> Response:
    """Each text's score against the query, best first: `[{"index", "score", "text"?}]`."""
    require_cross_encoder(model)
    texts = body.checked_texts
    pairs = [Dual(body.query, t) for t in texts]
    rows = await _admit(model, pairs, body.truncate, body.truncation_direction, "texts")
    ranking = await service.rerank(rows, raw_scores=body.raw_scores)
    return await json_reply(lambda: [
        {"index": rank.index, "score": rank.score,
         **({"text": texts[rank.index]} if body.return_text else {})} for rank in ranking.ranks])


_Labels = list[dict[str, Any]]


@classifier_routes.post("/predict", response_model=_Labels | list[_Labels])
async def predict(body: PredictRequest, service: Service, model: Model) -> Response:
    """Each input's labels with scores, best first (a list of those per input for a batch)."""
    require_head(model, ModelHead.CLASSIFIER)
    items = body.items
    rows: list[str | Dual] = [row[0] if len(row) == 1 else Dual(row[0], row[1]) for row in items]
    admitted = await _admit(model, rows, body.truncate, body.truncation_direction, "inputs")
    labels = await service.predict(admitted, raw_scores=body.raw_scores)
    answers = [_labels(row) for row in labels]
    return await json_reply(lambda: answers if body.is_batch else answers[0])


def _labels(row: list[Prediction]) -> list[dict[str, Any]]:
    return [{"label": p.label, "score": p.score} for p in row]


async def _admit(model: ServedModel, rows: Sequence[str | Dual], truncate: bool | None,
                 direction: Direction, field: str) -> list[TextInput]:
    """Rows by the one length rule (`admit_rows`): `truncate: false` (or a server under
    -truncation error) refuses those over -max_seq_len, `left` or `truncate: true` on a
    server that does not truncate cuts them here; the rest go as sent."""
    mode = request_truncation(None, truncate, model.truncation)
    return await anyio.to_thread.run_sync(lambda: admit_rows(
        rows, model=model, mode=mode, direction=direction, field=field))
