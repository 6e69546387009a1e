"""The sink: puts each request's rows back together and publishes the replies.

One loop owns the publishing socket and every job's assembly. The publishing
socket is an XPUB, so the sink sees clients subscribe: a reply for a client
whose subscription has not arrived yet (the "slow joiner": a client's first
SHOW_CONFIG can outrun its SUB connection) is held until it does, instead of
being dropped as a plain PUB would, or until a deadline passes. It also tells
the ventilator when a client leaves (so its queued rows are dropped) and when
an identity subscribes (so requests parked for it may run).

No message stops the loop: a handler that raises is logged and the loop goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from bert_serving.proto import (
    ErrorKind,
    encode_embedding_reply,
    encode_error_reply,
    encode_sparse_reply,
)
from bert_serving.proto.internal import (
    Control,
    JobKey,
    JobMessage,
    PublishMessage,
    ResultMessage,
    decode_result,
    decode_sink_control,
    encode_control,
)
from bert_serving.proto.sparse import SparseRows

from ..access import AccessPolicy
from ..model.chunking import ChunkReducer, Reduction
from ..model.quantization import Precision, PrecisionRule
from .assembly import JobAssembly
from .internal_endpoints import InternalEndpoints

__all__ = ["InjectedSinkFault", "Sink"]

log = logging.getLogger(__name__)
_POLL_MS = 100
HOLD_FOR_SUBSCRIBER_S = 5.0


class InjectedSinkFault(RuntimeError):
    """Raised by the loop itself under BERT_SERVING_INJECT_FAULT=sink (liveness tests)."""


@dataclass
class _HeldReply:
    client_id: bytes
    frames: list[bytes | memoryview]
    deadline: float


@dataclass(frozen=True)
class ReplyView:
    """Which columns of the graph's rows a request gets, and how -truncation chunk folds
    its windows. A graph with a native view (`NativeView`) has two: the server's pooling
    in the first columns, the model's own embedding after them."""

    columns: slice = field(default_factory=lambda: slice(None))
    reduction: Reduction = "mean"
    normalize: bool = False
    precisions: PrecisionRule = field(default_factory=PrecisionRule)
    """What its rows may be quantized to (the *ext* ``"precision"``), decided at start."""


