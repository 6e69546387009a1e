"""Texts to padded id arrays, tokenized exactly as BERT's own WordPiece tokenizer would.

`TextTokenizer` holds what every model family shares (rows of texts, pairs
(`Dual`) and ids, truncation, special tokens as a `SpecialTemplate`, padding);
`WordPieceTokenizer` is BERT's, described below, and `hf_tokenizer.HfTokenizer`
runs a folder's tokenizer.json.

The reference is transformers' slow ``BertTokenizer`` (Google's ``FullTokenizer``
plus one NFC step, see below): clean the text (drop NUL, U+FFFD and every
``C*`` code point, map whitespace to spaces), put spaces around CJK
ideographs, NFC, lowercase and strip accents (``Mn`` after NFD) when
``lowercase``, split on whitespace and punctuation, then greedy longest-match
WordPiece with ``[UNK]`` for words of over 100 characters or with no match.

The work runs in Hugging Face ``tokenizers`` (Rust, parallel), but not with its
``BertNormalizer``/``BertPreTokenizer``, which differ from the reference on
about 830,000 code points:

* their Unicode tables are old: they keep unassigned code points (the
  reference drops them as ``Cn``) and miss punctuation, format characters and
  nonspacing marks added since (``U+2E55``, ``U+0890``, ``U+07FD``, ...);
* their CJK range starts at ``U+2B920`` where Google's starts at ``U+2B820``;
* they do not NFC, and lowercase one character at a time, so ``ΟΔΟΣ`` becomes
  ``οδοσ`` where Python's ``str.lower`` gives ``οδος`` (final sigma).

So the character classes are built here from Python's ``unicodedata`` (the
same tables the reference uses) and run as ``tokenizers`` regex normalizers
and splits; texts with a capital sigma are lowercased in Python first. With
that, every code point agrees with the reference, alone and in context (the
unit tests check all of them). ``tokenizers``' ``longest_first`` truncation
also differs from Google's for sentence pairs, so truncation and the special
tokens are done here, on numpy arrays.

Deliberate differences from the original bert-as-service (Google's code):

* NFC, as transformers does: it changes only cased models fed decomposed
  text or canonical singletons (``e`` + U+0301 now reads as ``é``, U+F902 as 車);
* a pair comes as a `Dual` (the 1.10 payload's ``a ||| b`` is read into one by
  `bert_serving.proto.inputs`, on the first ``|||``, where the original's regex
  wanted `` ||| `` with its spaces and took the last), and a side that is empty
  still makes a pair: ``[CLS] a [SEP] [SEP]``, as transformers encodes ``("a", "")``;
* nothing is stripped: whitespace is WordPiece's to drop, and it does;
* an empty text is ``[CLS] [SEP]`` (the original skipped it, misaligning
  the batch);
* without special tokens a row may fill all of ``max_seq_len`` (the original
  still left two positions for the [CLS]/[SEP] it did not add).

As in Google's code (and unlike transformers' default), ``[CLS]`` or
``[SEP]`` typed inside a text are plain text, split as punctuation.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar, cast

import numpy as np
from tokenizers import Encoding, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import WordLevel, WordPiece

from bert_serving.proto.inputs import Dual, Ids, TextInput, WordPair, WordsInput
from bert_serving.proto.internal import RaggedTokens

from ..errors import ConfigError, ModelNotFoundError, UnsupportedModelError
from .chunking import window_starts

__all__ = [
    "Padder",
    "Piece",
    "RaggedTokens",
    "SpecialTemplate",
    "TextTokenizer",
    "TokenBatch",
    "WordPieceTokenizer",
    "read_vocab",
]

_CLS, _SEP, _UNK, _PAD = "[CLS]", "[SEP]", "[UNK]", "[PAD]"
_SPECIAL_TOKENS = frozenset({_CLS, _SEP, _UNK, _PAD, "[MASK]"})
_MAX_INPUT_CHARS_PER_WORD = 100
_CAPITAL_SIGMA = "\u03a3"

_Part = TypeVar("_Part", str | Ids, list[str])
"""A text (or ids), or a pre-tokenized text."""
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
class TokenBatch:
    """One batch, padded to its own longest row (the server groups texts by length)."""

    input_ids: np.ndarray
    """int64 [batch, seq], padded with the [PAD] id."""
    attention_mask: np.ndarray
    """int64 [batch, seq], 1 for real tokens."""
    token_type_ids: np.ndarray
    """int64 [batch, seq], 0 for the first text of a pair, 1 for the second."""
    tokens: list[list[str]] | None = None
    """Per text, with [CLS]/[SEP]; only when asked for."""

    @property
    def lengths(self) -> np.ndarray:
        """int64 [batch]: real tokens per row."""
        return self.attention_mask.sum(axis=1, dtype=np.int64)

    @property
    def num_real_tokens(self) -> int:
        """Real tokens in the whole batch, for throughput accounting."""
        return int(self.attention_mask.sum())


class Piece(NamedTuple):
    """One word piece of a text and where it came from (character offsets into the text)."""

    id: int
    token: str
    start: int
    stop: int


class Padder:
    """Rows of ids to one batch padded to its longest row: all a worker needs of a tokenizer.

    The ventilator tokenizes; a worker only pads, so it gets the pad id and, for
    -show_tokens_to_client, the id -> token table, not a tokenizer (WordPiece's
    Unicode tables take ~0.4 s to build). Picklable: it crosses the spawn boundary.
    """

    def __init__(self, pad_id: int, max_len: int, token_of_id: np.ndarray | None = None) -> None:
        self.pad_id = pad_id
        self.max_len = max_len
        """The longest row the tokenizer produces (what a worker's warm-up runs)."""
        self._token_of_id = token_of_id
        """An object array of token strings, indexed by id; None: tokens cannot be returned."""

    def without_tokens(self) -> Padder:
        """The same padder without the id -> token table (a smaller message to a worker)."""
        return Padder(self.pad_id, self.max_len)

    def pad(self, ragged: RaggedTokens, *, with_tokens: bool = False) -> TokenBatch:
        """Rows of ids to one batch padded to its longest row (a worker's only tokenizer work)."""
        width = max(1, int(ragged.lengths.max(initial=0)))
        columns = np.arange(width)
        real = columns < ragged.lengths[:, None]
        input_ids = np.full(real.shape, self.pad_id, dtype=np.int64)
        input_ids[real] = ragged.ids
        return TokenBatch(
            input_ids=input_ids,
            attention_mask=real.astype(np.int64),
            token_type_ids=(real & (columns >= ragged.first_lengths[:, None])).astype(np.int64),
            tokens=self._tokens(input_ids, ragged.lengths) if with_tokens else None,
        )

    def _tokens(self, input_ids: np.ndarray, total: np.ndarray) -> list[list[str]]:
        """Token strings of the real tokens per row, looked up from the ids.

        (encode_batch_fast leaves Encoding.tokens empty, and the ids are what
        the model sees anyway.)
        """
        if self._token_of_id is None:
            raise ValueError("this padder has no id -> token table: build it with one to "
                             "return tokens (-show_tokens_to_client)")
        return [
            self._token_of_id[row[:length]].tolist()
            for row, length in zip(input_ids, total.tolist(), strict=True)
        ]


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


def _python_class(runs: _Runs) -> re.Pattern[str]:
    """A Python regex matching one character of `runs`."""
    parts = (f"\\U{a:08X}-\\U{b:08X}" for a, b in runs)
    return re.compile("[" + "".join(parts) + "]")


@functools.cache
def _python_cleaners() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(drop, space) patterns for the few texts cleaned in Python."""
    classes = _char_classes()
    return _python_class(classes.drop), _python_class(classes.space)


def _lowercase_in_python(text: str) -> str:
    """Clean, NFC and lowercase as the reference does, for texts with a capital sigma.

    Python's ``str.lower`` turns a word-final Σ into ς; Rust's per-character
    lowercase cannot. Lowering the whole cleaned text equals the reference's
    per-word lowering because spaces (and CJK ideographs, which it spaces out)
    are neither cased nor case-ignorable, so they end the final-sigma context.
    The normalizers that follow are no-ops on the result, bar accent stripping.
    """
    drop, space = _python_cleaners()
    cleaned = space.sub(" ", drop.sub("", text))
    return unicodedata.normalize("NFC", cleaned).lower()


_SURROGATES = re.compile("[\ud800-\udfff]")


def _encode_texts(tokenizer: Tokenizer, parts: list[str]) -> list[Encoding]:
    """Encode texts; a batch with a lone surrogate (tokenizers raises TypeError) is encoded
    again with those removed, so such a text is tokenized rather than refused."""
    try:
        return _encode_batch(tokenizer, parts, pretokenized=False)
    except TypeError:
        return _encode_batch(tokenizer, [_without_surrogates(p) for p in parts],
                             pretokenized=False)


def _without_surrogates(text: str) -> str:
    """Lone surrogates (legal in JSON) cannot cross into Rust; the reference drops them (Cs)."""
    return _SURROGATES.sub("", text)


def _text_tokenizer(vocab: dict[str, int], *, lowercase: bool) -> Tokenizer:
    """WordPiece behind normalizers and splits that match the reference character for character.

    Only cased models need the NFC step: lowercasing goes on to NFD, which
    undoes any composition (the tests check every decomposable character).
    """
    classes = _char_classes()
    steps: list[normalizers.Normalizer] = [
        normalizers.Replace(_onig_class(classes.drop), ""),
        normalizers.Replace(_onig_class(classes.space), " "),
    ]
    if lowercase:
        steps += [
            normalizers.Lowercase(),
            normalizers.NFD(),
            normalizers.Replace(_onig_class(classes.marks), ""),
        ]
    else:
        steps.append(normalizers.NFC())
    tokenizer = Tokenizer(
        WordPiece(vocab, unk_token=_UNK, max_input_chars_per_word=_MAX_INPUT_CHARS_PER_WORD)
    )
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(_onig_class(classes.isolated), behavior="isolated"),
        ]
    )
    return tokenizer


def read_vocab(path: Path) -> dict[str, int]:
    """vocab.txt: one token per line, id = line number, white space stripped.

    The one reader of vocab.txt: the tokenizer and conversion (the [CLS]/[SEP] ids
    the graph masks for -mask_cls_sep) both use it, so they cannot disagree. It
    strips as Google's `load_vocab` (the original server's) and transformers'
    BertTokenizer do: a line ``"hello "`` is the token ``hello``, and a later line
    wins over an earlier one of the same token. (transformers' slow legacy tokenizer
    only drops the newline; no released BERT vocabulary has a token where it matters.)
    """
    if not path.is_file():
        raise ModelNotFoundError(
            f"vocabulary file {path} not found: a BERT model folder needs the vocab.txt "
            "it was trained with"
        )
    try:
        with path.open(encoding="utf-8") as lines:
            return {line.strip(): index for index, line in enumerate(lines)}
    except UnicodeDecodeError as error:
        raise UnsupportedModelError(f"vocabulary file {path} is not UTF-8 text: {error}") from None


def _load_vocab(path: Path) -> dict[str, int]:
    """`read_vocab`, refused unless it holds BERT's four special tokens."""
    vocab = read_vocab(path)
    missing = [token for token in (_CLS, _SEP, _UNK, _PAD) if token not in vocab]
    if missing:
        raise UnsupportedModelError(
            f"vocabulary file {path} lacks {', '.join(missing)}: it is not a BERT WordPiece "
            "vocabulary (BERT vocabs hold [PAD], [UNK], [CLS] and [SEP])"
        )
    return vocab


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


