"""A worker process: one engine on one device, running the batches the ventilator hands it.

Before it asks for work, the worker runs a one-text batch and the largest batch
the scheduler may send it (`Engine.warm_up`), so the first clients do not pay
for the session's first-run allocations. Then the loop is a thin shell: receive
batches (token ids: the ventilator tokenized them), pad them, embed, send the
vectors to the sink, tell the ventilator which batch is done and that it has
room for more. Padding is a few numpy operations, so nothing needs overlapping.
A sparse model's rows (one weight per vocabulary term, mostly zeros) leave as
their nonzeros (`SparseRows`): the sink and the clients that ask get them so.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import zmq

from bert_serving.proto.internal import (
    BatchMessage,
    MalformedFrame,
    decode_batch,
    encode_failed,
    encode_ready,
    encode_result,
    encode_sparse_result,
)
from bert_serving.proto.sparse import SparseRows

from ..model.engine import Engine, EngineOptions
from ..model.graph_contract import PreparedGraph
from ..model.head import ModelHead
from ..model.padding import Padder, TokenBatch

__all__ = ["WorkerSpec", "run_worker"]

log = logging.getLogger(__name__)
_PARENT_CHECK_MS = 1000


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs; picklable, so it crosses the spawn boundary."""

    worker_id: bytes
    engine: EngineOptions
    graph: PreparedGraph  # prepared once by the server: workers neither hash nor convert
    padder: Padder  # the ventilator tokenizes: a worker only pads
    ventilator_address: str
    sink_address: str
    prefetch_size: int
    max_batch_tokens: int  # the largest batch the scheduler forms, run once at start-up
    max_batch_size: int
    fp16_replies: bool
    show_tokens: bool
    fault: str | None = None  # BERT_SERVING_INJECT_FAULT, for the tests (ServerConfig.fault)


class _Worker:
    def __init__(self, spec: WorkerSpec, engine: Engine, context: zmq.Context) -> None:
        self.spec = spec
        self.engine = engine
        self.requests = context.socket(zmq.DEALER)
        self.requests.setsockopt(zmq.IDENTITY, spec.worker_id)
        self.requests.setsockopt(zmq.LINGER, 0)
        self.requests.connect(spec.ventilator_address)
        self.results = context.socket(zmq.PUSH)
        self.results.setsockopt(zmq.LINGER, 2000)
        self.results.connect(spec.sink_address)
        self.pending: deque[BatchMessage] = deque()
        self.parent = os.getppid()
        self.sparse = spec.graph.metadata.head is ModelHead.SPARSE

    def pad(self, batch: BatchMessage) -> TokenBatch:
        return self.engine.padder.pad(batch.tokens, with_tokens=self.spec.show_tokens)

    def receive(self) -> bool:
        """Take every batch that has arrived (waiting if none is pending); False on STOP."""
        timeout = 0 if self.pending else _PARENT_CHECK_MS
        while self.requests.poll(timeout):
            frames = self.requests.recv_multipart()
            try:
                batch = decode_batch(frames)
            except MalformedFrame:  # a frame we cannot read must not end the worker
                log.exception("unreadable message from the ventilator (%d frames) ignored",
                              len(frames))
                continue
            if batch is None:
                return False
            self.pending.append(batch)
            timeout = 0
        return os.getppid() == self.parent  # the server died: do not linger as an orphan

    def run_one(self) -> None:
        batch = self.pending.popleft()
        try:
            tokens = self.pad(batch)
            vectors = self.reply_dtype(self.engine.embed(tokens))
            self.results.send_multipart(self.result(batch, vectors, tokens.tokens), copy=False)
        except Exception as error:  # a bad batch must not kill the worker or hang its clients
            log.exception("batch %d failed", batch.batch_id)
            self.results.send_multipart(encode_failed(batch, f"{type(error).__name__}: {error}"))
        self.requests.send_multipart(encode_ready(1, [batch.batch_id]))

    def result(self, batch: BatchMessage, vectors: np.ndarray,
               tokens: list[list[str]] | None) -> list[bytes | memoryview]:
        """The batch's RESULT, or a sparse model's nonzeros (a few hundred of 30k a row)."""
        if self.sparse:
            return encode_sparse_result(batch, SparseRows.from_dense(vectors), tokens)
        return encode_result(batch, vectors, tokens)

    def reply_dtype(self, vectors: np.ndarray) -> np.ndarray:
        """float16 under -fp16; token-level rows stay as long as the batch (the sink widens)."""
        return vectors.astype(np.float16) if self.spec.fp16_replies else vectors

    def serve(self) -> None:
        self.requests.send_multipart(encode_ready(self.spec.prefetch_size))
        while self.receive():
            if self.pending:
                self.run_one()


def _wait_while_parent_lives() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_MS / 1000)


def run_worker(spec: WorkerSpec) -> None:
    """Process entry point (multiprocessing spawn target)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(message)s")
    if spec.fault == "worker_load":  # a load that never ends, until the server is gone
        _wait_while_parent_lives()
        return
    engine = Engine.from_graph(spec.graph, spec.engine, padder=spec.padder)
    started = time.perf_counter()
    shapes = engine.warm_up(spec.max_batch_tokens, spec.max_batch_size)
    log.info("%s %s warmed up on %s in %.2f s", engine.runner.runtime, engine.runner.precision,
             " and ".join(f"{rows}x{seq}" for rows, seq in shapes), time.perf_counter() - started)
    context = zmq.Context()
    worker = _Worker(spec, engine, context)
    try:
        worker.serve()
    finally:
        context.destroy(linger=2000)
