"""Sparse rows (bert_serving.proto.sparse) against dense numpy, and their frames, total."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_serving.client._assembly import RowAssembler
from bert_serving.proto import (
    EmbeddingReply,
    ErrorKind,
    ServerError,
    SparseReply,
    decode_reply,
    encode_embedding_reply,
    encode_sparse_reply,
)
from bert_serving.proto.internal import (
    BatchMessage,
    JobKey,
    MalformedFrame,
    RaggedTokens,
    Segment,
    decode_result,
    encode_sparse_result,
)
from bert_serving.proto.sparse import (
    SparseFormatError,
    SparseRows,
    read_sparse_frames,
    sparse_frames,
)

CLIENT = b"0b7c5e0e-2a41-4d6b-9c55-8c1f0a6a3e11"


def dense_rows(seed: int, rows: int = 6, width: int = 50, density: float = 0.2) -> np.ndarray:
    """Mostly zeros, as SPLADE's relu leaves them; row 1 all zeros (a row may be empty)."""
    generator = np.random.default_rng(seed)
    values = generator.random((rows, width), dtype=np.float32) + 0.01
    values[generator.random((rows, width)) > density] = 0
    values[min(1, rows - 1)] = 0
    return values


def frames_of(rows: SparseRows) -> tuple[dict, list[bytes]]:
    fields, frames = sparse_frames(rows)
    return fields, [bytes(frame) for frame in frames]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dense_rows_survive_the_round_trip_exactly(dtype: type) -> None:
    dense = dense_rows(0).astype(dtype)
    rows = SparseRows.from_dense(dense)
    assert rows.nnz == np.count_nonzero(dense) and len(rows) == len(dense)
    assert rows.indices.dtype == np.int32 and rows.values.dtype == dtype
    again = read_sparse_frames(*frames_of(rows))
    np.testing.assert_array_equal(again.to_dense(), dense)
    indices, values = again.row(2)
    np.testing.assert_array_equal(indices, np.flatnonzero(dense[2]))
    np.testing.assert_array_equal(values, dense[2][np.flatnonzero(dense[2])])


def test_take_slice_and_concatenate_match_the_dense_rows() -> None:
    dense = dense_rows(1)
    rows = SparseRows.from_dense(dense)
    np.testing.assert_array_equal(rows.take([4, 1, 4, 0]).to_dense(), dense[[4, 1, 4, 0]])
    np.testing.assert_array_equal(rows[2:5].to_dense(), dense[2:5])
    joined = SparseRows.concatenate([rows[3:], rows[:3], rows.take([])])
    np.testing.assert_array_equal(joined.to_dense(), np.concatenate([dense[3:], dense[:3]]))
    with pytest.raises(ValueError, match="one width"):
        SparseRows.concatenate([rows, SparseRows.from_dense(np.zeros((1, 3), np.float32))])


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**16), groups=st.lists(st.integers(1, 3), min_size=1, max_size=5))
def test_max_over_windows_is_the_dense_max_per_term(seed: int, groups: list[int]) -> None:
    dense = dense_rows(seed, rows=sum(groups), width=30, density=0.3)
    starts = np.cumsum(groups) - np.asarray(groups)
    want = np.maximum.reduceat(dense, starts, axis=0)
    got = SparseRows.from_dense(dense).max_over(groups)
    np.testing.assert_array_equal(got.to_dense(), want)
    assert all((np.diff(got.row(i)[0]) > 0).all() for i in range(len(got)))


def test_a_sparse_reply_carries_the_rows_and_the_header_fields() -> None:
    rows = SparseRows.from_dense(dense_rows(2))
    frames = encode_sparse_reply(CLIENT, 9, rows, [["[CLS]"]] * 6, [3] * 6)
    assert len(frames) == 6 and frames[0] == CLIENT and frames[-1] == b"9"
    header = json.loads(frames[1])
    assert header["layout"] == "csr" and header["shape"] == [6, 50]
    reply = decode_reply([bytes(f) for f in frames])
    assert isinstance(reply, SparseReply) and reply.req_id == 9
    assert reply.token_counts == [3] * 6 and reply.tokens == [["[CLS]"]] * 6
    np.testing.assert_array_equal(reply.rows.to_dense(), dense_rows(2))


