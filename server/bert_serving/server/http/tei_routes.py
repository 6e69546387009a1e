"""text-embeddings-inference's routes, over the same service as every other route.

`POST /` and `POST /embed` answer TEI's pooled embeddings (what
`huggingface_hub.InferenceClient(base_url=...).feature_extraction`, LangChain's
`HuggingFaceEndpointEmbeddings` and llama-index's `TextEmbeddingsInference`
post), `/embed_all` token vectors, `/embed_sparse` a SPLADE model's term weights,
`/tokenize` and `/decode` the server's own tokenizer, `/info` what the server runs.
The embedding routes answer an embedding model and `/embed_sparse` a sparse one
(`-head sparse`); each refuses the other kind, naming the kind loaded. Errors come
back in TEI's shape (errors.py, by path).

The vectors are the model's own embedding wherever the folder declares one: the
graph pools it beside the 1.10 protocol's pooling (`NativeView`) and these routes
ask for it, or the server runs -pooling_strategy MODEL; else the server's pooling.
`/info` says which (`model_type.embedding.pooling`, `pooling_by_route`). `normalize`
(default true) L2-normalizes after that; a server whose model normalizes
(MODEL with a Normalize module) answers unit vectors whatever `normalize` says.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import Response

from .. import __version__
from ..model.admission import TEI_SPARSE_WORDS
from ..model.head import ModelHead
from .byte_offsets import utf8_spans
from .deps import Model, Service, Settings
from .errors import GatewayError, Problem, errors_documented
from .heads import require_head, require_pooled
from .preparation import ServedModel, TextTools, prepare_texts, prompt_for, shape_vectors
from .quantized_embeddings import as_output_dtype, check_output_dtype, check_pooled
from .replies import json_reply
from .service import Encoded, EncodedSparse
from .tei_schemas import (
    DecodeRequest,
    EmbedRequest,
    EmbedSparseRequest,
    SparseValue,
    TEIErrorReply,
    TokenizeRequest,
)

__all__ = ["tei_routes"]


tei_routes = APIRouter(tags=["text-embeddings-inference"], responses=errors_documented(
    TEIErrorReply, bad_request="bad request: `error` names the field"))


async def _encode(body: EmbedRequest, service: Service, model: ServedModel) -> Encoded:
    prompt = prompt_for(model, body.prompt_name)
    inputs = await anyio.to_thread.run_sync(lambda: prepare_texts(
        body.texts, model=model, prompt=prompt, truncate=body.truncate,
        direction=body.truncation_direction, truncation=body.truncation))
    return await service.encode_inputs(inputs, native=model.ask_native)


@tei_routes.post("/embed", response_model=list[list[float]])
async def embed(body: EmbedRequest, service: Service, model: Model) -> Response:
    """TEI's pooled embeddings: one vector per input, in order."""
    require_pooled(model, "use /embed_all, or start it with -pooling_strategy MODEL")
    unit_vectors = body.normalize or (model.normalized and body.dimensions is None)
    check_output_dtype(body.output_dtype, param="output_dtype", unit_vectors=unit_vectors,
                       configured=model.embedding_ranges)
    encoded = await _encode(body, service, model)
    width = encoded.vectors.shape[-1]

    def rows() -> Any:
        vectors = shape_vectors(encoded.vectors, dimensions=body.dimensions,
                                normalize=body.normalize)
        return as_output_dtype(vectors, body.output_dtype, param="output_dtype",
                               unit_vectors=unit_vectors, configured=model.embedding_ranges,
                               cut=vectors.shape[-1] < width)

    return await json_reply(rows)


@tei_routes.post("/", response_model=list[list[float]])
async def root(body: EmbedRequest, service: Service, model: Model) -> Response:
    """TEI's root route on an embedding model: the same as /embed."""
    return await embed(body, service, model)


@tei_routes.post("/embed_all", response_model=list[list[list[float]]])
async def embed_all(body: EmbedRequest, service: Service, model: Model) -> Response:
    """Every token's vector ([CLS]/[SEP] included) per input; needs -pooling_strategy NONE."""
    require_head(model, ModelHead.EMBEDDING)
    check_pooled(body.output_dtype, param="output_dtype", token_vectors=True, route="/embed_all")
    if not model.token_level:
        raise GatewayError(Problem(
            "ValidationError", 422, "/embed_all needs token vectors: start the server with "
            "-pooling_strategy NONE (its pooled vectors are served by /embed)"))
    encoded = await _encode(body, service, model)
    return await json_reply(lambda: [rows[:count] for rows, count
                                     in zip(encoded.vectors, encoded.token_counts, strict=True)])


