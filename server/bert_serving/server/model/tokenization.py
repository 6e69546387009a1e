"""Texts to padded id arrays, the same way for every model family.

`TextTokenizer` holds what every model family shares: rows of texts, pairs
(`Dual`) and ids (`Ids`), truncation, placing the special tokens and padding.
Each family only turns text into ids: `wordpiece.WordPieceTokenizer` is BERT's
own, `hf_tokenizer.HfTokenizer` runs a folder's tokenizer.json. Where the parts
and special tokens go is `pair_layout`'s arithmetic, and padding is `padding`'s,
which a worker uses without any tokenizer. ``tokenizers``' ``longest_first``
truncation differs from Google's for sentence pairs, so truncation and the
special tokens are done here, on numpy arrays, not by ``tokenizers``.

Deliberate differences from the original bert-as-service (Google's code):

* a pair comes as a `Dual` (the 1.10 payload's ``a ||| b`` is read into one by
  `bert_serving.proto.inputs`, on the first ``|||``, where the original's regex
  wanted `` ||| `` with its spaces and took the last), and a side that is empty
  still makes a pair: ``[CLS] a [SEP] [SEP]``, as transformers encodes ``("a", "")``;
* nothing is stripped: whitespace is the tokenizer's to drop (WordPiece does);
* an empty text is ``[CLS] [SEP]`` (the original skipped it, misaligning
  the batch);
* without special tokens a row may fill all of ``max_seq_len`` (the original
  still left two positions for the [CLS]/[SEP] it did not add).

Usage::

    tokenizer = WordPieceTokenizer(Path("uncased_L-12_H-768_A-12/vocab.txt"))
    ragged = tokenizer.tokenize_rows(["hello world", Dual("a", "b")])  # what batching sends
    batch = tokenizer.pad(ragged)                                      # what a worker runs
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import numpy as np
from tokenizers import Encoding, Tokenizer

from bert_serving.proto.inputs import Dual, Ids, TextInput, WordsInput
from bert_serving.proto.internal import RaggedTokens

from ..errors import ConfigError
from .chunking import window_starts
from .padding import Padder, TokenBatch
from .pair_layout import (
    Layout,
    Rows,
    SpecialTemplate,
    encode_rows,
    flatten,
    google_keep_counts,
    lay_out,
    ragged_positions,
    text_parts,
    word_parts,
)
from .text_normalizer import without_surrogates

__all__ = ["Piece", "TextTokenizer", "encode_strings_with", "encode_words_with"]


class Piece(NamedTuple):
    """One word piece of a text and where it came from (character offsets into the text)."""

    id: int
    token: str
    start: int
    stop: int


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
        ids[ragged_positions(starts + len(template.prefix), layout.keep_a)] = flatten(
            (e.ids for e in rows.firsts), layout.keep_a)
        pair_middles = (starts + layout.end_a)[rows.pair_rows]
        for offset, token in enumerate(template.middle):
            ids[pair_middles + offset] = token
        ids[ragged_positions(starts + layout.start_b, layout.keep_b)] = flatten(
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
            first, second = text_parts(text)
            parts = [first] if second is None else [first, second]
            specials = len(self._template.prefix) + len(self._template.suffix)
            if second is not None:
                specials += len(self._template.middle)
            lengths.append(specials + sum(len(self.part_ids(p)) for p in parts))
        return lengths

    def part_ids(self, part: str | Ids) -> Sequence[int]:
        """One part's ids, untruncated, no special tokens, as the server tokenizes it: what
        -truncation error counts and chunk windows, and the HTTP routes count and cut."""
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
            first, second = text_parts(text)
            if second is not None:
                rows.append(self.tokenize_rows([text]))
                per_text.append(1)
                continue
            ids = np.asarray(self.part_ids(first), dtype=np.int32)
            starts = window_starts(len(ids), width, overlap)
            for start in starts:
                window = np.concatenate([prefix, ids[start: start + width], suffix])
                length = np.array([len(window)], dtype=np.int64)
                rows.append(RaggedTokens(window, length, length))
            per_text.append(len(starts))
        return RaggedTokens.concatenate(rows), per_text

    def pieces(self, text: str) -> list[Piece]:
        """The text's pieces, untruncated, without special tokens, with their offsets.

        For the HTTP route that shows tokens (TEI's /tokenize); its ids are
        `part_ids`', which counting and cutting use. Batching never calls it.
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

    def _encode_texts(self, texts: Sequence[TextInput]) -> Rows:
        self._check_ids(texts)
        return encode_rows([text_parts(text) for text in texts], self._encode_strings)

    def _encode_tokenized(self, texts: Sequence[WordsInput]) -> Rows:
        return encode_rows([word_parts(words) for words in texts], self._encode_words)

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
        """How many tokens of each part survive truncation: Google's rule (`google_keep_counts`)."""
        return google_keep_counts(len_a, len_b, budget)

    def _encode_strings(self, parts: list[str]) -> list[Encoding]:
        """Text parts to ids, no special tokens, each cut at `_part_limit`."""
        raise NotImplementedError

    def _encode_words(self, parts: list[list[str]]) -> list[Encoding]:
        """Pre-tokenized parts to ids, one per token, no special tokens."""
        raise NotImplementedError

    # -- truncation and arrays --------------------------------------------------------------

    def _layout(self, rows: Rows) -> Layout:
        return lay_out(rows, self._template, max_len=self._max_len, part_limit=self._part_limit,
                       pair_rule=self._pair_keep_counts)


def encode_strings_with(tokenizer: Tokenizer, parts: list[str]) -> list[Encoding]:
    """Encode texts; a batch with a lone surrogate (tokenizers raises TypeError) is encoded
    again with those removed, so such a text is tokenized rather than refused."""
    try:
        return _encode_batch(tokenizer, parts, pretokenized=False)
    except TypeError:
        return _encode_batch(tokenizer, [without_surrogates(p) for p in parts],
                             pretokenized=False)


def encode_words_with(words: Tokenizer, parts: list[list[str]], unk: str) -> list[Encoding]:
    """Pre-tokenized parts through a WordLevel tokenizer: each token its id, or unk."""
    # tokenizers drops empty words; the original mapped them to [UNK] like any unknown word.
    parts = [[w or unk for w in ws] if "" in ws else ws for ws in parts]
    try:
        return _encode_batch(words, parts, pretokenized=True)
    except TypeError:
        for ws in parts:
            _check_types(ws, str)
        cleaned = [[w if w == without_surrogates(w) else unk for w in ws] for ws in parts]
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
