"""The wire format alone: frames built and parsed by bert_serving.proto, no sockets."""

from __future__ import annotations

import contextlib
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_serving.proto import (
    PROTOCOL_VERSION,
    Command,
    EmbeddingReply,
    ErrorKind,
    ErrorReply,
    JsonReply,
    MalformedRequest,
    ServerError,
    TextPayloadError,
    decode_reply,
    decode_texts,
    encode_embedding_reply,
    encode_error_reply,
    encode_json_reply,
    encode_request,
    parse_request,
)
from bert_serving.proto.inputs import Dual, Ids, WordPair, encode_inputs, read_legacy_text
from bert_serving.proto.internal import (
    BatchMessage,
    Control,
    ControlMessage,
    JobKey,
    JobMessage,
    MalformedFrame,
    PublishMessage,
    RaggedTokens,
    Segment,
    decode_batch,
    decode_control,
    decode_ready,
    decode_result,
    decode_sink_control,
    encode_batch,
    encode_control,
    encode_failed,
    encode_job,
    encode_publish,
    encode_result,
    encode_worker_stop,
)

CLIENT = b"0b7c5e0e-2a41-4d6b-9c55-8c1f0a6a3e11"


def test_protocol_version_is_what_the_1_10_client_accepts() -> None:
    assert PROTOCOL_VERSION == "1.10.0"


def test_text_request_round_trip() -> None:
    frames = encode_request(CLIENT, 7, ["hello world", "naïve café ||| 東京"])
    assert len(frames) == 4
    assert frames[2:] == [b"7", b"2"]
    request = parse_request(frames)
    assert (request.client_id, request.req_id, request.msg_len) == (CLIENT, 7, 2)
    assert request.command is None
    assert decode_texts(request.payload) == (["hello world", Dual("naïve café", "東京")], False,
                                             False, False, None)


def test_tokenized_request_round_trip() -> None:
    tokens = [["hello", "world"], ["a", "|||", "b"]]
    request = parse_request(encode_request(CLIENT, 1, tokens))
    assert decode_texts(request.payload) == ([["hello", "world"], WordPair(["a"], ["b"])], True,
                                             False, False, None)


def test_ext_payload_carries_every_text_verbatim_and_pairs_as_pairs() -> None:
    rows = ["  lead and trail \t", "a ||| b", Dual(" q ", "x ||| y "), Ids((5, 0, 7)), ""]
    request = parse_request(encode_request(CLIENT, 3, rows, verbatim=True))
    assert request.msg_len == 5
    assert decode_texts(request.payload) == (rows, False, False, False, None)
    native = parse_request(encode_request(CLIENT, 4, rows, verbatim=True, native=True))
    assert decode_texts(native.payload) == (rows, False, True, False, None)
    sparse = parse_request(encode_request(CLIENT, 5, rows, verbatim=True, sparse=True))
    assert decode_texts(sparse.payload) == (rows, False, False, True, None)


@pytest.mark.parametrize("rows", [["plain", "a ||| b"], [["hello", "world"], ["a", "|||", "b"]]])
def test_a_sparse_request_reads_its_texts_as_the_1_10_payload_does(rows: list) -> None:
    plain = decode_texts(encode_request(CLIENT, 1, rows)[1])
    sparse = decode_texts(encode_request(CLIENT, 2, rows, sparse=True)[1])
    assert json.loads(encode_request(CLIENT, 2, rows, sparse=True)[1]) == {
        "texts": rows, "sparse": True}
    assert sparse == plain._replace(sparse=True)


