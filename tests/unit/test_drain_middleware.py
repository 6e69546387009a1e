"""DrainMiddleware on its own: what it counts, what it refuses once draining begins.

A small Starlette app stands behind it (the middleware is what is tested); the real
server's drain on SIGTERM is tests/integration/test_draining.py.
"""

from __future__ import annotations

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bert_serving.server.http.draining import Drain, DrainMiddleware


def make_app(drain: Drain, release: anyio.Event, entered: anyio.Event) -> Starlette:
    async def slow(request: Request) -> JSONResponse:
        entered.set()
        await release.wait()
        return JSONResponse({"result": [[1.0]]})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"status": "not ready"}, status_code=503)

    app = Starlette(routes=[Route("/encode", slow, methods=["POST"]),
                            Route("/v1/embeddings", slow, methods=["POST"]),
                            Route("/ready", ready)])
    app.add_middleware(DrainMiddleware, drain=drain)
    return app


def test_in_flight_is_answered_and_new_work_refused_once_draining() -> None:
    async def scenario() -> None:
        drain, release, entered = Drain(), anyio.Event(), anyio.Event()
        transport = httpx.ASGITransport(app=make_app(drain, release, entered))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            replies: list[httpx.Response] = []

            async def send() -> None:
                replies.append(await client.post("/encode", json={"texts": ["a"]}))

            async with anyio.create_task_group() as group:
                group.start_soon(send)
                await entered.wait()
                assert drain.in_flight == 1 and not drain.idle()
                drain.begin()
                refused = await client.post("/encode", json={"texts": ["b"]})
                openai = await client.post("/v1/embeddings", json={"input": "b"})
                ready = await client.get("/ready")  # probes pass through to their route
                assert not drain.idle()  # the first request is still in flight
                release.set()
            assert drain.idle()
        (answered,) = replies
        assert answered.status_code == 200 and answered.json() == {"result": [[1.0]]}
        assert refused.status_code == 503 and refused.json()["type"] == "ShuttingDown"
        assert refused.headers["Retry-After"] == "1"
        assert openai.status_code == 503
        assert openai.json()["error"]["code"] == "shutting_down"
        assert ready.status_code == 503 and ready.json() == {"status": "not ready"}

    anyio.run(scenario)


def test_nothing_is_refused_before_draining() -> None:
    async def scenario() -> None:
        drain, release, entered = Drain(), anyio.Event(), anyio.Event()
        release.set()
        transport = httpx.ASGITransport(app=make_app(drain, release, entered))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.post("/encode", json={"texts": ["a"]})).status_code == 200
        assert drain.idle() and not drain.draining

    anyio.run(scenario)
