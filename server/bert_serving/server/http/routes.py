"""The gateway's routes: each turns its schema into plain values and calls the service.

Three routers, by audience: `bert_routes` (the original bert-as-service HTTP
API), `openai_routes` (OpenAI's embeddings) and `probe_routes` (health,
readiness, metrics); TEI's are in tei_routes.py. Errors are raised, never built
here: errors.py answers them. Bodies are written by `replies.json_reply` (orjson,
off the loop); the reply models serve /docs only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import anyio
import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..model.admission import OPENAI_WORDS
from ..model.head import ModelHead
from .deps import Metrics, Model, Service, Settings
from .errors import errors_documented
from .heads import require_head
from .metrics import CONTENT_TYPE
from .preparation import prepare_texts, prompt_for, shape_vectors
from .quantized_embeddings import as_output_dtype, base64_row, check_output_dtype, check_pooled
from .replies import json_reply
from .schemas import (
    EmbeddingsReply,
    EmbeddingsRequest,
    EncodeReply,
    EncodeRequest,
    ErrorReply,
    OpenAIErrorReply,
    ProbeReply,
)
from .service import Encoded

__all__ = ["bert_routes", "openai_routes", "probe_routes"]


bert_routes = APIRouter(tags=["bert-as-service"], responses=errors_documented(ErrorReply))
openai_routes = APIRouter(tags=["OpenAI"], responses=errors_documented(OpenAIErrorReply))
probe_routes = APIRouter(tags=["probes"])


# -- the original routes ---------------------------------------------------------------------


@bert_routes.post("/encode", response_model=EncodeReply)
async def encode(body: EncodeRequest, service: Service, model: Model) -> Response:
    """Encode texts (or token lists) into one row each, as the original gateway did."""
    # A classifier's rows are its logits; a sparse model's (one weight per vocabulary term)
    # would be mostly zeros in JSON: /embed_sparse keeps the nonzeros.
    require_head(model, ModelHead.EMBEDDING, ModelHead.CLASSIFIER)
    encoded = await service.encode(list(body.texts), is_tokenized=body.tokenized)
    # The caller's id goes through the standard library, which writes any JSON it parsed
    # (orjson refuses integers past 64 bits).
    return await json_reply(lambda: {"id": orjson.Fragment(json.dumps(body.id)),
                                      "result": encoded.vectors, "status": 200})


@bert_routes.get("/status/server")
async def server_status(service: Service) -> dict[str, Any]:
    """The server's configuration and statistics (SHOW_STATUS)."""
    return await service.server_status()


@bert_routes.get("/status/client")
async def client_status(service: Service) -> dict[str, Any]:
    """The state of the gateway's own BertClient."""
    return service.client_status()


# -- OpenAI --------------------------------------------------------------------------------------


@openai_routes.post("/v1/embeddings", response_model=EmbeddingsReply)
async def create_embeddings(body: EmbeddingsRequest, service: Service, settings: Settings,
                            model: Model) -> Response:
    """OpenAI's embeddings endpoint; `usage` counts the tokens the model read.

    `dimensions` keeps the first N dimensions and renormalizes (Matryoshka, as
    OpenAI's text-embedding-3). The folder's default prompt, if it names one, is
    put before each text, as sentence-transformers does.
    """
    require_head(model, ModelHead.EMBEDDING)
    dtype, unit_vectors = body.output_dtype, model.normalized or body.dimensions is not None
    check_pooled(dtype, param="output_dtype", token_vectors=model.token_level,
                 route="/v1/embeddings on this server")
    check_output_dtype(dtype, param="output_dtype", unit_vectors=unit_vectors,
                       configured=model.embedding_ranges)
    prompt = prompt_for(model, None)
    inputs = await anyio.to_thread.run_sync(lambda: prepare_texts(
        body.texts, model=model, prompt=prompt, truncate=None, direction="right",
        truncation=body.truncation, field="input", words=OPENAI_WORDS))
    encoded = await service.encode_inputs(inputs, native=model.ask_native)
    vectors = encoded.vectors
    if body.dimensions is not None:
        vectors = shape_vectors(vectors, dimensions=body.dimensions, normalize=True)
    cut = vectors.shape[-1] < encoded.vectors.shape[-1]
    rows = await anyio.to_thread.run_sync(lambda: as_output_dtype(
        vectors, dtype, param="output_dtype", unit_vectors=unit_vectors,
        configured=model.embedding_ranges, cut=cut))
    name = body.model or settings.model_name
    return await json_reply(lambda: _embeddings_reply(Encoded(rows, encoded.token_counts), name,
                                                      body.encoding_format))


def _embeddings_reply(encoded: Encoded, model: str, encoding_format: str) -> dict[str, Any]:
    tokens = sum(encoded.token_counts)
    as_value = base64_row if encoding_format == "base64" else _as_is
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": as_value(row)}
                 for i, row in enumerate(encoded.vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _as_is(row: np.ndarray) -> np.ndarray:
    return row




# -- probes --------------------------------------------------------------------------------------


@probe_routes.get("/health", response_model=ProbeReply,
                  responses={503: {"model": ProbeReply, "description": "a part of it died"}})
async def health(request: Request) -> Any:
    """200 while the ventilator, sink and workers run; 503 once one died.

    Open even with -api_key: liveness probes hold no secrets.
    """
    is_alive = cast(Callable[[], bool], request.app.state.is_alive)
    if is_alive():
        return ProbeReply(status="ok")
    return JSONResponse({"status": "dead"}, status_code=503)


@probe_routes.get("/ready", response_model=ProbeReply,
                  responses={503: {"model": ProbeReply, "description": "not ready yet"}})
async def ready(request: Request) -> Any:
    """200 once the model is loaded and the workers are up; 503 before, and while stopping.

    Open even with -api_key: readiness probes hold no secrets either.
    """
    is_ready = cast(Callable[[], bool], request.app.state.is_ready)
    if is_ready():
        return ProbeReply(status="ready")
    return JSONResponse({"status": "not ready"}, status_code=503)


@probe_routes.get("/metrics", response_class=PlainTextResponse)
async def metrics(service: Service, gateway_metrics: Metrics) -> PlainTextResponse:
    """Prometheus text: the gateway's counters and the server's statistics."""
    statistic = await service.server_statistic()
    return PlainTextResponse(gateway_metrics.render(statistic), media_type=CONTENT_TYPE)