def test_the_1_10_reading_drops_only_the_separators_padding() -> None:
    assert read_legacy_text("  a ||| b  ") == Dual("  a", "b  ")
    assert read_legacy_text("a|||b ||| c") == Dual("a", "b ||| c")
    assert read_legacy_text("a \u3000||| b") == Dual("a \u3000", "b")  # ASCII padding only
    assert read_legacy_text(" ||| b") == Dual("", "b")
    assert read_legacy_text(" plain ") == " plain "


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"inputs": "x"}', "inputs must be a JSON list"),
    (b'{"inputs": ["x"], "native": 1}', "native must be true or false, got an int 1"),
    (b'{"inputs": ["x"], "native": true, "more": 1}', "an object with keys"),
    (b'{"text": ["x"]}', "an object with keys .'text'.: it must be"),
    (b'{"texts": ["x"], "native": true}', "an object with keys .'native', 'texts'.: it must"),
    (b'{"texts": "x"}', "texts must be a JSON list"),
    (b'{"inputs": ["x"], "sparse": "yes"}', "sparse must be true or false, got a str"),
    (b'{"inputs": []}', "empty list"),
    (b'{"inputs": [["a"]]}', r"inputs\[0\] is a list"),
    (b'{"inputs": [["a", 1]]}', r"inputs\[0\] is a list"),
    (b'{"inputs": ["ok", 3]}', r"inputs\[1\] is an int"),
    (b'{"inputs": [{"ids": [1, -2]}]}', r"inputs\[0\].ids must be a list of token ids"),
    (b'{"inputs": [{"ids": [1.5]}]}', r"inputs\[0\].ids must be"),
    (b'{"inputs": [{"ids": [true]}]}', r"inputs\[0\].ids must be"),
    (b'{"inputs": [{"ids": [4294967296]}]}', r"inputs\[0\].ids must be"),
])
def test_ext_payload_errors_name_the_problem(payload: bytes, expected: str) -> None:
    with pytest.raises(TextPayloadError, match=expected):
        decode_texts(payload)


def test_ext_payload_sizes_a_pair_by_both_parts() -> None:
    assert decode_texts(encode_inputs([Dual("é" * 2, "é" * 3)]), max_text_bytes=10)
    with pytest.raises(TextPayloadError, match=r"texts\[0\] is at least 12 bytes"):
        decode_texts(encode_inputs([Dual("é" * 3, "é" * 3)]), max_text_bytes=10)


def test_request_matches_the_1_10_client_bytes() -> None:
    # 1.10.0 sends [identity, jsonapi.dumps(texts), b'%d' % req_id, b'%d' % len(texts)].
    frames = encode_request(CLIENT, 12, ["a", "b"])
    assert json.loads(frames[1]) == ["a", "b"]
    assert frames[2:] == [b"12", b"2"]


@pytest.mark.parametrize("command", list(Command))
def test_command_round_trip(command: Command) -> None:
    frames = encode_request(CLIENT, 3, command)
    assert frames == [CLIENT, command.value, b"3", b"0"]
    assert parse_request(frames).command is command


def test_terminate_frames_of_bert_serving_terminate_parse() -> None:
    request = parse_request([b"0", b"TERMINATION", b"0", b"0"])
    assert request.command is Command.TERMINATION


def test_json_reply_round_trip() -> None:
    body = {"server_version": PROTOCOL_VERSION, "max_seq_len": None, "show_tokens_to_client": True}
    frames = encode_json_reply(CLIENT, 5, body)
    assert len(frames) == 3
    assert decode_reply(frames) == JsonReply(5, body)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_embedding_reply_round_trip(dtype: str) -> None:
    array = np.arange(12, dtype=dtype).reshape(3, 4)
    tokens = [["[CLS]", "a", "[SEP]"]] * 3
    frames = [bytes(frame) for frame in encode_embedding_reply(CLIENT, 9, array, tokens)]
    reply = decode_reply(frames)
    assert isinstance(reply, EmbeddingReply)
    assert reply.req_id == 9
    assert reply.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(reply.array, array)
    assert reply.tokens == tokens


def test_embedding_reply_is_what_the_1_10_client_parses() -> None:
    array = np.ones((2, 3, 4), dtype=np.float32)[:, ::2]  # not contiguous on purpose
    frames = [bytes(frame) for frame in encode_embedding_reply(CLIENT, 1, array)]
    header = json.loads(frames[1])
    assert header["tokens"] == ""
    rebuilt = np.frombuffer(frames[2], dtype=str(header["dtype"])).reshape(header["shape"])
    np.testing.assert_array_equal(rebuilt, array)


