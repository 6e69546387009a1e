"""What the client raises, drawn once::

    TimeoutError
    └── BertClientTimeout   no reply in time; names tcp://ip:port and port_out
    RuntimeError
    └── ServerError         (from bert_serving.proto) the server's own message for a request
    TypeError, ValueError   bad input, raised before anything is sent; names the index

Every message says what to check or change.
"""

from __future__ import annotations

from dataclasses import dataclass

from bert_serving.proto import ServerError

__all__ = ["BertClientTimeout", "ServerAddress", "ServerError"]


@dataclass(frozen=True)
class ServerAddress:
    """Where a client sends requests (`port`) and reads replies (`port_out`)."""

    ip: str
    port: int
    port_out: int

    @property
    def requests_url(self) -> str:
        return f"tcp://{self.ip}:{self.port}"

    @property
    def replies_url(self) -> str:
        return f"tcp://{self.ip}:{self.port_out}"


class BertClientTimeout(TimeoutError):
    """The server did not answer in time (the 1.10.0 client waited forever by default)."""

    @classmethod
    def waiting(cls, server: ServerAddress, timeout_ms: int, what: str) -> BertClientTimeout:
        """The error for `what` (e.g. "the reply to request 3") after `timeout_ms`."""
        return cls(
            f"no answer from the bert-serving server for {what} within {timeout_ms} ms: "
            f"requests go to {server.requests_url} (port={server.port}) and replies come "
            f"from {server.replies_url} (port_out={server.port_out}). Check that the "
            "server is running and reachable there, that port/port_out match its -port and "
            "-port_out, and for very large requests raise BertClient(timeout=...) "
            "(-1 waits forever)."
        )
