"""Frames between the server's own parts: supervisor, ventilator, workers and sink.

Not for clients. JSON headers and raw array bytes, never pickle: the internal
sockets listen on 127.0.0.1, where any local user could reach them. docs/protocol.md
lists every frame; in short::

    ventilator -> worker   [worker_id, BATCH, header, ids, lengths, first_lengths]
                           | [worker_id, STOP]
    worker -> ventilator   [READY, {"credits": n, "done": [batch ids]}]
    worker -> sink         [RESULT, header, raw, tokens_json] | [FAILED, header]
                           | [SPARSE, header, offsets, indices, values, tokens_json]
    ventilator -> sink     [JOB, header] | [PUBLISH, *reply frames]
    supervisor -> sink     [STOP]
    supervisor -> vent.    [STOP] | [STOP_ACCEPTING] | [WORKER_DIED, worker_id]
    sink -> ventilator     [CLIENT_GONE, client_id]   (its queued texts need not run)
                           | [CLIENT_BACK, client_id]  (it subscribed: serve it again)

A request is named by one `JobKey` everywhere; a `Segment` is which rows of
which job a batch holds. A batch travels as `RaggedTokens`, not texts: the
ventilator tokenizes every text once (it needs the lengths to group rows), so
workers only pad. Its three arrays go out as raw int32.

Usage::

    frames = encode_batch(b"worker-1", BatchMessage(7, [Segment(key, [2, 0])], tokens))
    batch = decode_batch(frames[1:])     # what the worker's DEALER receives
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from .inputs import PRECISIONS, Precision
from .rows import ragged_positions
from .sparse import SparseRows, read_sparse_frames, sparse_frames

__all__ = [
    "BatchMessage",
    "Control",
    "ControlMessage",
    "JobKey",
    "JobMessage",
    "MalformedFrame",
    "PublishMessage",
    "RaggedTokens",
    "ReadyMessage",
    "ResultMessage",
    "Segment",
    "decode_batch",
    "decode_control",
    "decode_ready",
    "decode_result",
    "decode_sink_control",
    "encode_batch",
    "encode_control",
    "encode_failed",
    "encode_job",
    "encode_publish",
    "encode_ready",
    "encode_result",
    "encode_sparse_result",
    "encode_worker_stop",
]

BATCH, READY, RESULT, FAILED = b"BATCH", b"READY", b"RESULT", b"FAILED"
SPARSE = b"SPARSE"
JOB, PUBLISH = b"JOB", b"PUBLISH"

_Decoded = TypeVar("_Decoded")


class MalformedFrame(ValueError):
    """Internal frames that are not the message asked for; every decoder here raises only this."""


def _total(decode: Callable[[Sequence[bytes]], _Decoded]) -> Callable[[Sequence[bytes]], _Decoded]:
    """Whatever bytes arrive, the decoder returns a message or raises MalformedFrame."""

    @functools.wraps(decode)
    def checked(frames: Sequence[bytes]) -> _Decoded:
        try:
            return decode(frames)
        except MalformedFrame:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError,
                RecursionError) as error:
            raise MalformedFrame(f"{decode.__name__}: {type(error).__name__}: "
                                 f"{str(error)[:200]}") from None

    return checked


def _unexpected(what: str, frames: Sequence[bytes]) -> MalformedFrame:
    first = bytes(frames[0])[:20] if frames else b""
    return MalformedFrame(f"not {what}: {len(frames)} frames starting {first!r}")


class Control(bytes, enum.Enum):
    """One-word messages to a loop's control socket; the subject frame, if any, follows."""

    STOP = b"STOP"
    STOP_ACCEPTING = b"STOP_ACCEPTING"
    WORKER_DIED = b"WORKER_DIED"
    CLIENT_GONE = b"CLIENT_GONE"
    CLIENT_BACK = b"CLIENT_BACK"


@dataclass(frozen=True, order=True)
class JobKey:
    """A request is named by its client and that client's request id, in every part."""

    client_id: bytes
    req_id: int


def _key_to_json(key: JobKey) -> list[Any]:
    return [key.client_id.hex(), key.req_id]


def _key_from_json(raw: Sequence[Any]) -> JobKey:
    return JobKey(bytes.fromhex(raw[0]), int(raw[1]))


@dataclass(frozen=True)
class Segment:
    """Rows of one job inside a batch, in the batch's order."""

    key: JobKey
    rows: list[int]


def _segments_to_json(segments: Sequence[Segment]) -> list[list[Any]]:
    return [[*_key_to_json(s.key), s.rows] for s in segments]


def _segments_from_json(raw: list[list[Any]]) -> list[Segment]:
    return [Segment(_key_from_json(s[:2]), [int(r) for r in s[2]]) for s in raw]