def test_error_reply_round_trip() -> None:
    frames = encode_error_reply(CLIENT, 4, "texts[1] is a int 5, not a string",
                                ErrorKind.BAD_REQUEST)
    reply = decode_reply(frames)
    assert isinstance(reply, ErrorReply)
    assert reply.req_id == 4
    assert isinstance(reply.error, ServerError)
    assert str(reply.error) == "texts[1] is a int 5, not a string"
    assert (reply.error.kind, reply.error.req_id) == ("BadRequest", 4)


def _fail_as_the_1_10_client(frames: list[bytes]) -> TypeError:
    header = json.loads(frames[1])
    with pytest.raises(TypeError) as caught:
        np.frombuffer(frames[2], dtype=str(header["dtype"])).reshape(header["shape"])
    return caught.value


def test_error_reply_makes_the_1_10_client_raise_with_the_message() -> None:
    message = "payload is an empty list: send at least one text"
    error = _fail_as_the_1_10_client(encode_error_reply(CLIENT, 1, message))
    assert message in str(error)


def test_error_reply_with_commas_still_raises_type_error() -> None:
    # numpy reads a comma in a dtype string as a record format and raises ValueError.
    message = "texts[3] is a int 5, not a string"
    error = _fail_as_the_1_10_client(encode_error_reply(CLIENT, 1, message))
    assert message.replace(",", ";") in str(error)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe\x00", "not valid UTF-8 JSON"),
        (b'{"text": ["a"]}', "must be a JSON list"),
        (b'"just a string"', "must be a JSON list"),
        (b"[]", "empty list"),
        (b'["a", "b", 5]', "texts[2]"),
        (b'["a", null]', "texts[1]"),
        (b'[["a", "b"], "c"]', "texts[1]"),
        (b'[["a", "b"], ["c", 3]]', "texts[1][1]"),
        (b'["a", ["b"]]', "texts[1]"),
    ],
)
def test_decode_texts_names_the_problem(payload: bytes, expected: str) -> None:
    with pytest.raises(TextPayloadError, match=re.escape(expected)):
        decode_texts(payload)


def test_decode_texts_refuses_too_many_texts() -> None:
    payload = json.dumps(["a"] * 11).encode()
    with pytest.raises(TextPayloadError, match=r"11 texts.*limit of 10"):
        decode_texts(payload, max_texts=10)
    assert decode_texts(payload, max_texts=11)[0] == ["a"] * 11


@pytest.mark.parametrize("count", [0, 1, 3, 5])
def test_parse_request_refuses_wrong_frame_count(count: int) -> None:
    frames = [CLIENT, b"[]", b"1", b"1", b"extra"][:count]
    with pytest.raises(MalformedRequest, match=f"4 frames, got {count}") as caught:
        parse_request(frames)
    assert caught.value.client_id == (CLIENT if count else None)


@pytest.mark.parametrize(
    ("req_id", "msg_len", "name"),
    [(b"abc", b"1", "req_id"), (b"-1", b"1", "req_id"), (b"1", b"x", "msg_len")],
)
def test_parse_request_refuses_non_digit_ids(req_id: bytes, msg_len: bytes, name: str) -> None:
    with pytest.raises(MalformedRequest, match=name) as caught:
        parse_request([CLIENT, b'["a"]', req_id, msg_len])
    assert caught.value.client_id == CLIENT


def test_parse_request_keeps_req_id_when_only_msg_len_is_bad() -> None:
    with pytest.raises(MalformedRequest) as caught:
        parse_request([CLIENT, b'["a"]', b"42", b"?"])
    assert caught.value.req_id == 42


def test_parse_request_refuses_empty_identity() -> None:
    with pytest.raises(MalformedRequest, match="identity") as caught:
        parse_request([b"", b'["a"]', b"1", b"1"])
    assert caught.value.client_id is None


# -- the server's internal frames -------------------------------------------------------------