def _checked_max_len(
    max_seq_len: int | None, max_position_embeddings: int, template: SpecialTemplate
) -> int:
    """The longest row allowed: -max_seq_len, or the model's limit when it is None."""
    add_special_tokens = template.pair_size > 0
    shortest = max(1, template.pair_size)
    if max_position_embeddings < shortest:
        raise ConfigError(
            f"the model has max_position_embeddings {max_position_embeddings}: "
            f"it cannot hold even {shortest} tokens"
        )
    if max_seq_len is None:
        return max_position_embeddings
    if max_seq_len > max_position_embeddings:
        raise ConfigError(
            f"-max_seq_len {max_seq_len} is too long: the model has max_position_embeddings "
            f"{max_position_embeddings}: start the server with -max_seq_len "
            f"{max_position_embeddings} or lower, or NONE"
        )
    if max_seq_len < shortest:
        why = (f"the special tokens of a pair take {shortest} positions" if add_special_tokens
               else "a row needs 1")
        raise ConfigError(
            f"-max_seq_len {max_seq_len} is too short: {why}: start the server with "
            f"-max_seq_len {shortest} or higher, or NONE"
        )
    return max_seq_len


def _text_parts(item: TextInput) -> tuple[str | Ids, str | Ids | None]:
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


def _word_parts(item: WordsInput) -> tuple[list[str], list[str] | None]:
    """A pre-tokenized row's first token list and its second (None for a single one)."""
    if isinstance(item, WordPair):
        return list(item.first), list(item.second)
    if isinstance(item, str) or not isinstance(item, Sequence):
        raise TypeError(f"a pre-tokenized text is a list of tokens, not {item!r:.80}")
    return list(item), None


