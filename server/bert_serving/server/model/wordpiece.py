"""BERT's own tokenizer: Google's WordPiece over vocab.txt, exactly as the reference does it.

The reference is transformers' slow ``BertTokenizer`` (Google's ``FullTokenizer``
plus one NFC step): clean the text (drop NUL, U+FFFD and every ``C*`` code point,
map whitespace to spaces), put spaces around CJK ideographs, NFC, lowercase and
strip accents (``Mn`` after NFD) when ``lowercase``, split on whitespace and
punctuation, then greedy longest-match WordPiece with ``[UNK]`` for words of over
100 characters or with no match. The cleaning and splitting are
`text_normalizer`'s (which says why not ``tokenizers``' own ``BertNormalizer``),
the WordPiece step is Hugging Face ``tokenizers``' (Rust, parallel), and rows,
pairs, truncation and padding are `tokenization.TextTokenizer`'s. vocab.txt is
read here (`read_vocab`), for conversion too.

Deliberate difference from the original bert-as-service (Google's code): NFC,
as transformers does: it changes only cased models fed decomposed text or
canonical singletons (``e`` + U+0301 now reads as ``é``, U+F902 as 車).

As in Google's code (and unlike transformers' default), ``[CLS]`` or
``[SEP]`` typed inside a text are plain text, split as punctuation.

Usage::

    tokenizer = WordPieceTokenizer(Path("uncased_L-12_H-768_A-12/vocab.txt"), max_seq_len=25)
    batch = tokenizer.encode(["hello world", Dual("hello", "world")])
"""

from __future__ import annotations

import functools
from pathlib import Path

from tokenizers import Encoding, Tokenizer, decoders
from tokenizers.models import WordLevel, WordPiece

from ..errors import ModelNotFoundError, UnsupportedModelError
from .pair_layout import SpecialTemplate
from .text_normalizer import (
    CAPITAL_SIGMA,
    lowercase_in_python,
    reference_normalizer,
    reference_pre_tokenizer,
    sigmas_lowered_in_place,
    without_surrogates,
)
from .tokenization import TextTokenizer, encode_strings_with, encode_words_with

__all__ = ["WordPieceTokenizer", "read_vocab"]

_CLS, _SEP, _UNK, _PAD = "[CLS]", "[SEP]", "[UNK]", "[PAD]"
_SPECIAL_TOKENS = frozenset({_CLS, _SEP, _UNK, _PAD, "[MASK]"})
_MAX_INPUT_CHARS_PER_WORD = 100


def _text_tokenizer(vocab: dict[str, int], *, lowercase: bool) -> Tokenizer:
    """WordPiece behind normalizers and splits that match the reference character for character."""
    tokenizer = Tokenizer(
        WordPiece(vocab, unk_token=_UNK, max_input_chars_per_word=_MAX_INPUT_CHARS_PER_WORD)
    )
    tokenizer.normalizer = reference_normalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = reference_pre_tokenizer()
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
            parts = [lowercase_in_python(p) if CAPITAL_SIGMA in p else p for p in parts]
        return encode_strings_with(self._text, parts)

    def _encode_words(self, parts: list[list[str]]) -> list[Encoding]:
        return encode_words_with(self._words, parts, _UNK)

    def _encode_untruncated(self, text: str) -> Encoding:
        if self._lowercase and CAPITAL_SIGMA in text:
            # Each Σ as `_encode_long` lowers it (final sigma), the offsets kept valid.
            text = sigmas_lowered_in_place(text)
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
        if self._lowercase and CAPITAL_SIGMA in text:
            text = lowercase_in_python(text)
        return self._untruncated.encode(without_surrogates(text), add_special_tokens=False)
