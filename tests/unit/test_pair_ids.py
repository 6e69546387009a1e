"""A pair whose parts are ids (what `truncation_direction: left` sends for /rerank and /predict):
through the *ext* payload and the tokenizer, with its limits named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bert_serving.proto import TextPayloadError, decode_texts
from bert_serving.proto.inputs import Dual, Ids, TextInput, encode_inputs
from bert_serving.server.http.preparation import ServedModel, admit_rows
from bert_serving.server.model.wordpiece import WordPieceTokenizer


@pytest.fixture(scope="module")
def tokenizer(minilm_dir: Path) -> WordPieceTokenizer:
    return WordPieceTokenizer(minilm_dir / "vocab.txt", max_seq_len=10)


def ids(tokenizer: WordPieceTokenizer, text: str) -> Ids:
    return Ids(tuple(piece.id for piece in tokenizer.pieces(text)))


def test_pairs_of_ids_and_texts_round_trip() -> None:
    rows = [Dual(Ids((5, 6)), "a ||| b "), Dual("q", Ids(())), Dual(Ids((1,)), Ids((2, 3)))]
    assert decode_texts(encode_inputs(rows)).rows == rows


@pytest.mark.parametrize(("row", "words"), [
    ([{"ids": [1]}, 5], "a [first, second] pair of those"),
    ([{"ids": [-1]}, "b"], "inputs[0].ids must be a list of token ids"),
    ([{"ids": [1], "x": 2}, "b"], "a [first, second] pair of those"),
])
def test_bad_pair_parts_are_named(row: object, words: str) -> None:
    with pytest.raises(TextPayloadError, match=words.replace("[", r"\[")):
        decode_texts(b'{"inputs": [%s]}' % str(row).replace("'", '"').encode())


def test_a_pair_of_ids_counts_against_the_limit() -> None:
    payload = encode_inputs([Dual(Ids((1,) * 6), Ids((2,) * 5))])
    with pytest.raises(TextPayloadError, match="holds 11 token ids, more than .* 10"):
        decode_texts(payload, max_text_bytes=10)
    assert decode_texts(payload, max_text_bytes=11).rows


def test_the_tokenizer_lays_out_a_pair_of_ids_as_the_same_texts(
        tokenizer: WordPieceTokenizer) -> None:
    texts = tokenizer.encode([Dual("hello there", "big world")])
    as_ids = tokenizer.encode([Dual(ids(tokenizer, "hello there"), ids(tokenizer, "big world"))])
    assert (texts.input_ids == as_ids.input_ids).all()
    assert (texts.token_type_ids == as_ids.token_type_ids).all()


def test_cut_left_keeps_each_parts_end_by_the_pair_rule(tokenizer: WordPieceTokenizer) -> None:
    # 10 positions, 3 specials: 7 tokens; Google's rule keeps 4 of the first, 3 of the second.
    model = ServedModel(name="m", tools=tokenizer)

    def cut_left(rows: list[str | Dual]) -> list[TextInput]:
        return admit_rows(rows, model=model, mode="truncate", direction="left")

    first, second = "one two three four five six", "seven eight nine ten"
    assert cut_left([Dual(first, second)]) == [
        Dual(ids(tokenizer, "three four five six"), ids(tokenizer, "eight nine ten"))]
    # rows that fit travel as the ids counted here: the server does not tokenize them again
    assert cut_left([Dual("a", "b"), "short"]) == [
        Dual(ids(tokenizer, "a"), ids(tokenizer, "b")), ids(tokenizer, "short")]
    assert cut_left(["one two three four five six seven eight nine"]) == [
        ids(tokenizer, "two three four five six seven eight nine")]
