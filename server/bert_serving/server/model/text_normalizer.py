"""Google's BasicTokenizer text cleaning, as Hugging Face ``tokenizers`` steps.

BERT's reference tokenizer (Google's ``FullTokenizer``, transformers' slow
``BertTokenizer``) cleans a text before WordPiece: drop NUL, U+FFFD and every
``C*`` code point, map whitespace to spaces, put spaces around CJK ideographs,
NFC, lowercase and strip accents (``Mn`` after NFD) when lowercasing, then split
on whitespace and punctuation. `wordpiece.WordPieceTokenizer` runs those steps in
``tokenizers`` (Rust, parallel), but not with its ``BertNormalizer``/
``BertPreTokenizer``, which differ from the reference on about 830,000 code
points:

* their Unicode tables are old: they keep unassigned code points (the
  reference drops them as ``Cn``) and miss punctuation, format characters and
  nonspacing marks added since (``U+2E55``, ``U+0890``, ``U+07FD``, ...);
* their CJK range starts at ``U+2B920`` where Google's starts at ``U+2B820``;
* they do not NFC, and lowercase one character at a time, so ``ΟΔΟΣ`` becomes
  ``οδοσ`` where Python's ``str.lower`` gives ``οδος`` (final sigma).

So the character classes are built here from Python's ``unicodedata`` (the
same tables the reference uses) and run as ``tokenizers`` regex normalizers
and splits; texts with a capital sigma are lowercased in Python first
(`lowercase_in_python`). With that, every code point agrees with the
reference, alone and in context (the unit tests check all of them). The tables
are built on first use (~0.4 s), not on import.

Usage::

    tokenizer.normalizer = reference_normalizer(lowercase=True)
    tokenizer.pre_tokenizer = reference_pre_tokenizer()
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from tokenizers import Regex, normalizers, pre_tokenizers

__all__ = [
    "CAPITAL_SIGMA",
    "lowercase_in_python",
    "reference_normalizer",
    "reference_pre_tokenizer",
    "sigmas_lowered_in_place",
    "without_surrogates",
]

CAPITAL_SIGMA = "\u03a3"
"""A text holding it is lowercased in Python (`lowercase_in_python`), for the final sigma."""

_Runs = tuple[tuple[int, int], ...]
"""Inclusive code point ranges, sorted."""

# Google's _is_chinese_char; tokenizers mistypes the sixth range as 0x2B920.
_CJK_RUNS: _Runs = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)
# Google's _is_punctuation counts all non-alphanumeric ASCII as punctuation ($, +, ^, ...).
_ASCII_PUNCTUATION_RUNS: _Runs = ((33, 47), (58, 64), (91, 96), (123, 126))


@dataclass(frozen=True)
class _CharClasses:
    """The reference tokenizer's character tests, as code point ranges."""

    drop: _Runs
    """Removed: NUL, U+FFFD and every C* category except tab, newline, return."""
    space: _Runs
    """Become a space: tab, newline, return and Zs (the space itself left out, for speed)."""
    marks: _Runs
    """Mn, removed after NFD when lowercasing."""
    isolated: _Runs
    """Each one a word of its own: punctuation and CJK ideographs."""


def _runs(mask: np.ndarray) -> _Runs:
    """The ranges where a boolean array over all code points is true."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return tuple(zip(edges[::2].tolist(), (edges[1::2] - 1).tolist(), strict=True))


def _set_runs(mask: np.ndarray, runs: _Runs, value: bool) -> None:
    for first, last in runs:
        mask[first : last + 1] = value


@functools.cache
def _char_classes() -> _CharClasses:
    """Built once from Python's unicodedata: the tables the reference itself reads."""
    categories = np.array([unicodedata.category(chr(cp)) for cp in range(0x110000)])
    major = categories.astype("<U1")
    tab_newline_return = [9, 10, 13]
    drop = major == "C"
    drop[[0, 0xFFFD]] = True
    drop[tab_newline_return] = False
    space = categories == "Zs"
    space[tab_newline_return] = True
    space[ord(" ")] = False
    isolated = major == "P"
    _set_runs(isolated, _ASCII_PUNCTUATION_RUNS + _CJK_RUNS, True)
    return _CharClasses(
        drop=_runs(drop),
        space=_runs(space),
        marks=_runs(categories == "Mn"),
        isolated=_runs(isolated),
    )


