"""Where the parts of a row and the special tokens around them go, and how pairs are cut.

A row is one text, a sentence pair (`Dual`) or ids a client sent (`Ids`); every
model family lays it out the same way, ``prefix a… suffix`` or ``prefix a… middle
b… suffix`` with its own special tokens (`SpecialTemplate`), and cuts a pair
that is too long by its own rule (Google's is `google_keep_counts`). This module is that
layout, as numpy arithmetic over whole batches: no tokenizer, no text.
`tokenization.TextTokenizer` encodes the parts and fills the ids in where
`lay_out` says.

Usage::

    rows = encode_rows([text_parts(t) for t in texts], encode)
    layout = lay_out(rows, template, max_len=25, part_limit=23,
                     pair_rule=google_keep_counts)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
from tokenizers import Encoding

from bert_serving.proto.inputs import Dual, Ids, TextInput, WordPair, WordsInput

__all__ = [
    "KeepCounts",
    "Layout",
    "Rows",
    "SpecialTemplate",
    "encode_rows",
    "flatten",
    "google_keep_counts",
    "lay_out",
    "ragged_positions",
    "text_parts",
    "word_parts",
]

_Part = TypeVar("_Part", str | Ids, list[str])
"""A text (or ids), or a pre-tokenized text."""
KeepCounts = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""A family's pair rule: (len_a, len_b, budget) per row -> tokens kept of each part."""


@dataclass(frozen=True)
class SpecialTemplate:
    """The special token ids around the texts: ``prefix a… suffix``, ``prefix a… middle b… suffix``.

    BERT: ``[CLS] a [SEP]`` and ``[CLS] a [SEP] b [SEP]``, the second text and its
    [SEP] of token type 1. RoBERTa: ``<s> a </s>`` and ``<s> a </s></s> b </s>``,
    all of type 0. No special tokens: all three empty.
    """

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    second_is_type_1: bool = True

    @property
    def pair_size(self) -> int:
        """Special tokens in a pair, the most any row holds."""
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @property
    def cls_id(self) -> int:
        """The first special token of a row ([CLS], <s>); what -mask_cls_sep masks."""
        return (self.prefix or self.middle or self.suffix or (-1,))[0]

    @property
    def sep_id(self) -> int:
        """The last special token of a row ([SEP], </s>); what -mask_cls_sep masks."""
        return (self.suffix or self.middle or self.prefix or (-1,))[-1]

    def without_specials(self) -> SpecialTemplate:
        return SpecialTemplate((), (), (), self.second_is_type_1)


def text_parts(item: TextInput) -> tuple[str | Ids, str | Ids | None]:
    """A row's first part and its second (None for a single text or ids)."""
    if isinstance(item, Dual):
        for part in item:
            if not isinstance(part, (str, Ids)):
                raise TypeError(f"a part of a pair is a str or Ids, not {type(part).__name__} "
                                f"{part!r:.80}")
        return item.first, item.second
    if isinstance(item, (str, Ids)):
        return item, None
    raise TypeError(f"a text is a str, not {type(item).__name__} {item!r:.80}")


def word_parts(item: WordsInput) -> tuple[list[str], list[str] | None]:
    """A pre-tokenized row's first token list and its second (None for a single one)."""
    if isinstance(item, WordPair):
        return list(item.first), list(item.second)
    if isinstance(item, str) or not isinstance(item, Sequence):
        raise TypeError(f"a pre-tokenized text is a list of tokens, not {item!r:.80}")
    return list(item), None


class _IdRow(NamedTuple):
    """Ids a client sent, standing in for an Encoding (`Layout` reads len and ids)."""

    ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Rows:
    """Encoded parts of a batch: every row's first part, and the second parts of the pairs."""

    firsts: list[Encoding]
    seconds: list[Encoding]
    pair_rows: np.ndarray
    """int64 row indices of the pairs, one per entry of `seconds`."""


@dataclass(frozen=True)
class Layout:
    """Where each row's pieces sit, as per-row column bounds.

    ``prefix a… middle b… suffix`` (`SpecialTemplate`): ``end_a`` just after
    the first text, ``start_b`` after the middle specials, ``end_b`` after the
    second text, where the suffix starts. A single text has no middle, so
    ``start_b == end_b == end_a``. Without special tokens, ``a… b…``.
    """

    keep_a: np.ndarray
    keep_b: np.ndarray
    end_a: np.ndarray
    start_b: np.ndarray
    end_b: np.ndarray
    total: np.ndarray
    type_0: np.ndarray
    """Leading tokens of type 0 per row (all of a single text's)."""


