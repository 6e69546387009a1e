"""DepartedClients alone: who left, and what they sent after leaving."""

from __future__ import annotations

from bert_serving.server.pipeline.departures import DepartedClients


def test_a_request_from_a_departed_client_is_parked_then_dropped() -> None:
    departed: DepartedClients[str] = DepartedClients(hold_s=5.0)
    departed.left(b"a")
    assert b"a" in departed and b"b" not in departed
    departed.park(b"a", "request 1", now=100.0)
    assert departed.expire(now=104.9) == 0
    assert departed.expire(now=105.0) == 1
    assert departed.returned(b"a") == []  # nothing left to run


def test_a_client_that_subscribes_again_gets_its_parked_requests_back() -> None:
    departed: DepartedClients[str] = DepartedClients()
    departed.left(b"a")
    departed.left(b"b")
    departed.park(b"a", "a1", now=0.0)
    departed.park(b"b", "b1", now=0.0)
    departed.park(b"a", "a2", now=0.0)
    assert departed.returned(b"a") == ["a1", "a2"]
    assert b"a" not in departed and b"b" in departed
    assert departed.expire(now=100.0) == 1


def test_memory_is_bounded() -> None:
    departed: DepartedClients[int] = DepartedClients(capacity=3, max_parked=2)
    for client in (b"1", b"2", b"3", b"4"):
        departed.left(client)
    assert len(departed) == 3 and b"1" not in departed and b"4" in departed
    assert departed.park(b"4", 1, 0.0) == 0
    assert departed.park(b"4", 2, 0.0) == 0
    assert departed.park(b"4", 3, 0.0) == 1  # the oldest parked request goes
    assert departed.returned(b"4") == [2, 3]
