"""What the HTTP gateway needs from the server's configuration, as one small frozen object.

The gateway never reads `ServerConfig` directly, so it can be built (and tested)
from plain values; `GatewaySettings.from_config` is the one place the flags map.

Usage::

    settings = GatewaySettings.from_config(parse_server_config(["-http_port", "8125"]))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import ServerConfig

__all__ = ["GatewaySettings"]

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class GatewaySettings:
    """Limits, CORS and auth of the gateway; `host`/`port` are where it listens."""

    host: str = "127.0.0.1"
    port: int = 8125
    max_connect: int = 10
    max_body_bytes: int = 10 * 1024 * 1024
    max_request_texts: int = 100_000
    cors_origins: tuple[str, ...] = ("*",)
    api_key: str | None = None
    open_metrics: bool = False
    """/metrics without the API key (-open_metrics)."""
    model_name: str = DEFAULT_MODEL_NAME
    """What /v1/embeddings reports when a request names no model."""

    @classmethod
    def from_config(cls, config: ServerConfig) -> GatewaySettings:
        """The gateway's view of -http_port, -http_max_connect, -cors, -api_key and friends."""
        if config.http_port is None:
            raise ValueError("the HTTP gateway needs -http_port")
        return cls(
            host="0.0.0.0" if config.bind_ip == "*" else config.bind_ip,
            port=config.http_port,
            max_connect=config.http_max_connect,
            max_body_bytes=config.http_max_body_bytes,
            max_request_texts=config.max_request_texts,
            cors_origins=tuple(o.strip() for o in config.cors.split(",") if o.strip()),
            api_key=config.api_key or None,
            open_metrics=config.open_metrics,
            model_name=_model_name(config.engine.model_dir),
        )


def _model_name(model_dir: Path | None) -> str:
    """The folder's name (for an exported `.../bert/model.onnx`, the folder holding it)."""
    if model_dir is None:
        return DEFAULT_MODEL_NAME
    return model_dir.parent.name if model_dir.suffix == ".onnx" else model_dir.name
