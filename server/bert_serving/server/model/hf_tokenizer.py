"""Texts to ids with the model folder's own ``tokenizer.json``, for the non-BERT families.

RoBERTa's byte-level BPE and XLM-R's and CamemBERT's SentencePiece Unigram have
no vocab.txt and no Google algorithm to follow: the file's normalizer,
pre-tokenizer and model (run by Hugging Face ``tokenizers``) are the tokenizer,
as in transformers. DistilBERT and ELECTRA ship one too (WordPiece).

What stays the same for every family is done by `TextTokenizer`: rows of texts,
pairs and ids, padding, and placing the special tokens. Those are read from the
file's own post-processor, so ``<s> a </s></s> b </s>`` (all of token type 0)
for RoBERTa and ``[CLS] a [SEP] b [SEP]`` for WordPiece come out as the family's
transformers tokenizer makes them. A pair is truncated as ``tokenizers`` (and so
transformers' fast tokenizer over the same file) does it, not by Google's rule:
the shorter part keeps at most floor(budget / 2), the longer the rest
(`_keep_counts_shorter_first`). Texts reach the file's normalizer exactly as
sent: SentencePiece and byte-level BPE keep leading and inner whitespace in the
ids, so nothing is stripped.

Special tokens typed inside a text (``<s>``, ``<mask>``) are read as those
tokens, as transformers does, where the Google path reads ``[CLS]`` as text.
``-cased_tokenization`` does not apply: the file's normalizer says whether to
lowercase.

Usage::

    tokenizer = HfTokenizer(Path("xlm-r/tokenizer.json"), max_seq_len=25,
                            max_position_embeddings=512)
    batch = tokenizer.encode([Dual("hello", "world"), "  any text, ||| included "])
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer
from tokenizers.models import WordLevel

from ..errors import ModelNotFoundError, UnsupportedModelError
from .pair_layout import SpecialTemplate
from .text_normalizer import without_surrogates
from .tokenization import TextTokenizer, encode_strings_with, encode_words_with

__all__ = ["HfTokenizer", "read_special_template"]

_PAD_NAMES = ("<pad>", "[PAD]")
_UNK_NAMES = ("<unk>", "[UNK]")
_STAND_INS = ("x", "a", "the", "0")
"""Texts that some token of any vocabulary covers, to see where the specials go."""


def _load(path: Path) -> Tokenizer:
    """The file's tokenizer without the padding and truncation it may have saved.

    sentence-transformers folders (all-mpnet-base-v2's) save ``"padding": Fixed 128`` and
    truncation in tokenizer.json; left on, post-processing pads the stand-ins that
    `_template_of` reads the special tokens from, and every text would be cut there.
    The server pads and truncates by its own flags.
    """
    if not path.is_file():
        raise ModelNotFoundError(f"tokenizer file {path} not found")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for unreadable files
        raise UnsupportedModelError(f"{path} is not a tokenizer.json tokenizers can read: "
                                    f"{error}") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _stand_in(tokenizer: Tokenizer, path: Path) -> Encoding:
    """A one-word text that encodes to at least one token."""
    for word in _STAND_INS:
        encoding = tokenizer.encode([word], is_pretokenized=True, add_special_tokens=False)
        if len(encoding):
            return encoding
    raise UnsupportedModelError(f"{path}: its tokenizer turns even {_STAND_INS} into nothing")


def _template_of(tokenizer: Tokenizer, path: Path) -> SpecialTemplate:
    """The special tokens the file's post-processor adds, found by running it on stand-ins.

    Works for every post-processor kind (Bert, Roberta, Template, Sequence) without
    parsing their JSON: the specials are the positions with no sequence id.
    """
    part = _stand_in(tokenizer, path)
    single = tokenizer.post_process(part, None, add_special_tokens=True)
    pair = tokenizer.post_process(part, part, add_special_tokens=True)
    a_at = single.sequence_ids.index(0)
    a_end = a_at + len(part)
    pair_ids, pair_sequences = pair.ids, pair.sequence_ids
    b_at = pair_sequences.index(1)
    b_end = b_at + len(part)
    template = SpecialTemplate(
        prefix=tuple(pair_ids[:a_at]),
        middle=tuple(pair_ids[a_end:b_at]),
        suffix=tuple(pair_ids[b_end:]),
        second_is_type_1=any(t == 1 for t in pair.type_ids[b_at:]),
    )
    if tuple(single.ids[:a_at]) != template.prefix or tuple(
        single.ids[a_end:]
    ) != template.suffix:
        raise UnsupportedModelError(
            f"{path}: its post-processor puts different special tokens around a single text "
            f"({single.tokens}) than around a pair ({pair.tokens}); bert-serving cannot "
            "place them the same way"
        )
    if not template.pair_size:
        raise UnsupportedModelError(
            f"{path} has no post-processor adding special tokens ([CLS]/[SEP], <s>/</s>, "
            "Qwen3-Embedding's appended <|endoftext|>): the model's pooling and -mask_cls_sep "
            "need them; add the one the model was trained with"
        )
    return template


def read_special_template(path: Path) -> SpecialTemplate:
    """The special-token layout of a tokenizer.json (for the graph's -mask_cls_sep ids)."""
    return _template_of(_load(path), path)


def _configured_token(path: Path, key: str) -> str | None:
    """`pad_token`/`unk_token` from tokenizer_config.json beside the file, if it says."""
    config = path.with_name("tokenizer_config.json")
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get(key)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    if isinstance(value, dict):  # AddedToken written out
        value = value.get("content")
    return value if isinstance(value, str) else None


def _find_id(vocab: dict[str, int], path: Path, key: str, names: tuple[str, ...]) -> int | None:
    for name in (_configured_token(path, key), *names):
        if name is not None and name in vocab:
            return vocab[name]
    return None


class HfTokenizer(TextTokenizer):
    """A folder's tokenizer.json, with bert-serving's pairs, truncation and padding."""

    def __init__(
        self,
        tokenizer_path: Path,
        *,
        max_seq_len: int | None = 25,
        max_position_embeddings: int = 512,
        add_special_tokens: bool = True,
    ) -> None:
        path = Path(tokenizer_path)
        text = _load(path)
        template = _template_of(text, path)
        vocab = text.get_vocab(with_added_tokens=True)
        token_of_id = [""] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            token_of_id[index] = token
        unk_id = _find_id(vocab, path, "unk_token", _UNK_NAMES)
        pad_id = _find_id(vocab, path, "pad_token", _PAD_NAMES)
        super().__init__(
            template if add_special_tokens else template.without_specials(),
            token_of_id,
            pad_id=template.sep_id if pad_id is None else pad_id,  # masked out either way
            unk_id=-1 if unk_id is None else unk_id,
            max_seq_len=max_seq_len,
            max_position_embeddings=max_position_embeddings,
        )
        self._unk = token_of_id[unk_id] if unk_id is not None else None
        self._text = text
        self._words = Tokenizer(WordLevel(vocab, unk_token=self._unk))
        for tokenizer in (self._text, self._words):
            tokenizer.enable_truncation(self._part_limit)

    @staticmethod
    def _pair_keep_counts(len_a: np.ndarray, len_b: np.ndarray,
                          budget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _keep_counts_shorter_first(len_a, len_b, budget)

    def _encode_strings(self, parts: list[str]) -> list[Encoding]:
        return encode_strings_with(self._text, parts)

    def _encode_words(self, parts: list[list[str]]) -> list[Encoding]:
        if self._unk is None:
            self._check_known(parts)
        return encode_words_with(self._words, parts, self._unk or "")

    def _encode_untruncated(self, text: str) -> Encoding:
        return self._untruncated.encode(without_surrogates(text), add_special_tokens=False)

    def _decode_known(self, ids: list[int], *, skip_special_tokens: bool) -> str:
        return str(self._text.decode(ids, skip_special_tokens=skip_special_tokens))

    @functools.cached_property
    def _untruncated(self) -> Tokenizer:
        untruncated = Tokenizer.from_str(self._text.to_str())
        untruncated.no_truncation()
        return untruncated

    def _check_known(self, parts: list[list[str]]) -> None:
        """Without an unknown token (byte-level BPE), an unknown token is the client's error."""
        vocab = self._words.get_vocab()
        for words in parts:
            for word in words:
                if isinstance(word, str) and word not in vocab:
                    raise ValueError(
                        f"token {word!r:.80} is not in the model's vocabulary, which has no "
                        "unknown token: send raw texts, or tokens as -show_tokens_to_client "
                        "shows them"
                    )


def _keep_counts_shorter_first(
    len_a: np.ndarray, len_b: np.ndarray, budget: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens kept of each part, as ``tokenizers``' ``longest_first`` truncation keeps them.

    The shorter part (the first on a tie) keeps at most floor(budget / 2), the
    longer one what is left; a pair that fits keeps everything. Single texts
    (len_b = 0) keep their first `budget` tokens. Google's rule differs only
    where both parts are cut to an odd budget (it gives the extra token to the
    first part).
    """
    first_shorter = len_a <= len_b
    short, long = np.where(first_shorter, len_a, len_b), np.where(first_shorter, len_b, len_a)
    keep_short = np.minimum(short, budget // 2)
    keep_long = np.minimum(long, budget - keep_short)
    keep_a = np.where(first_shorter, keep_short, keep_long)
    keep_b = np.where(first_shorter, keep_long, keep_short)
    return keep_a, keep_b