class Sink:
    """Result reassembly and reply publishing; run `serve()` in its own thread."""

    def __init__(self, context: zmq.Context, *, bind_ip: str, port_out: int,
                 job_timeout: float, endpoints: InternalEndpoints,
                 access: AccessPolicy | None = None,
                 fault: str | None = None, view: ReplyView | None = None,
                 native_view: ReplyView | None = None, min_tokens: int = 0) -> None:
        self.job_timeout = job_timeout
        self.min_tokens = min_tokens  # token-level replies are at least this long
        self.fault = fault
        self.view = view or ReplyView()
        """What a request gets; `native_view` for one that asked for the native columns."""
        self.native_view = native_view
        self.jobs: dict[JobKey, JobAssembly] = {}
        self.subscribed: set[bytes] = set()
        self.held: list[_HeldReply] = []
        self.to_ventilator: zmq.Socket[bytes] | None = None
        self.out = context.socket(zmq.XPUB)
        self.out.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.out.setsockopt(zmq.LINGER, 2000)  # flush the last replies at shutdown
        (access or AccessPolicy()).secure_server_socket(self.out)
        self.out.bind(f"tcp://{bind_ip}:{port_out}")
        self.results = context.socket(zmq.PULL)
        self.results.setsockopt(zmq.LINGER, 0)
        self.results_address = endpoints.bind(self.results, "results")
        self.control = context.socket(zmq.PULL)
        self.control_address = f"inproc://sink-control-{id(self)}"
        self.control.bind(self.control_address)

    @property
    def busy(self) -> bool:
        return bool(self.jobs or self.held)

    def serve(self) -> None:
        poller = zmq.Poller()
        for socket in (self.control, self.results, self.out):
            poller.register(socket, zmq.POLLIN)
        last_sweep = time.monotonic()
        while True:
            events = dict(poller.poll(_POLL_MS))
            # Job registrations first: they were queued before their batches were sent.
            while self.control.poll(0):
                if not self._guarded(self._on_control, self.control.recv_multipart()):
                    return
            if self.out in events:
                self._guarded(self._on_subscription, self.out.recv())
            if self.results in events:
                frames = self.results.recv_multipart()
                if self.fault == "sink":
                    raise InjectedSinkFault("BERT_SERVING_INJECT_FAULT=sink: the loop dies")
                self._guarded(self._on_frames, frames)
            now = time.monotonic()
            if now - last_sweep > 1.0:
                self._sweep(now)
                last_sweep = now

    @staticmethod
    def _guarded(handle: Callable[[Any], bool | None], message: Any) -> bool:
        """Run one handler; an exception is logged, never fatal to the loop."""
        try:
            return handle(message) is not False
        except Exception:  # the loop's last line of defence
            log.exception("%s failed; the sink carries on", handle.__name__)
            return True

    def _on_frames(self, frames: list[bytes]) -> None:
        self._on_result(decode_result(frames))

    # -- publishing -------------------------------------------------------------------------

    def _publish(self, client_id: bytes, frames: list[bytes | memoryview]) -> None:
        if client_id in self.subscribed:
            self.out.send_multipart(frames, copy=False)
        else:
            self.held.append(_HeldReply(client_id, frames,
                                        time.monotonic() + HOLD_FOR_SUBSCRIBER_S))

    def _on_subscription(self, message: bytes) -> None:
        if not message:
            return
        topic = bytes(message[1:])
        if message[0] == 1:
            self.subscribed.add(topic)
            self._tell_ventilator(encode_control(Control.CLIENT_BACK, topic))
            self._flush_held(lambda held: held.client_id == topic)
        elif message[0] == 0:
            self.subscribed.discard(topic)
            self._drop_client(topic)

    def _flush_held(self, ready: Callable[[_HeldReply], bool]) -> None:
        keep: list[_HeldReply] = []
        for held in self.held:
            if ready(held):
                self.out.send_multipart(held.frames, copy=False)
            else:
                keep.append(held)
        self.held = keep

    def connect_ventilator(self, control_address: str) -> None:
        """Where to say that a client left (called before `serve` starts)."""
        self.to_ventilator = self.out.context.socket(zmq.PUSH)
        self.to_ventilator.setsockopt(zmq.LINGER, 0)
        self.to_ventilator.connect(control_address)

    def _tell_ventilator(self, frames: list[bytes]) -> None:
        """Never blocks: a ventilator that stopped reading must not stop the sink too."""
        if self.to_ventilator is None:
            return
        try:
            self.to_ventilator.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("the ventilator is not reading its control socket; %s not sent",
                        frames[0].decode())

    def _drop_client(self, client_id: bytes) -> None:
        """The client is gone: its unfinished jobs would be published to nobody."""
        self._tell_ventilator(encode_control(Control.CLIENT_GONE, client_id))
        gone = [key for key in self.jobs if key.client_id == client_id]
        for key in gone:
            del self.jobs[key]
        if gone:
            log.info("client %r left; dropped %d unfinished jobs", client_id[:40], len(gone))

    def _sweep(self, now: float) -> None:
        """Publish held replies past their deadline; drop jobs nobody will claim."""
        self._flush_held(lambda held: held.deadline <= now)
        expired = [key for key, job in self.jobs.items() if job.age(now) > self.job_timeout]
        for key in expired:
            del self.jobs[key]
            log.warning("request %d of %r timed out after %.0fs; dropped", key.req_id,
                        key.client_id[:40], self.job_timeout)

    # -- messages from the ventilator and workers -------------------------------------------

    def _on_control(self, frames: list[bytes]) -> bool:
        message = decode_sink_control(frames)
        if message is None:
            return False
        if isinstance(message, PublishMessage):
            self._publish(message.client_id, list(message.frames))
        else:
            view = self._view_of(message.native)
            self.jobs[message.key] = JobAssembly(
                message.key, message.num_rows, want_tokens=message.want_tokens,
                chunks=self._chunks(message, view), token_counts=message.token_counts,
                min_tokens=self.min_tokens, columns=view.columns,
                sparse_reply=message.sparse, finish=self._finish(message, view))
        return True

    @staticmethod
    def _finish(job: JobMessage, view: ReplyView) -> Callable[[np.ndarray], np.ndarray] | None:
        precision = job.precision
        if precision is None:
            return None
        return lambda rows: view.precisions.apply(rows, precision)

    def check_precision(self, precision: Precision, native: bool) -> None:
        """ValueError unless a request for `precision` (of the `native` view) can be had.

        Pure, on views fixed at start: the ventilator calls it to refuse a request
        before its texts run."""
        self._view_of(native).precisions.check(precision)

    def _view_of(self, native: bool) -> ReplyView:
        """The native view for a request that asked for it (the ventilator refused one to a
        graph without it), else the server's."""
        return self.native_view if native and self.native_view else self.view

    @staticmethod
    def _chunks(job: JobMessage, view: ReplyView) -> ChunkReducer | None:
        if job.windows is None or job.weights is None:
            return None
        return ChunkReducer(job.windows, job.weights, view.reduction, view.normalize)

    def _on_result(self, result: ResultMessage) -> None:
        offset = 0
        for segment in result.segments:
            job = self.jobs.get(segment.key)
            count = len(segment.rows)
            if job is not None:
                self._add_rows(job, result, segment.rows, offset, count)
            offset += count

    def _add_rows(
        self, job: JobAssembly, result: ResultMessage, rows: list[int], offset: int, count: int
    ) -> None:
        if result.error is not None:
            del self.jobs[job.key]
            self._publish(job.key.client_id, _failed(job.key, result.error))
            return
        assert result.vectors is not None
        tokens = result.tokens[offset: offset + count] if result.tokens else None
        job.add(rows, result.vectors[offset: offset + count], tokens)
        if job.complete:
            del self.jobs[job.key]
            self._publish(job.key.client_id, _reply_or_error(job))


