"""The API key: with -api_key set, every HTTP request but /health needs `Bearer <key>`.

A middleware rather than a route dependency, so unknown paths, /docs and
/metrics are covered too and a scanner learns nothing without the key. It sits
inside the CORS middleware so that browsers' preflight requests, which carry no
credentials, still get their answer. Keys are compared in constant time.

Usage::

    app.add_middleware(ApiKeyMiddleware, api_key="s3cret")
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import render, unauthorized

__all__ = ["OPEN_PATHS", "ApiKeyMiddleware"]

OPEN_PATHS = frozenset({"/health"})
"""Paths served without the key: liveness probes cannot be expected to hold secrets."""


class ApiKeyMiddleware:
    """Answers 401 (WWW-Authenticate: Bearer) unless the bearer token is `api_key`."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        await render(unauthorized(), scope)(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent.
        given = token.strip().encode("latin-1")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self._key)