def encode_rows(
    pairs: Sequence[tuple[_Part, _Part | None]], encode: Callable[[list[_Part]], list[Encoding]]
) -> Rows:
    """Encode every first part, then the second parts of the pairs, in one batch.

    Ids (`Ids`) are already encoded: they skip the tokenizer and keep their place.
    """
    pair_rows = [row for row, (_, second) in enumerate(pairs) if second is not None]
    seconds = [second for _, second in pairs if second is not None]
    parts = [first for first, _ in pairs] + seconds
    texts = [part for part in parts if not isinstance(part, Ids)]
    encoded = encode(texts)
    if len(texts) < len(parts):
        rest = iter(encoded)
        encoded = [_IdRow(part.ids) if isinstance(part, Ids) else next(rest)  # type: ignore[misc]
                   for part in parts]
    n = len(pairs)
    return Rows(encoded[:n], encoded[n:], np.array(pair_rows, dtype=np.int64))


def google_keep_counts(
    len_a: np.ndarray, len_b: np.ndarray, budget: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How many tokens of each part survive, as Google's _truncate_seq_pair decides.

    It drops the last token of the longer part (the second on a tie) until
    both fit, so the longer part shrinks to the shorter one first and, when
    both must shrink, the first keeps ceil(budget / 2). transformers'
    'longest_first' agrees; tokenizers' does not. Single texts (len_b = 0)
    just keep the first `budget` tokens.
    """
    keep_a = np.minimum(len_a, np.maximum(budget - len_b, (budget + 1) // 2))
    keep_b = np.minimum(len_b, budget - keep_a)
    return keep_a, keep_b


def _full_length(encoding: Encoding) -> int:
    """A part's length before the cut at `part_limit` (stride 0: the overflow is the rest)."""
    overflow = getattr(encoding, "overflowing", None) or ()
    return len(encoding) + sum(len(part) for part in overflow)


def ragged_positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Flat indices of `counts[i]` consecutive slots from `starts[i]`, row after row."""
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets


def flatten(ids: Iterable[list[int]], keep: np.ndarray) -> np.ndarray:
    """The kept head of every row, concatenated in row order."""
    kept = itertools.chain.from_iterable(
        row[:count] for row, count in zip(ids, keep.tolist(), strict=True)
    )
    return np.fromiter(kept, dtype=np.int64, count=int(keep.sum()))


def lay_out(rows: Rows, template: SpecialTemplate, *, max_len: int, part_limit: int,
            pair_rule: KeepCounts) -> Layout:
    """Every row's `Layout`: what of each part survives `max_len`, a pair cut by the
    family's `pair_rule`, given parts that came back cut at `part_limit`."""
    n = len(rows.firsts)
    len_a = np.fromiter((len(e) for e in rows.firsts), dtype=np.int64, count=n)
    len_b = np.zeros(n, dtype=np.int64)
    len_b[rows.pair_rows] = [len(e) for e in rows.seconds]
    is_pair = np.zeros(n, dtype=np.int64)
    is_pair[rows.pair_rows] = 1
    prefix, middle, suffix = len(template.prefix), len(template.middle), len(template.suffix)
    budget = max_len - prefix - suffix - middle * is_pair
    full_a, full_b = len_a.copy(), len_b.copy()
    # Parts come back cut at `part_limit`: where both of a pair were, which is longer
    # (what tokenizers' rule asks) is only known from what the cut left over.
    both_cut = rows.pair_rows[(len_a[rows.pair_rows] >= part_limit)
                              & (len_b[rows.pair_rows] >= part_limit)]
    if both_cut.size:
        seconds = dict(zip(rows.pair_rows.tolist(), rows.seconds, strict=True))
        for row in both_cut.tolist():
            full_a[row] = _full_length(rows.firsts[row])
            full_b[row] = _full_length(seconds[row])
    keep_a, keep_b = pair_rule(full_a, full_b, budget)
    keep_a, keep_b = np.minimum(keep_a, len_a), np.minimum(keep_b, len_b)
    end_a = prefix + keep_a
    start_b = end_a + middle * is_pair
    end_b = start_b + keep_b
    total = end_b + suffix
    type_0 = np.where(is_pair.astype(bool) & template.second_is_type_1, start_b, total)
    return Layout(keep_a, keep_b, end_a, start_b, end_b, total, type_0)