def test_a_batch_crosses_to_the_worker_as_raw_token_ids() -> None:
    sent = BatchMessage(7, [Segment(JobKey(b"\x01client", 3), [2, 0]),
                            Segment(JobKey(b"other", 1), [5])],
                        RaggedTokens(np.array([101, 7, 102, 101, 102, 101, 8, 9, 102]),
                                     np.array([3, 2, 4]), np.array([3, 2, 4])))
    frames = encode_batch(b"worker-1", sent)
    assert frames[0] == b"worker-1"
    got = decode_batch([bytes(frame) for frame in frames[1:]])  # as the DEALER receives them
    assert got is not None and got.batch_id == 7 and got.segments == sent.segments
    for name in ("ids", "lengths", "first_lengths"):
        assert getattr(got.tokens, name).dtype == np.int32
        np.testing.assert_array_equal(getattr(got.tokens, name), getattr(sent.tokens, name))
    assert len(got) == 3
    assert decode_batch([bytes(f) for f in encode_worker_stop(b"worker-1")[1:]]) is None


def test_a_batch_whose_lengths_do_not_add_up_is_refused() -> None:
    frames = encode_batch(b"w", BatchMessage(1, [], RaggedTokens(np.arange(5), np.array([2, 2]),
                                                                 np.array([2, 2]))))
    with pytest.raises(ValueError, match="2 rows of 4 tokens do not match 5 ids"):
        decode_batch([bytes(frame) for frame in frames[1:]])


def test_ragged_rows_are_taken_and_joined_without_per_row_objects() -> None:
    tokens = RaggedTokens(np.array([1, 2, 3, 4, 5, 6], np.int32), np.array([2, 1, 3]),
                          np.array([2, 1, 1]))
    taken = RaggedTokens.concatenate([tokens.take([2, 0]), tokens.take([1])])
    assert taken.ids.tolist() == [4, 5, 6, 1, 2, 3]
    assert taken.lengths.tolist() == [3, 2, 1] and taken.first_lengths.tolist() == [1, 2, 1]
    assert [tokens.row(i).tolist() for i in range(3)] == [[1, 2], [3], [4, 5, 6]]


def test_job_and_result_carry_one_job_key_and_the_token_counts() -> None:
    key = JobKey(b"\xffid", 9)
    job = JobMessage(key, 3, True, [4, 5, 6], windows=[1, 2], weights=[2, 3, 4])
    assert decode_sink_control(encode_job(job)) == job
    batch = BatchMessage(2, [Segment(key, [1, 0])],
                         RaggedTokens(np.arange(4), np.array([2, 2]), np.array([2, 2])))
    vectors = np.ones((2, 3), np.float32)
    result = decode_result(encode_result(batch, vectors, [["a"], ["b"]]))
    assert result.segments == [Segment(key, [1, 0])] and result.tokens == [["a"], ["b"]]
    np.testing.assert_array_equal(result.vectors, vectors)
    failed = decode_result(encode_failed(batch, "boom"))
    assert (failed.segments, failed.vectors, failed.error) == ([Segment(key, [1, 0])], None, "boom")


def test_the_sink_publishes_reply_frames_as_proto_built_them() -> None:
    reply = encode_error_reply(CLIENT, 4, "no", ErrorKind.SERVER_BUSY)
    message = decode_sink_control(encode_publish(reply))
    assert isinstance(message, PublishMessage)
    assert (message.client_id, message.frames) == (CLIENT, reply)
    assert decode_sink_control(encode_control(Control.STOP)) is None
    with pytest.raises(MalformedFrame, match="not a sink message"):
        decode_sink_control([b"JSON", CLIENT, b"1", b"{}"])


@pytest.mark.parametrize("word", list(Control))
def test_control_words_round_trip_with_their_subject(word: Control) -> None:
    assert decode_control(encode_control(word, b"w-1")) == ControlMessage(word, b"w-1")
    assert decode_control(encode_control(word)) == ControlMessage(word)


def test_an_unknown_control_word_is_refused_not_taken_for_stop() -> None:
    with pytest.raises(MalformedFrame, match="not a control message"):
        decode_control([b"SHUTDOWN"])


_WORDS = [b"BATCH", b"READY", b"RESULT", b"FAILED", b"SPARSE", b"JOB", b"PUBLISH",
          *(w.value for w in Control)]
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "segments", "dtype", "shape", "error", "key", "rows", "tokens",
                         "token_counts", "credits", "done"]), inner, max_size=6),
    max_leaves=12,
)
_FRAME = st.one_of(st.binary(max_size=40), st.sampled_from(_WORDS),
                   _JSONISH.map(lambda value: json.dumps(value).encode()))


