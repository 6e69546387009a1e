"""/tokenize's UTF-8 byte offsets (`utf8_spans`) against their definition: the bytes of
the text before a piece, and of the piece itself, over 1- to 4-byte characters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bert_serving.server.http.byte_offsets import utf8_spans

# One character of each UTF-8 length (ASCII, Greek, CJK, emoji), and any code point but
# lone surrogates, which no UTF-8 text holds.
WIDTHS = st.sampled_from(["a", "Σ", "中", "😀"])
CHARACTERS = st.one_of(WIDTHS, st.characters(exclude_categories=["Cs"]))


def by_definition(text: str, start: int, stop: int) -> tuple[int, int]:
    byte_start = len(text[:start].encode("utf-8"))
    return byte_start, byte_start + len(text[start:stop].encode("utf-8"))


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    """A text and spans within it: by increasing start (a tokenizer's pieces, which may
    overlap or be empty), or in any order (each start before the last counts afresh)."""
    text = draw(st.text(CHARACTERS, max_size=40))
    bound = st.integers(0, len(text))
    spans = [(min(a, b), max(a, b)) for a, b in draw(st.lists(st.tuples(bound, bound)))]
    return text, sorted(spans) if draw(st.booleans()) else spans


@settings(max_examples=800, deadline=None)
@given(case=text_and_spans())
def test_spans_get_the_defined_byte_offsets(case: tuple[str, list[tuple[int, int]]]) -> None:
    text, spans = case
    assert utf8_spans(text, spans) == [by_definition(text, *span) for span in spans]


def test_each_utf8_width_counts_its_bytes() -> None:
    text = "aΣ中😀a"
    spans = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (1, 4), (5, 5)]
    assert utf8_spans(text, spans) == [(0, 1), (1, 3), (3, 6), (6, 10), (10, 11), (1, 10),
                                       (11, 11)]
