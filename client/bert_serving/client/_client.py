"""BertClient: encode texts on a bert-serving server over ZeroMQ.

Speaks the bert-as-service 1.10 protocol (see bert_serving.proto) with the
1.10.0 client's constructor, methods and results, plus: a finite default
timeout, server errors raised as ServerError, input checks before sending, and
large lists streamed in chunks into one preallocated array.

Thread safety: one BertClient may be shared by many threads. Sends are
serialized by a lock; replies are handed to the thread that waits for them by a
ReplyDemultiplexer, so each `encode` gets its own rows. `fetch`/`fetch_all`
collect the replies of every `encode(blocking=False)` of this client, whichever
thread sent it.

Usage::

    with BertClient(ip="localhost") as bc:
        vectors = bc.encode(["First do it", "then do it right"])
"""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np
import zmq

from bert_serving.proto import (
    PROTOCOL_VERSION,
    Command,
    EmbeddingReply,
    ErrorKind,
    ErrorReply,
    JsonReply,
    Reply,
    ServerError,
    SparseReply,
    encode_request,
)
from bert_serving.proto.inputs import PRECISION_DTYPES, PRECISIONS, Dual, Precision, TextInput

from ._assembly import RowAssembler
from ._async import BatchSender
from ._errors import BertClientTimeout, ServerAddress
from ._input import check_inputs, check_texts, longer_than
from ._receiver import ReplyDemultiplexer
from ._scores import Prediction, Rank, predictions, ranked
from ._sparse import SPARSE_HEAD, SparseVector, sparse_vectors

__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_TIMEOUT_MS", "BertClient", "Response"]

DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_CHUNK_SIZE = 1024
DEFAULT_CHUNKS_IN_FLIGHT = 8
_OUTPUT_FORMATS = ("ndarray", "list")


class Response(NamedTuple):
    """One reply to a non-blocking `encode`, as `fetch` yields it (the 1.10.0 shape)."""

    id: int
    embedding: Any  # np.ndarray, or list[list[float]] with output_fmt="list"
    tokens: Any  # list[list[str]], or "" when the server does not send tokens


