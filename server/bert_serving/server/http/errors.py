"""The one place that turns an error into an HTTP status and body.

Every failure becomes a `Problem` (kind, status, message, field), rendered in
the shape of the route family that was asked: the original routes get
`{"description", "type", "status"}`, routes under /v1 (and Cohere's /v2/rerank) get OpenAI's
`{"error": {"message", "type", "param", "code"}}` so OpenAI clients raise their
usual exceptions, and TEI's routes (`TEI_PATHS`) get TEI's `{"error",
"error_type"}` with TEI's statuses (validation 422, empty 400, overloaded 429,
backend 424). Bad input is always a 4xx naming the field; a 5xx means the
server side failed (502, 504) or a bug (500).

    kind              status   cause
    InvalidJSON       400      the body is not JSON
    ValidationError   422      the body does not fit the schema (400 under /v1, as OpenAI)
    BadRequest        422      the server refused the texts (400 under /v1)
    WrongModelKind    400      a route for another kind of model (422 on TEI's routes)
    Unauthorized      401      -api_key is set and the bearer token is missing or wrong
    NotFound          404      no such route (405 MethodNotAllowed: wrong method)
    TooManyTexts      413      more texts than -max_request_texts
    BodyTooLarge      413      a body over -http_max_body_bytes
    TooManyRequests   429      -http_max_connect requests already in flight (Retry-After)
    ServerBusy        429      the server's queue is full, -max_queue_texts (Retry-After)
    ShuttingDown      503      the server is draining on SIGTERM: retry on another replica
    BadReply          502      the server answered something unusable
    EncodingFailed    502      the model run of a batch holding the texts failed
    ServerError       502      the server failed handling the request (a bug there)
    MalformedRequest  500      the server could not read the gateway's frames (a bug here)
    Timeout           504      the server did not answer in time
    InternalError     500      a bug in the gateway

The kinds a server error can name are `bert_serving.proto.ErrorKind`; each has
its row in `SERVER_ERROR_STATUSES` (a test iterates the enum).

Usage::

    raise GatewayError(too_many_texts(120, limit=100))   # from a route or a middleware
    response = render(problem, scope)                     # middlewares answer directly
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Scope

from bert_serving.client import BertClientTimeout, ServerError
from bert_serving.proto import ErrorKind

from .schemas import UNION_TAGS

__all__ = [
    "SERVER_ERROR_STATUSES",
    "TEI_PATHS",
    "GatewayError",
    "Problem",
    "body_too_large",
    "errors_documented",
    "install_error_handlers",
    "invalid",
    "problem_from",
    "render",
    "shutting_down",
    "too_many_requests",
    "too_many_texts",
    "unauthorized",
]

RETRY_AFTER_S = 1
_MAX_LISTED_ERRORS = 5
# Statuses that, under /v1, become 400 as OpenAI answers every invalid request.
_INVALID_KINDS = frozenset({"ValidationError", "BadRequest"})
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 404: "invalid_request_error", 405: "invalid_request_error",
                 413: "invalid_request_error", 422: "invalid_request_error",
                 429: "rate_limit_error"}


TEI_PATHS = frozenset({"/", "/embed", "/embed_all", "/embed_sparse", "/tokenize", "/decode",
                       "/info", "/rerank", "/predict"})
_TEI_TYPES = {"TooManyRequests": "overloaded", "ServerBusy": "overloaded",
              "ShuttingDown": "overloaded", "Empty": "empty",
              "Timeout": "backend", "BadReply": "backend", "InternalError": "backend",
              "EncodingFailed": "backend", "ServerError": "backend",
              "MalformedRequest": "backend"}

SERVER_ERROR_STATUSES: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 422,
    ErrorKind.SERVER_BUSY: 429,
    ErrorKind.MALFORMED_REQUEST: 500,
    ErrorKind.SERVER_ERROR: 502,
    ErrorKind.ENCODING_FAILED: 502,
    ErrorKind.BAD_REPLY: 502,
}
"""The HTTP status of each kind of error the server (or the client reading it) reports."""
_TEI_STATUSES = {"validation": 422, "empty": 400, "overloaded": 429, "backend": 424}
_TEI_KEEPS_STATUS = frozenset({401, 404, 405, 413, 500, 503})


@dataclass(frozen=True)
class Problem:
    """What went wrong, for whom: `param` is the field at fault, if one is."""

    kind: str
    status: int
    message: str
    param: str | None = None
    retry_after: int | None = None


class GatewayError(Exception):
    """Raised by the gateway's own checks; carries the `Problem` to answer with."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


# -- the gateway's own problems ---------------------------------------------------------------


def invalid(param: str, message: str) -> Problem:
    return Problem("ValidationError", 422, f"{param}: {message}", param)


def too_many_texts(count: int, limit: int) -> Problem:
    return Problem("TooManyTexts", 413,
                   f"texts: {count} texts is more than this server's limit of {limit} per "
                   "request (-max_request_texts): split them into smaller requests", "texts")


def body_too_large(limit: int) -> Problem:
    return Problem("BodyTooLarge", 413,
                   f"the request body is larger than this server's limit of {limit} bytes "
                   "(-http_max_body_bytes): send fewer or shorter texts per request")


def too_many_requests(limit: int) -> Problem:
    return Problem("TooManyRequests", 429,
                   f"{limit} requests are already in flight (-http_max_connect): retry after "
                   f"{RETRY_AFTER_S} s", retry_after=RETRY_AFTER_S)


def shutting_down() -> Problem:
    return Problem("ShuttingDown", 503,
                   "this server is shutting down (SIGTERM) and takes no new requests: send "
                   "this one to another replica", retry_after=RETRY_AFTER_S)


