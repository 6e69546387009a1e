"""Frames between the server's own parts: ventilator, workers and sink.

Not for clients. JSON headers and raw array bytes, never pickle: the internal
sockets listen on 127.0.0.1, where any local user could reach them.

    ventilator -> worker   [worker_id, b"BATCH", header, ids, lengths, first_lengths]
                           | [worker_id, b"STOP"]
    worker -> ventilator   [b"READY", {"credits": n, "done": [batch ids]}]
    worker -> sink         [b"RESULT", header, raw, tokens_json]        | [b"FAILED", header]
    ventilator -> sink     [b"JOB", header] | [b"JSON", id, req, body] | [b"ERROR", id, req, msg]
    sink -> ventilator     [b"CLIENT_GONE", client_id]   (its queued texts need not run)
                           | [b"CLIENT_BACK", client_id]  (it subscribed: serve it again)

A segment is `(client_id, req_id, rows)`: which rows of which request a batch holds.
A batch travels as token ids, not texts: the ventilator tokenizes every text once
(it needs the lengths to group rows), so workers only pad. The three arrays are
raw int32: every row's ids concatenated, tokens per row, type-0 tokens per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BatchMessage",
    "JobMessage",
    "ReadyMessage",
    "ResultMessage",
    "WireSegment",
    "decode_batch",
    "decode_job",
    "decode_ready",
    "decode_result",
    "encode_batch",
    "encode_client_back",
    "encode_client_gone",
    "encode_failed",
    "encode_job",
    "encode_ready",
    "encode_result",
]

BATCH, STOP, READY, RESULT, FAILED, JOB = b"BATCH", b"STOP", b"READY", b"RESULT", b"FAILED", b"JOB"
JSON_REPLY, ERROR_REPLY = b"JSON", b"ERROR"
CLIENT_GONE, CLIENT_BACK = b"CLIENT_GONE", b"CLIENT_BACK"

WireSegment = tuple[bytes, int, list[int]]


def _segments_to_json(segments: Sequence[WireSegment]) -> list[list[Any]]:
    return [[client.hex(), req_id, rows] for client, req_id, rows in segments]


def _segments_from_json(raw: list[list[Any]]) -> list[WireSegment]:
    return [(bytes.fromhex(client), int(req_id), list(rows)) for client, req_id, rows in raw]


@dataclass(frozen=True)
class BatchMessage:
    batch_id: int
    segments: list[WireSegment]
    token_ids: np.ndarray
    """int32 [total tokens]: every row's ids, [CLS]/[SEP] included, in row order."""
    lengths: np.ndarray
    """int32 [rows]: tokens per row."""
    first_lengths: np.ndarray
    """int32 [rows]: leading tokens of type 0 per row (the first text of a pair)."""

    def __len__(self) -> int:
        return len(self.lengths)


def _int32_frame(values: np.ndarray) -> memoryview:
    return np.ascontiguousarray(values, dtype=np.int32).data


def encode_batch(worker_id: bytes, batch: BatchMessage) -> list[bytes | memoryview]:
    header = {"id": batch.batch_id, "segments": _segments_to_json(batch.segments)}
    return [worker_id, BATCH, json.dumps(header).encode(), _int32_frame(batch.token_ids),
            _int32_frame(batch.lengths), _int32_frame(batch.first_lengths)]


def decode_batch(frames: Sequence[bytes]) -> BatchMessage | None:
    """A batch for this worker, or None for STOP (frames as the DEALER receives them)."""
    if frames[0] == STOP:
        return None
    header = json.loads(frames[1])
    token_ids, lengths, first_lengths = (np.frombuffer(f, dtype=np.int32) for f in frames[2:5])
    if len(lengths) != len(first_lengths) or int(lengths.sum()) != len(token_ids):
        raise ValueError(f"batch {header['id']}: {len(lengths)} rows of {int(lengths.sum())} "
                         f"tokens do not match {len(token_ids)} ids")
    return BatchMessage(header["id"], _segments_from_json(header["segments"]), token_ids,
                        lengths, first_lengths)


def encode_stop(worker_id: bytes) -> list[bytes]:
    return [worker_id, STOP]


@dataclass(frozen=True)
class ReadyMessage:
    credits: int
    done: list[int]


def encode_ready(credits: int, done: Sequence[int] = ()) -> list[bytes]:
    return [READY, json.dumps({"credits": credits, "done": list(done)}).encode()]


def decode_ready(frames: Sequence[bytes]) -> ReadyMessage:
    """Frames after the ROUTER's identity frame."""
    body = json.loads(frames[1])
    return ReadyMessage(int(body["credits"]), [int(x) for x in body["done"]])


@dataclass(frozen=True)
class ResultMessage:
    batch_id: int
    segments: list[WireSegment]
    vectors: np.ndarray | None
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


def encode_failed(batch: BatchMessage, message: str) -> list[bytes]:
    header = {"id": batch.batch_id, "segments": _segments_to_json(batch.segments),
              "error": message}
    return [FAILED, json.dumps(header).encode()]


def decode_result(frames: Sequence[bytes]) -> ResultMessage:
    header = json.loads(frames[1])
    segments = _segments_from_json(header["segments"])
    if frames[0] == FAILED:
        return ResultMessage(header["id"], segments, None, None, header["error"])
    vectors = np.frombuffer(frames[2], dtype=header["dtype"]).reshape(header["shape"])
    tokens = json.loads(frames[3]) if len(frames[3]) else None
    return ResultMessage(header["id"], segments, vectors, tokens)


@dataclass(frozen=True)
class JobMessage:
    client_id: bytes
    req_id: int
    num_rows: int
    want_tokens: bool
    windows: list[int] | None = None
    """-truncation chunk: windows per text (num_rows counts windows), else None."""
    weights: list[int] | None = None
    """-truncation chunk: tokens each window pooled, for the token-weighted mean."""


def encode_job(job: JobMessage) -> list[bytes]:
    body: dict[str, Any] = {"client": job.client_id.hex(), "req_id": job.req_id,
                            "rows": job.num_rows, "tokens": job.want_tokens}
    if job.windows is not None:
        body["windows"], body["weights"] = job.windows, job.weights
    return [JOB, json.dumps(body).encode()]


def decode_job(frames: Sequence[bytes]) -> JobMessage:
    body = json.loads(frames[1])
    return JobMessage(bytes.fromhex(body["client"]), int(body["req_id"]), int(body["rows"]),
                      bool(body["tokens"]), body.get("windows"), body.get("weights"))


def encode_json_for_client(client_id: bytes, req_id: int, body: dict[str, Any]) -> list[bytes]:
    """Ask the sink to publish a config/status reply."""
    return [JSON_REPLY, client_id, b"%d" % req_id, json.dumps(body, ensure_ascii=False).encode()]


def encode_client_gone(client_id: bytes) -> list[bytes]:
    """Tell the ventilator a client unsubscribed: drop what it still has queued."""
    return [CLIENT_GONE, client_id]


def encode_client_back(client_id: bytes) -> list[bytes]:
    """Tell the ventilator a client subscribed: requests it parked for that identity may run."""
    return [CLIENT_BACK, client_id]


def encode_error_for_client(client_id: bytes, req_id: int, message: str, kind: str) -> list[bytes]:
    """Ask the sink to publish an error reply."""
    return [ERROR_REPLY, client_id, b"%d" % req_id, message.encode("utf-8"), kind.encode()]