@settings(max_examples=400, deadline=None)
@given(frames=st.lists(_FRAME, max_size=6))
def test_every_internal_decoder_is_total(frames: list[bytes]) -> None:
    """Garbage on an internal socket is a MalformedFrame, never another exception."""
    for decode in (decode_batch, decode_ready, decode_result, decode_sink_control,
                   decode_control):
        with contextlib.suppress(MalformedFrame):
            decode(frames)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_error_kind_survives_the_wire(kind: ErrorKind) -> None:
    reply = decode_reply(encode_error_reply(CLIENT, 2, "why", kind))
    assert isinstance(reply, ErrorReply) and reply.error.kind is kind


def test_an_error_kind_this_client_does_not_know_reads_as_a_server_error() -> None:
    frames = encode_error_reply(CLIENT, 2, "why")
    frames[1] = frames[1].replace(b'"BadRequest"', b'"SomethingNew"')
    reply = decode_reply(frames)
    assert isinstance(reply, ErrorReply) and reply.error.kind is ErrorKind.SERVER_ERROR


def test_token_counts_ride_in_the_embedding_header() -> None:
    frames = encode_embedding_reply(CLIENT, 3, np.zeros((2, 4), np.float32), None, [5, 7])
    assert json.loads(frames[1])["token_counts"] == [5, 7]
    reply = decode_reply([bytes(f) for f in frames])
    assert isinstance(reply, EmbeddingReply) and reply.token_counts == [5, 7]
    plain = decode_reply([bytes(f) for f in encode_embedding_reply(CLIENT, 3, np.zeros((1, 2)))])
    assert isinstance(plain, EmbeddingReply) and plain.token_counts is None


# -- every parser is total (issue 12) ---------------------------------------------------------


@pytest.mark.parametrize("frame", [2, 3])
def test_digit_strings_past_64_bits_are_malformed_not_a_crash(frame: int) -> None:
    frames = encode_request(CLIENT, 3, ["a"])
    frames[frame] = b"9" * 5000  # past Python's 4,300-digit int() limit
    with pytest.raises(MalformedRequest, match="at most 18 ASCII decimal digits") as caught:
        parse_request(frames)
    assert caught.value.client_id == CLIENT


@pytest.mark.parametrize("digits", ["١٢", "²", "1" * 19])
def test_only_short_ascii_digit_strings_are_numbers(digits: str) -> None:
    frames = encode_request(CLIENT, 3, ["a"])
    frames[2] = digits.encode("utf-8")
    with pytest.raises(MalformedRequest):
        parse_request(frames)


def test_an_oversized_identity_is_refused() -> None:
    with pytest.raises(MalformedRequest, match="identity frame is 5000 bytes") as caught:
        parse_request(encode_request(b"x" * 5000, 1, ["a"]))
    assert caught.value.client_id is None  # too big to echo back in a reply


def test_json_nested_deeper_than_the_parser_allows_names_the_problem() -> None:
    with pytest.raises(TextPayloadError, match="nests JSON too deeply"):
        decode_texts(b"[" * 100_000)
    with pytest.raises(TextPayloadError, match="nests JSON too deeply"):
        decode_texts(b"[" * 50_000 + b"]" * 50_000)


def test_max_text_bytes_counts_utf8_bytes_of_texts_and_token_lists() -> None:
    assert decode_texts(json.dumps(["é" * 5]).encode(), max_text_bytes=10)[0] == ["é" * 5]
    with pytest.raises(TextPayloadError, match=r"texts\[1\] is at least 12 bytes.*limit of 10"):
        decode_texts(json.dumps(["ok", "é" * 6]).encode(), max_text_bytes=10)
    with pytest.raises(TextPayloadError, match=r"texts\[0\] is at least 11 bytes"):
        decode_texts(json.dumps([["hello", "world!"]]).encode(), max_text_bytes=10)
    with pytest.raises(TextPayloadError, match=r"texts\[0\] is at least 1000000 bytes"):
        decode_texts(json.dumps(["x" * 1_000_000]).encode(), max_text_bytes=10)
