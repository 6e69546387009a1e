"""Character offsets into a text as UTF-8 byte offsets, in one pass over the text.

TEI's /tokenize gives each piece's place in the input as UTF-8 byte offsets, while
the tokenizer gives character offsets. Encoding the text up to each piece again
costs the length of the text per piece, which a long text (tens of thousands of
pieces) turns into seconds; pieces come in text order, so each byte offset is the
previous one plus the bytes between them.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["utf8_spans"]


def utf8_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each character span ``(start, stop)`` of `text` as its UTF-8 byte span.

    Byte start = ``len(text[:start].encode())``, byte stop = byte start plus the
    span's own bytes, for spans within the text. Linear in the text when starts
    do not decrease (a tokenizer's pieces); a start before the previous one
    counts again from the beginning, so any order gives the same answer.
    """
    byte_spans: list[tuple[int, int]] = []
    char_at = byte_at = 0
    for start, stop in spans:
        if start < char_at:
            char_at = byte_at = 0
        byte_at += len(text[char_at:start].encode("utf-8"))
        char_at = start
        byte_spans.append((byte_at, byte_at + len(text[start:stop].encode("utf-8"))))
    return byte_spans
