"""`create_app`: the gateway's FastAPI application, assembled from its parts.

The app owns one BertClient, made by `client_factory` when the app starts
(uvicorn's lifespan) and closed when it stops, shared by every request.
Middlewares, outermost first, and why in that order:

    metrics  -> sees every answer, including the ones below give without a route
    drain    -> 503 to new work once SIGTERM came, counts what is in flight
    CORS     -> answers browsers' preflights, adds its headers to errors too
    API key  -> before anything costs memory or a slot
    in flight (-http_max_connect) -> 429 before the body is read
    body (-http_max_body_bytes) -> 413 before JSON parsing; parsed as JSON whatever its type

Usage::

    app = create_app(settings, lambda: BertClient(port=5555, port_out=5556),
                     is_ready=lambda: server.ready,
                     model=ServedModel(name="all-MiniLM-L6-v2", tools=tokenizer))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from bert_serving.client import BertClient

from .. import __version__
from .auth import ApiKeyMiddleware
from .bodies import RequestBodyMiddleware
from .classifier_routes import classifier_routes
from .cohere_routes import cohere_routes
from .draining import Drain, DrainMiddleware
from .errors import install_error_handlers
from .limits import ConcurrencyLimitMiddleware
from .metrics import GatewayMetrics, MetricsMiddleware
from .preparation import ServedModel
from .routes import bert_routes, openai_routes, probe_routes
from .service import EmbeddingService
from .settings import GatewaySettings
from .tei_routes import tei_routes

__all__ = ["create_app"]

_ROUTERS = (bert_routes, openai_routes, tei_routes, classifier_routes, cohere_routes,
            probe_routes)

_DESCRIPTION = """\
Sentence embeddings from a bert-serving server over HTTP: the original
bert-as-service routes (`/encode`, `/status/*`), OpenAI's `/v1/embeddings`, and
text-embeddings-inference's (`/`, `/embed`, `/embed_all`, `/embed_sparse`,
`/tokenize`, `/decode`, `/info`, and `/rerank`, `/predict` on a classifier or
cross-encoder), and Cohere's `/v1/rerank` and `/v2/rerank` on a cross-encoder and
`/v1/embed` and `/v2/embed` (float, int8, uint8, binary, ubinary, base64) on an
embedding model.
Routes follow the loaded model's kind: a sparse model (`-head sparse`) answers
`/embed_sparse` and the embedding routes refuse it, and the other way round.
With `-api_key`, every route but `/health` and `/ready` (and `/metrics` under
`-open_metrics`) needs `Authorization: Bearer <key>`.
"""


def _always() -> bool:
    return True


def create_app(settings: GatewaySettings, client_factory: Callable[[], BertClient], *,
               is_ready: Callable[[], bool] = _always,
               is_alive: Callable[[], bool] = _always,
               model: ServedModel | None = None, drain: Drain | None = None) -> FastAPI:
    """The gateway app; `client_factory` is called once, in a thread, as the app starts.

    `model` tells the TEI and OpenAI routes what the server runs (its pooling,
    prompts, tokenizer); without it they know only the model's name. `drain` is
    what the HttpGateway that serves the app begins on stop.
    """
    metrics = GatewayMetrics()
    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from files in
    # the package (under /static-offline-docs), not from a CDN an offline host cannot reach.
    app = FastAPIOffline(title="bert-serving", version=__version__, description=_DESCRIPTION,
                         lifespan=_lifespan(settings, client_factory, metrics))
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.is_ready = is_ready
    app.state.is_alive = is_alive
    app.state.model = model or ServedModel(name=settings.model_name)
    for router in _ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    _add_middlewares(app, settings, metrics, drain or Drain())
    return app


def _add_middlewares(app: FastAPI, settings: GatewaySettings, metrics: GatewayMetrics,
                     drain: Drain) -> None:
    # Starlette wraps each added middleware around the previous ones: innermost first.
    app.add_middleware(RequestBodyMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ConcurrencyLimitMiddleware, max_in_flight=settings.max_connect)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key,
                           open_metrics=settings.open_metrics)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(DrainMiddleware, drain=drain)
    paths = frozenset(str(getattr(r, "path", "")) for router in _ROUTERS for r in router.routes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, paths=paths)


def _lifespan(settings: GatewaySettings, client_factory: Callable[[], BertClient],
              metrics: GatewayMetrics) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = await anyio.to_thread.run_sync(client_factory)
        try:
            config = await anyio.to_thread.run_sync(lambda: client.server_config)
            app.state.service = EmbeddingService(
                client, metrics, output_dim=int(config["output_dim"]),
                max_texts=settings.max_request_texts, max_concurrency=settings.max_connect,
            )
            yield
        finally:
            client.close()

    return lifespan
