"""How the gateway takes request bodies: whole, bounded, and always as JSON.

`RequestBodyMiddleware` reads the body before any route runs:

* over -http_max_body_bytes it answers 413, judged by Content-Length when
  sent and by counting otherwise (chunked uploads), so at most the limit is
  ever held in memory;
* a body sent without a JSON Content-Type (curl's `-d` says form-urlencoded)
  is still parsed as JSON, as the original gateway did: every body here is
  JSON, and one that is not gets a 400 saying so rather than a confusing
  "expected an object";
* `NaN`, `Infinity` and `-Infinity`, which Python's parser accepts but are not
  JSON, get a 422 naming them: echoed back (an `id`), they would make the
  reply body invalid JSON.

Usage::

    app.add_middleware(RequestBodyMiddleware, max_bytes=10 << 20)
"""

from __future__ import annotations

import json
from typing import NoReturn

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import body_too_large, invalid, render

__all__ = ["RequestBodyMiddleware"]

_JSON = b"application/json"


class _TooLarge(Exception):
    pass


class RequestBodyMiddleware:
    """Reads the body first, up to `max_bytes`, and hands the app a replay of it as JSON."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except _TooLarge:
            await render(body_too_large(self.max_bytes), scope)(scope, receive, send)
            return
        if body is None:  # the client went away: nobody to answer
            return
        constant = _non_json_constant(body)
        if constant is not None:
            problem = invalid("body", f"{constant} is not JSON (JSON numbers are finite): "
                              "send a number, a string or null")
            await render(problem, scope)(scope, receive, send)
            return
        if body:
            _declare_json(scope)
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Constant(Exception):
    pass


def _refuse(name: str) -> NoReturn:
    raise _Constant(name)


def _non_json_constant(body: bytes) -> str | None:
    """`NaN`/`Infinity`/`-Infinity` outside strings, if the body has one.

    Parsed only when the bytes appear at all, so ordinary bodies cost one scan.
    """
    if b"NaN" not in body and b"Infinity" not in body:
        return None
    try:
        json.loads(body, parse_constant=_refuse)
    except _Constant as constant:
        return str(constant)
    except (ValueError, RecursionError):  # not JSON at all: the route's parser says so
        return None
    return None


def _declare_json(scope: Scope) -> None:
    """Set Content-Type to JSON unless it already is (`+json` types included).

    In place, not on a copy: the metrics middleware reads the route the router
    records in this same scope.
    """
    headers = scope["headers"]
    for name, value in headers:
        if name == b"content-type" and (value.startswith(_JSON) or b"+json" in value):
            return
    scope["headers"] = [(n, v) for n, v in headers if n != b"content-type"]
    scope["headers"].append((b"content-type", _JSON))


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields `body` once, then defers to the real one (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
