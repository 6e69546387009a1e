"""The bound on requests in flight (-http_max_connect).

Past the limit, new requests get 429 with Retry-After at once instead of queueing
unseen; clients back off and the server's queue stays what the operator sized.
Probes and /metrics are exempt, so a saturated gateway still says it is alive.
No lock: it runs on the gateway's single event loop thread.

Usage::

    app.add_middleware(ConcurrencyLimitMiddleware, max_in_flight=10)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import render, too_many_requests

__all__ = ["UNLIMITED_PATHS", "ConcurrencyLimitMiddleware"]

UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics"})


class ConcurrencyLimitMiddleware:
    """At most `max_in_flight` requests (other than probes) at once; 429 beyond."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await render(too_many_requests(self.max_in_flight), scope)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
