"""What a route is handed besides its body: the service, the settings, the metrics, the model.

`create_app` puts each on `app.state` once; these `Annotated` types are how a route
asks for one (`async def embed(body: EmbedRequest, service: Service, model: Model)`).
They are declared here, and only here, so that no route module imports another:
each route module reads from this one, `replies` and its own schemas. FastAPI
resolves them per request from the `Request` alone, so none shows in the OpenAPI
document.

Usage::

    @router.get("/info")
    async def info(settings: Settings, model: Model) -> dict[str, Any]: ...
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from .metrics import GatewayMetrics
from .preparation import ServedModel
from .service import EmbeddingService
from .settings import GatewaySettings

__all__ = ["Metrics", "Model", "Service", "Settings"]


def _service(request: Request) -> EmbeddingService:
    return cast(EmbeddingService, request.app.state.service)


def _settings(request: Request) -> GatewaySettings:
    return cast(GatewaySettings, request.app.state.settings)


def _metrics(request: Request) -> GatewayMetrics:
    return cast(GatewayMetrics, request.app.state.metrics)


def _model(request: Request) -> ServedModel:
    return cast(ServedModel, request.app.state.model)


Service = Annotated[EmbeddingService, Depends(_service)]
"""The shared client, in threads; set as the app starts (its lifespan)."""
Settings = Annotated[GatewaySettings, Depends(_settings)]
"""The gateway's limits and names, from the flags."""
Metrics = Annotated[GatewayMetrics, Depends(_metrics)]
"""The gateway's Prometheus counters."""
Model = Annotated[ServedModel, Depends(_model)]
"""What the server runs (pooling, prompts, tokenizer), as the routes see it."""
