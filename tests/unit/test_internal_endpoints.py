"""The server's internal sockets: Unix sockets in a private directory, a loopback port
only where a Unix socket cannot be had. Real ZeroMQ sockets carry a message each way."""

from __future__ import annotations

from pathlib import Path

import zmq

from bert_serving.server.pipeline.internal_endpoints import MAX_IPC_PATH_BYTES, InternalEndpoints


def carries_a_message(address: str, bound: zmq.Socket, context: zmq.Context) -> bool:
    sender = context.socket(zmq.PUSH)
    sender.setsockopt(zmq.LINGER, 0)
    sender.connect(address)
    sender.send(b"hello")
    bound.setsockopt(zmq.RCVTIMEO, 30_000)  # a safety net, not an assertion
    received = bound.recv() == b"hello"
    sender.close()
    return received


def test_sockets_are_unix_sockets_in_a_private_directory_removed_at_the_end() -> None:
    context = zmq.Context()
    endpoints = InternalEndpoints()
    try:
        receiver = context.socket(zmq.PULL)
        address = endpoints.bind(receiver, "results")
        assert address == f"ipc://{endpoints.directory / 'results'}"
        assert endpoints.directory.stat().st_mode & 0o777 == 0o700
        assert carries_a_message(address, receiver, context)
        receiver.close(linger=0)
    finally:
        context.destroy(linger=0)
        endpoints.remove()
    assert not endpoints.directory.exists()


def test_a_path_over_the_unix_socket_limit_falls_back_to_a_loopback_port(tmp_path: Path) -> None:
    """A long TMPDIR: ZeroMQ would refuse the ipc path, so a random 127.0.0.1 port it is."""
    deep = tmp_path / ("d" * (MAX_IPC_PATH_BYTES - len(str(tmp_path))))
    deep.mkdir()
    context = zmq.Context()
    endpoints = InternalEndpoints(root=deep)
    try:
        receiver = context.socket(zmq.PULL)
        address = endpoints.bind(receiver, "results")
        assert address.startswith("tcp://127.0.0.1:"), address
        assert carries_a_message(address, receiver, context)
        receiver.close(linger=0)
    finally:
        context.destroy(linger=0)
        endpoints.remove()
