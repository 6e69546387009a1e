"""`bert-serving-benchmark`: sentences/s of a running server, by client batch size and count.

Each cell runs `-num_client` clients at once, each sending `-num_repeat`
requests of `-client_batch_size` texts; the figure is the median over repeats
of total texts / wall time. Texts are random words of 4-`-words` length.

Usage::

    bert-serving-start -cpu &
    bert-serving-benchmark -client_batch_size 1 16 256 -num_client 1 4
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections.abc import Sequence

from bert_serving.client import BertClient, BertClientTimeout
from bert_serving.commands.terminate import port_open

from . import __version__

__all__ = ["build_parser", "main", "measure", "server_problem"]

PROBE_TIMEOUT_MS = 10_000
"""How long the first question (the server's config) may take before the benchmark gives up:
a live server answers it at once, whatever its load."""

_VOCAB = (
    "the of and to in is was for that on as with by he it at from his an were are which this "
    "be or has had not but first one their its new after who they have her she two been other "
    "when there all during into school time may years more most only over city some world would "
    "where later up such used many can state about national out known university united then "
    "made 你好 世界 今天 天气"
).split()


def make_texts(count: int, max_words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(_VOCAB, k=rng.randint(4, max_words))) for _ in range(count)]


def _run_client(args: argparse.Namespace, batch_size: int, seed: int,
                errors: list[BaseException]) -> None:
    try:
        with BertClient(ip=args.ip, port=args.port, port_out=args.port_out, check_length=False,
                        timeout=args.timeout) as client:
            for repeat in range(args.num_repeat):
                client.encode(make_texts(batch_size, args.words, seed * 1000 + repeat))
    except BaseException as error:  # reported by the caller
        errors.append(error)


def measure(args: argparse.Namespace, batch_size: int, num_client: int) -> float:
    """Sentences/s for one cell: all clients together, total texts over wall time."""
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_run_client, args=(args, batch_size, seed, errors))
               for seed in range(num_client)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return batch_size * num_client * args.num_repeat / elapsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bert-serving-benchmark",
                                     description="Benchmark a running bert-serving server.")
    parser.add_argument("-ip", "--ip", default="localhost", help="server address")
    parser.add_argument("-port", "--port", type=int, default=5555,
                        help="the server's request port")
    parser.add_argument("-port_out", "--port_out", type=int, default=5556,
                        help="the server's reply port")
    parser.add_argument("-client_batch_size", "--client_batch_size", type=int, nargs="+",
                        default=[1, 16, 256], help="texts per request; one column per value")
    parser.add_argument("-num_client", "--num_client", type=int, nargs="+", default=[1, 4],
                        help="clients sending at once; one row per value")
    parser.add_argument("-num_repeat", "--num_repeat", type=int, default=5,
                        help="requests per client per cell")
    parser.add_argument("-rounds", "--rounds", type=int, default=3,
                        help="each cell is measured this many times, interleaved; median shown")
    parser.add_argument("-words", "--words", type=int, default=20, help="max words per text")
    parser.add_argument("-timeout", "--timeout", type=int, default=600_000,
                        help="milliseconds a client waits for each reply once the server has "
                             "answered its config")
    parser.add_argument("-version", "--version", action="version",
                        version=f"bert-serving {__version__}")
    return parser


def server_problem(args: argparse.Namespace) -> str | None:
    """Why no benchmark can run against `args`' server, or None when it answers."""
    where = f"tcp://{args.ip}:{args.port}"
    if not port_open(args.ip, args.port):
        return f"no server is listening on {where}; start one with bert-serving-start"
    try:
        with BertClient(ip=args.ip, port=args.port, port_out=args.port_out,
                        timeout=min(args.timeout, PROBE_TIMEOUT_MS)) as client:
            client.server_config  # noqa: B018 (the round trip is the point)
    except BertClientTimeout as error:
        return f"the server at {where} did not answer: {error}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = server_problem(args)
    if problem:
        print(f"bert-serving-benchmark: {problem}", file=sys.stderr)
        return 1
    cells = [(b, c) for c in args.num_client for b in args.client_batch_size]
    samples: dict[tuple[int, int], list[float]] = {cell: [] for cell in cells}
    measure(args, 8, 1)  # warm-up: first batches pay for allocation
    for _ in range(args.rounds):  # interleaved rounds, so drift hits every cell alike
        for batch_size, num_client in cells:
            samples[(batch_size, num_client)].append(measure(args, batch_size, num_client))
    print(f"server tcp://{args.ip}:{args.port}, {args.num_repeat} requests per client, "
          f"median of {args.rounds} rounds")
    print(f"{'clients':>8} {'batch':>7} {'sentences/s':>12}")
    for (batch_size, num_client), values in samples.items():
        print(f"{num_client:>8} {batch_size:>7} {statistics.median(values):>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
