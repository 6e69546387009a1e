"""Prometheus metrics of the gateway, and of the server behind it, in the text format.

The gateway counts what it sees (requests by route and status, errors by kind,
latency, texts and tokens encoded, requests in flight); the server's own
numbers (queue depth, batches by size, worker restarts, ...) are read from its
SHOW_STATUS `statistic` at scrape time, so they count every client, not only
HTTP ones. Keys the server does not report are left out, not zeroed.

Everything here runs on the gateway's event loop thread, so counters need no lock.
The text format is small enough to write by hand (no prometheus_client needed).

Usage::

    metrics = GatewayMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics, paths=frozenset({"/encode"}))
    text = metrics.render(statistic)   # statistic: SHOW_STATUS's dict, or None if unreachable
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "GatewayMetrics", "MetricsMiddleware"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CLIENT_CLOSED = 499  # nginx's status for "the client went away before the answer"
_UNMATCHED = "unmatched"  # one label for every unknown path, so scanners cannot blow up series

# statistic key -> (metric name, type, help)
_SERVER_SERIES = {
    "pending_texts": ("bert_serving_queue_texts", "gauge", "Texts waiting to be batched."),
    "num_total_seq": ("bert_serving_texts_total", "counter", "Texts received, from all clients."),
    "num_tokens": ("bert_serving_tokens_total", "counter", "Tokens received, from all clients."),
    "num_data_request": ("bert_serving_data_requests_total", "counter", "Encode requests."),
    "num_rejected_request": ("bert_serving_rejected_requests_total", "counter",
                             "Requests answered with an error (bad texts, server busy)."),
    "num_malformed_request": ("bert_serving_malformed_requests_total", "counter",
                              "Frames that were not a request."),
    "num_batches": ("bert_serving_batches_total", "counter", "Batches sent to workers."),
    "num_worker_restarts": ("bert_serving_worker_restarts_total", "counter",
                            "Workers restarted after dying."),
}


class _Histogram:
    """Cumulative buckets, sum and count of one label set."""

    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS_S)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(LATENCY_BUCKETS_S):
            if value <= bound:
                self.buckets[index] += 1
        self.sum += value
        self.count += 1


class GatewayMetrics:
    """The gateway's counters; `render` writes them (and the server's) as Prometheus text."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()  # (route, method, status)
        self.errors: Counter[tuple[str, str]] = Counter()  # (route, kind)
        self.latency: defaultdict[str, _Histogram] = defaultdict(_Histogram)
        self.texts = 0
        self.tokens = 0
        self.in_flight = 0

    def on_request(self, route: str, method: str, status: int, seconds: float,
                   error_kind: str | None) -> None:
        self.requests[(route, method, status)] += 1
        self.latency[route].observe(seconds)
        if error_kind is not None:
            self.errors[(route, error_kind)] += 1

    def on_encoded(self, texts: int, tokens: int) -> None:
        self.texts += texts
        self.tokens += tokens

    def render(self, statistic: Mapping[str, Any] | None) -> str:
        """Prometheus text: the gateway's series, then the server's (`bert_serving_up` 0: none)."""
        lines = [*self._gateway_lines(), *_server_lines(statistic)]
        return "\n".join(lines) + "\n"

    def _gateway_lines(self) -> Iterable[str]:
        yield from _family("bert_serving_http_requests_total", "counter", "HTTP requests answered.",
                           [({"route": r, "method": m, "status": str(s)}, n)
                            for (r, m, s), n in sorted(self.requests.items())])
        yield from _family("bert_serving_http_errors_total", "counter", "HTTP errors by kind.", [
            ({"route": r, "kind": k}, n) for (r, k), n in sorted(self.errors.items())
        ])
        yield from self._latency_lines()
        yield from _family("bert_serving_http_texts_total", "counter", "Texts encoded over HTTP.",
                           [({}, self.texts)])
        yield from _family("bert_serving_http_tokens_total", "counter",
                           "Tokens encoded over HTTP ([CLS]/[SEP] included, after truncation).",
                           [({}, self.tokens)])
        yield from _family("bert_serving_http_in_flight", "gauge", "HTTP requests being served.",
                           [({}, self.in_flight)])

    def _latency_lines(self) -> Iterable[str]:
        name = "bert_serving_http_request_duration_seconds"
        yield f"# HELP {name} HTTP request latency."
        yield f"# TYPE {name} histogram"
        for route, histogram in sorted(self.latency.items()):
            for bound, count in zip(LATENCY_BUCKETS_S, histogram.buckets, strict=True):
                yield _sample(f"{name}_bucket", {"route": route, "le": str(bound)}, count)
            yield _sample(f"{name}_bucket", {"route": route, "le": "+Inf"}, histogram.count)
            yield _sample(f"{name}_sum", {"route": route}, histogram.sum)
            yield _sample(f"{name}_count", {"route": route}, histogram.count)


def _server_lines(statistic: Mapping[str, Any] | None) -> Iterable[str]:
    yield from _family("bert_serving_up", "gauge", "Whether the server answered SHOW_STATUS.",
                       [({}, int(statistic is not None))])
    if statistic is None:
        return
    for key, (name, kind, help_text) in _SERVER_SERIES.items():
        value = statistic.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield from _family(name, kind, help_text, [({}, value)])
    sizes = statistic.get("batch_size_histogram")
    if isinstance(sizes, Mapping):
        yield from _family(
            "bert_serving_batches_by_size_total", "counter",
            "Batches by size: max_size is the power of two at or above the batch's text count.",
            [({"max_size": str(bound)}, count) for bound, count in sizes.items()],
        )


def _family(name: str, kind: str, help_text: str,
            samples: list[tuple[dict[str, str], float]]) -> Iterable[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"
    for labels, value in samples:
        yield _sample(name, labels, value)


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    if not labels:
        return f"{name} {value}"
    inner = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
    return f"{name}{{{inner}}} {value}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _route_of(scope: Scope, paths: frozenset[str]) -> str:
    """The route's template (`/encode`), never a raw path outside `paths`.

    Requests answered before routing (401, 413, 429) have no route in their
    scope; their path names it when it is one of `paths` (no route has parameters).
    """
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    return scope["path"] if scope["path"] in paths else _UNMATCHED


class MetricsMiddleware:
    """Times every HTTP request and counts it by route, status and error kind.

    Outermost of the gateway's middlewares, so it also sees the answers the
    auth and limit middlewares give without reaching a route.
    """

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = CLIENT_CLOSED  # unless a response starts

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight += 1
        kind = None
        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            status, kind = 500, "InternalError"  # Starlette's outermost middleware answers it
            raise
        finally:
            self.metrics.in_flight -= 1
            kind = scope.get("state", {}).get("error_kind", kind)
            self.metrics.on_request(_route_of(scope, self.paths), scope["method"], status,
                                    time.perf_counter() - started, kind)
