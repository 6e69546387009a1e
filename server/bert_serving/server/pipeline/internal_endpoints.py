"""Where one server's own parts meet: the ventilator's worker socket and the sink's results.

They are Unix sockets (`ipc://`) in a directory made for this server, that only its user
can enter, and removed when it stops: the same choice the original bert-as-service made.
Not a random TCP port on 127.0.0.1, because such a port can be one that is not ours to
take. Another process may still be reconnecting to it, such as an orphaned worker of a
killed server. A container's port forward (podman's and docker's DNAT of 127.0.0.1) may
capture connections to it. And any local user can connect to it and send frames.
Where ZeroMQ has no ipc transport (some Windows builds), or the path would pass the
Unix socket limit (a long TMPDIR), a random 127.0.0.1 port is still used.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import zmq

__all__ = ["InternalEndpoints"]

MAX_IPC_PATH_BYTES = 100
"""Below the smallest sun_path in use (104 on macOS, 108 on Linux, each with its NUL)."""


class InternalEndpoints:
    """`bind(socket, "workers")` -> the address the other side connects to."""

    def __init__(self, root: Path | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="bert-serving-", dir=root))

    def bind(self, socket: zmq.Socket, name: str) -> str:
        path = self.directory / name
        if zmq.has("ipc") and len(str(path).encode()) <= MAX_IPC_PATH_BYTES:
            address = f"ipc://{path}"
            socket.bind(address)
            return address
        port = socket.bind_to_random_port("tcp://127.0.0.1")
        return f"tcp://127.0.0.1:{port}"

    def remove(self) -> None:
        """Delete the directory (its sockets are closed, or the process is ending)."""
        shutil.rmtree(self.directory, ignore_errors=True)
