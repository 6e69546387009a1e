"""Worker identities are this server's own and alive: another server's, or a dead
worker's, never pass for a worker."""

from __future__ import annotations

from bert_serving.server.pipeline.worker_identities import WorkerIdentities


def test_each_server_names_its_workers_apart() -> None:
    """Two servers' first workers differ, so an orphan of one cannot hold the other's
    name on a reused port (a ROUTER drops the second peer of a name, and its READY)."""
    first, second = WorkerIdentities(), WorkerIdentities()
    assert first.issue(0, 0) != second.issue(0, 0)
    assert len({first.issue(0, 1), first.issue(1, 0), first.issue(0, 0)}) == 3


def test_only_live_issued_identities_are_workers() -> None:
    identities, other = WorkerIdentities(), WorkerIdentities()
    live = identities.issue(3, 7)
    assert identities.is_live(live)
    for stranger in (other.issue(3, 7), b"worker-0-0", b"", identities.tag.encode(),
                     b"client-" + live, live + b"-"):
        assert not identities.is_live(stranger), stranger


def test_a_retired_identity_is_no_longer_a_worker() -> None:
    """A READY a worker sent just before it died, read after its death was told, must
    not make it a worker again; its successor (next generation) is one."""
    identities = WorkerIdentities()
    dead, successor = identities.issue(0, 0), identities.issue(0, 1)
    identities.retire(dead)
    assert not identities.is_live(dead)
    assert identities.is_live(successor)