@dataclass(frozen=True)
class RaggedTokens:
    """Rows of token ids without padding: a request's tokens, and the payload of a batch.

    The ventilator must tokenize every text to group rows by length; sending the
    ids on spares the worker a second tokenization of the same texts, which on a
    GPU (forward pass nearly free) is a large share of the pipeline's CPU time.
    """

    ids: np.ndarray
    """int32 [total tokens]: every row's ids, [CLS]/[SEP] included, concatenated in row order."""
    lengths: np.ndarray
    """int [rows]: tokens per row, specials included."""
    first_lengths: np.ndarray
    """int [rows]: leading tokens of type 0 ([CLS], the first text, its [SEP])."""

    def __len__(self) -> int:
        return len(self.lengths)

    def row(self, index: int) -> np.ndarray:
        """The ids of one row (a view)."""
        start = int(self.lengths[:index].sum())
        return self.ids[start: start + int(self.lengths[index])]

    def take(self, rows: Sequence[int]) -> RaggedTokens:
        """These rows, in this order (one gather, no per-row objects)."""
        positions, lengths = ragged_positions(self.lengths, rows)
        return RaggedTokens(self.ids[positions], lengths,
                            self.first_lengths[np.asarray(rows, dtype=np.int64)])

    @classmethod
    def concatenate(cls, parts: Sequence[RaggedTokens]) -> RaggedTokens:
        """The rows of every part, one after the other."""
        if not parts:
            empty = np.empty(0, np.int64)
            return cls(np.empty(0, np.int32), empty, empty)
        if len(parts) == 1:
            return parts[0]
        return cls(np.concatenate([p.ids for p in parts]).astype(np.int32, copy=False),
                   np.concatenate([p.lengths for p in parts]),
                   np.concatenate([p.first_lengths for p in parts]))


# -- ventilator <-> worker ----------------------------------------------------------------------


@dataclass(frozen=True)
class BatchMessage:
    """One batch for a worker: where its rows go, and their token ids."""

    batch_id: int
    segments: list[Segment]
    tokens: RaggedTokens

    def __len__(self) -> int:
        return len(self.tokens)


def _int32_frame(values: np.ndarray) -> memoryview:
    return np.ascontiguousarray(values, dtype=np.int32).data


def encode_batch(worker_id: bytes, batch: BatchMessage) -> list[bytes | memoryview]:
    header = {"id": batch.batch_id, "segments": _segments_to_json(batch.segments)}
    tokens = batch.tokens
    return [worker_id, BATCH, json.dumps(header).encode(), _int32_frame(tokens.ids),
            _int32_frame(tokens.lengths), _int32_frame(tokens.first_lengths)]


def encode_worker_stop(worker_id: bytes) -> list[bytes]:
    return [worker_id, Control.STOP.value]


@_total
def decode_batch(frames: Sequence[bytes]) -> BatchMessage | None:
    """A batch for this worker, or None for STOP (frames as the DEALER receives them)."""
    if frames[0] == Control.STOP.value:
        return None
    if frames[0] != BATCH or len(frames) != 5:
        raise _unexpected("a batch", frames)
    header = json.loads(frames[1])
    ids, lengths, first_lengths = (np.frombuffer(f, dtype=np.int32) for f in frames[2:5])
    if len(lengths) != len(first_lengths) or int(lengths.sum()) != len(ids):
        raise MalformedFrame(f"batch {header['id']}: {len(lengths)} rows of {int(lengths.sum())} "
                         f"tokens do not match {len(ids)} ids")
    return BatchMessage(int(header["id"]), _segments_from_json(header["segments"]),
                        RaggedTokens(ids, lengths, first_lengths))


@dataclass(frozen=True)
class ReadyMessage:
    credits: int
    done: list[int]


def encode_ready(credits: int, done: Sequence[int] = ()) -> list[bytes]:
    return [READY, json.dumps({"credits": credits, "done": list(done)}).encode()]


@_total
def decode_ready(frames: Sequence[bytes]) -> ReadyMessage:
    """Frames after the ROUTER's identity frame."""
    if frames[0] != READY:
        raise _unexpected("READY", frames)
    body = json.loads(frames[1])
    return ReadyMessage(int(body["credits"]), [int(x) for x in body["done"]])


# -- worker -> sink -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultMessage:
    """A batch's output rows (N, ...) in the batch's row order, or the error that stopped it.

    A sparse model's rows are `SparseRows` (its nonzeros), every other model's an array."""

    batch_id: int
    segments: list[Segment]
    vectors: np.ndarray | SparseRows | None
    tokens: list[list[str]] | None
    error: str | None = None


def encode_result(
    batch: BatchMessage, vectors: np.ndarray, tokens: list[list[str]] | None
) -> list[bytes | memoryview]:
    vectors = np.ascontiguousarray(vectors)
    header = {"id": batch.batch_id, "segments": _segments_to_json(batch.segments),
              "dtype": str(vectors.dtype), "shape": list(vectors.shape)}
    encoded_tokens = json.dumps(tokens, ensure_ascii=False).encode("utf-8") if tokens else b""
    return [RESULT, json.dumps(header).encode(), vectors.data, encoded_tokens]


