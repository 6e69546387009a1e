"""The reply demultiplexer: one SUB socket, many waiting threads.

Replies for one client all arrive on its SUB socket, in whatever order the
server finishes them. Threads that share the client each wait for their own
request ids. At any moment one of them (whichever finds nobody receiving) is the
receiver: it reads from the socket with the condition's lock released, stashes
each reply under its request id and wakes the others, who pick their own reply
from the stash. A zmq socket must not be used by two threads at once; the
`_receiving` flag guarantees that, and the lock hand-over is the memory barrier
zmq asks for when a socket moves between threads.

Replies for ids nobody awaits (a request given up after a timeout, or a client
sharing this identity) are dropped, so the stash cannot grow without bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import zmq

from bert_serving.proto import Reply, decode_reply

from ._errors import BertClientTimeout, ServerAddress

__all__ = ["ReplyDemultiplexer"]

# A pick returns (done, reply): done with a reply, done with nothing left to wait for, or not yet.
_Pick = Callable[[], tuple[bool, Reply | None]]


class ReplyDemultiplexer:
    """Hands each reply to the thread waiting for its request id.

    Usage::

        replies.expect(req_id)          # before sending, so the reply is never dropped
        reply = replies.take(req_id, timeout_ms=60_000)
    """

    def __init__(self, socket: zmq.Socket[bytes], server: ServerAddress) -> None:
        self._socket = socket
        self._server = server
        self._cond = threading.Condition()
        self._awaited: set[int] = set()
        self._detached: set[int] = set()  # sent with blocking=False, claimed by fetch
        self._stash: dict[int, Reply] = {}
        self._receiving = False

    def expect(self, req_id: int, *, detached: bool = False) -> None:
        """Register a request about to be sent; `detached` ones are collected by `take_any`."""
        with self._cond:
            self._awaited.add(req_id)
            if detached:
                self._detached.add(req_id)

    def forget(self, req_id: int) -> None:
        """Give up on a request: its reply, now or later, is dropped."""
        with self._cond:
            self._claim(req_id)

    def pending(self) -> set[int]:
        """The ids of requests whose replies have not been taken."""
        with self._cond:
            return set(self._awaited)

    def has_detached(self) -> bool:
        with self._cond:
            return bool(self._detached)

    def take(self, req_id: int, timeout_ms: int | None) -> Reply:
        """The reply to `req_id`; BertClientTimeout (and the request forgotten) if none in time."""

        def pick() -> tuple[bool, Reply | None]:
            if req_id in self._stash:
                return True, self._claim(req_id)
            return False, None

        try:
            reply = self._wait(pick, timeout_ms, f"the reply to request {req_id}")
        except BertClientTimeout:
            self.forget(req_id)
            raise
        assert reply is not None
        return reply

    def take_any(self, timeout_ms: int | None) -> Reply | None:
        """The next reply to a detached request, in arrival order; None if none is pending."""

        def pick() -> tuple[bool, Reply | None]:
            if not self._detached:
                return True, None
            arrived = next((r for r in self._detached if r in self._stash), None)
            return (True, self._claim(arrived)) if arrived is not None else (False, None)

        return self._wait(pick, timeout_ms, "a reply to a non-blocking encode")

    def _claim(self, req_id: int) -> Reply | None:
        self._awaited.discard(req_id)
        self._detached.discard(req_id)
        return self._stash.pop(req_id, None)

    def _wait(self, pick: _Pick, timeout_ms: int | None, what: str) -> Reply | None:
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        with self._cond:
            while True:
                done, reply = pick()
                if done:
                    return reply
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    assert timeout_ms is not None
                    raise BertClientTimeout.waiting(self._server, timeout_ms, what)
                if self._receiving:
                    self._cond.wait(remaining)
                else:
                    self._receive_once(remaining)

    def _receive_once(self, remaining: float | None) -> None:
        """Read at most one reply with the lock released; called and returning with it held."""
        self._receiving = True
        self._cond.release()
        try:
            reply = self._poll(remaining)
        finally:
            self._cond.acquire()
            self._receiving = False
            self._cond.notify_all()
        if reply is not None and reply.req_id in self._awaited:
            self._stash[reply.req_id] = reply

    def _poll(self, remaining: float | None) -> Reply | None:
        poll_ms = None if remaining is None else max(1, int(remaining * 1000))
        if not self._socket.poll(poll_ms, zmq.POLLIN):
            return None
        return decode_reply(self._socket.recv_multipart())