class BertClient:
    """A client of one bert-serving server; safe to share between threads."""

    def __init__(
        self,
        ip: str = "localhost",
        port: int = 5555,
        port_out: int = 5556,
        output_fmt: str = "ndarray",
        show_server_config: bool = False,
        identity: str | bytes | None = None,
        check_version: bool = True,
        check_length: bool = True,
        check_token_info: bool = True,
        ignore_all_checks: bool = False,
        timeout: int | None = DEFAULT_TIMEOUT_MS,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunks_in_flight: int = DEFAULT_CHUNKS_IN_FLIGHT,
        curve_server_key: str | bytes | None = None,
    ) -> None:
        """Connect, and unless `ignore_all_checks`, ask the server for its config.

        `timeout` is in milliseconds per reply; -1 or None waits forever (the 1.10.0
        default, which hung when the server was down). `encode` splits lists longer
        than `chunk_size` into requests, keeping at most `chunks_in_flight` unanswered.
        `curve_server_key` (the server's Z85 public key, or the path of its `.key`
        file) encrypts and authenticates both sockets with CURVE, for a server
        started with -curve_secret_key. The other arguments are those of
        bert-serving-client 1.10.0.
        """
        if output_fmt not in _OUTPUT_FORMATS:
            raise ValueError(f'output_fmt must be "ndarray" or "list", got {output_fmt!r}')
        if chunk_size < 1 or chunks_in_flight < 1:
            raise ValueError("chunk_size and chunks_in_flight must be at least 1")
        self.ip, self.port, self.port_out = ip, port, port_out
        self.output_fmt = output_fmt
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.chunks_in_flight = chunks_in_flight
        self.identity = _identity_bytes(identity)
        self._curve_server_key = _curve_key(curve_server_key)
        self.length_limit: int | None = 0  # 0: no check; None: the server has no limit
        self.token_info_available = False
        self._model_head: str | None = None  # the server's, read from its config when needed
        self._server = ServerAddress(ip, port, port_out)
        self._send_lock = threading.Lock()
        self._detached_precisions: dict[int, Precision] = {}
        """What each non-blocking request asked for, for `fetch` to check the reply's dtype."""
        self._request_id = 0
        self._closed = False
        self._labels: tuple[str, ...] | None = None  # a classifier's, read once
        self._connect()
        if ignore_all_checks or not (
            check_version or show_server_config or check_length or check_token_info
        ):
            return
        try:
            self._check_server(check_version, check_length, check_token_info, show_server_config)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        self._context = zmq.Context()
        self._sender = self._context.socket(zmq.PUSH)
        self._sender.setsockopt(zmq.LINGER, 0)
        # A PUSH socket blocks once its queue is full (server down): bound that too.
        self._sender.setsockopt(zmq.SNDTIMEO, -1 if self._timeout_ms is None else self._timeout_ms)
        self._secure(self._sender)
        self._sender.connect(self._server.requests_url)
        receiver = self._context.socket(zmq.SUB)
        receiver.setsockopt(zmq.LINGER, 0)
        self._secure(receiver)
        receiver.setsockopt(zmq.SUBSCRIBE, self.identity)
        receiver.connect(self._server.replies_url)
        self._receiver = receiver
        self._replies = ReplyDemultiplexer(receiver, self._server)

    def _secure(self, socket: zmq.Socket[bytes]) -> None:
        """CURVE with a fresh key pair of ours, when the server's key was given."""
        if self._curve_server_key is None:
            return
        public, secret = zmq.curve_keypair()
        socket.setsockopt(zmq.CURVE_SERVERKEY, self._curve_server_key)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
        socket.setsockopt(zmq.CURVE_SECRETKEY, secret)

    def _check_server(
        self, check_version: bool, check_length: bool, check_token_info: bool, show: bool
    ) -> None:
        config = self.server_config
        self._model_head = _model_head(config)
        if check_version and config["server_version"] != PROTOCOL_VERSION:
            raise AttributeError(
                f"version mismatch: the server speaks protocol {config['server_version']} "
                f"but this client speaks {PROTOCOL_VERSION}; upgrade one of them or pass "
                "BertClient(check_version=False)"
            )
        # A server that chunks or refuses long texts does not cut them: nothing to warn about.
        if check_length and config.get("truncation", "truncate") == "truncate":
            limit = config["max_seq_len"]
            self.length_limit = None if limit is None else int(limit)
        if check_token_info:
            self.token_info_available = bool(config["show_tokens_to_client"])
        if show:
            _print_dict(config, "server config:")

    @property
    def _timeout_ms(self) -> int | None:
        """The timeout as the receiver takes it: None means forever."""
        if self.timeout is None or self.timeout < 0:
            return None
        return int(self.timeout)

    @property
    def request_id(self) -> int:
        """The id of the last request sent (ids count up from 1)."""
        return self._request_id

    @property
    def status(self) -> dict[str, Any]:
        """This client's own state, with the keys of the 1.10.0 client."""
        pending = self._replies.pending()
        return {
            "identity": self.identity,
            "num_request": self._request_id,
            "num_pending_request": len(pending),
            "pending_request": pending,
            "output_fmt": self.output_fmt,
            "port": self.port,
            "port_out": self.port_out,
            "server_ip": self.ip,
            "client_version": PROTOCOL_VERSION,
            "timeout": self.timeout,
        }

    @property
    def server_config(self) -> dict[str, Any]:
        """The server's configuration (SHOW_CONFIG)."""
        return self._ask(Command.SHOW_CONFIG)

    @property
    def server_status(self) -> dict[str, Any]:
        """The server's configuration and request statistics (SHOW_STATUS)."""
        return self._ask(Command.SHOW_STATUS)

    def _ask(self, command: Command) -> dict[str, Any]:
        reply = self._replies.take(self._send(command), self._timeout_ms)
        if isinstance(reply, ErrorReply):
            raise reply.error
        if not isinstance(reply, JsonReply):
            raise ServerError(f"the server answered {command.name} with embeddings",
                              ErrorKind.BAD_REPLY)
        return reply.body

    def _send(self, body: list[Any] | Command, *, detached: bool = False,
              verbatim: bool = False, native: bool = False, sparse: bool = False,
              precision: Precision | None = None) -> int:
        """Send one request, registered first so that its reply cannot be dropped.

        `verbatim`: the rows go in the *ext* payload, each as it is (`encode_inputs`),
        asking for the native view with `native`; `sparse`: for a sparse model's nonzeros;
        `precision`: for rows the server quantized.
        """
        with self._send_lock:
            self._request_id += 1
            req_id = self._request_id
            self._replies.expect(req_id, detached=detached)
            if detached and precision is not None:
                self._detached_precisions[req_id] = precision
            try:
                self._sender.send_multipart(encode_request(
                    self.identity, req_id, body, verbatim=verbatim, native=native,
                    sparse=sparse, precision=precision))
            except zmq.Again:
                self._replies.forget(req_id)
                raise BertClientTimeout.waiting(
                    self._server, self._timeout_ms or 0, f"queueing request {req_id}"
                ) from None
        return req_id

    def encode(
        self,
        texts: list[str] | list[list[str]],
        blocking: bool = True,
        is_tokenized: bool = False,
        show_tokens: bool = False,
        precision: str = "float32",
    ) -> Any:
        """Encode texts (or token lists with `is_tokenized`) into one row each, in order.

        Returns an array (N, H) in the server's dtype, or lists with output_fmt="list";
        with `show_tokens` (and a server run with -show_tokens_to_client) a tuple
        (vectors, tokens). With `blocking=False` the texts go as one request and the
        result comes later from `fetch`/`fetch_all`; None is returned.
        `precision` is sentence-transformers' `encode(precision=...)`: "float32", or
        "int8", "uint8" (per-dimension ranges fixed at the server's start), "binary",
        "ubinary" (8 dimensions a value), quantized by the server (not a 1.10 server's).
        Raises TypeError/ValueError for bad input, ServerError, BertClientTimeout.
        """
        check_texts(texts, is_tokenized)
        quantized = _quantized(precision)
        self._warn_about_length(texts, is_tokenized)
        if not blocking:
            self._send(texts, detached=True, precision=quantized)
            return None
        rows = self._encode_streamed(texts, precision=quantized)
        vectors, tokens = rows.result()
        return self._with_tokens(self._format(vectors), tokens, show_tokens)

    def encode_with_token_counts(
        self, texts: list[str] | list[list[str]], is_tokenized: bool = False
    ) -> tuple[np.ndarray, list[int]]:
        """Encode like `encode`, and also say how many tokens the model read per text.

        The counts ([CLS]/[SEP] included, after -max_seq_len truncation; every
        window of a text under -truncation chunk) come in the reply header, so
        nothing tokenizes twice. Always an array, whatever `output_fmt`.
        Raises ServerError (BadReply) if the server does not send counts.
        """
        check_texts(texts, is_tokenized)
        self._warn_about_length(texts, is_tokenized)
        return _with_token_counts(self._encode_streamed(texts))

    def encode_inputs(self, inputs: Sequence[TextInput], *, native: bool = False,
                      precision: str = "float32") -> tuple[np.ndarray, list[int]]:
        """Encode rows exactly as given, with the tokens the model read per row.

        Each row is a text (a str: every character reaches the model's tokenizer,
        '|||' and leading or trailing whitespace included), a sentence pair
        (`Dual(first, second)`) or token ids without special tokens (`Ids((...))`).
        What the TEI, OpenAI and Cohere routes send; `encode` keeps the 1.10 reading
        ('a ||| b' is a pair). `native`: the model's own embedding (sentence-transformers'
        pooling), which a server started with -http_port on such a folder pools beside its
        own; a server without it answers ServerError. `precision`: as `encode`'s. Always
        an array. Raises TypeError/ValueError for bad input, ServerError, BertClientTimeout.
        """
        check_inputs(inputs)
        quantized = _quantized(precision)
        return _with_token_counts(self._encode_streamed(
            list(inputs), verbatim=True, native=native, precision=quantized))

    def rerank(self, query: str, texts: Sequence[str], raw_scores: bool = False) -> list[Rank]:
        """Score each text against `query` with the server's cross-encoder, best first.

        Each (query, text) goes as a sentence pair (`Dual`), exactly as given, batched
        with every other text; the score is sigmoid(logit), or the logit with
        `raw_scores`. Needs a server serving a sequence-classification model with one
        logit. Returns Rank(index, score) sorted by score, descending. Raises
        TypeError/ValueError, ServerError, BertClientTimeout.
        """
        labels = self.classifier_labels()
        if len(labels) != 1:
            raise ValueError(f"rerank needs a cross-encoder (one logit); this server's "
                             f"classifier has {len(labels)} labels: use predict")
        if isinstance(texts, str) or not texts:
            raise ValueError("texts must be a non-empty list of strings")
        return ranked(self._logits([Dual(query, text) for text in texts]),
                      raw_scores=raw_scores)

    def predict(self, texts_or_pairs: Sequence[str | Sequence[str]],
                raw_scores: bool = False) -> list[list[Prediction]]:
        """Each text's (or (first, second) pair's) labels with scores, best first.

        Scores are the softmax over the classifier's logits (sigmoid for one logit), or
        the logits with `raw_scores`; labels are the model's id2label. A string is one
        text as it is ('|||' included), a (first, second) a pair. Raises TypeError/ValueError,
        ServerError, BertClientTimeout.
        """
        labels = self.classifier_labels()
        if isinstance(texts_or_pairs, str) or not texts_or_pairs:
            raise ValueError("texts_or_pairs must be a non-empty list of texts or pairs")
        payload = [_predict_input(item) for item in texts_or_pairs]
        return predictions(self._logits(payload), labels, raw_scores=raw_scores)

    def classifier_labels(self) -> tuple[str, ...]:
        """The served classifier's labels by logit index; ValueError for another model kind."""
        if self._labels is None:
            config = self.server_config
            head = config.get("model_head", "embedding")
            if head != "classifier":
                article = "an" if str(head)[:1] in "aeiou" else "a"
                raise ValueError(f"this server serves {article} {head} model, not a sequence "
                                 "classifier: rerank and predict need one")
            id2label = config.get("id2label") or {}
            self._labels = tuple(str(id2label[str(i)]) for i in range(len(id2label)))
        return self._labels

    def _logits(self, inputs: list[TextInput]) -> np.ndarray:
        check_inputs(inputs)
        logits, _ = self._encode_streamed(inputs, verbatim=True).result()
        return logits

    def encode_sparse(
        self, texts: list[str] | list[list[str]], is_tokenized: bool = False
    ) -> list[SparseVector]:
        """SPLADE term weights, one `SparseVector` (nonzero indices, values) per text, in order.

        Texts are read as `encode` reads them ('a ||| b' is a pair). Only the nonzeros
        cross the wire (8 bytes each, not 4 bytes per vocabulary term). Needs a server of
        a sparse model (`bert-serving-start -head sparse`); any other server is refused
        here, naming its kind. Raises as `encode` does.
        """
        self._require_sparse("encode_sparse")
        check_texts(texts, is_tokenized)
        self._warn_about_length(texts, is_tokenized)
        return sparse_vectors(self._encode_streamed(texts, sparse=True).sparse_result())

    def encode_sparse_inputs(
        self, inputs: Sequence[TextInput]
    ) -> tuple[list[SparseVector], list[int]]:
        """`encode_sparse` of rows sent exactly as given (as `encode_inputs`), with the
        tokens the model read per row: what TEI's /embed_sparse sends."""
        self._require_sparse("encode_sparse_inputs")
        check_inputs(inputs)
        rows = self._encode_streamed(list(inputs), verbatim=True, sparse=True)
        return sparse_vectors(rows.sparse_result()), _required_counts(rows)

    def _require_sparse(self, method: str) -> None:
        head = self.model_head
        if head != SPARSE_HEAD:
            raise ServerError(
                f"{method} needs a server of a sparse model (bert-serving-start -head "
                f"sparse on a BertForMaskedLM folder); this one serves "
                f"{'an' if head[:1] in 'aeiou' else 'a'} {head} model: use encode", "BadRequest")

    @property
    def model_head(self) -> str:
        """What the server's model outputs: "embedding", "classifier" or "sparse"."""
        if self._model_head is None:
            self._model_head = _model_head(self.server_config)
        return self._model_head

    def _encode_streamed(self, texts: list[Any], *, verbatim: bool = False,
                         native: bool = False, sparse: bool = False,
                         precision: Precision | None = None) -> RowAssembler:
        """Send chunks while collecting replies, at most `chunks_in_flight` unanswered."""
        rows = RowAssembler(len(texts))
        in_flight: deque[tuple[int, int, int]] = deque()  # (req_id, start, count)
        try:
            for start in range(0, len(texts), self.chunk_size):
                if len(in_flight) >= self.chunks_in_flight:
                    self._collect(rows, *in_flight.popleft(), precision=precision)
                chunk = texts[start : start + self.chunk_size]
                in_flight.append((self._send(chunk, verbatim=verbatim, native=native,
                                             sparse=sparse, precision=precision),
                                  start, len(chunk)))
            while in_flight:
                self._collect(rows, *in_flight.popleft(), precision=precision)
        finally:
            for req_id, _, _ in in_flight:
                self._replies.forget(req_id)
        return rows

    def _collect(self, rows: RowAssembler, req_id: int, start: int, count: int, *,
                 precision: Precision | None) -> None:
        """One chunk's reply into `rows`; a quantized ask's rows must come quantized."""
        reply = self._replies.take(req_id, self._timeout_ms)
        if isinstance(reply, SparseReply):
            rows.put(start, count, reply.rows, reply.tokens, reply.token_counts)
            return
        embeddings = _embeddings(reply)
        _check_dtype(embeddings.array, precision)
        rows.put(start, count, embeddings.array, embeddings.tokens, embeddings.token_counts)

    def _with_tokens(self, vectors: Any, tokens: list[list[str]], show_tokens: bool) -> Any:
        if show_tokens and self.token_info_available:
            return vectors, tokens
        if show_tokens:
            warnings.warn(
                "show_tokens=True, but the server does not send tokens to clients: start it "
                "with -show_tokens_to_client, or call encode(show_tokens=False)",
                stacklevel=3,
            )
        return vectors

    def _warn_about_length(self, texts: list[Any], is_tokenized: bool) -> None:
        if self.length_limit is None:
            warnings.warn(
                'the server has no "max_seq_len": it pads each batch to its longest text; '
                "limit text length on the client side for speed",
                stacklevel=3,
            )
        elif self.length_limit and longer_than(texts, self.length_limit, is_tokenized):
            warnings.warn(
                f"some texts have more tokens than the server's max_seq_len="
                f"{self.length_limit} and will be truncated: start the server with a larger "
                "-max_seq_len, or pass BertClient(check_length=False) to silence this",
                stacklevel=3,
            )

    def _format(self, vectors: np.ndarray) -> Any:
        return vectors.tolist() if self.output_fmt == "list" else vectors

    def fetch(self, delay: float = 0.0) -> Iterator[Response]:
        """Yield the replies of non-blocking encodes as they arrive (not in sending order).

        Arrays are the received buffers, read-only as in 1.10.0. Stops when none is pending.
        """
        time.sleep(delay)
        while (reply := self._replies.take_any(self._timeout_ms)) is not None:
            yield self._response(reply)

    def fetch_all(self, sort: bool = True, concat: bool = False) -> Any:
        """All pending non-blocking results, in sending order with `sort`; None if none."""
        if not self._replies.has_detached():
            return None
        responses = list(self.fetch())
        if sort:
            responses.sort(key=lambda response: response.id)
        results = [response.embedding for response in responses]
        if not concat:
            return results
        if self.output_fmt == "ndarray":
            return np.concatenate(results, axis=0)
        return [row for result in results for row in result]

    def encode_async(
        self,
        batch_generator: Iterable[list[str] | list[list[str]]],
        max_num_batch: int | None = None,
        delay: float = 0.1,
        **kwargs: Any,
    ) -> Iterator[Response]:
        """Encode batches from a generator in a background thread; yield replies as they come.

        `kwargs` go to `encode` (is_tokenized, show_tokens). Unlike 1.10.0, the
        generator ends only after every batch has been sent and answered, and an error
        raised while sending (bad input) is raised here. Sending starts at once.
        """

        def send(texts: list[Any]) -> None:
            self.encode(texts, blocking=False, **kwargs)

        sender = BatchSender(send, batch_generator, max_num_batch)
        sender.start()
        return self._drain(sender, delay)

    def _drain(self, sender: BatchSender, delay: float) -> Iterator[Response]:
        time.sleep(delay)
        while True:
            finished = sender.finished.is_set()  # read before looking at what is pending
            if self._replies.has_detached():
                reply = self._replies.take_any(self._timeout_ms)
                if reply is not None:
                    yield self._response(reply)
            elif finished:
                sender.raise_error()
                return
            else:
                sender.finished.wait(0.05)

    def _response(self, reply: Reply) -> Response:
        precision = self._detached_precisions.pop(reply.req_id, None)
        embeddings = _embeddings(reply)
        _check_dtype(embeddings.array, precision)
        return Response(embeddings.req_id, self._format(embeddings.array), embeddings.tokens or "")

    def close(self) -> None:
        """Close the sockets; the client cannot be used afterwards. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._sender.close()
        self._receiver.close()
        self._context.term()

    def __enter__(self) -> BertClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()


def _with_token_counts(rows: RowAssembler) -> tuple[np.ndarray, list[int]]:
    """The assembled rows and the tokens the model read per row, which the reply must carry."""
    vectors, _ = rows.result()
    return vectors, _required_counts(rows)


def _required_counts(rows: RowAssembler) -> list[int]:
    """The tokens the model read per row, which the replies must carry."""
    counts = rows.token_counts()
    if counts is None:
        raise ServerError("the server sent no token counts (a bert-serving server older "
                          "than this client?)", ErrorKind.BAD_REPLY)
    return counts


def _quantized(precision: str) -> Precision | None:
    """sentence-transformers' `precision` as the request's: None for float32."""
    if precision == "float32":
        return None
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be float32 or one of {', '.join(PRECISIONS)}, "
                         f"not {precision!r:.40}")
    return precision


def _check_dtype(vectors: np.ndarray, precision: Precision | None) -> None:
    """A quantized request's rows must come quantized: a server that ignored the ask fails."""
    if precision is not None and vectors.dtype != PRECISION_DTYPES[precision]:
        raise ServerError(f"asked for {precision} rows, the server sent {vectors.dtype}",
                          ErrorKind.BAD_REPLY)


