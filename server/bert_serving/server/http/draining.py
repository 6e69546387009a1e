"""Draining on shutdown: the gateway keeps listening until its work in flight is answered.

On SIGTERM the server's /ready turns 503 at once (its `is_ready` sees the shutdown),
so a load balancer's readiness probe takes this replica out. Until the requests in
flight are answered the listener stays open: /ready and /health still answer
(503 and 200) instead of refusing connections, and new work gets 503
ShuttingDown with Retry-After, which a client can retry on another replica. Once
nothing is in flight (or the grace is over) uvicorn closes the listener.
No lock: the count changes on the gateway's event loop thread only; `begin` and
`idle` are read from the server's thread, where a stale read only delays the stop
by one poll.

Usage::

    drain = Drain()
    app.add_middleware(DrainMiddleware, drain=drain)
    ...
    drain.begin()                    # from the thread that stops the server
    while not drain.idle(): ...      # then stop uvicorn
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import render, shutting_down
from .limits import UNLIMITED_PATHS

__all__ = ["Drain", "DrainMiddleware"]


class Drain:
    """Whether the gateway is draining, and how many requests (not probes) are in flight."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0

    def begin(self) -> None:
        """Refuse new work from now on; what is in flight carries on."""
        self.draining = True

    def idle(self) -> bool:
        return self.in_flight == 0


class DrainMiddleware:
    """Counts the requests in flight; while draining, answers new ones 503 ShuttingDown."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            await render(shutting_down(), scope)(scope, receive, send)
            return
        self.drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.in_flight -= 1
