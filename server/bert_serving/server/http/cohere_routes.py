"""Cohere's rerank and embed APIs, `/v1/rerank`, `/v2/rerank`, `/v1/embed` and `/v2/embed`.

Cohere's body and answer, which Cohere's SDK reads (`cohere.ClientV2` posts to
/v2/rerank, `cohere.Client` to /v1/rerank) and the Jina, vLLM and infinity rerank
clients send too: `{"query", "documents", "top_n", "return_documents"}` in,
`{"id", "model", "results": [{"index", "relevance_score", "document"?}], "usage"}`
out, best first, with the scores of TEI's `/rerank` (the sigmoid of the
cross-encoder's logit). A (query, document) pair over -max_seq_len is cut by the
server's pair rule whatever -truncation says, never refused: Cohere's rerank
truncates a long document (its `max_tokens_per_doc`) rather than refusing it.

`/v2/embed` (`cohere.ClientV2.embed`) and `/v1/embed` (`cohere.Client.embed`)
answer the vectors of the TEI and OpenAI routes, in each form asked
(`embedding_types`): `{"id", "embeddings": {"float": [...], "int8": [...], ...},
"texts", "meta": {"api_version", "billed_units": {"input_tokens"}},
"response_type": "embeddings_by_type"}`; v1 without `embedding_types` answers
`"embeddings": [[float, ...], ...]` and `"response_type": "embeddings_floats"`.
The quantized forms are sentence-transformers' (model/quantization.py), int8
and uint8 over ranges fixed at start, so a text's vector does not depend on its
batch; a server with neither unit vectors nor -embedding_ranges refuses those two.
Errors come back in OpenAI's shape, as under /v1.

Usage::

    curl localhost:8125/v1/rerank -d '{"query": "Deep Learning?", "documents": ["a", "b"]}'
    curl localhost:8125/v2/embed -d '{"texts": ["hi"], "embedding_types": ["float", "int8"]}'
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import anyio
import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from bert_serving.proto.inputs import Dual

from ..model.admission import COHERE_WORDS
from .classifier_schemas import CohereRerankRequest
from .cohere_schemas import CohereEmbedRequest, EmbeddingType, prompt_name_for
from .deps import Model, Service, Settings
from .errors import errors_documented
from .heads import require_cross_encoder, require_pooled
from .preparation import (
    Direction,
    ServedModel,
    Truncation,
    admit_rows,
    prepare_texts,
    prompt_for,
    shape_vectors,
)
from .quantized_embeddings import as_output_dtype, base64_row, check_output_dtype
from .replies import json_reply
from .schemas import OpenAIErrorReply
from .service import Encoded

__all__ = ["cohere_routes"]

cohere_routes = APIRouter(tags=["Cohere"], responses=errors_documented(OpenAIErrorReply))


@cohere_routes.post("/v1/rerank", response_model=dict[str, Any])
@cohere_routes.post("/v2/rerank", response_model=dict[str, Any])
async def cohere_rerank(body: CohereRerankRequest, service: Service, model: Model,
                        settings: Settings) -> Response:
    """The best `top_n` documents against the query, `{"index", "relevance_score"}` each."""
    require_cross_encoder(model)
    texts = body.texts
    pairs: list[str | Dual] = [Dual(body.query, text) for text in texts]
    rows = await anyio.to_thread.run_sync(lambda: admit_rows(
        pairs, model=model, mode="truncate", direction="right"))
    ranking = await service.rerank(rows, raw_scores=False)
    return await json_reply(lambda: {
        "id": str(uuid.uuid4()),
        "model": body.model or settings.model_name,
        "results": [{"index": rank.index, "relevance_score": rank.score,
                     **({"document": {"text": texts[rank.index]}} if body.return_documents
                        else {})} for rank in ranking.ranks[:body.top_n]],
        "usage": {"total_tokens": ranking.tokens},
    })


_TRUNCATE: dict[str | None, tuple[Truncation | None, Direction]] = {
    None: (None, "right"), "END": ("truncate", "right"), "START": ("truncate", "left"),
    "NONE": ("error", "right")}
"""Cohere's `truncate` as preparation's truncation mode and side (None: the server's)."""


@cohere_routes.post("/v2/embed", response_model=dict[str, Any])
async def cohere_embed_v2(body: CohereEmbedRequest, service: Service, model: Model) -> Response:
    """Cohere v2's embed: each text's vector in every form of `embedding_types`."""
    texts, encoded, forms = await _embed(body, service, model)
    return await json_reply(lambda: _by_type(texts, encoded, forms, version="2"))


@cohere_routes.post("/v1/embed", response_model=dict[str, Any])
async def cohere_embed_v1(body: CohereEmbedRequest, service: Service, model: Model) -> Response:
    """Cohere v1's embed: the floats alone, or by type when `embedding_types` names some."""
    texts, encoded, forms = await _embed(body, service, model)
    if body.embedding_types is not None:
        return await json_reply(lambda: _by_type(texts, encoded, forms, version="1"))
    return await json_reply(lambda: {
        "id": str(uuid.uuid4()), "embeddings": encoded.vectors, "texts": texts,
        "meta": _meta("1", encoded), "response_type": "embeddings_floats"})


async def _embed(body: CohereEmbedRequest, service: Service, model: ServedModel
                 ) -> tuple[list[str], Encoded, dict[EmbeddingType, Any]]:
    """The texts, their vectors (cut to output_dimension) and each asked form of them."""
    require_pooled(model, "start it with -pooling_strategy MODEL for Cohere's embed")
    texts, types = body.checked_texts, body.types
    unit_vectors = model.normalized or body.output_dimension is not None
    _check_ranged(types, unit_vectors, model.embedding_ranges)
    prompt = prompt_for(model, prompt_name_for(body.input_type, model.prompts,
                                               model.default_prompt_name))
    truncation, direction = _TRUNCATE[body.truncate]
    inputs = await anyio.to_thread.run_sync(lambda: prepare_texts(
        texts, model=model, prompt=prompt, truncate=None, direction=direction,
        truncation=truncation, field="texts", words=COHERE_WORDS))
    encoded = await service.encode_inputs(inputs, native=model.ask_native)
    width = encoded.vectors.shape[-1]
    if body.output_dimension is not None:
        encoded = Encoded(shape_vectors(encoded.vectors, dimensions=body.output_dimension,
                                        normalize=True), encoded.token_counts)
    cut = encoded.vectors.shape[-1] < width
    forms = await anyio.to_thread.run_sync(lambda: _forms(
        encoded.vectors, types, unit_vectors=unit_vectors, model=model, cut=cut))
    return texts, encoded, forms


def _check_ranged(types: list[EmbeddingType], unit_vectors: bool,
                  configured: np.ndarray | None) -> None:
    """Refuse int8/uint8 before encoding when no range is defined for these vectors."""
    for kind in types:
        check_output_dtype(kind, param="embedding_types", unit_vectors=unit_vectors,
                           configured=configured)


def _forms(vectors: np.ndarray, types: list[EmbeddingType], *, unit_vectors: bool,
           model: ServedModel, cut: bool) -> dict[EmbeddingType, Any]:
    return {kind: [base64_row(row) for row in vectors] if kind == "base64"
            else as_output_dtype(vectors, kind, param="embedding_types",
                                 unit_vectors=unit_vectors, configured=model.embedding_ranges,
                                 cut=cut)
            for kind in types}


def _by_type(texts: list[str], encoded: Encoded, forms: dict[EmbeddingType, Any], *,
             version: Literal["1", "2"]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "embeddings": forms, "texts": texts,
            "meta": _meta(version, encoded), "response_type": "embeddings_by_type"}


def _meta(version: str, encoded: Encoded) -> dict[str, Any]:
    """Cohere's ApiMeta: the tokens the model read (prompts and special tokens included)."""
    return {"api_version": {"version": version},
            "billed_units": {"input_tokens": sum(encoded.token_counts)}}