def _onig_class(runs: _Runs) -> Regex:
    """A tokenizers (Oniguruma) regex matching one character of `runs`."""
    parts = (f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in runs)
    return Regex("[" + "".join(parts) + "]")


def _cleaning_steps() -> list[normalizers.Normalizer]:
    """The reference's cleaning: drop `_CharClasses.drop`, then `space` becomes a space."""
    classes = _char_classes()
    return [
        normalizers.Replace(_onig_class(classes.drop), ""),
        normalizers.Replace(_onig_class(classes.space), " "),
    ]


@functools.cache
def _cleaner() -> normalizers.Normalizer:
    """The cleaning steps alone, for the texts whose lowercase Python decides."""
    return normalizers.Sequence(_cleaning_steps())


def _cleaned(text: str) -> str:
    """The reference's cleaning and NFC: the text whose lowercase decides each Σ.

    The cleaning runs in Rust (a Python regex over the 700 ranges of the drop
    class costs about 1 µs a character, 0.1 s on a 100k-character text); NFC
    stays Python's, whose tables are the reference's (``tokenizers``' NFC is of
    another Unicode version and composes some characters differently).
    """
    return unicodedata.normalize("NFC", _cleaner().normalize_str(without_surrogates(text)))


def lowercase_in_python(text: str) -> str:
    """Clean, NFC and lowercase as the reference does, for texts with a capital sigma.

    Python's ``str.lower`` turns a word-final Σ into ς; Rust's per-character
    lowercase cannot. Lowering the whole cleaned text equals the reference's
    per-word lowering because spaces (and CJK ideographs, which it spaces out)
    are neither cased nor case-ignorable, so they end the final-sigma context.
    The normalizers that follow are no-ops on the result, bar accent stripping.
    """
    return _cleaned(text).lower()


def sigmas_lowered_in_place(text: str) -> str:
    """`text` with each capital Σ replaced by the σ or ς the reference lowers it to.

    For pieces with offsets into the text as sent (TEI's /tokenize), where
    `lowercase_in_python`'s result cannot serve: cleaning drops characters and
    some lowercases are longer (İ is i + U+0307), so its offsets would point
    elsewhere. Each Σ's case is decided as the reference decides it, on the
    cleaned, NFC text (a control character between Σ and a letter is gone by
    then), and written in its place: one character for one, so every offset
    holds, and the Rust normalizer's per-character lowercase agrees with
    Python's on every other character. Cleaning and NFC keep every Σ, in order
    (no character drops or composes with it; the unit tests check all of them).
    """
    clean = _cleaned(text)
    lowered = clean.lower()
    cases: list[str] = []
    at = 0
    for char in clean:
        if char == CAPITAL_SIGMA:
            cases.append(lowered[at])
        at += len(char.lower())  # context-free length: only Σ's case depends on context
    first, *rest = text.split(CAPITAL_SIGMA)
    return first + "".join(case + part for case, part in zip(cases, rest, strict=True))


_SURROGATES = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """Lone surrogates (legal in JSON) cannot cross into Rust; the reference drops them (Cs)."""
    return _SURROGATES.sub("", text)


def reference_normalizer(*, lowercase: bool) -> normalizers.Normalizer:
    """The reference's cleaning, and its lowercasing and accent stripping when `lowercase`.

    Only cased models need the NFC step: lowercasing goes on to NFD, which
    undoes any composition (the tests check every decomposable character).
    """
    classes = _char_classes()
    steps = _cleaning_steps()
    if lowercase:
        steps += [
            normalizers.Lowercase(),
            normalizers.NFD(),
            normalizers.Replace(_onig_class(classes.marks), ""),
        ]
    else:
        steps.append(normalizers.NFC())
    return normalizers.Sequence(steps)


def reference_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """The reference's split: on whitespace, and around each punctuation mark and CJK ideograph."""
    classes = _char_classes()
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(_onig_class(classes.isolated), behavior="isolated"),
        ]
    )
