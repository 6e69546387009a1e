"""Where one server's own parts meet: the ventilator's worker socket and the sink's results.

They are Unix sockets (`ipc://`) in a directory made for this server, that only its user
can enter, and removed when it stops: the same choice the original bert-as-service made.
Not a random TCP port on 127.0.0.1, because such a port can be one that is not ours to
take. Another process may still be reconnecting to it, such as an orphaned worker of a
killed server. A container's port forward (podman's and docker's DNAT of 127.0.0.1) may
capture connections to it. And any local user can connect to it and send frames.
Where ZeroMQ has no ipc transport (some Windows builds), or the path would pass the
Unix socket limit (a long TMPDIR), a random 127.0.0.1 port is still used, with a warning.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path

import zmq

from ..errors import ConfigError

__all__ = ["DIRECTORY_PREFIX", "InternalEndpoints"]

log = logging.getLogger(__name__)

DIRECTORY_PREFIX = "bert-serving-"
"""How each server's socket directory in the temp dir is named (then a random suffix)."""

MAX_IPC_PATH_BYTES = 100
"""Below the smallest sun_path in use (104 on macOS, 108 on Linux, each with its NUL)."""


class InternalEndpoints:
    """`bind(socket, "workers")` -> the address the other side connects to."""

    def __init__(self, root: Path | None = None) -> None:
        try:
            self.directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX, dir=root))
        except OSError as error:
            raise ConfigError(
                f"cannot make a directory for the workers' sockets in {root or 'any temp dir'}:"
                f" {error}; set TMPDIR to a writable directory (or mount one on /tmp)"
            ) from None
        # removed at stop, and also when the process ends without one (an uncaught error)
        self._removal = weakref.finalize(self, shutil.rmtree, self.directory, True)

    def bind(self, socket: zmq.Socket, name: str) -> str:
        path = self.directory / name
        if zmq.has("ipc") and len(str(path).encode()) <= MAX_IPC_PATH_BYTES:
            address = f"ipc://{path}"
            socket.bind(address)
            return address
        port = socket.bind_to_random_port("tcp://127.0.0.1")
        reason = ("the path would be longer than a Unix socket allows" if zmq.has("ipc")
                  else "this ZeroMQ has no ipc transport")
        log.warning("the %s socket is on a 127.0.0.1 port (%d), not a Unix socket: %s; a "
                    "shorter TMPDIR avoids it", name, port, reason)
        return f"tcp://127.0.0.1:{port}"

    def remove(self) -> None:
        """Delete the directory (its sockets are closed, or the process is ending)."""
        self._removal()
