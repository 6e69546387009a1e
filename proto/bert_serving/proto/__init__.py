"""The bert-serving wire format, compatible with bert-serving-client 1.10.0.

The only code that knows frame order, message kinds, headers and error replies.
Client and server import it; nobody else packs or parses frames.

Requests, always 4 frames::

    [identity, payload, req_id, msg_len]

payload is the JSON of a list of texts (or of token lists), or a control word.

Replies::

    config/status:  [identity, json, req_id]
    embeddings:     [identity, header_json, raw_bytes, req_id]
    error:          [identity, header_json, b"", req_id]   header["error"] set
    sparse (*ext*): [identity, header_json, offsets, indices, values, req_id]

A sparse reply (a sparse model's nonzeros, `bert_serving.proto.sparse`) goes only to a
request that asked for one with ``"sparse": true`` in the *ext* payload; every other
request to a sparse model, the 1.10.0 client's included, gets the dense rows.

An embedding header may also carry `token_counts` (an *ext* field the 1.10.0
client ignores): the tokens the model read per text, for usage reports. Every
error reply names its `ErrorKind`. docs/protocol.md has the details.

Every parser here is total: whatever bytes arrive, it returns a value or raises
MalformedRequest / TextPayloadError with a message naming the problem. Frames are
size-checked before they are parsed (`MAX_DIGITS`, `MAX_IDENTITY_BYTES`), JSON
nesting is bounded (a payload is at most five levels deep: the *ext* payload's
`{"inputs": [[{"ids": [...]}, second]]}`), and a text can be
limited in UTF-8 bytes before anyone tokenizes it.

An error header also carries the message as its `dtype` (commas written as
semicolons), so the 1.10.0 client, which cannot parse errors, raises a TypeError
quoting it instead of hanging.

Usage::

    frames = encode_request(b"client-1", 7, ["hello", "world"])
    request = parse_request(frames)
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .inputs import (
    MAX_TOKEN_ID,
    PRECISIONS,
    Dual,
    Ids,
    Precision,
    TextInput,
    WordsInput,
    encode_inputs,
    read_legacy_text,
    read_legacy_words,
)
from .sparse import SparseRows, read_sparse_frames, sparse_frames

__all__ = [
    "MAX_DIGITS",
    "MAX_IDENTITY_BYTES",
    "PROTOCOL_VERSION",
    "Command",
    "DecodedTexts",
    "EmbeddingReply",
    "ErrorKind",
    "ErrorReply",
    "JsonReply",
    "MalformedRequest",
    "Reply",
    "Request",
    "ServerError",
    "SparseReply",
    "TextPayloadError",
    "decode_reply",
    "decode_texts",
    "encode_embedding_reply",
    "encode_error_reply",
    "encode_json_reply",
    "encode_request",
    "encode_sparse_reply",
    "encode_texts",
    "parse_request",
]

# What SHOW_CONFIG reports as `server_version`: the 1.10.0 client refuses any other.
PROTOCOL_VERSION = "1.10.0"
ERROR_DTYPE_PREFIX = "bert-serving error: "
MAX_DIGITS = 18
"""req_id and msg_len fit in 64 bits; longer digit strings are refused before int() runs."""
MAX_IDENTITY_BYTES = 1024
"""Identities are echoed in every reply and stored per job: a UUID4 is 36 bytes."""


class Command(bytes, enum.Enum):
    """Control payloads; every other payload is texts."""

    SHOW_CONFIG = b"SHOW_CONFIG"
    SHOW_STATUS = b"SHOW_STATUS"
    TERMINATION = b"TERMINATION"


class ErrorKind(str, enum.Enum):
    """What went wrong, in an error reply's `error.type`; the gateway maps each to a status."""

    BAD_REQUEST = "BadRequest"
    """The texts were refused: not a list of strings, empty, too many, too long, ..."""
    MALFORMED_REQUEST = "MalformedRequest"
    """The frames are not a request (count, digits): the client has a bug."""
    SERVER_BUSY = "ServerBusy"
    """The queue is full or the server is shutting down: retry later."""
    SERVER_ERROR = "ServerError"
    """The server failed while handling the request (a bug on its side)."""
    ENCODING_FAILED = "EncodingFailed"
    """The model run of a batch holding the request's texts failed."""
    BAD_REPLY = "BadReply"
    """Raised by a client: the server's reply could not be used."""

    @classmethod
    def parse(cls, value: Any) -> ErrorKind:
        """The kind a reply names; one this client does not know is a SERVER_ERROR."""
        return next((kind for kind in cls if kind.value == value), cls.SERVER_ERROR)