def _failed(key: JobKey, reason: str) -> list[bytes | memoryview]:
    return [*encode_error_reply(key.client_id, key.req_id, f"encoding failed: {reason}",
                                ErrorKind.ENCODING_FAILED)]


def _reply_or_error(job: JobAssembly) -> list[bytes | memoryview]:
    """`_reply`, or an EncodingFailed reply if building it raises (quantizing, the sparse
    folding, to_dense): the job is gone from `jobs` and its client waits for this reply
    (the 1.10 client forever, by default), so it must hear something."""
    try:
        return _reply(job)
    except Exception as error:  # whatever the reply's last steps raised
        log.exception("request %d of %r: its reply could not be built", job.key.req_id,
                      job.key.client_id[:40])
        return _failed(job.key, f"the reply could not be built: "
                                f"{type(error).__name__}: {str(error)[:200]}")


def _reply(job: JobAssembly) -> list[bytes | memoryview]:
    """The finished job's reply: a sparse model's nonzeros to a client that asked for them,
    dense rows to any other (the 1.10 client's reply to a sparse model included)."""
    rows, tokens = job.result()
    key = job.key
    if isinstance(rows, SparseRows) and job.sparse_reply:
        return encode_sparse_reply(key.client_id, key.req_id, rows, tokens, job.token_counts)
    dense = rows.to_dense() if isinstance(rows, SparseRows) else np.ascontiguousarray(rows)
    return encode_embedding_reply(key.client_id, key.req_id, dense, tokens, job.token_counts)

