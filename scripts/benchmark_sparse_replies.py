"""Bytes per text and peak memory of a sparse (SPLADE) server's replies: dense or compact.

Part 1, through the real server (splade-tiny, -head sparse, one worker, -cpu): a fixed
text set (benchmark_engine.make_texts, seed 0) goes out in requests of --batch texts over
raw ZeroMQ sockets, and every reply frame's bytes are counted as it arrives. `dense` is the
1.10 payload (what the 1.10.0 client sends and still gets); `compact` the same texts with
"sparse": true (our client's encode_sparse, the gateway's /embed_sparse). Each run has a
fresh server, since peak RSS (VmHWM) only grows; the modes interleave round by round, and
the medians of the server process's (ventilator and sink threads) and the worker's peaks
are printed (a first, unrecorded run converts the graph into the cache). Run it with
PYTHONPATH on an older checkout and --no-compact for the figures before compact replies.

Part 2, in this process: the reply path alone, under tracemalloc (numpy reports its
buffers to it), on the rows part 1 received: what a worker allocates to turn one batch of
--worker-batch rows into its result frames, and what the sink allocates to assemble a
request of --batch rows and build its reply, dense (as before) and sparse.

Usage: python scripts/benchmark_sparse_replies.py [--texts 512] [--batch 256] [--rounds 3]
       [--max-seq-len 128] [--worker-batch 32] [--no-compact]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests"), str(Path(__file__).parent)]
from benchmark_engine import make_texts  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from splade_reference import splade_tiny_dir  # noqa: E402

from bert_serving.proto import (  # noqa: E402
    EmbeddingReply,
    decode_reply,
    encode_embedding_reply,
    encode_request,
)

MODES = ("dense", "compact")


def request_frames(identity: bytes, req_id: int, texts: list[str], mode: str) -> list[bytes]:
    if mode == "dense":
        return encode_request(identity, req_id, texts)
    return encode_request(identity, req_id, texts, sparse=True)  # type: ignore[call-arg]


def exchange(server: ServerProcess, texts: list[str], batch: int,
             mode: str) -> tuple[int, list[list[bytes]]]:
    """Send every batch at once, receive every reply: (bytes received, the replies)."""
    identity = f"sparse-bench-{mode}".encode()
    chunks = [texts[start: start + batch] for start in range(0, len(texts), batch)]
    replies = server.exchange([request_frames(identity, req_id, chunk, mode)
                               for req_id, chunk in enumerate(chunks, 1)])
    return sum(len(frame) for reply in replies for frame in reply[1:-1]), replies


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def one_run(flags: list[str], cache: Path, texts: list[str], batch: int,
            mode: str) -> dict[str, Any]:
    with ServerProcess(flags, cache) as server:
        received, replies = exchange(server, texts, batch, mode)
        decoded = [decode_reply(reply) for reply in replies]
        [worker] = server.worker_pids()
        return {"bytes": received, "server_mb": peak_mb(server.process.pid),
                "worker_mb": peak_mb(worker), "replies": decoded}


def traced_peak(build: Callable[[], object]) -> float:
    """MiB numpy and Python allocate, at the most, while `build` runs (its result kept)."""
    tracemalloc.start()
    try:
        kept = build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept
    return peak / 2**20


def reply_path_peaks(dense: np.ndarray, batch: int, worker_batch: int) -> dict[str, float]:
    """tracemalloc peaks of the worker's result frames and the sink's assembly and reply."""
    from bert_serving.proto import encode_sparse_reply
    from bert_serving.proto.internal import (
        BatchMessage,
        JobKey,
        RaggedTokens,
        Segment,
        encode_result,
        encode_sparse_result,
    )
    from bert_serving.proto.sparse import SparseRows
    from bert_serving.server.pipeline.assembly import JobAssembly

    key = JobKey(b"bench", 1)
    rows = dense[:worker_batch]
    empty = RaggedTokens(np.zeros(0, np.int32), np.zeros(len(rows), np.int64),
                         np.zeros(len(rows), np.int64))
    message = BatchMessage(1, [Segment(key, list(range(len(rows))))], empty)
    request = dense[:batch]
    parts = [(list(range(s, min(s + worker_batch, len(request)))),
              request[s: s + worker_batch]) for s in range(0, len(request), worker_batch)]
    sparse_parts = [(targets, SparseRows.from_dense(part)) for targets, part in parts]

    def sink(pieces: list[tuple[list[int], Any]], compact: bool) -> object:
        job = JobAssembly(key, len(request), sparse_reply=compact)
        for targets, piece in pieces:
            job.add(targets, piece)
        result, _ = job.result()
        if isinstance(result, SparseRows):
            return encode_sparse_reply(key.client_id, 1, result)
        return encode_embedding_reply(key.client_id, 1, np.ascontiguousarray(result))

    return {
        "worker, dense result": traced_peak(lambda: encode_result(message, rows, None)),
        "worker, sparse result": traced_peak(lambda: encode_sparse_result(
            message, SparseRows.from_dense(rows), None)),
        "sink, dense reply": traced_peak(lambda: sink(parts, False)),
        "sink, sparse reply": traced_peak(lambda: sink(sparse_parts, True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256, help="texts per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--worker-batch", type=int, default=32,
                        help="rows per worker batch in part 2")
    parser.add_argument("--no-compact", action="store_true",
                        help="dense only (a checkout from before compact replies)")
    args = parser.parse_args()
    texts = make_texts(args.texts)
    flags = ["-model_dir", str(splade_tiny_dir()), "-head", "sparse", "-num_worker", "1",
             "-max_seq_len", str(args.max_seq_len)]
    modes = MODES[:1] if args.no_compact else MODES
    cache = scratch_dir("sparse-bench")
    one_run(flags, cache, texts[:1], 1, "dense")  # converts the graph: no run pays for it
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in modes:
            runs[mode].append(one_run(flags, cache, texts, args.batch, mode))
    print(f"{len(texts)} texts in requests of {args.batch}, splade-tiny, -max_seq_len "
          f"{args.max_seq_len}, medians of {args.rounds} fresh servers per mode")
    for mode, results in runs.items():
        per_text = results[-1]["bytes"] / len(texts)
        print(f"{mode:8} {per_text:10.0f} bytes/text on the wire   peak RSS: server "
              f"{statistics.median(r['server_mb'] for r in results):7.1f} MiB, worker "
              f"{statistics.median(r['worker_mb'] for r in results):7.1f} MiB")
    replies = runs["dense"][-1]["replies"]
    assert all(isinstance(reply, EmbeddingReply) for reply in replies)
    dense = np.concatenate([reply.array for reply in replies])
    nonzeros = np.count_nonzero(dense, axis=1)
    print(f"nonzeros per text: median {int(np.median(nonzeros))}, max {int(nonzeros.max())} "
          f"of {dense.shape[1]}")
    if "compact" in runs:
        compact = runs["compact"][-1]["replies"]
        same = np.array_equal(np.concatenate([r.rows.to_dense() for r in compact]), dense)
        print(f"compact replies equal the dense rows: {same}")
        for name, peak in reply_path_peaks(dense, args.batch, args.worker_batch).items():
            print(f"reply path, {name:22} {peak:8.2f} MiB allocated at peak")


if __name__ == "__main__":
    main()
