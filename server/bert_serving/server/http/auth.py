"""The API key: with -api_key set, every HTTP request but the probes needs `Bearer <key>`.

A middleware rather than a route dependency, so unknown paths, /docs and
/metrics are covered too and a scanner learns nothing without the key. It sits
inside the CORS middleware so that browsers' preflight requests, which carry no
credentials, still get their answer. Keys are compared in constant time.
/health and /ready are always open (probes hold no secrets); /metrics is open
only under -open_metrics, for scrapers that cannot send a key.

Usage::

    app.add_middleware(ApiKeyMiddleware, api_key="s3cret")
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import render, unauthorized

__all__ = ["OPEN_PATHS", "ApiKeyMiddleware"]

OPEN_PATHS = frozenset({"/health", "/ready"})
"""Paths served without the key: probes cannot be expected to hold secrets."""
METRICS_PATH = "/metrics"


class ApiKeyMiddleware:
    """Answers 401 (WWW-Authenticate: Bearer) unless the bearer token is `api_key`."""

    def __init__(self, app: ASGIApp, api_key: str, open_metrics: bool = False) -> None:
        self.app = app
        self._key = api_key.encode("utf-8")
        self._open = OPEN_PATHS | {METRICS_PATH} if open_metrics else OPEN_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        await render(unauthorized(), scope)(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent.
        given = token.strip().encode("latin-1")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self._key)
