"""A bounded soak: minutes of mixed ZeroMQ and HTTP load, RSS per process every 30 s.

Starts the real server (tests/server_process.py: 127.0.0.1 only, free ports,
-cpu) with `-max_seq_len NONE` by default, so batches take many shapes, and
runs against it, until `--minutes` have passed:

- `--zmq` BertClient threads sending 1 to 500 texts of 1 to 60 words;
- `--http` threads posting 1 to 100 texts to /encode;
- one thread of clients that vanish: subscribe, send 1 to 500 texts, close at once.

Every `--interval` seconds it prints the requests done and the resident memory
(VmRSS) of the server process and of each worker; at the end, each process's
RSS after the first interval, its peak and its last value. Not a test: it
asserts nothing and its numbers go to docs/reliability.md.

Usage: python scripts/soak.py [--minutes 10] [--interval 30] [--workers 2] [-- server flags]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

import zmq  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from bert_serving.client import BertClient  # noqa: E402
from bert_serving.proto import Command, encode_request  # noqa: E402

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
         "pi rho sigma tau upsilon phi chi psi omega 你 好 世 界 encoder memory arena").split()


@dataclass
class Counts:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: dict[str, int] = field(default_factory=lambda: {"zmq": 0, "http": 0, "vanished": 0,
                                                          "errors": 0})

    def add(self, kind: str) -> None:
        with self.lock:
            self.done[kind] += 1


def texts(rng: random.Random, most: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 60))) for _ in range(rng.randint(1, most))]


def zmq_load(server: ServerProcess, seed: int, stop: threading.Event, counts: Counts) -> None:
    rng = random.Random(seed)
    with BertClient(port=server.port, port_out=server.port_out, timeout=120_000,
                    check_length=False) as client:
        while not stop.is_set():
            try:
                client.encode(texts(rng, 500))
                counts.add("zmq")
            except Exception:  # counted, not fatal: the soak is about memory
                counts.add("errors")


def http_load(server: ServerProcess, seed: int, stop: threading.Event, counts: Counts) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        body = json.dumps({"id": 1, "texts": texts(rng, 100)}).encode()
        request = urllib.request.Request(f"{server.http_url}/encode", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                reply.read()
            counts.add("http")
        except Exception:
            counts.add("errors")


def vanishing_load(server: ServerProcess, seed: int, stop: threading.Event,
                   counts: Counts) -> None:
    """Clients that send and are gone before the reply, as killed processes are."""
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(0.5, 2.0)):
        context = zmq.Context()
        identity = str(uuid.uuid4()).encode()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, identity)
        sub.connect(f"tcp://127.0.0.1:{server.port_out}")
        push = context.socket(zmq.PUSH)
        push.connect(f"tcp://127.0.0.1:{server.port}")
        push.send_multipart(encode_request(identity, 1, Command.SHOW_CONFIG))
        sub.poll(30_000)
        push.send_multipart(encode_request(identity, 2, texts(rng, 500)))
        push.close(linger=2000)
        sub.close(linger=0)
        context.term()
        counts.add("vanished")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(server: ServerProcess, started: float, counts: Counts,
           history: dict[str, list[float]]) -> None:
    processes = {"server": server.process.pid}
    processes.update({f"worker{i}": pid for i, pid in enumerate(sorted(server.worker_pids()))})
    memory = {name: rss_mb(pid) for name, pid in processes.items()}
    for name, value in memory.items():
        history.setdefault(name, []).append(value)
    with counts.lock:
        done = " ".join(f"{k}={v}" for k, v in counts.done.items())
    rss = "  ".join(f"{name} {value:6.0f} MB" for name, value in memory.items())
    print(f"{time.monotonic() - started:6.0f} s  {rss}  | {done}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--zmq", type=int, default=2, help="BertClient threads")
    parser.add_argument("--http", type=int, default=2, help="HTTP client threads")
    parser.add_argument("server_args", nargs="*", help="extra bert-serving-start flags")
    args = parser.parse_args()
    flags = ["-num_worker", str(args.workers), "-max_seq_len", "NONE", *args.server_args]
    with tempfile.TemporaryDirectory() as cache, \
            ServerProcess(flags, Path(cache), http=True) as server:
        print(f"soak: {args.minutes} min, server flags {' '.join(flags)}", flush=True)
        stop, counts = threading.Event(), Counts()
        loads = ([(zmq_load, i) for i in range(args.zmq)] +
                 [(http_load, 100 + i) for i in range(args.http)] + [(vanishing_load, 200)])
        threads = [threading.Thread(target=load, args=(server, seed, stop, counts), daemon=True)
                   for load, seed in loads]
        for thread in threads:
            thread.start()
        started, history = time.monotonic(), {}
        report(server, started, counts, history)
        while not stop.wait(args.interval):
            report(server, started, counts, history)
            if time.monotonic() - started >= args.minutes * 60:
                stop.set()
        print("process   after first interval   peak   last  (MB)")
        for name, values in history.items():
            first = values[1] if len(values) > 1 else values[0]
            print(f"{name:9} {first:20.0f} {max(values):6.0f} {values[-1]:6.0f}")
        for thread in threads:
            thread.join(150)


if __name__ == "__main__":
    main()
