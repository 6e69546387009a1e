"""The HTTP gateway's uvicorn, run in a thread of the server process.

The listening socket is bound by `start`, in the caller's thread, so a taken
port is a one-line start error rather than a log line from a thread. uvicorn
installs no signal handlers outside the main thread: SIGINT/SIGTERM stay the
server's, which calls `stop` before closing its own sockets, so requests in
flight are answered (within `grace_s`) while the pipeline behind them still runs.
`stop` first drains (draining.py): the listener stays open, answering probes and
refusing new work with 503, until nothing is in flight; only then does uvicorn close it.

Usage::

    gateway = HttpGateway(app, host="0.0.0.0", port=8125)
    gateway.start()   # returns once the app has started (its BertClient is connected)
    ...
    gateway.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from ..errors import BertServingError
from .draining import Drain

__all__ = ["GatewayStartError", "HttpGateway"]

log = logging.getLogger(__name__)
START_TIMEOUT_S = 60.0
DRAIN_POLL_S = 0.05
EXIT_S = 1.0
"""After its graceful wait, what uvicorn gets to cancel requests and run the app's shutdown."""


class GatewayStartError(BertServingError):
    """The HTTP gateway could not start; the message says why and what to change."""


class _ThreadServer(uvicorn.Server):
    """uvicorn's Server that says when its startup is over, whether it worked or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.settled.set()


class HttpGateway:
    """Serves `app` on host:port from a daemon thread until `stop`."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, grace_s: float = 30.0,
                 drain: Drain | None = None) -> None:
        self.host, self.port = host, port
        self._drain = drain or Drain()  # the app's, so that stop can wait for its requests
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                ws="none", timeout_graceful_shutdown=int(grace_s))
        self._grace_s = grace_s
        self._server = _ThreadServer(config)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind, start serving, and wait for the app's startup; GatewayStartError if it fails."""
        listener = self._bind()
        self._thread = threading.Thread(target=self._serve, args=(listener,),
                                        name="http-gateway", daemon=True)
        self._thread.start()
        if not self._server.settled.wait(START_TIMEOUT_S) or not self._server.started:
            self.stop()
            listener.close()
            raise GatewayStartError(
                f"the HTTP gateway on port {self.port} did not start (see the log above)"
            )
        log.info("HTTP gateway serving on http://%s:%d", self.host, self.port)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            return socket.create_server((self.host, self.port), family=family)
        except OSError as error:
            raise GatewayStartError(
                f"cannot bind HTTP {self.host}:{self.port}: {error} "
                "(is another server running? pick another -http_port)"
            ) from None

    def _serve(self, listener: socket.socket) -> None:
        try:
            self._server.run(sockets=[listener])
        except SystemExit:  # uvicorn's answer to a failed startup; logged already
            pass
        finally:
            self._server.settled.set()

    def stop(self, *, force: bool = False, deadline: float | None = None) -> None:
        """Stop accepting, finish requests in flight (until `deadline`), close the client.

        `deadline`: time.monotonic() by which requests in flight are answered or dropped,
        the server's share of its stop budget (default: `grace_s` from now); uvicorn's
        own exit takes at most EXIT_S more. `force`: do not wait for requests in flight
        (the pipeline behind them is dead).
        """
        if self._thread is None:
            return
        if deadline is None:
            deadline = time.monotonic() + self._grace_s
        self._drain.begin()
        while not force and not self._drain.idle() and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_S)
        # uvicorn's own wait gets what is left until the deadline (its minimum is 1 s), so
        # that a stuck request is not waited for twice
        left = max(1, int(deadline - time.monotonic()))
        self._server.config.timeout_graceful_shutdown = left
        self._server.force_exit = force
        self._server.should_exit = True
        self._thread.join(left + EXIT_S)  # a daemon thread: one that hangs does not keep us
        self._thread = None