def encode_sparse_result(
    batch: BatchMessage, rows: SparseRows, tokens: list[list[str]] | None
) -> list[bytes | memoryview]:
    """A sparse model's batch: its rows' nonzeros (`bert_serving.proto.sparse`'s layout)."""
    fields, arrays = sparse_frames(rows)
    header = {"id": batch.batch_id, "segments": _segments_to_json(batch.segments), **fields}
    encoded_tokens = json.dumps(tokens, ensure_ascii=False).encode("utf-8") if tokens else b""
    return [SPARSE, json.dumps(header).encode(), *arrays, encoded_tokens]


def encode_failed(batch: BatchMessage, message: str) -> list[bytes]:
    header = {"id": batch.batch_id, "segments": _segments_to_json(batch.segments),
              "error": message}
    return [FAILED, json.dumps(header).encode()]


@_total
def decode_result(frames: Sequence[bytes]) -> ResultMessage:
    header = json.loads(frames[1])
    segments = _segments_from_json(header["segments"])
    if frames[0] == FAILED:
        return ResultMessage(header["id"], segments, None, None, str(header["error"]))
    if frames[0] == SPARSE and len(frames) == 6:
        rows = read_sparse_frames(header, frames[2:5])  # SparseFormatError: a ValueError
        return ResultMessage(header["id"], segments, rows, _tokens(frames[5]))
    if frames[0] != RESULT or len(frames) != 4:
        raise _unexpected("a result", frames)
    vectors = np.frombuffer(frames[2], dtype=header["dtype"]).reshape(header["shape"])
    return ResultMessage(header["id"], segments, vectors, _tokens(frames[3]))


def _tokens(frame: bytes) -> list[list[str]] | None:
    return json.loads(frame) if len(frame) else None


# -- ventilator -> sink -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobMessage:
    """A request the sink is to assemble: sent before any of its batches."""

    key: JobKey
    num_rows: int
    want_tokens: bool
    token_counts: list[int]
    """Tokens the model reads per text ([CLS]/[SEP] included; all windows of a chunked text)."""
    windows: list[int] | None = None
    """-truncation chunk: windows per text (num_rows counts windows), else None."""
    weights: list[int] | None = None
    """-truncation chunk: tokens each window pooled, for the token-weighted mean."""
    native: bool = False
    """Reply with the rows' native-view columns (the model's own embedding), not the first."""
    sparse: bool = False
    """Reply with a sparse model's nonzeros (`SparseRows`), not its dense rows."""
    precision: Precision | None = None
    """Reply with the rows quantized (`quantize_embeddings`' precisions); None: float."""


def encode_job(job: JobMessage) -> list[bytes]:
    body: dict[str, Any] = {"key": _key_to_json(job.key), "rows": job.num_rows,
                            "tokens": job.want_tokens, "token_counts": job.token_counts}
    if job.windows is not None:
        body["windows"], body["weights"] = job.windows, job.weights
    if job.native:
        body["native"] = True
    if job.sparse:
        body["sparse"] = True
    if job.precision is not None:
        body["precision"] = job.precision
    return [JOB, json.dumps(body).encode()]


def _decode_job(frames: Sequence[bytes]) -> JobMessage:
    body = json.loads(frames[1])
    return JobMessage(_key_from_json(body["key"]), int(body["rows"]), bool(body["tokens"]),
                      [int(n) for n in body["token_counts"]], body.get("windows"),
                      body.get("weights"), bool(body.get("native", False)),
                      bool(body.get("sparse", False)), _job_precision(body.get("precision")))


def _job_precision(value: Any) -> Precision | None:
    if value is None or value in PRECISIONS:
        return value
    raise ValueError(f"a job's precision is one of {PRECISIONS}, not {value!r:.40}")


@dataclass(frozen=True)
class PublishMessage:
    """A finished public reply (built by `bert_serving.proto`) for the sink to publish."""

    client_id: bytes
    frames: list[bytes]


def encode_publish(reply: Sequence[bytes]) -> list[bytes]:
    """Ask the sink to publish `reply` (whose frame 0 is the client's identity) as it is."""
    return [PUBLISH, *reply]


@_total
def decode_sink_control(frames: Sequence[bytes]) -> JobMessage | PublishMessage | None:
    """What the sink's control socket got: a job, a reply to publish, or None for STOP."""
    kind = frames[0]
    if kind == JOB:
        return _decode_job(frames)
    if kind == PUBLISH and len(frames) >= 4:
        return PublishMessage(bytes(frames[1]), [bytes(f) for f in frames[1:]])
    if kind == Control.STOP.value:
        return None
    raise _unexpected("a sink message", frames)


# -- control sockets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlMessage:
    word: Control
    subject: bytes = b""
    """The worker or client the word is about, when it is about one."""


def encode_control(word: Control, subject: bytes | None = None) -> list[bytes]:
    return [word.value] if subject is None else [word.value, subject]


@_total
def decode_control(frames: Sequence[bytes]) -> ControlMessage:
    """The word and subject of a control message; MalformedFrame for anything else."""
    word = next((w for w in Control if w.value == frames[0]), None)
    if word is None or len(frames) > 2:
        raise _unexpected("a control message", frames)
    return ControlMessage(word, bytes(frames[1]) if len(frames) == 2 else b"")