class MalformedRequest(ValueError):
    """Frames that are not a request; `client_id` is set when a reply can still be sent."""

    def __init__(self, reason: str, client_id: bytes | None = None, req_id: int = 0) -> None:
        super().__init__(reason)
        self.client_id = client_id
        self.req_id = req_id


class TextPayloadError(ValueError):
    """A text payload that is not a list of texts; the message names the problem."""


class ServerError(RuntimeError):
    """An error the server sent back for one request."""

    def __init__(
        self, message: str, kind: ErrorKind = ErrorKind.BAD_REQUEST, req_id: int = 0
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.req_id = req_id


@dataclass(frozen=True)
class Request:
    """One parsed request; `command` is set for control messages, else `payload` holds texts."""

    client_id: bytes
    req_id: int
    payload: bytes
    msg_len: int
    command: Command | None


def _parse_int(frame: bytes, name: str, client_id: bytes | None, req_id: int = 0) -> int:
    if len(frame) > MAX_DIGITS + 2:  # before decoding: a frame can be any size
        raise MalformedRequest(
            f"{name} is {len(frame)} bytes long: at most {MAX_DIGITS} ASCII decimal digits",
            client_id, req_id,
        )
    text = bytes(frame).decode("ascii", "replace").strip()
    # isdigit() alone accepts '²' and other Unicode digits int() refuses; ASCII only.
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        raise MalformedRequest(
            f"{name} must be ASCII decimal digits, got {text[:20]!r}", client_id, req_id
        )
    return int(text)


def parse_request(frames: Sequence[bytes]) -> Request:
    """Validate the frame layout of one request; the payload is not decoded here."""
    client_id = bytes(frames[0]) if frames and len(frames[0]) else None
    if client_id is not None and len(client_id) > MAX_IDENTITY_BYTES:
        raise MalformedRequest(
            f"the identity frame is {len(client_id)} bytes, more than {MAX_IDENTITY_BYTES}"
        )
    if len(frames) != 4:
        raise MalformedRequest(f"a request has 4 frames, got {len(frames)}", client_id)
    req_id = _parse_int(frames[2], "req_id", client_id)
    # With req_id known, the error reply can reach the request that caused it.
    msg_len = _parse_int(frames[3], "msg_len", client_id, req_id)
    payload = bytes(frames[1])
    command = next((c for c in Command if c.value == payload), None)
    if client_id is None:
        raise MalformedRequest("the identity frame is empty", None, req_id)
    return Request(client_id, req_id, payload, msg_len, command)


def encode_request(
    client_id: bytes, req_id: int, body: Sequence[str] | Sequence[Sequence[str]] | Command,
    *, verbatim: bool = False, native: bool = False, sparse: bool = False,
    precision: Precision | None = None,
) -> list[bytes]:
    """The 4 frames of a request: texts (or token lists), or a control command.

    `verbatim`: the *ext* payload (`encode_inputs`), where each row of `body` (a str,
    `Dual` or `Ids`) is taken as it is, and `native` asks for the model's own embedding;
    else the 1.10 one, where 'a ||| b' is a pair. `sparse` asks a sparse model for its
    nonzeros (`SparseReply`) instead of dense rows, `precision` for quantized rows.
    """
    if isinstance(body, Command):
        return [client_id, body.value, b"%d" % req_id, b"0"]
    payload = (encode_inputs(body, native=native, sparse=sparse,  # type: ignore[arg-type]
                             precision=precision)
               if verbatim else encode_texts(body, sparse=sparse, precision=precision))
    return [client_id, payload, b"%d" % req_id, b"%d" % len(body)]


def encode_texts(texts: Sequence[str] | Sequence[Sequence[str]], *,
                 sparse: bool = False, precision: Precision | None = None) -> bytes:
    """The 1.10 payload; with `sparse` or `precision`, the *ext* ``{"texts": [...],
    "sparse": true, "precision": "int8"}``, the same rows read the same way, asking for a
    sparse reply or quantized rows."""
    if not sparse and precision is None:
        return json.dumps(list(texts), ensure_ascii=False).encode("utf-8")
    body: dict[str, Any] = {"texts": list(texts)}
    if sparse:
        body["sparse"] = True
    if precision is not None:
        body["precision"] = precision
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _describe(value: Any) -> str:
    """`an int 5`, `a dict {"a": 1}`: the offending value, with the article English wants."""
    name = type(value).__name__
    article = "an" if name[0] in "aeiou" else "a"
    return f"{article} {name} {json.dumps(value, ensure_ascii=False)[:40]}"


class DecodedTexts(NamedTuple):
    """A text payload's rows, whether they are pre-tokenized, whether the client asked
    for the model's own embedding (the *ext* payload's ``"native"``), for a sparse
    reply (``"sparse"``), and for quantized rows (``"precision"``)."""

    rows: list[TextInput] | list[WordsInput]
    is_tokenized: bool
    native: bool = False
    sparse: bool = False
    precision: Precision | None = None


def decode_texts(
    payload: bytes, *, max_texts: int | None = None, max_text_bytes: int | None = None
) -> DecodedTexts:
    """The rows of a payload, whether they are pre-tokenized, and the view asked for.

    Two payloads carry texts. The 1.10 one is a JSON list of strings (or of token
    lists: pre-tokenized, inferred from the shape), where ``'a ||| b'`` is a pair
    (`read_legacy_text`). The *ext* one is ``{"inputs": [...]}``, each row a string
    taken verbatim, a ``[first, second]`` pair or ``{"ids": [...]}`` (`inputs`).
    ``{"texts": [...]}`` wraps a 1.10 list, read as such, to carry ``"sparse"`` or
    ``"precision"``.

    Raises TextPayloadError with a message naming the problem and, where there is
    one, the index of the offending row. `max_text_bytes` bounds each text (a pair
    or a tokenized one: its parts together) in UTF-8 bytes, checked before any
    tokenizing, so one huge text cannot hold the server for seconds.
    """
    body = _load_json(payload)
    rows = _rows_of(body)
    native, sparse = _flag(body, "native"), _flag(body, "sparse")
    precision = _precision(body)
    if not rows:
        raise TextPayloadError("payload is an empty list: send at least one text")
    if max_texts is not None and len(rows) > max_texts:
        raise TextPayloadError(
            f"request has {len(rows)} texts, more than the server's limit of {max_texts}: "
            "split it into smaller requests"
        )
    if isinstance(body, dict) and "inputs" in body:
        typed = [_ext_row(row, index, max_text_bytes) for index, row in enumerate(rows)]
        return DecodedTexts(typed, False, native, sparse, precision)
    is_tokenized = isinstance(rows[0], list)
    for index, text in enumerate(rows):
        _check_text(text, index, is_tokenized)
        if max_text_bytes is not None:
            _check_text_size(text, index, max_text_bytes)
    if is_tokenized:
        return DecodedTexts([read_legacy_words(words) for words in rows], True, False, sparse,
                            precision)
    texts: list[TextInput] = [read_legacy_text(text) for text in rows]
    return DecodedTexts(texts, False, False, sparse, precision)


_EXT_KEYS = {"inputs": {"inputs", "native", "sparse", "precision"},
             "texts": {"texts", "sparse", "precision"}}
"""An *ext* object's rows (verbatim `inputs`, or a 1.10 list as `texts`) and its flags."""


def _rows_of(body: Any) -> list[Any]:
    """The list of rows: the 1.10 payload itself, or an *ext* payload's `inputs` or `texts`."""
    if isinstance(body, dict):
        key = next((key for key, allowed in _EXT_KEYS.items()
                    if key in body and set(body) <= allowed), None)
        if key is None:
            raise TextPayloadError(
                f"payload is an object with keys {sorted(body)[:5]}: it must be a JSON list "
                "of strings, {\"inputs\": [...], \"native\"?, \"sparse\"?, \"precision\"?} or "
                "{\"texts\": [...], \"sparse\"?, \"precision\"?}")
        body = body[key]
        if not isinstance(body, list):
            raise TextPayloadError(f"payload's {key} must be a JSON list, got {_describe(body)}")
    elif not isinstance(body, list):
        raise TextPayloadError(f"payload must be a JSON list of strings, got {_describe(body)}")
    return body


def _flag(body: Any, name: str) -> bool:
    """An *ext* object's true/false flag (`native`, `sparse`); absent is false."""
    if not isinstance(body, dict) or name not in body:
        return False
    if not isinstance(body[name], bool):
        raise TextPayloadError(f"payload's {name} must be true or false, got "
                               f"{_describe(body[name])}")
    return body[name]


def _precision(body: Any) -> Precision | None:
    """An *ext* object's ``"precision"``: one of `PRECISIONS`; absent is None (float32)."""
    if not isinstance(body, dict) or "precision" not in body:
        return None
    value = body["precision"]
    if value not in PRECISIONS:
        raise TextPayloadError(f"payload's precision must be one of {', '.join(PRECISIONS)} "
                               f"(leave it out for float32), got {_describe(value)}")
    return value


def _ext_row(row: Any, index: int, max_text_bytes: int | None) -> TextInput:
    """One *ext* row: a string as it is, {"ids": [...]}, or a [first, second] pair of those."""
    if isinstance(row, list) and len(row) == 2 and all(_is_part(part) for part in row):
        item: TextInput = Dual(_ext_part(row[0], index), _ext_part(row[1], index))
    elif _is_part(row):
        item = _ext_part(row, index)
    else:
        raise TextPayloadError(
            f"inputs[{index}] is {_describe(row)}: each input is a string, "
            "{\"ids\": [token ids]}, or a [first, second] pair of those")
    if max_text_bytes is not None:
        _check_row_size(item, index, max_text_bytes)
    return item


def _is_part(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and set(value) == {"ids"})


def _ext_part(value: Any, index: int) -> str | Ids:
    return value if isinstance(value, str) else Ids(_checked_ids(value["ids"], index))


def _check_row_size(item: TextInput, index: int, limit: int) -> None:
    """A row's texts together within `limit` UTF-8 bytes, and its ids within `limit` ids."""
    parts = list(item) if isinstance(item, Dual) else [item]
    ids = sum(len(part.ids) for part in parts if isinstance(part, Ids))
    if ids > limit:
        raise TextPayloadError(
            f"inputs[{index}] holds {ids} token ids, more than the server's limit of "
            f"{limit} per text (-max_text_bytes): shorten or split it")
    texts = [part for part in parts if isinstance(part, str)]
    if texts:
        _check_text_size(texts[0] if len(texts) == 1 else texts, index, limit)


def _checked_ids(ids: Any, index: int) -> tuple[int, ...]:
    if not isinstance(ids, list) or not all(
            type(i) is int and 0 <= i <= MAX_TOKEN_ID for i in ids):
        raise TextPayloadError(
            f"inputs[{index}].ids must be a list of token ids (integers from 0 to "
            f"{MAX_TOKEN_ID}), got {_describe(ids)}")
    return tuple(ids)


def _load_json(payload: bytes) -> Any:
    """json.loads, total: bad UTF-8, bad JSON and over-deep nesting all name the problem.

    The C parser bounds nesting by the interpreter's recursion limit and raises
    RecursionError past it (a text frame of `[` 100,000 deep); a real payload is
    two levels deep, five for the *ext* payload (a pair of ids).
    """
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:  # ValueError: JSON, and int() of
        # over 4,300 digits, which Python refuses
        raise TextPayloadError(f"payload is not valid UTF-8 JSON: {str(error)[:200]}") from None
    except RecursionError:
        raise TextPayloadError(
            "payload nests JSON too deeply: it must be a list of strings or of token lists, "
            "or {\"inputs\": [...]}"
        ) from None


def _check_text_size(text: str | list[str], index: int, limit: int) -> None:
    # A character is 1 to 4 UTF-8 bytes: most texts are decided without encoding them.
    chars = len(text) if isinstance(text, str) else sum(len(t) for t in text)
    if chars * 4 <= limit:
        return
    size = chars if chars > limit else _utf8_size(text)
    if size > limit:
        raise TextPayloadError(
            f"texts[{index}] is at least {size} bytes, over the server's limit of {limit} bytes "
            "per text (-max_text_bytes): shorten or split it"
        )


def _utf8_size(text: str | list[str]) -> int:
    if isinstance(text, str):
        return len(text.encode("utf-8", "surrogatepass"))
    return sum(len(t.encode("utf-8", "surrogatepass")) for t in text)


def _check_text(text: Any, index: int, is_tokenized: bool) -> None:
    if not is_tokenized:
        if not isinstance(text, str):
            raise TextPayloadError(
                f"texts[{index}] is {_describe(text)}, not a string "
                "(a list of strings is tokenized input and then every text must be one)"
            )
        return
    if not isinstance(text, list):
        raise TextPayloadError(
            f"texts[{index}] is {_describe(text)}: tokenized input must be a list of "
            "lists of strings"
        )
    for position, token in enumerate(text):
        if not isinstance(token, str):
            raise TextPayloadError(
                f"texts[{index}][{position}] is {_describe(token)}, not a string"
            )


def encode_json_reply(client_id: bytes, req_id: int, body: dict[str, Any]) -> list[bytes]:
    """A config or status reply: 3 frames."""
    return [client_id, json.dumps(body, ensure_ascii=False).encode("utf-8"), b"%d" % req_id]


def encode_embedding_reply(
    client_id: bytes, req_id: int, array: np.ndarray, tokens: list[list[str]] | None = None,
    token_counts: Sequence[int] | None = None,
) -> list[bytes | memoryview]:
    """Embeddings: a JSON header and the raw C-contiguous bytes.

    `token_counts` (tokens read per text) goes in the header as an *ext* field.
    """
    array = np.ascontiguousarray(array)
    header: dict[str, Any] = {"dtype": str(array.dtype), "shape": list(array.shape),
                              "tokens": tokens or ""}
    if token_counts is not None:
        header["token_counts"] = list(token_counts)
    # The array's own buffer goes out as-is: no copy until zmq sends it.
    return [client_id, json.dumps(header, ensure_ascii=False).encode("utf-8"),
            array.data, b"%d" % req_id]


def encode_error_reply(
    client_id: bytes, req_id: int, message: str, kind: ErrorKind = ErrorKind.BAD_REQUEST
) -> list[bytes]:
    """An error on the embedding reply path that both clients surface, neither hangs on."""
    header = {
        # numpy parses a dtype string holding a comma as a record format and raises
        # ValueError ("format number 1 ... is not recognized"); without commas it is
        # always TypeError "data type '<message>' not understood".
        "dtype": f"{ERROR_DTYPE_PREFIX}{message.replace(',', ';')}",
        "shape": [0],
        "tokens": "",
        "error": {"type": kind.value, "message": message},
    }
    return [client_id, json.dumps(header, ensure_ascii=False).encode("utf-8"), b"",
            b"%d" % req_id]


@dataclass(frozen=True)
class JsonReply:
    req_id: int
    body: dict[str, Any]


@dataclass(frozen=True)
class EmbeddingReply:
    req_id: int
    array: np.ndarray
    tokens: list[list[str]] | None
    token_counts: list[int] | None = None
    """Tokens the model read per text, when the server sends them (ours does)."""


def encode_sparse_reply(
    client_id: bytes, req_id: int, rows: SparseRows, tokens: list[list[str]] | None = None,
    token_counts: Sequence[int] | None = None,
) -> list[bytes | memoryview]:
    """A sparse model's rows as their nonzeros (*ext*, for a request that asked, never the
    1.10 client's): the embedding header's fields plus the layout, and three raw frames."""
    fields, arrays = sparse_frames(rows)
    header: dict[str, Any] = {**fields, "tokens": tokens or ""}
    if token_counts is not None:
        header["token_counts"] = list(token_counts)
    return [client_id, json.dumps(header, ensure_ascii=False).encode("utf-8"), *arrays,
            b"%d" % req_id]


@dataclass(frozen=True)
class SparseReply:
    """A sparse model's rows, nonzeros only, for a request sent with `sparse`."""

    req_id: int
    rows: SparseRows
    tokens: list[list[str]] | None
    token_counts: list[int] | None = None


@dataclass(frozen=True)
class ErrorReply:
    req_id: int
    error: ServerError


Reply = JsonReply | EmbeddingReply | SparseReply | ErrorReply

_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


def decode_reply(frames: Sequence[bytes]) -> Reply:
    """Parse a reply on the client side (frame 0, the identity, is ignored).

    Total: frames that are no reply raise ServerError (BadReply) naming what is wrong.
    """
    try:
        return _decode_reply(frames)
    except ServerError:
        raise
    except _UNREADABLE as error:
        raise ServerError(f"the server's reply could not be read ({len(frames)} frames): "
                          f"{type(error).__name__}: {str(error)[:200]}",
                          ErrorKind.BAD_REPLY) from None


def _decode_reply(frames: Sequence[bytes]) -> Reply:
    req_id = _parse_int(frames[-1], "the reply's req_id", None)
    if len(frames) == 3:
        body = json.loads(frames[1])
        if not isinstance(body, dict):
            raise ValueError(f"a config reply is a JSON object, got {_describe(body)}")
        return JsonReply(req_id, body)
    header = json.loads(frames[1])
    if not isinstance(header, dict):
        raise ValueError(f"a reply header is a JSON object, got {_describe(header)}")
    if "error" in header:
        error = header["error"]
        kind = ErrorKind.parse(error.get("type"))
        return ErrorReply(req_id, ServerError(str(error["message"]), kind, req_id))
    tokens, counts = _tokens(header), _token_counts(header)
    if len(frames) == 6:
        return SparseReply(req_id, read_sparse_frames(header, frames[2:5]), tokens, counts)
    if len(frames) != 4:
        raise ValueError(f"a reply has 3, 4 or 6 frames, got {len(frames)}")
    array = np.frombuffer(frames[2], dtype=header["dtype"]).reshape(header["shape"])
    return EmbeddingReply(req_id, array, tokens, counts)


def _tokens(header: dict[str, Any]) -> list[list[str]] | None:
    """The header's token lists; "" or absent (the 1.10 server's "no tokens") is None."""
    tokens = header.get("tokens")
    if tokens in ("", None):
        return None
    if not (isinstance(tokens, list) and all(
            isinstance(row, list) and all(isinstance(t, str) for t in row) for row in tokens)):
        raise ValueError(f"a reply's tokens are a list of lists of strings, "
                         f"got {str(tokens)[:40]}")
    return tokens or None


def _token_counts(header: dict[str, Any]) -> list[int] | None:
    """The header's token counts, each an int >= 0 (JSON's 1e400 or Infinity is none)."""
    counts = header.get("token_counts")
    if counts is None:
        return None
    if not (isinstance(counts, list) and all(type(n) is int and n >= 0 for n in counts)):
        raise ValueError(f"a reply's token_counts are integers >= 0, got {str(counts)[:40]}")
    return counts
