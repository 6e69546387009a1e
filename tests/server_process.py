"""Start the real `bert-serving-start` in a subprocess, on free ports, for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["READY_MARK", "ServerProcess", "free_port", "wait_until"]

READY_MARK = "bert-serving ready:"
POLL_INTERVAL_S = 0.02


def wait_until(condition: Callable[[], object], timeout: float = 30,
               what: str | Callable[[], str] = "the condition") -> None:
    """Return as soon as `condition()` is true; fail the test naming `what` after `timeout` s.

    Tests wait on the state they need (a counter, a log line, a status), never on a guess
    of how long it takes: a guess is flaky on a loaded machine and slow on an idle one.
    `what` may be a callable, so a message can carry the server's output at that moment.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what() if callable(what) else what}")
        time.sleep(POLL_INTERVAL_S)  # the poll's pace; what is waited for is `condition`


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it; never a fixed number)."""
    return free_ports(1)[0]


def port_flags() -> list[str]:
    """`-port P -port_out Q` on two different free ports, for a start run by hand."""
    port, port_out = free_ports(2)
    return ["-port", str(port), "-port_out", str(port_out)]


def free_ports(count: int) -> list[int]:
    """`count` different free ports: all held open while the OS picks, so no two are the
    same (picked one after another, a closed probe's port can come back: CI once got
    -port_out and -http_port both 34959)."""
    with contextlib.ExitStack() as held:
        probes = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


class ServerProcess:
    """`with ServerProcess(["-num_worker", "2"], cache) as server: server.port ...`"""

    def __init__(self, args: Sequence[str], graph_cache: Path, *, start_timeout: float = 300,
                 http: bool = False, cpu: bool = True, fault: str | None = None) -> None:
        """`fault`: BERT_SERVING_INJECT_FAULT for the server (config.py's `fault`)."""
        ports = free_ports(3 if http else 2)
        self.port, self.port_out = ports[0], ports[1]
        self.http_port = ports[2] if http else None
        self.args = [
            sys.executable, "-c", "from bert_serving.server.cli import start; "
            "import sys; sys.exit(start())",
            *(["-cpu"] if cpu else []), "-bind_ip", "127.0.0.1", "-port", str(self.port),
            "-port_out", str(self.port_out), "-graph_tmp_dir", str(graph_cache), *args,
        ]
        if self.http_port:
            self.args += ["-http_port", str(self.http_port)]
        self.fault = fault
        self.start_timeout = start_timeout
        self.lines: list[str] = []
        self.ready = threading.Event()

    def launch(self) -> None:
        """Start the process and collect its output; `with` also waits for the ready line."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.fault:
            env["BERT_SERVING_INJECT_FAULT"] = self.fault
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=self._read_output, daemon=True).start()

    def __enter__(self) -> ServerProcess:
        self.launch()
        deadline = time.monotonic() + self.start_timeout
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start:\n" + self.output)
        return self

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith(READY_MARK):
                self.ready.set()

    @property
    def http_url(self) -> str:
        """The gateway's base URL (started with http=True)."""
        assert self.http_port is not None, "start the server with http=True"
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (children of the server)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        return [pid for pid in pids
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def internal_addresses(self) -> set[str]:
        """The ZeroMQ addresses of the Unix sockets the server's main process listens on
        (its own, from /proc): the worker socket and the sink's results."""
        inodes = set()
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed while we look
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
        addresses = set()
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            fields = line.split()  # Num RefCount Protocol Flags Type St Inode [Path]
            listening = int(fields[3], 16) & 0x10000  # __SO_ACCEPTCON
            if listening and fields[6] in inodes and len(fields) > 7:
                addresses.add(f"ipc://{fields[7]}")
        return addresses

    def exchange(self, requests: list[list[bytes]]) -> list[list[bytes]]:
        """Send request frames (one identity) on fresh ZeroMQ sockets, as any client does;
        the replies' frames in the requests' order (by req_id)."""
        import zmq

        identity = requests[0][0]
        with zmq.Context() as context:
            push, sub = context.socket(zmq.PUSH), context.socket(zmq.SUB)
            for socket_ in (push, sub):
                socket_.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, identity)
            sub.setsockopt(zmq.RCVTIMEO, 600_000)
            sub.connect(f"tcp://127.0.0.1:{self.port_out}")
            push.connect(f"tcp://127.0.0.1:{self.port}")
            for frames in requests:
                push.send_multipart(frames)
            replies = [sub.recv_multipart() for _ in requests]
            push.close()
            sub.close()
        return sorted(replies, key=lambda frames: int(frames[-1]))

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
