"""The names one server gives its worker processes on the ventilator's worker socket.

The worker socket is a ZeroMQ ROUTER. A ROUTER drops a second peer whose identity
is already connected, and with it whatever that peer sent: where the socket is a
loopback port (`internal_endpoints`' fallback) and every server called its first
worker `worker-0-0`, an orphan of a killed server still reconnecting to a port this
server happened to reuse would hold the name, this server's own worker's READY would
be lost, and the start would wait forever (CI saw it once, when the socket was
always a port). So each server's names end in a tag of its own.

Only a live name is a worker: one issued to a process the server started and not
yet retired when that process died. A READY the dead process sent just before
dying, read after the ventilator heard of the death, must not bring it back as a
worker that takes batches and never answers.
"""

from __future__ import annotations

import secrets
import threading

__all__ = ["WorkerIdentities"]


class WorkerIdentities:
    """Issues this server's worker identities, retires the dead ones, recognises the rest.

    Issued by the supervisor (main thread) before it spawns a worker; retired and looked
    up by the ventilator's loop: a lock keeps the two threads' view one.
    """

    def __init__(self) -> None:
        self.tag = secrets.token_hex(4)
        self._live: set[bytes] = set()
        self._lock = threading.Lock()

    def issue(self, index: int, generation: int) -> bytes:
        """Worker `index`'s identity in its `generation`-th process (restarts count up)."""
        identity = f"worker-{index}-{generation}-{self.tag}".encode()
        with self._lock:
            self._live.add(identity)
        return identity

    def retire(self, identity: bytes) -> None:
        """The process behind `identity` is dead: whatever still arrives from it is not work."""
        with self._lock:
            self._live.discard(identity)

    def is_live(self, identity: bytes) -> bool:
        """Whether `identity` names a worker this server started and that has not died."""
        with self._lock:
            return identity in self._live