def test_a_worker_s_sparse_result_reaches_the_sink_as_it_left() -> None:
    rows = SparseRows.from_dense(dense_rows(3))
    key = JobKey(CLIENT, 4)
    batch = BatchMessage(7, [Segment(key, [0, 1, 2, 3, 4, 5])],
                         RaggedTokens(np.zeros(0, np.int32), np.zeros(6, np.int64),
                                      np.zeros(6, np.int64)))
    result = decode_result([bytes(f) for f in encode_sparse_result(batch, rows, None)])
    assert result.batch_id == 7 and result.segments == batch.segments and result.tokens is None
    assert isinstance(result.vectors, SparseRows)
    np.testing.assert_array_equal(result.vectors.to_dense(), dense_rows(3))


def _broken(change: str) -> tuple[dict, list[bytes]]:
    dense = np.array([[0, 1.5, 0, 2], [3, 0, 0, 0]], np.float32)
    fields, frames = frames_of(SparseRows.from_dense(dense))
    values = frames[2]
    if change == "layout":
        fields["layout"] = "coo"
    elif change == "dtype":
        fields["dtype"] = "object"
    elif change == "shape":
        fields["shape"] = [2, -4]
    elif change == "frames":
        frames = frames[:2]
    elif change == "offsets":
        frames[0] = np.array([0, 2, 1], np.int64).tobytes()
    elif change == "nnz":
        fields["nnz"] = 5
    elif change == "short values":
        frames[2] = values[:-1]
    elif change == "id range":
        frames[1] = np.array([1, 4, 0], np.int32).tobytes()
    elif change == "id order":
        frames[1] = np.array([3, 1, 0], np.int32).tobytes()
    return fields, frames


@pytest.mark.parametrize(("change", "named"), [
    ("layout", "layout must be 'csr'"),
    ("dtype", "sparse values must be one of"),
    ("shape", "the shape must be .rows, width."),
    ("frames", "3 frames .offsets, indices, values., got 2"),
    ("offsets", "offsets must start at 0 and never decrease"),
    ("nnz", "the header says 5 entries, the offsets 3"),
    ("short values", "values has 11 bytes; 3 entries of float32 are 12"),
    ("id range", r"term ids must lie in 0..3"),
    ("id order", "strictly ascending within each row"),
])
def test_each_broken_rule_is_named(change: str, named: str) -> None:
    with pytest.raises(SparseFormatError, match=named):
        read_sparse_frames(*_broken(change))