def unauthorized() -> Problem:
    return Problem("Unauthorized", 401,
                   "this server needs 'Authorization: Bearer <key>' with the key it was "
                   "started with (-api_key or BERT_SERVING_API_KEY)")


# -- everything else, mapped --------------------------------------------------------------------


def problem_from(error: Exception) -> Problem:
    """The Problem for any exception a route or FastAPI can raise."""
    if isinstance(error, GatewayError):
        return error.problem
    if isinstance(error, RequestValidationError):
        return _validation_problem(error.errors())
    if isinstance(error, ServerError):
        return _server_problem(error)
    if isinstance(error, BertClientTimeout):
        return Problem("Timeout", 504, "the bert-serving server behind this gateway did not "
                       "answer in time: retry later, or send fewer texts per request")
    if isinstance(error, HTTPException):
        return _http_problem(error)
    # A bug: Starlette's ServerErrorMiddleware re-raises it after this answer, and uvicorn logs it.
    return Problem("InternalError", 500, f"internal error: {type(error).__name__}: see the log")


def _server_problem(error: ServerError) -> Problem:
    kind = ErrorKind.parse(error.kind)
    status = SERVER_ERROR_STATUSES[kind]
    if kind is ErrorKind.SERVER_BUSY:
        return Problem(kind.value, status, str(error), retry_after=RETRY_AFTER_S)
    if kind is ErrorKind.BAD_REQUEST:
        return Problem(kind.value, status, f"texts: {error}", "texts")
    return Problem(kind.value, status, f"the bert-serving server failed: {error}")


def _http_problem(error: HTTPException) -> Problem:
    kinds = {404: "NotFound", 405: "MethodNotAllowed"}
    return Problem(kinds.get(error.status_code, "HTTPError"), error.status_code, str(error.detail))


def _validation_problem(errors: Sequence[Any]) -> Problem:
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "invalid JSON")
        return Problem("InvalidJSON", 400, f"the body is not valid JSON: {reason} "
                       f"(at character {first['loc'][-1]})", "body")
    lines = [_describe_error(e) for e in errors[:_MAX_LISTED_ERRORS]]
    if len(errors) > _MAX_LISTED_ERRORS:
        lines.append(f"and {len(errors) - _MAX_LISTED_ERRORS} more")
    return Problem("ValidationError", 422, "; ".join(lines), _field(first["loc"]))


def _describe_error(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    text = f"{_field(error['loc'])}: {message}"
    if not str(error["type"]).endswith(("_type", "literal_error")) or "input" not in error:
        return text  # the value itself is not the point (missing, too short, ...)
    return f"{text}, got {_sample(error['input'])}"


def _field(loc: Sequence[Any]) -> str:
    """('body', 'texts', 'list[str]', 1) -> 'texts[1]'; the body itself is 'body'."""
    path = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in UNION_TAGS:
            path += f".{part}" if path else str(part)
    return path or "body"


def _sample(value: Any) -> str:
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{type(value).__name__} {shown}"


# -- rendering ----------------------------------------------------------------------------------


def render(problem: Problem, scope: Scope) -> JSONResponse:
    """The response for `problem` in the shape of the route family of `scope`'s path.

    The kind is left in the request state for the metrics middleware.
    """
    scope.setdefault("state", {})["error_kind"] = problem.kind
    if str(scope.get("path", "")) in TEI_PATHS:
        return _tei_response(problem)
    openai = str(scope.get("path", "")).startswith(("/v1/", "/v2/"))
    status = 400 if openai and problem.kind in _INVALID_KINDS else problem.status
    body = _openai_body(problem, status) if openai else _original_body(problem, status)
    return JSONResponse(body, status_code=status, headers=_headers(problem))


def errors_documented(model: type[Any], bad_request: str = "bad request: the body names the field"
                      ) -> dict[int | str, dict[str, Any]]:
    """A router's error replies for the OpenAPI page: `model` is the shape `render` writes
    for its paths, `bad_request` what its 4xx say."""
    return {"4XX": {"model": model, "description": bad_request},
            "5XX": {"model": model, "description": "the server failed or did not answer"}}


def _original_body(problem: Problem, status: int) -> dict[str, Any]:
    return {"description": problem.message, "type": problem.kind, "status": status}


def _openai_body(problem: Problem, status: int) -> dict[str, Any]:
    return {"error": {
        "message": problem.message,
        "type": _OPENAI_TYPES.get(status, "server_error"),
        "param": problem.param,
        "code": "invalid_api_key" if status == 401 else _snake(problem.kind),
    }}


def _tei_response(problem: Problem) -> JSONResponse:
    error_type = _TEI_TYPES.get(problem.kind, "validation")
    status = (problem.status if problem.status in _TEI_KEEPS_STATUS
              else _TEI_STATUSES[error_type])
    return JSONResponse({"error": problem.message, "error_type": error_type},
                        status_code=status, headers=_headers(problem))


def _snake(kind: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", kind).lower()


def _headers(problem: Problem) -> dict[str, str]:
    headers = {}
    if problem.retry_after is not None:
        headers["Retry-After"] = str(problem.retry_after)
    if problem.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


async def _handle(request: Request, error: Exception) -> JSONResponse:
    return render(problem_from(error), request.scope)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error FastAPI or a route raises through `problem_from` and `render`."""
    for error_type in (GatewayError, RequestValidationError, ServerError, BertClientTimeout,
                       HTTPException, Exception):
        app.add_exception_handler(error_type, _handle)
