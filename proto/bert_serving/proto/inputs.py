"""What a client asks to encode: a text, a pair of texts, or token ids (TEI's `EncodingInput`).

A text is taken exactly as sent: every character, leading and trailing
whitespace included, reaches the model's tokenizer, which alone decides what
whitespace means (SentencePiece and byte-level BPE keep it in the ids). A pair is
a `Dual`, never text glued with a separator, so any text can be half of one.

The 1.10 protocol writes a pair as ``"first ||| second"`` (tokenized: a ``'|||'``
element between the two). That reading belongs to the 1.10 payload alone and is
done here, by `read_legacy_text` and `read_legacy_words`, where the payload is
decoded; the TEI, OpenAI and Cohere routes send `Dual`s and verbatim texts over
the *ext* payload (`encode_inputs`), where ``|||`` is just three characters.

Usage::

    read_legacy_text("a ||| b")     # Dual(first='a', second='b')
    read_legacy_text("a b")         # 'a b'
    payload = encode_inputs(["  x ||| y  ", Dual("q", "d"), Ids((5, 6))])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, get_args

__all__ = [
    "MAX_TOKEN_ID",
    "PAIR_SEPARATOR",
    "PRECISIONS",
    "PRECISION_DTYPES",
    "SEPARATOR_PADDING",
    "Dual",
    "Ids",
    "Precision",
    "TextInput",
    "WordPair",
    "WordsInput",
    "encode_inputs",
    "input_to_json",
    "read_legacy_text",
    "read_legacy_words",
]

PAIR_SEPARATOR = "|||"
"""How the 1.10 protocol writes a sentence pair: ``'first ||| second'``, or a token of its own."""

SEPARATOR_PADDING = " \t\n\r\x0b\x0c"
"""What `read_legacy_text` drops on each side of ``|||``: the spaces that write the
separator (``'a ||| b'`` is the pair ``('a', 'b')``). ASCII whitespace only, which
Google's WordPiece reads as a word boundary or drops, so its ids are the same
either way; a text's outer edges are never touched."""

MAX_TOKEN_ID = 2**31 - 1
"""Token ids travel as int32 inside the server."""

Precision = Literal["int8", "uint8", "binary", "ubinary"]
"""What the *ext* ``"precision"`` asks a request's rows in: sentence-transformers'
`quantize_embeddings` precisions, computed by the server (float32, the model's own, is
asked by leaving it out)."""
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
PRECISION_DTYPES: dict[str, str] = {"int8": "int8", "uint8": "uint8", "binary": "int8",
                                     "ubinary": "uint8"}
"""The dtype of a reply's rows in each precision (binary: 8 dimensions per value)."""


class Ids(NamedTuple):
    """Token ids the client already has, without special tokens (TEI's `InputIds`)."""

    ids: tuple[int, ...]


class Dual(NamedTuple):
    """A sentence pair, each part exactly as the client sent it: a text, or the ids a
    gateway already cut it to (`Ids`; TEI's `truncation_direction: left` keeps a pair's
    last tokens, which no text re-tokenizes to)."""

    first: str | Ids
    second: str | Ids


class WordPair(NamedTuple):
    """A pre-tokenized pair (the 1.10 payload's ``'|||'`` element split it)."""

    first: list[str]
    second: list[str]


TextInput = str | Dual | Ids
"""One row of a text request: a text, a pair, or ids."""
WordsInput = list[str] | WordPair
"""One row of a pre-tokenized (1.10 ``is_tokenized``) request."""


def read_legacy_text(text: str) -> str | Dual:
    """The 1.10 reading of a text: split on the first ``|||`` into a pair, else the text.

    Only the separator's own padding (`SEPARATOR_PADDING`) goes; a side left
    empty still makes a pair, as transformers encodes ``("a", "")``.
    """
    first, separator, second = text.partition(PAIR_SEPARATOR)
    if not separator:
        return text
    return Dual(first.rstrip(SEPARATOR_PADDING), second.lstrip(SEPARATOR_PADDING))


def read_legacy_words(words: list[str]) -> WordsInput:
    """The 1.10 reading of a token list: a ``'|||'`` element separates a pair."""
    if PAIR_SEPARATOR not in words:
        return words
    at = words.index(PAIR_SEPARATOR)
    return WordPair(words[:at], words[at + 1:])


def input_to_json(item: TextInput) -> Any:
    """One row as the *ext* payload writes it: a string, ``{"ids"}``, or ``[first, second]``
    of those."""
    if isinstance(item, Dual):
        return [input_to_json(item.first), input_to_json(item.second)]
    if isinstance(item, Ids):
        return {"ids": list(item.ids)}
    return item


def encode_inputs(items: Sequence[TextInput], *, native: bool = False,
                  sparse: bool = False, precision: Precision | None = None) -> bytes:
    """The *ext* payload ``{"inputs": [...]}``: every row taken as it is, no ``|||`` reading.

    `native` (``"native": true``) asks for the model's own embedding where the server
    computes it beside its own pooling (the TEI and OpenAI routes' vectors); `sparse`
    (``"sparse": true``) a sparse model's nonzeros instead of its dense rows; `precision`
    (``"precision": "int8"``) the rows quantized (`Precision`).
    """
    body: dict[str, Any] = {"inputs": [input_to_json(item) for item in items]}
    if native:
        body["native"] = True
    if sparse:
        body["sparse"] = True
    if precision is not None:
        body["precision"] = precision
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