def test_the_next_row_may_start_below_the_last_row_s_last_id() -> None:
    rows = read_sparse_frames(*frames_of(SparseRows.from_dense(
        np.array([[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], np.float32))))
    assert rows.indices.tolist() == [3, 0, 1]


# What a broken server may put where a count or a token belongs: JSON's floats (Infinity,
# NaN and 1e400 included: json.loads reads all three as float), negatives, booleans,
# strings, nulls and objects.
_WRONG = st.one_of(st.floats(), st.integers(-3, -1), st.booleans(), st.text(max_size=2),
                   st.none(), st.dictionaries(st.text(max_size=1), st.integers(), max_size=1))
_JSON_HEADER = st.fixed_dictionaries({}, optional={
    "layout": st.sampled_from(["csr", "dense", 3]),
    "dtype": st.sampled_from(["float32", "float16", "int8", "f", None]),
    "shape": st.lists(st.integers(-2, 6), max_size=3) | st.text(max_size=3),
    "nnz": st.integers(-1, 8) | st.none(),
    "tokens": st.just("") | st.lists(st.lists(st.text(max_size=2), max_size=2), max_size=2)
    | _WRONG | st.lists(_WRONG | st.lists(_WRONG, max_size=2), max_size=2),
    "token_counts": st.lists(st.integers(0, 5) | _WRONG, max_size=3) | _WRONG,
    "error": st.dictionaries(st.sampled_from(["type", "message"]), st.text(max_size=4)),
})
_REPLY_FRAME = st.one_of(
    st.binary(max_size=40), _JSON_HEADER.map(lambda h: json.dumps(h).encode()),
    st.sampled_from([b"7", b"0", b"x", np.arange(3, dtype=np.int64).tobytes(),
                     b'{"dtype": "float32", "shape": [0, 2], "token_counts": [1e400]}']))


@settings(max_examples=500, deadline=None)
@given(frames=st.lists(_REPLY_FRAME, max_size=7))
def test_the_client_s_reply_decoder_is_total(frames: list[bytes]) -> None:
    """Whatever the client's SUB socket receives: a reply, or ServerError (BadReply)."""
    try:
        reply = decode_reply(frames)
    except ServerError as error:
        assert error.kind is ErrorKind.BAD_REPLY
        return
    if isinstance(reply, (EmbeddingReply, SparseReply)):
        _check_assembles(reply)


def _check_assembles(reply: EmbeddingReply | SparseReply) -> None:
    """A reply decode_reply accepted is one the client can use: its tokens and counts are
    what their types say, and the client's assembler takes it or names the problem."""
    assert reply.tokens is None or all(
        isinstance(row, list) and all(isinstance(t, str) for t in row) for row in reply.tokens)
    assert reply.token_counts is None or all(
        type(n) is int and n >= 0 for n in reply.token_counts)
    rows = reply.rows if isinstance(reply, SparseReply) else reply.array
    count = len(rows) if isinstance(rows, SparseRows) else (rows.shape[0] if rows.ndim else 0)
    assembler = RowAssembler(count)
    try:
        assembler.put(0, count, rows, reply.tokens, reply.token_counts)
        if isinstance(reply, SparseReply):
            assembler.sparse_result()
        else:
            assembler.result()
        assembler.token_counts()
    except ServerError as error:
        assert error.kind is ErrorKind.BAD_REPLY


@pytest.mark.parametrize(("header", "named"), [
    ('"token_counts": [Infinity]', "token_counts are integers >= 0, got .inf"),
    ('"token_counts": [1e400]', "token_counts are integers >= 0, got .inf"),
    ('"token_counts": [NaN]', "token_counts are integers >= 0, got .nan"),
    ('"token_counts": [2.0]', "token_counts are integers >= 0, got .2.0"),
    ('"token_counts": [true]', "token_counts are integers >= 0, got .True"),
    ('"token_counts": [-1]', "token_counts are integers >= 0, got .-1"),
    ('"token_counts": "3"', "token_counts are integers >= 0, got 3"),
    ('"tokens": 5', "tokens are a list of lists of strings, got 5"),
    ('"tokens": ["ab"]', "tokens are a list of lists of strings, got .'ab'"),
    ('"tokens": [[1]]', "tokens are a list of lists of strings, got ..1"),
])
def test_a_reply_s_tokens_and_counts_are_checked(header: str, named: str) -> None:
    """JSON's Infinity, 1e400 and NaN are floats; int() of them raised OverflowError or
    ValueError past the decoder, and tokens of the wrong type failed later in the assembler."""
    frames = [CLIENT, b'{"dtype": "float32", "shape": [1, 2], %s}' % header.encode(),
              np.zeros(2, np.float32).tobytes(), b"3"]
    with pytest.raises(ServerError, match=named) as caught:
        decode_reply(frames)
    assert caught.value.kind is ErrorKind.BAD_REPLY


def test_sparse_replies_of_different_widths_are_a_bad_reply() -> None:
    assembler = RowAssembler(3)
    assembler.put(0, 2, SparseRows.from_dense(dense_rows(1, rows=2, width=50)), None)
    assembler.put(2, 1, SparseRows.from_dense(dense_rows(2, rows=1, width=40)), None)
    with pytest.raises(ServerError, match=r"sparse rows of widths \[40, 50\]") as caught:
        assembler.sparse_result()
    assert caught.value.kind is ErrorKind.BAD_REPLY


@settings(max_examples=300, deadline=None)
@given(header=_JSON_HEADER, frames=st.lists(_REPLY_FRAME, min_size=4, max_size=4))
def test_a_sparse_result_s_decoder_is_total(header: dict, frames: list[bytes]) -> None:
    header = {"id": 1, "segments": [], **header}
    with contextlib.suppress(MalformedFrame):
        decode_result([b"SPARSE", json.dumps(header).encode(), *frames])


def test_a_dense_reply_is_still_the_1_10_layout() -> None:
    frames = encode_embedding_reply(CLIENT, 2, np.ones((2, 3), np.float32))
    assert len(frames) == 4
    assert isinstance(decode_reply([bytes(f) for f in frames]), EmbeddingReply)
    with pytest.raises(ServerError, match="a reply has 3, 4 or 6 frames, got 5"):
        decode_reply([*(bytes(f) for f in frames[:3]), b"", b"2"])
