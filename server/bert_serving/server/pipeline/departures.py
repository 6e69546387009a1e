"""Which clients have left, so nothing of theirs is computed after the server knows.

The sink sees a client leave (its subscription ends) and tells the ventilator,
but the ventilator reads its sockets in some order: a request the client sent
just before it died can be read *after* the news that it left. Cancelling the
queued rows is then not enough; the identity has to be remembered, and a
request read later from it dropped.

An identity can come back (our client takes a fixed `identity=`, and its SUB
may connect after its first request arrives), so a request from a departed
identity is parked for `hold_s` rather than dropped at once: if the client
subscribes again in that time, the request runs.

Usage::

    departed = DepartedClients()
    departed.left(b"client-1")
    departed.park(b"client-1", request, now)   # a request read after it left
    departed.returned(b"client-1")             # -> [request]: serve it after all
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DepartedClients"]

T = TypeVar("T")


@dataclass
class _Parked(Generic[T]):
    client_id: bytes
    item: T
    deadline: float


class DepartedClients(Generic[T]):
    """A bounded memory of departed identities and of the requests they sent since."""

    def __init__(self, *, capacity: int = 100_000, hold_s: float = 5.0,
                 max_parked: int = 1_000) -> None:
        self.capacity = capacity
        self.hold_s = hold_s
        self.max_parked = max_parked
        self._gone: OrderedDict[bytes, None] = OrderedDict()
        self._parked: list[_Parked[T]] = []

    def __contains__(self, client_id: bytes) -> bool:
        return client_id in self._gone

    def __len__(self) -> int:
        return len(self._gone)

    def left(self, client_id: bytes) -> None:
        """Remember that `client_id` left (the oldest memory goes past `capacity`)."""
        self._gone[client_id] = None
        self._gone.move_to_end(client_id)
        while len(self._gone) > self.capacity:
            self._gone.popitem(last=False)

    def returned(self, client_id: bytes) -> list[T]:
        """The identity subscribed again: forget it left, and hand back what it parked."""
        self._gone.pop(client_id, None)
        back = [p.item for p in self._parked if p.client_id == client_id]
        if back:
            self._parked = [p for p in self._parked if p.client_id != client_id]
        return back

    def park(self, client_id: bytes, item: T, now: float) -> int:
        """Hold a request from a departed identity; returns how many older ones were dropped."""
        self._parked.append(_Parked(client_id, item, now + self.hold_s))
        overflow = max(0, len(self._parked) - self.max_parked)
        del self._parked[:overflow]
        return overflow

    def expire(self, now: float) -> int:
        """Drop parked requests whose client did not come back in time; returns how many."""
        keep = [p for p in self._parked if p.deadline > now]
        dropped = len(self._parked) - len(keep)
        self._parked = keep
        return dropped
