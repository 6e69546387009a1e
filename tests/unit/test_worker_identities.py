"""Worker identities are this server's own: another server's never pass for them."""

from __future__ import annotations

from bert_serving.server.pipeline.worker_identities import WorkerIdentities


def test_each_server_names_its_workers_apart() -> None:
    """Two servers' first workers differ, so an orphan of one cannot hold the other's
    name on a reused port (a ROUTER drops the second peer of a name, and its READY)."""
    first, second = WorkerIdentities(), WorkerIdentities()
    assert first.identity(0, 0) != second.identity(0, 0)
    assert first.identity(0, 0) != first.identity(0, 1) != first.identity(1, 0)


def test_only_issued_identities_are_recognised() -> None:
    identities, other = WorkerIdentities(), WorkerIdentities()
    assert identities.issued(identities.identity(3, 7))
    for stranger in (other.identity(3, 7), b"worker-0-0", b"", identities.tag.encode(),
                     b"client-" + identities.identity(0, 0)):
        assert not identities.issued(stranger), stranger
