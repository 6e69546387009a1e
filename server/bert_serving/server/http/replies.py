"""How a route writes its reply: JSON by orjson, built and written off the event loop.

Vectors go to JSON straight from the array, in a worker thread: the standard
library takes seconds for 10,000 rows (printing each float32 as a 17-digit
double) and would stall every other request meanwhile; orjson prints the
shortest float32 form, which reads back bit for bit. A route's `response_model`
then serves /docs only. Every route module writes its bodies through
`json_reply`; error bodies are errors.py's.

Usage::

    return await json_reply(lambda: {"result": encoded.vectors, "status": 200})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import orjson
from fastapi.responses import Response

__all__ = ["json_reply"]

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


async def json_reply(build: Callable[[], Any]) -> Response:
    """What `build` returns (numpy arrays included) as JSON, built and written off the loop."""
    body = await anyio.to_thread.run_sync(lambda: orjson.dumps(build(), option=_NUMPY))
    return Response(body, media_type="application/json")
