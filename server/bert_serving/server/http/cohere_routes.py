"""Cohere's rerank API, `/v1/rerank` and `/v2/rerank`, over the client's `rerank`.

Cohere's body and answer, which Cohere's SDK reads (`cohere.ClientV2` posts to
/v2/rerank, `cohere.Client` to /v1/rerank) and the Jina, vLLM and infinity rerank
clients send too: `{"query", "documents", "top_n", "return_documents"}` in,
`{"id", "model", "results": [{"index", "relevance_score", "document"?}], "usage"}`
out, best first, with the scores of TEI's `/rerank` (the sigmoid of the
cross-encoder's logit). Errors come back in OpenAI's shape, as under /v1.

Usage::

    curl localhost:8125/v1/rerank -d '{"query": "Deep Learning?", "documents": ["a", "b"]}'
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from .classifier_schemas import CohereRerankRequest
from .heads import require_cross_encoder
from .routes import Service, Settings, errors_documented, json_reply
from .schemas import OpenAIErrorReply
from .tei_routes import Model

__all__ = ["cohere_routes"]

cohere_routes = APIRouter(tags=["Cohere"], responses=errors_documented(OpenAIErrorReply))


@cohere_routes.post("/v1/rerank", response_model=dict[str, Any])
@cohere_routes.post("/v2/rerank", response_model=dict[str, Any])
async def cohere_rerank(body: CohereRerankRequest, service: Service, model: Model,
                        settings: Settings) -> Response:
    """The best `top_n` documents against the query, `{"index", "relevance_score"}` each."""
    require_cross_encoder(model)
    texts = body.texts
    ranking = await service.rerank(body.query, texts, raw_scores=False)
    return await json_reply(lambda: {
        "id": str(uuid.uuid4()),
        "model": body.model or settings.model_name,
        "results": [{"index": rank.index, "relevance_score": rank.score,
                     **({"document": {"text": texts[rank.index]}} if body.return_documents
                        else {})} for rank in ranking.ranks[:body.top_n]],
        "usage": {"total_tokens": ranking.tokens},
    })
