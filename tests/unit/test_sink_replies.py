"""The sink's reply path on a real Sink and a real SUB socket on 127.0.0.1: a reply that
cannot be built still reaches its client, as an EncodingFailed error."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import zmq
from server_process import free_port

from bert_serving.proto import EmbeddingReply, ErrorKind, ErrorReply, decode_reply
from bert_serving.proto.internal import JobKey, ResultMessage, Segment
from bert_serving.server.model.quantization import quantize
from bert_serving.server.pipeline.assembly import JobAssembly
from bert_serving.server.pipeline.internal_endpoints import InternalEndpoints
from bert_serving.server.pipeline.sink import Sink

CLIENT = b"5d1f0c1e-7a0b-4c7e-8f55-2b4a6c3e9d10"


@pytest.fixture
def sink_and_client() -> Iterator[tuple[Sink, zmq.Socket[bytes]]]:
    context = zmq.Context()
    port = free_port()
    endpoints = InternalEndpoints()
    sink = Sink(context, bind_ip="127.0.0.1", port_out=port, job_timeout=60,
                endpoints=endpoints)
    client = context.socket(zmq.SUB)
    client.setsockopt(zmq.LINGER, 0)
    client.setsockopt(zmq.RCVTIMEO, 30_000)  # a safety net, not an assertion
    client.setsockopt(zmq.SUBSCRIBE, CLIENT)
    client.connect(f"tcp://127.0.0.1:{port}")
    sink.out.setsockopt(zmq.RCVTIMEO, 30_000)
    sink._on_subscription(sink.out.recv())  # the client's subscription, as the loop reads it
    assert CLIENT in sink.subscribed
    try:
        yield sink, client
    finally:
        client.close()
        sink.out.close(linger=0)
        sink.results.close()
        endpoints.remove()
        sink.control.close()
        context.term()


def _finish_job(sink: Sink, req_id: int,
                finish: Callable[[np.ndarray], np.ndarray] | None) -> None:
    """A two-row job, its rows arriving in one batch, as a worker's result does."""
    key = JobKey(CLIENT, req_id)
    sink.jobs[key] = JobAssembly(key, 2, finish=finish)
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    # As the loop runs it: an exception here is logged, and the loop goes on.
    sink._guarded(sink._on_result, ResultMessage(1, [Segment(key, [0, 1])], vectors, None))


def test_a_reply_that_cannot_be_built_is_an_encoding_failed_error(
    sink_and_client: tuple[Sink, zmq.Socket[bytes]],
) -> None:
    sink, client = sink_and_client
    # int8 with ranges for 3 dimensions on 4-dimensional rows: quantize's broadcast fails.
    ranges = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
    _finish_job(sink, 7, lambda rows: quantize(rows, "int8", ranges))
    reply = decode_reply(client.recv_multipart())
    assert isinstance(reply, ErrorReply) and reply.req_id == 7
    assert reply.error.kind is ErrorKind.ENCODING_FAILED
    assert "the reply could not be built: ValueError" in str(reply.error)
    assert not sink.jobs
    # The sink goes on: the next job's reply is published as before.
    _finish_job(sink, 8, None)
    reply = decode_reply(client.recv_multipart())
    assert isinstance(reply, EmbeddingReply) and reply.req_id == 8
    np.testing.assert_array_equal(reply.array, np.arange(8, dtype=np.float32).reshape(2, 4))