def _embeddings(reply: Reply) -> EmbeddingReply:
    if isinstance(reply, ErrorReply):
        raise reply.error
    if not isinstance(reply, EmbeddingReply):
        raise ServerError(f"expected embeddings for request {reply.req_id}", ErrorKind.BAD_REPLY)
    return reply


def _predict_input(item: str | Sequence[str]) -> TextInput:
    """A text as it is; a [first, second] pair as a `Dual`."""
    if isinstance(item, str):
        return item
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return Dual(item[0], item[1])
    raise TypeError(f"each input must be a text or a [first, second] pair, not {item!r:.60}")


def _model_head(config: dict[str, Any]) -> str:
    """The config's `model_head`; servers from before it serve embeddings."""
    return str(config.get("model_head", "embedding"))


def _identity_bytes(identity: str | bytes | None) -> bytes:
    """The SUB topic: given, or a random UUID4 as 36 ASCII bytes (the 1.10.0 default)."""
    if identity is None:
        return str(uuid.uuid4()).encode("ascii")
    return identity.encode("utf-8") if isinstance(identity, str) else bytes(identity)


def _print_dict(values: dict[str, Any], title: str) -> None:
    print(title)
    for key, value in values.items():
        print(f"{key:>30}\t=\t{value!s:<30}")


def _curve_key(key: str | bytes | None) -> bytes | None:
    """A Z85 public key as given, or read from a zmq.auth `.key` file."""
    if key is None:
        return None
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) == 40:  # Z85 of 32 bytes
        return raw
    import zmq.auth  # only for a key given as a file

    public, _secret = zmq.auth.load_certificate(raw.decode())
    return public
