"""The server's internal sockets: Unix sockets in a private directory, a loopback port
only where a Unix socket cannot be had. Real ZeroMQ sockets carry a message each way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from bert_serving.server.errors import ConfigError
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


def test_a_path_over_the_unix_socket_limit_falls_back_to_a_loopback_port(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A long TMPDIR: ZeroMQ would refuse the ipc path, so a random 127.0.0.1 port it is,
    said in the log (such a port is what the Unix sockets avoid)."""
    deep = tmp_path / ("d" * (MAX_IPC_PATH_BYTES - len(str(tmp_path))))
    deep.mkdir()
    context = zmq.Context()
    endpoints = InternalEndpoints(root=deep)
    try:
        receiver = context.socket(zmq.PULL)
        address = endpoints.bind(receiver, "results")
        assert address.startswith("tcp://127.0.0.1:"), address
        assert "longer than a Unix socket allows" in caplog.text
        assert carries_a_message(address, receiver, context)
        receiver.close(linger=0)
    finally:
        context.destroy(linger=0)
        endpoints.remove()


def test_the_directory_goes_with_a_process_that_ends_without_a_stop(tmp_path: Path) -> None:
    """An uncaught error ends the server without `remove()`: the directory still goes."""
    script = ("import pathlib, sys\n"
              "from bert_serving.server.pipeline.internal_endpoints import InternalEndpoints\n"
              f"endpoints = InternalEndpoints(root=pathlib.Path({str(tmp_path)!r}))\n"
              "print(endpoints.directory, flush=True)\n"
              "raise RuntimeError('an error nobody catches')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "an error nobody catches" in done.stderr
    made = Path(done.stdout.strip())
    assert made.parent == tmp_path and not made.exists()


def test_no_writable_place_is_a_one_line_error_naming_tmpdir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set TMPDIR to a writable directory"):
        InternalEndpoints(root=tmp_path / "missing")