class _IdRow(NamedTuple):
    """Ids a client sent, standing in for an Encoding (`_Layout` reads len and ids)."""

    ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class _Rows:
    """Encoded parts of a batch: every row's first part, and the second parts of the pairs."""

    firsts: list[Encoding]
    seconds: list[Encoding]
    pair_rows: np.ndarray
    """int64 row indices of the pairs, one per entry of `seconds`."""


@dataclass(frozen=True)
class _Layout:
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


def _encode_rows(
    pairs: Sequence[tuple[_Part, _Part | None]], encode: Callable[[list[_Part]], list[Encoding]]
) -> _Rows:
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
    return _Rows(encoded[:n], encoded[n:], np.array(pair_rows, dtype=np.int64))


def _keep_counts(
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
    """A part's length before the cut at `_part_limit` (stride 0: the overflow is the rest)."""
    overflow = getattr(encoding, "overflowing", None) or ()
    return len(encoding) + sum(len(part) for part in overflow)


def _ragged_positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Flat indices of `counts[i]` consecutive slots from `starts[i]`, row after row."""
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets


def _flatten(ids: Iterable[list[int]], keep: np.ndarray) -> np.ndarray:
    """The kept head of every row, concatenated in row order."""
    kept = itertools.chain.from_iterable(
        row[:count] for row, count in zip(ids, keep.tolist(), strict=True)
    )
    return np.fromiter(kept, dtype=np.int64, count=int(keep.sum()))


class TextTokenizer:
    """Batches of texts to padded int64 arrays, the same way for every model family.

    Subclasses turn text parts (and pre-tokenized parts) into ids without special
    tokens; this class takes rows of texts, pairs (`Dual`) and ids (`Ids`), truncates
    pairs by the family's rule (`_pair_keep_counts`), places the family's special
    tokens (`SpecialTemplate`) and pads. A text is tokenized exactly as given.
    ``max_seq_len`` counts the special tokens and truncates on the right; ``None``
    caps rows at ``max_position_embeddings`` (the longest row the model's position
    table allows) instead. Arrays are padded only to the longest row of the batch.
    """

    def __init__(
        self,
        template: SpecialTemplate,
        token_of_id: Sequence[str],
        *,
        pad_id: int,
        unk_id: int,
        max_seq_len: int | None,
        max_position_embeddings: int,
    ) -> None:
        self._template = template
        self._max_len = _checked_max_len(max_seq_len, max_position_embeddings, template)
        self._token_of_id = np.empty(len(token_of_id), dtype=object)
        self._token_of_id[:] = list(token_of_id)
        self._pad_id = pad_id
        self._unk_id = unk_id
        self._padder = Padder(pad_id, self._max_len, self._token_of_id)

    @property
    def cls_id(self) -> int:
        return self._template.cls_id

    @property
    def sep_id(self) -> int:
        return self._template.sep_id

    @property
    def pad_id(self) -> int:
        return self._pad_id

    @property
    def unk_id(self) -> int:
        return self._unk_id

    @property
    def max_len(self) -> int:
        """The longest row this tokenizer produces: -max_seq_len or max_position_embeddings."""
        return self._max_len

    @property
    def window_width(self) -> int:
        """Text tokens in one -truncation chunk window: max_len less a single text's specials."""
        return self._part_limit

    def specials_around_text(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """The (id, token) pairs placed before and after a single text, named as the
        vocabulary names them ([CLS]/[SEP], <s>/</s>): what TEI's /tokenize shows."""
        def named(ids: tuple[int, ...]) -> list[tuple[int, str]]:
            return [(i, str(self._token_of_id[i])) for i in ids]
        return named(self._template.prefix), named(self._template.suffix)

    @property
    def single_specials(self) -> int:
        """Special tokens around a single text ([CLS] and [SEP]: 2)."""
        return len(self._template.prefix) + len(self._template.suffix)

    def pair_keeps(self, len_a: int, len_b: int) -> tuple[int, int]:
        """How many tokens of each part of a pair of these lengths -max_seq_len keeps, by
        this tokenizer's own pair rule (whichever end a caller then cuts)."""
        budget = self._max_len - self._template.pair_size
        keep_a, keep_b = self._pair_keep_counts(np.array([len_a]), np.array([len_b]),
                                                np.array([budget]))
        return int(keep_a[0]), int(keep_b[0])

    @property
    def _part_limit(self) -> int:
        """A single text keeps at most this many tokens, and neither part of a pair more."""
        return self._max_len - len(self._template.prefix) - len(self._template.suffix)

    def encode(self, texts: Sequence[TextInput], *, with_tokens: bool = False) -> TokenBatch:
        """Tokenize rows: a str is one text as it is, a `Dual` a sentence pair, `Ids` ids."""
        return self.pad(self.tokenize_rows(texts), with_tokens=with_tokens)

    def encode_tokenized(
        self, texts: Sequence[WordsInput], *, with_tokens: bool = False
    ) -> TokenBatch:
        """Map pre-tokenized texts straight to ids (unknown -> unk, no further splitting)."""
        return self.pad(self.tokenize_rows(texts, is_tokenized=True), with_tokens=with_tokens)

    def tokenize_rows(
        self, texts: Sequence[TextInput] | Sequence[WordsInput], *, is_tokenized: bool = False
    ) -> RaggedTokens:
        """Every row's ids, special tokens placed, truncated, unpadded (what batching sends on)."""
        rows = (self._encode_tokenized(cast(Sequence[WordsInput], texts)) if is_tokenized
                else self._encode_texts(cast(Sequence[TextInput], texts)))
        layout = self._layout(rows)
        starts = np.cumsum(layout.total) - layout.total
        ids = np.empty(int(layout.total.sum()), dtype=np.int32)
        template = self._template
        for offset, token in enumerate(template.prefix):
            ids[starts + offset] = token
        ids[_ragged_positions(starts + len(template.prefix), layout.keep_a)] = _flatten(
            (e.ids for e in rows.firsts), layout.keep_a)
        pair_middles = (starts + layout.end_a)[rows.pair_rows]
        for offset, token in enumerate(template.middle):
            ids[pair_middles + offset] = token
        ids[_ragged_positions(starts + layout.start_b, layout.keep_b)] = _flatten(
            (e.ids for e in rows.seconds), layout.keep_b[rows.pair_rows])
        for offset, token in enumerate(template.suffix):
            ids[starts + layout.end_b + offset] = token
        return RaggedTokens(ids, layout.total, layout.type_0)

    @property
    def padder(self) -> Padder:
        """What a worker pads with: the pad id, max_len and the id -> token table."""
        return self._padder

    def pad(self, ragged: RaggedTokens, *, with_tokens: bool = False) -> TokenBatch:
        """Rows of ids to one batch padded to its longest row."""
        return self._padder.pad(ragged, with_tokens=with_tokens)

    def lengths(self, texts: Sequence[TextInput]) -> list[int]:
        """Tokens per row after truncation, specials included: for length-grouped batching."""
        rows = self._encode_texts(texts)
        return [int(total) for total in self._layout(rows).total]

    def full_lengths(self, texts: Sequence[TextInput]) -> list[int]:
        """Tokens per row before any truncation, specials included (for -truncation error)."""
        lengths = []
        for text in texts:
            first, second = _text_parts(text)
            parts = [first] if second is None else [first, second]
            specials = len(self._template.prefix) + len(self._template.suffix)
            if second is not None:
                specials += len(self._template.middle)
            lengths.append(specials + sum(len(self._part_ids(p)) for p in parts))
        return lengths

    def _part_ids(self, part: str | Ids) -> Sequence[int]:
        """One part's ids, untruncated."""
        return part.ids if isinstance(part, Ids) else self._encode_long(part).ids

    def tokenize_windows(self, texts: Sequence[TextInput], *,
                         overlap: int) -> tuple[RaggedTokens, list[int]]:
        """Rows for -truncation chunk: each long text as windows (see `chunking`), and counts.

        A pair is one row, truncated as `tokenize_rows` does: which window of the
        second text would go with which of the first has no answer.
        """
        rows: list[RaggedTokens] = []
        per_text: list[int] = []
        width = self._part_limit
        prefix = np.asarray(self._template.prefix, dtype=np.int32)
        suffix = np.asarray(self._template.suffix, dtype=np.int32)
        self._check_ids(texts)
        for text in texts:
            first, second = _text_parts(text)
            if second is not None:
                rows.append(self.tokenize_rows([text]))
                per_text.append(1)
                continue
            ids = np.asarray(self._part_ids(first), dtype=np.int32)
            starts = window_starts(len(ids), width, overlap)
            for start in starts:
                window = np.concatenate([prefix, ids[start: start + width], suffix])
                length = np.array([len(window)], dtype=np.int64)
                rows.append(RaggedTokens(window, length, length))
            per_text.append(len(starts))
        return RaggedTokens.concatenate(rows), per_text

    def pieces(self, text: str) -> list[Piece]:
        """The text's pieces, untruncated, without special tokens, with their offsets.

        For the HTTP routes that show tokens (TEI's /tokenize) or cut texts
        themselves (left truncation); batching never calls it.
        """
        encoding = self._encode_untruncated(text)
        # The vocabulary's token for each id: a Unigram model's Encoding.tokens shows an
        # unknown word itself rather than <unk>, which would not map back to its id.
        tokens = self._token_of_id[encoding.ids].tolist() if encoding.ids else []
        return [Piece(i, t, a, b) for i, t, (a, b)
                in zip(encoding.ids, tokens, encoding.offsets, strict=True)]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text for token ids; ValueError names an id not in the vocab."""
        bad = [i for i in ids if not 0 <= i < len(self._token_of_id) or
               not self._token_of_id[i]]
        if bad:
            raise ValueError(f"token id {bad[0]} is not in this model's vocabulary "
                             f"(ids 0 to {len(self._token_of_id) - 1})")
        return self._decode_known(list(ids), skip_special_tokens=skip_special_tokens)

    # -- encoding, by each family's tokenizer ----------------------------------------------

    def _encode_untruncated(self, text: str) -> Encoding:
        """One text's pieces with offsets, no special tokens, no truncation."""
        raise NotImplementedError

    def _decode_known(self, ids: list[int], *, skip_special_tokens: bool) -> str:
        """Text for ids all in the vocabulary, as the family's tokenizer joins pieces."""
        raise NotImplementedError

    def _encode_long(self, text: str) -> Encoding:
        """One whole text's ids for chunking, tokenized exactly as `encode` would (uncut)."""
        return self._encode_untruncated(text)

    def _encode_texts(self, texts: Sequence[TextInput]) -> _Rows:
        self._check_ids(texts)
        return _encode_rows([_text_parts(text) for text in texts], self._encode_strings)

    def _encode_tokenized(self, texts: Sequence[WordsInput]) -> _Rows:
        return _encode_rows([_word_parts(words) for words in texts], self._encode_words)

    def _check_ids(self, texts: Sequence[TextInput]) -> None:
        """Ids a client sent must be this vocabulary's; ValueError names one that is not."""
        for index, text in enumerate(texts):
            parts = text if isinstance(text, Dual) else (text,)
            for part in parts:
                if not isinstance(part, Ids):
                    continue
                bad = [i for i in part.ids if not 0 <= i < len(self._token_of_id)
                       or not self._token_of_id[i]]
                if bad:
                    raise ValueError(f"inputs[{index}]: token id {bad[0]} is not in this "
                                     f"model's vocabulary (ids 0 to {len(self._token_of_id) - 1})")

    @staticmethod
    def _pair_keep_counts(len_a: np.ndarray, len_b: np.ndarray,
                          budget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How many tokens of each part survive truncation: Google's rule (`_keep_counts`)."""
        return _keep_counts(len_a, len_b, budget)

    def _encode_strings(self, parts: list[str]) -> list[Encoding]:
        """Text parts to ids, no special tokens, each cut at `_part_limit`."""
        raise NotImplementedError

    def _encode_words(self, parts: list[list[str]]) -> list[Encoding]:
        """Pre-tokenized parts to ids, one per token, no special tokens."""
        raise NotImplementedError

    # -- truncation and arrays --------------------------------------------------------------

    def _layout(self, rows: _Rows) -> _Layout:
        n = len(rows.firsts)
        len_a = np.fromiter((len(e) for e in rows.firsts), dtype=np.int64, count=n)
        len_b = np.zeros(n, dtype=np.int64)
        len_b[rows.pair_rows] = [len(e) for e in rows.seconds]
        is_pair = np.zeros(n, dtype=np.int64)
        is_pair[rows.pair_rows] = 1
        template = self._template
        prefix, middle, suffix = len(template.prefix), len(template.middle), len(template.suffix)
        budget = self._max_len - prefix - suffix - middle * is_pair
        full_a, full_b = len_a.copy(), len_b.copy()
        # Parts come back cut at `_part_limit`: where both of a pair were, which is longer
        # (what tokenizers' rule asks) is only known from what the cut left over.
        both_cut = rows.pair_rows[(len_a[rows.pair_rows] >= self._part_limit)
                                  & (len_b[rows.pair_rows] >= self._part_limit)]
        if both_cut.size:
            seconds = dict(zip(rows.pair_rows.tolist(), rows.seconds, strict=True))
            for row in both_cut.tolist():
                full_a[row] = _full_length(rows.firsts[row])
                full_b[row] = _full_length(seconds[row])
        keep_a, keep_b = self._pair_keep_counts(full_a, full_b, budget)
        keep_a, keep_b = np.minimum(keep_a, len_a), np.minimum(keep_b, len_b)
        end_a = prefix + keep_a
        start_b = end_a + middle * is_pair
        end_b = start_b + keep_b
        total = end_b + suffix
        type_0 = np.where(is_pair.astype(bool) & template.second_is_type_1, start_b, total)
        return _Layout(keep_a, keep_b, end_a, start_b, end_b, total, type_0)


class WordPieceTokenizer(TextTokenizer):
    """BERT's own tokenizer (Google's WordPiece over vocab.txt), as the module docstring says."""

    def __init__(
        self,
        vocab_path: Path,
        *,
        lowercase: bool = True,
        max_seq_len: int | None = 25,
        max_position_embeddings: int = 512,
        add_special_tokens: bool = True,
    ) -> None:
        vocab = _load_vocab(Path(vocab_path))
        self._vocab = vocab
        template = SpecialTemplate((vocab[_CLS],), (vocab[_SEP],), (vocab[_SEP],))
        token_of_id = [""] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            token_of_id[index] = token
        super().__init__(
            template if add_special_tokens else template.without_specials(),
            token_of_id,
            pad_id=vocab[_PAD],
            unk_id=vocab[_UNK],
            max_seq_len=max_seq_len,
            max_position_embeddings=max_position_embeddings,
        )
        self._lowercase = lowercase
        # Truncating there in Rust keeps long texts from crossing into Python whole.
        self._text = _text_tokenizer(vocab, lowercase=lowercase)
        self._words = Tokenizer(WordLevel(vocab, unk_token=_UNK))
        for tokenizer in (self._text, self._words):
            tokenizer.enable_truncation(self._part_limit)

    @property
    def cls_id(self) -> int:
        return self._vocab[_CLS]

    @property
    def sep_id(self) -> int:
        return self._vocab[_SEP]

    def _encode_strings(self, parts: list[str]) -> list[Encoding]:
        if self._lowercase:
            parts = [_lowercase_in_python(p) if _CAPITAL_SIGMA in p else p for p in parts]
        return _encode_texts(self._text, parts)

    def _encode_words(self, parts: list[list[str]]) -> list[Encoding]:
        return _encode_words_with(self._words, parts, _UNK)

    def _encode_untruncated(self, text: str) -> Encoding:
        if self._lowercase and _CAPITAL_SIGMA in text:
            # As `_encode_strings` (final sigma), where lowering keeps the offsets valid.
            lowered = text.lower()
            text = lowered if len(lowered) == len(text) else text
        return self._untruncated.encode(text, add_special_tokens=False)

    def _decode_known(self, ids: list[int], *, skip_special_tokens: bool) -> str:
        tokens = [str(self._token_of_id[i]) for i in ids]
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in _SPECIAL_TOKENS]
        return str(decoders.WordPiece(prefix="##", cleanup=True).decode(tokens))

    @functools.cached_property
    def _untruncated(self) -> Tokenizer:
        return _text_tokenizer(self._vocab, lowercase=self._lowercase)

    def _encode_long(self, text: str) -> Encoding:
        if self._lowercase and _CAPITAL_SIGMA in text:
            text = _lowercase_in_python(text)
        return self._untruncated.encode(_without_surrogates(text), add_special_tokens=False)


def _encode_words_with(words: Tokenizer, parts: list[list[str]], unk: str) -> list[Encoding]:
    """Pre-tokenized parts through a WordLevel tokenizer: each token its id, or unk."""
    # tokenizers drops empty words; the original mapped them to [UNK] like any unknown word.
    parts = [[w or unk for w in ws] if "" in ws else ws for ws in parts]
    try:
        return _encode_batch(words, parts, pretokenized=True)
    except TypeError:
        for ws in parts:
            _check_types(ws, str)
        cleaned = [[w if w == _without_surrogates(w) else unk for w in ws] for ws in parts]
        return _encode_batch(words, cleaned, pretokenized=True)


def _encode_batch(
    tokenizer: Tokenizer, parts: list[str] | list[list[str]], pretokenized: bool
) -> list[Encoding]:
    """encode_batch without special tokens, and without offsets where tokenizers can skip them."""
    if not parts:
        return []
    # encode_batch_fast (tokenizers >= 0.21) skips the character offsets we never read.
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    encodings: list[Encoding] = encode(
        parts, is_pretokenized=pretokenized, add_special_tokens=False
    )
    return encodings


def _check_types(items: Sequence[object], expected: type) -> None:
    """Turn tokenizers' vague TypeError into one naming the offending item."""
    for index, item in enumerate(items):
        if not isinstance(item, expected):
            raise TypeError(
                f"item {index} is {type(item).__name__} {item!r:.80}, not {expected.__name__}"
            )
