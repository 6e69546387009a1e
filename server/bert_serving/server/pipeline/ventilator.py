"""The ventilator: takes client requests, answers control messages, validates, schedules.

Each request is tokenized here, once: the lengths group rows into batches, and
the ids go to the workers, which only pad them.

One loop owns the request socket (PULL, clients push), the worker socket (ROUTER,
workers pull with credits) and the scheduler. Replies of any kind go out through
the sink, which owns the publishing socket. A worker that dies has its
unfinished batches put back at the front of the queue.

No message can stop the loop: each is handled inside a guard that logs what
failed and, when the sender can be addressed, answers it with an error. A
client the sink saw leave is remembered (`DepartedClients`), so a request of
its read after the news is not computed, whichever socket is read first.
TERMINATION is honoured from an address -allow_ip admits, over CURVE, or,
with neither set, from loopback only.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from bert_serving.proto import (
    MAX_IDENTITY_BYTES,
    PROTOCOL_VERSION,
    Command,
    ErrorKind,
    MalformedRequest,
    Request,
    TextPayloadError,
    decode_texts,
    encode_error_reply,
    encode_json_reply,
    parse_request,
)
from bert_serving.proto.inputs import Precision, TextInput
from bert_serving.proto.internal import (
    BatchMessage,
    Control,
    JobKey,
    JobMessage,
    RaggedTokens,
    decode_control,
    decode_ready,
    encode_batch,
    encode_job,
    encode_publish,
    encode_worker_stop,
)

from .. import __version__
from ..access import peer_address
from ..config import ServerConfig
from ..model.admission import LengthRule, wire_refusal
from ..model.chunking import window_starts
from ..model.served_graph import ServedGraph
from ..model.tokenization import TextTokenizer
from .departures import DepartedClients
from .internal_endpoints import InternalEndpoints
from .scheduler import Batch, BatchScheduler, JobRows
from .stats import ServerStatistics
from .worker_identities import WorkerIdentities

__all__ = ["InjectedFault", "Ventilator"]

log = logging.getLogger(__name__)
_POLL_MS = 100
_STRANGERS_REMEMBERED = 64  # identities warned about once each; more are ignored unlogged


class InjectedFault(RuntimeError):
    """Raised by the loop itself, on a text request, under BERT_SERVING_INJECT_FAULT=ventilator.

    For the liveness tests: a loop that dies of a bug no guard caught.
    """


@dataclass
class _WorkerState:
    credits: int = 0
    in_flight: dict[int, Batch] = field(default_factory=dict)


class Ventilator:
    """Request intake and batch dispatch; run `serve()` in its own thread."""

    def __init__(
        self,
        config: ServerConfig,
        context: zmq.Context,
        *,
        tokenizer: TextTokenizer,
        sink_control_address: str,
        endpoints: InternalEndpoints,
        server_info: dict[str, Any],
        shutdown: threading.Event,
        graph: ServedGraph,
        check_precision: Callable[[Precision, bool], None] | None = None,
    ) -> None:
        self.config = config
        self.check_precision = check_precision
        """Raises ValueError unless a precision (of the native view or not) can be had:
        the sink's rule (`Sink.check_precision`); None: every precision is refused."""
        self.graph = graph
        """What the served graph computes: whether requests may ask for its native view
        (`has_native_view`) or a sparse model's nonzeros (`sparse`)."""
        self.tokenizer = tokenizer
        self.length_rule = LengthRule.of(tokenizer)
        """What -truncation error refuses: the rule every front end applies."""
        self.server_info = server_info
        self.shutdown = shutdown
        self.stats = ServerStatistics()
        self.scheduler = BatchScheduler(
            max_batch_size=config.max_batch_size,
            max_batch_tokens=config.batch_tokens,
            priority_batch_size=config.priority_batch_size,
        )
        if config.truncation == "chunk":  # a bad -chunk_overlap fails the start, not a request
            window_starts(0, tokenizer.window_width, config.chunk_overlap)
        self.workers: dict[bytes, _WorkerState] = {}
        self.worker_identities = WorkerIdentities()
        """The only identities taken for workers on the worker socket (`_on_worker`)."""
        self._strangers: set[bytes] = set()
        self.departed: DepartedClients[Request] = DepartedClients()
        self.accepting = True
        self._next_batch_id = 0
        self.frontend = context.socket(zmq.PULL)
        self.frontend.setsockopt(zmq.LINGER, 0)
        config.access.secure_server_socket(self.frontend)
        self.frontend.bind(f"tcp://{config.bind_ip}:{config.port}")
        self.backend = context.socket(zmq.ROUTER)
        self.backend.setsockopt(zmq.LINGER, 0)
        self.backend_address = endpoints.bind(self.backend, "workers")
        self.to_sink = context.socket(zmq.PUSH)
        self.to_sink.connect(sink_control_address)
        self.control = context.socket(zmq.PULL)
        self.control_address = f"inproc://ventilator-control-{id(self)}"
        self.control.bind(self.control_address)

    # -- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        poller = zmq.Poller()
        for socket in (self.frontend, self.backend, self.control):
            poller.register(socket, zmq.POLLIN)
        while True:
            events = dict(poller.poll(_POLL_MS))
            if self.control in events and not self._guarded(self._on_control,
                                                             self.control.recv_multipart()):
                break
            if self.backend in events:
                self._guarded(self._on_worker, self.backend.recv_multipart())
            if self.frontend in events:
                self._receive_request()
            self._guarded(self._dispatch)
            self._expire_departed()
        self._stop_workers()

    def _receive_request(self) -> None:
        frames = self.frontend.recv_multipart(copy=False)
        if self.config.fault == "ventilator" and frames[-1].bytes != b"0":  # texts, not control
            raise InjectedFault("BERT_SERVING_INJECT_FAULT=ventilator: the loop dies")
        peer = peer_address(frames[0])
        self._guarded(self._on_frames, [f.bytes for f in frames], peer)

    def _guarded(self, handle: Callable[..., bool | None], *args: Any) -> bool:
        """Run one handler; an exception is logged (and answered if possible), never fatal."""
        try:
            return handle(*args) is not False
        except Exception as error:  # this is the loop's last line of defence
            self.stats.on_malformed()
            log.exception("%s failed; the ventilator carries on", handle.__name__)
            client = _addressable(args[0]) if handle == self._on_frames else None
            if client is not None:
                self._reply_error(client, 0, f"the server could not handle this request: "
                                  f"{type(error).__name__}: {str(error)[:200]}",
                                  ErrorKind.SERVER_ERROR)
            return True

    def _expire_departed(self) -> None:
        dropped = self.departed.expire(time.monotonic())
        if dropped:
            log.info("%d requests of departed clients dropped unread", dropped)

    @property
    def busy(self) -> bool:
        """Whether any batch waits or runs (for the graceful drain)."""
        workers = list(self.workers.values())  # one step: the loop's thread may add one
        return bool(self.scheduler) or any(w.in_flight for w in workers)

    # -- supervisor messages ----------------------------------------------------------------

    def _on_control(self, frames: list[bytes]) -> bool:
        message = decode_control(frames)
        if message.word is Control.WORKER_DIED:
            self.stats.on_worker_restart()
            self._requeue_worker(message.subject)
        elif message.word is Control.CLIENT_GONE:
            self._client_left(message.subject)
        elif message.word is Control.CLIENT_BACK:
            for request in self.departed.returned(message.subject):
                self._on_texts(request)
        elif message.word is Control.STOP_ACCEPTING:
            self.accepting = False
        return message.word is not Control.STOP

    def _client_left(self, gone: bytes) -> None:
        self.departed.left(gone)
        dropped = self.scheduler.cancel(lambda key: key.client_id == gone)
        if dropped:
            log.info("client %r left: %d queued texts dropped", gone[:40], dropped)

    def _requeue_worker(self, worker_id: bytes) -> None:
        self.worker_identities.retire(worker_id)  # a READY it sent before dying is not work
        state = self.workers.pop(worker_id, None)
        if state is None:
            return
        for batch in state.in_flight.values():
            self.scheduler.requeue(batch)
        log.warning("worker %s died; re-running its %d batches", worker_id.decode(),
                    len(state.in_flight))

    def _stop_workers(self) -> None:
        for worker_id in self.workers:
            self.backend.send_multipart(encode_worker_stop(worker_id))

    # -- workers ----------------------------------------------------------------------------

    def _on_worker(self, frames: list[bytes]) -> None:
        worker_id = frames[0]
        if not self.worker_identities.is_live(worker_id):
            self._ignore_stranger(worker_id)
            return
        ready = decode_ready(frames[1:])
        state = self.workers.setdefault(worker_id, _WorkerState())
        state.credits += ready.credits
        for batch_id in ready.done:
            state.in_flight.pop(batch_id, None)

    def _ignore_stranger(self, peer: bytes) -> None:
        """A peer on the worker socket that is not a live worker of this server (one of
        ours already dead, or another process): never given work."""
        if peer in self._strangers or len(self._strangers) >= _STRANGERS_REMEMBERED:
            return
        self._strangers.add(peer)
        log.warning("a peer that is not one of this server's live workers wrote to the "
                    "worker socket (identity %r): ignored (a worker that just died?)",
                    peer[:40])

    def _dispatch(self) -> None:
        while self.scheduler:
            worker_id = max(self.workers, key=lambda w: self.workers[w].credits, default=None)
            if worker_id is None or self.workers[worker_id].credits <= 0:
                return
            batch = self.scheduler.next_batch()
            if batch is None:
                return
            self._next_batch_id += 1
            state = self.workers[worker_id]
            state.credits -= 1
            state.in_flight[self._next_batch_id] = batch
            self.stats.on_batch(len(batch))
            tokens = RaggedTokens.concatenate([payload.take(segment.rows)
                                               for payload, segment in batch.parts()])
            message = BatchMessage(self._next_batch_id, batch.segments, tokens)
            self.backend.send_multipart(encode_batch(worker_id, message))

    # -- clients ----------------------------------------------------------------------------

    def _reply_error(self, client_id: bytes, req_id: int, message: str,
                     kind: ErrorKind) -> None:
        self.to_sink.send_multipart(encode_publish(
            encode_error_reply(client_id, req_id, message, kind)))

    def _on_frames(self, frames: list[bytes], peer: str | None = None) -> None:
        try:
            request = parse_request(frames)
        except MalformedRequest as error:
            self.stats.on_malformed()
            log.warning("malformed request: %s", error)
            if error.client_id is not None:
                self._reply_error(error.client_id, error.req_id, f"malformed request: {error}",
                                  ErrorKind.MALFORMED_REQUEST)
            return
        if request.command is not None:
            self._on_command(request, peer)
        elif request.client_id in self.departed:
            self.departed.park(request.client_id, request, time.monotonic())
        else:
            self._on_texts(request)

    def _on_command(self, request: Request, peer: str | None) -> None:
        self.stats.on_control_request(request.client_id)
        if request.command is Command.TERMINATION:
            if self.config.access.may_terminate(peer):
                log.info("TERMINATION received from %s: shutting down", peer)
                self.shutdown.set()
            else:
                log.warning("TERMINATION from %s ignored: not an address -allow_ip admits "
                            "and not over CURVE (see README, Security)", peer)
            return
        body = self._config_body(request.client_id)
        if request.command is Command.SHOW_STATUS:
            body["statistic"] = {
                **self.stats.as_dict(), "pending_texts": self.scheduler.pending_texts,
                "in_flight_batches": sum(len(w.in_flight) for w in self.workers.values()),
                "departed_clients": len(self.departed),
            }
        self.to_sink.send_multipart(encode_publish(
            encode_json_reply(request.client_id, request.req_id, body)))

    def _config_body(self, client_id: bytes) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        return {
            **self.server_info,  # config.show_config: the flags, devices and graph
            "server_version": PROTOCOL_VERSION,
            "bert_serving_version": __version__,
            "client": client_id.decode("utf-8", "replace"),
            "num_process": len(self.workers) + 2,
            "num_concurrent_socket": 1,
            "python_version": platform.python_version(),
            "pyzmq_version": zmq.pyzmq_version(),
            "zmq_version": zmq.zmq_version(),
            "server_start_time": time.strftime("%Y-%m-%d %H:%M:%S",
                                               time.localtime(self.stats.started)),
            "server_current_time": now,
            "pending_texts": self.scheduler.pending_texts,
        }

    def _on_texts(self, request: Request) -> None:
        client, req_id = request.client_id, request.req_id
        if not self.accepting:
            self._reply_error(client, req_id, "server is shutting down", ErrorKind.SERVER_BUSY)
            return
        try:
            decoded = decode_texts(request.payload, max_texts=self.config.max_request_texts,
                                   max_text_bytes=self.config.max_text_bytes)
            texts, native = decoded.rows, decoded.native
            self._check_view(native)
            self._check_sparse(decoded.sparse)
            self._check_precision(decoded.precision, native)
            tokens, windows = self._tokenize(texts, decoded.is_tokenized)
        except (TextPayloadError, ValueError, TypeError) as error:
            self.stats.on_rejected()
            self._reply_error(client, req_id, str(error), ErrorKind.BAD_REQUEST)
            return
        if self.scheduler.pending_texts + len(tokens) > self.config.max_queue_texts:
            self.stats.on_rejected()
            self._reply_error(client, req_id,
                              f"server busy: {self.scheduler.pending_texts} texts are waiting "
                              f"(limit {self.config.max_queue_texts}); retry later",
                              ErrorKind.SERVER_BUSY)
            return
        self.stats.on_data_request(client, len(texts))
        self.stats.on_tokens(int(tokens.lengths.sum()))
        key = JobKey(client, req_id)
        job = JobMessage(key, len(tokens), self.config.show_tokens_to_client,
                         _tokens_per_text(tokens, windows), windows,
                         self._window_weights(tokens, native) if windows else None, native,
                         decoded.sparse, decoded.precision)
        self.to_sink.send_multipart(encode_job(job))
        self.scheduler.add(JobRows(key, tokens, tokens.lengths))

    def _tokenize(self, texts: list[Any], is_tokenized: bool) -> tuple[RaggedTokens,
                                                                       list[int] | None]:
        """Rows by -truncation, and windows per text when some text was chunked.

        Pre-tokenized texts are always truncated: the client chose the tokens.
        """
        mode = self.config.truncation
        if is_tokenized or mode == "truncate":
            return self.tokenizer.tokenize_rows(texts, is_tokenized=is_tokenized), None
        if mode == "error":
            self._refuse_long(texts)
            return self.tokenizer.tokenize_rows(texts), None
        tokens, per_text = self.tokenizer.tokenize_windows(texts,
                                                           overlap=self.config.chunk_overlap)
        return tokens, per_text if len(tokens) > len(texts) else None

    def _refuse_long(self, texts: list[TextInput]) -> None:
        too_long = self.length_rule.first_too_long(self.tokenizer.full_lengths(texts))
        if too_long is not None:
            raise ValueError(wire_refusal(too_long))

    def _check_view(self, native: bool) -> None:
        """A request for the model's own embedding needs a graph that computes it."""
        if native and not self.graph.has_native_view:
            raise ValueError("this server computes no second, native embedding (its model "
                             "folder declares none, or its pooling already is the model's "
                             "own): send the request without \"native\"")

    def _check_sparse(self, sparse: bool) -> None:
        """A request for nonzeros needs a model whose rows are term weights."""
        if sparse and not self.graph.sparse:
            raise ValueError("this server's model is not a sparse one (bert-serving-start "
                             "-head sparse): its rows have no nonzeros to send; send the "
                             "request without \"sparse\"")

    def _check_precision(self, precision: Precision | None, native: bool) -> None:
        """Quantized rows only where the sink can make them (one vector per text, a range)."""
        if precision is None:
            return
        if self.check_precision is None:
            raise ValueError(f"precision {precision}: this server quantizes no replies")
        self.check_precision(precision, native)

    def _window_weights(self, tokens: RaggedTokens, native: bool) -> list[int]:
        """Tokens each window pooled: all real ones, less [CLS]/[SEP] under -mask_cls_sep
        (the native view reads every token)."""
        masks = self.config.engine.pooling.mask_cls_sep and not native
        masked = self.tokenizer.single_specials if masks else 0
        return [max(0, n - masked) for n in tokens.lengths.tolist()]


def _tokens_per_text(tokens: RaggedTokens, windows: list[int] | None) -> list[int]:
    """Tokens the model reads per text: a chunked text's are all its windows'."""
    if windows is None:
        return [int(n) for n in tokens.lengths.tolist()]
    starts = np.cumsum(windows) - np.asarray(windows)
    return [int(n) for n in np.add.reduceat(tokens.lengths, starts).tolist()]


def _addressable(frames: list[bytes]) -> bytes | None:
    """The sender's identity, if the frames have one small enough to echo back."""
    if len(frames) == 4 and 0 < len(frames[0]) <= MAX_IDENTITY_BYTES:
        return bytes(frames[0])
    return None