@tei_routes.post("/embed_sparse", response_model=list[list[SparseValue]])
async def embed_sparse(body: EmbedSparseRequest, service: Service, model: Model) -> Response:
    """A sparse model's term weights per input: its nonzero `{"index", "value"}`, by index."""
    require_head(model, ModelHead.SPARSE)
    prompt = prompt_for(model, body.prompt_name)
    inputs = await anyio.to_thread.run_sync(lambda: prepare_texts(
        body.texts, model=model, prompt=prompt, truncate=body.truncate,
        direction=body.truncation_direction, words=TEI_SPARSE_WORDS))
    encoded = await service.encode_sparse(inputs)
    return await json_reply(lambda: _sparse_values(encoded))


def _sparse_values(encoded: EncodedSparse) -> list[list[dict[str, Any]]]:
    return [[{"index": index, "value": value}
             for index, value in zip(vector.indices.tolist(), vector.values.tolist(), strict=True)]
            for vector in encoded.vectors]


@tei_routes.post("/tokenize", response_model=list[list[dict[str, Any]]])
async def tokenize(body: TokenizeRequest, model: Model) -> Response:
    """Each input's tokens: id, text, special, and byte offsets into the input (TEI's)."""
    tools = _tools(model)
    prompt = prompt_for(model, body.prompt_name)
    texts = [prompt + text for text in body.texts]
    return await json_reply(lambda: [_simple_tokens(tools, text, body.add_special_tokens)
                                     for text in texts])


@tei_routes.post("/decode", response_model=list[str])
async def decode(body: DecodeRequest, model: Model) -> Response:
    """Token ids back to text, one string per id list."""
    tools = _tools(model)
    try:
        texts = [tools.decode(row, skip_special_tokens=body.skip_special_tokens)
                 for row in body.rows]
    except ValueError as error:
        raise GatewayError(Problem("ValidationError", 422, f"ids: {error}", "ids")) from None
    return await json_reply(lambda: texts)


@tei_routes.get("/info")
async def info(service: Service, settings: Settings, model: Model) -> dict[str, Any]:
    """TEI's Info: the model, its pooling, and this server's limits."""
    return {
        "model_id": model.name,
        "model_sha": None,
        "model_dtype": model.dtype,
        "runtime": model.running.runtime,
        "inference_precision": model.running.precision,
        "served_model_name": model.name,
        "model_type": _model_type(model),
        "native_embedding": model.native,
        "pooling_by_route": {
            "tei_and_openai": model.pooling + (", normalized" if model.normalized else ""),
            "zeromq_and_encode": model.server_pooling},
        "prompts": model.prompts,
        "max_concurrent_requests": settings.max_connect,
        "max_input_length": model.tools.max_len if model.tools else None,
        "max_batch_tokens": model.max_batch_tokens,
        "max_batch_requests": None,
        "max_client_batch_size": settings.max_request_texts,
        "auto_truncate": model.truncation == "truncate",
        "tokenization_workers": 1,
        "version": __version__,
        "sha": None,
        "docker_label": None,
    }


def _model_type(model: ServedModel) -> dict[str, Any]:
    """TEI's ModelType: a cross-encoder (one logit) is a reranker, more labels a classifier;
    a SPLADE model is an embedding model pooled by "splade", as TEI reports it."""
    if model.head is ModelHead.CLASSIFIER:
        id2label = {str(i): label for i, label in enumerate(model.labels)}
        kind = "reranker" if len(model.labels) == 1 else "classifier"
        return {kind: {"id2label": id2label,
                       "label2id": {label: i for i, label in enumerate(model.labels)}}}
    if model.head is ModelHead.SPARSE:
        return {"embedding": {"pooling": "splade"}}
    return {"embedding": {"pooling": model.pooling}}


def _tools(model: ServedModel) -> TextTools:
    if model.tools is None:
        raise GatewayError(Problem("ValidationError", 422,
                                   "this gateway was started without the server's tokenizer"))
    return model.tools


def _simple_tokens(tools: TextTools, text: str, specials: bool) -> list[dict[str, Any]]:
    """The text's tokens, untruncated (as TEI's /tokenize), with the special tokens the
    model puts around a text if asked, named as its vocabulary names them (<s>, [CLS])."""
    pieces = tools.pieces(text)
    byte_spans = utf8_spans(text, ((piece.start, piece.stop) for piece in pieces))
    tokens = [_piece(text, piece.id, piece.start, piece.stop, byte_span)
              for piece, byte_span in zip(pieces, byte_spans, strict=True)]
    if not specials:
        return tokens
    before, after = tools.specials_around_text()
    return [*(_special(*s) for s in before), *tokens, *(_special(*s) for s in after)]


def _piece(text: str, token_id: int, start: int, stop: int,
           byte_span: tuple[int, int]) -> dict[str, Any]:
    """TEI's SimpleToken: the input's own characters, offsets in UTF-8 bytes."""
    return {"id": token_id, "text": text[start:stop], "special": False,
            "start": byte_span[0], "stop": byte_span[1]}


def _special(token_id: int, token: str) -> dict[str, Any]:
    return {"id": token_id, "text": token, "special": True, "start": None, "stop": None}
