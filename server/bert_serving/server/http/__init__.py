"""The HTTP gateway: the original bert-as-service routes, OpenAI's and TEI's, over FastAPI.

It runs in the server process (`bert-serving-start -http_port 8125`) and
reaches the server through the same BertClient users have, so HTTP requests
are batched with everyone else's.

Modules, by idea: `settings` (what it needs from the flags), `schemas`
(request and reply bodies; TEI's in `tei_schemas`), `routes` (thin: schema to
plain values to the service; TEI's in `tei_routes` and `classifier_routes`,
Cohere's in `cohere_routes`), `deps` (the service, settings, metrics and model
a route is handed: route modules import it, never each other), `replies` (JSON
written off the event loop), `preparation` (prompts, truncation and Matryoshka
cuts around the server's vectors), `served_model` (what the server runs, as
those routes see it), `service` (the shared client, in threads), `errors` (the
one error-to-status map), `auth` (API key), `bodies` (size limit, always JSON),
`limits` (requests in flight), `draining` (503 to new work after SIGTERM until
what is in flight is answered), `metrics` (Prometheus), `app` (`create_app`
assembles them), `gateway` (uvicorn in a thread).

Usage::

    app = create_app(GatewaySettings.from_config(config), make_client)
    HttpGateway(app, host="0.0.0.0", port=8125).start()
"""

from __future__ import annotations

from .app import create_app
from .draining import Drain
from .gateway import GatewayStartError, HttpGateway
from .settings import GatewaySettings

__all__ = ["Drain", "GatewaySettings", "GatewayStartError", "HttpGateway", "create_app"]
