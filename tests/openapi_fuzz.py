"""Request bodies drawn from a running gateway's OpenAPI schema, for the fuzz tests.

The schema FastAPI publishes is what a client reads; fuzzing from it reaches every
field of every route, and a route added later is fuzzed without a test change
(`request_bodies` asks the caller to name the routes, so one cannot slip by).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

__all__ = ["JSON_ROUTES", "JSON_VALUES", "from_schema", "post_fuzzed_bodies", "request_bodies"]

JSON_ROUTES = frozenset({
    "/encode", "/v1/embeddings", "/", "/embed", "/embed_all", "/embed_sparse", "/tokenize",
    "/decode", "/rerank", "/predict", "/v1/rerank", "/v2/rerank", "/v1/embed", "/v2/embed"})
"""Every route that takes a JSON body, whatever the model (those of another kind refuse)."""

FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)


def from_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for the JSON Schema subset FastAPI writes (refs, unions, objects, arrays, scalars).

    Constraints other than required keys and minItems are left out on purpose: values
    just outside the schema (a blank string, a long list) are what a fuzzer should send.
    """
    if "$ref" in schema:
        target = components["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return st.deferred(lambda: from_schema(target, components))
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return st.one_of([from_schema(branch, components) for branch in schema[union]])
    if "enum" in schema or "const" in schema:
        return st.sampled_from(schema.get("enum", [schema.get("const")]))
    kind = schema.get("type")
    if kind == "object":
        properties = {key: from_schema(value, components)
                      for key, value in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    if kind == "array":
        least = schema.get("minItems", 0)
        return st.lists(from_schema(schema.get("items", {}), components), min_size=least,
                        max_size=least + 6)
    scalars = {"string": st.text(max_size=30), "boolean": st.booleans(), "null": st.none(),
               "integer": st.integers(), "number": FINITE}
    return scalars.get(str(kind), JSON_VALUES)


def request_bodies(openapi: dict[str, Any],
                   routes: Collection[str]) -> st.SearchStrategy[tuple[str, Any]]:
    """(path, body): bodies drawn from each POST route's schema, and any JSON to any path.

    `routes`: the routes expected to take JSON, so a new one cannot go unfuzzed.
    """
    strategies = []
    for path, item in openapi["paths"].items():
        content = item.get("post", {}).get("requestBody", {}).get("content", {})
        if "application/json" in content:
            body = from_schema(content["application/json"]["schema"], openapi["components"])
            strategies.append((path, st.tuples(st.just(path), body)))
    assert {path for path, _ in strategies} == set(routes), "the routes taking JSON changed"
    paths = st.sampled_from(sorted(openapi["paths"]))
    return st.one_of(*(strategy for _, strategy in strategies), st.tuples(paths, JSON_VALUES))


def post_fuzzed_bodies(http: httpx.Client, *, max_examples: int,
                       check_reply: Callable[[str, Any, httpx.Response], None]) -> None:
    """POST bodies drawn from the server's own OpenAPI schema to JSON_ROUTES, and any JSON
    to any path: none may get a 5xx, and each answer also goes to `check_reply`."""
    openapi = http.get("/openapi.json").json()

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request_bodies(openapi, JSON_ROUTES))
    def check(case: tuple[str, Any]) -> None:
        path, body = case
        reply = http.post(path, json=body)
        event(f"{path} {reply.status_code}")  # seen with --hypothesis-show-statistics
        assert reply.status_code < 500, (path, body, reply.text)
        check_reply(path, body, reply)

    check()
