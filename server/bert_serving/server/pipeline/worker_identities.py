"""The names one server gives its worker processes on the ventilator's worker socket.

The worker socket is a ZeroMQ ROUTER on a random 127.0.0.1 port. A ROUTER drops a
second peer whose identity is already connected, and with it whatever that peer
sent: if every server called its first worker `worker-0-0`, an orphan of a killed
server still reconnecting to a port this server happened to reuse would hold the
name, this server's own worker's READY would be lost, and the start would wait
forever (CI saw it once). So each server's names end in a tag of its own, and a
peer without the tag is never taken for a worker, whatever it sends.
"""

from __future__ import annotations

import secrets

__all__ = ["WorkerIdentities"]


class WorkerIdentities:
    """Issues this server's worker identities and recognises them."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(4)
        self._suffix = f"-{self.tag}".encode()

    def identity(self, index: int, generation: int) -> bytes:
        """Worker `index`'s identity in its `generation`-th process (restarts count up)."""
        return f"worker-{index}-{generation}-{self.tag}".encode()

    def issued(self, identity: bytes) -> bool:
        """Whether `identity` is one this server gives its workers."""
        return identity.startswith(b"worker-") and identity.endswith(self._suffix)
