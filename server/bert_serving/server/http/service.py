"""What routes call: plain texts in, vectors and token counts out, through the shared BertClient.

The client is thread-safe and blocking, so each call runs in a worker thread
with no lock around it: many HTTP requests are in the server's queue at once and
get batched together, as the same number of ZeroMQ clients would. A capacity
limiter sized to -http_max_connect bounds those threads (anyio's default pool of
40 would otherwise cap how many requests the server sees at once).

Token counts come with the server's reply (`BertClient.encode_with_token_counts`):
its tokenizer's count after -max_seq_len truncation, [CLS]/[SEP] included,
which is what the model reads (and what the server's `num_tokens` statistic
adds up). Nothing here tokenizes.

Usage::

    service = EmbeddingService(client, metrics, output_dim=384, max_texts=100_000,
                               max_concurrency=10)
    encoded = await service.encode_inputs(["hello world ", Dual("query", "a ||| b")])

`encode_inputs` sends every row exactly as given (the TEI, OpenAI and Cohere
routes: '|||' is text, pairs are `Dual`s); `encode` is the 1.10 reading, for
the original `/encode` route, where 'a ||| b' is a pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import numpy as np

from bert_serving.client import (
    BertClient,
    Prediction,
    Rank,
    SparseVector,
    predictions,
    ranked,
)
from bert_serving.proto.inputs import TextInput

from .errors import GatewayError, invalid, too_many_texts
from .metrics import GatewayMetrics

__all__ = ["EmbeddingService", "Encoded", "EncodedSparse", "Ranking"]

_Rows = TypeVar("_Rows")  # what a client call returns per text: an array, sparse vectors

@dataclass(frozen=True)
class Encoded:
    """Rows in the texts' order (C-contiguous), and the tokens the model read per text."""

    vectors: np.ndarray
    token_counts: list[int]


@dataclass(frozen=True)
class Ranking:
    """Each text's rank against the query, best first, and the tokens the model read."""

    ranks: list[Rank]
    tokens: int


@dataclass(frozen=True)
class EncodedSparse:
    """One sparse vector per text, in the texts' order, and the tokens the model read."""

    vectors: list[SparseVector]
    token_counts: list[int]


class EmbeddingService:
    """Encodes through one shared BertClient; the gateway's only path to the server."""

    def __init__(self, client: BertClient, metrics: GatewayMetrics, *, output_dim: int,
                 max_texts: int, max_concurrency: int) -> None:
        self.client = client
        self.output_dim = output_dim
        self.metrics = metrics
        self._max_texts = max_texts
        self._threads = anyio.CapacityLimiter(max_concurrency)

    async def encode(self, texts: list[Any], *, is_tokenized: bool) -> Encoded:
        """Vectors (one row per text, in order) and tokens per text.

        The 1.10 reading of texts ('a ||| b' is a pair), for the original /encode route.
        Raises GatewayError (too many texts), ServerError, BertClientTimeout.
        """
        return _dense(*await self._run(lambda: self.client.encode_with_token_counts(
            texts, is_tokenized=is_tokenized), len(texts)))

    async def encode_inputs(self, inputs: list[TextInput], *, native: bool = False) -> Encoded:
        """Vectors and tokens per row, every row sent exactly as given (`encode_inputs`);
        `native`: the model's own embedding the graph pools beside the server's."""
        return _dense(*await self._run(
            lambda: self.client.encode_inputs(inputs, native=native), len(inputs)))

    async def _run(self, call: Callable[[], tuple[_Rows, list[int]]],
                   rows: int) -> tuple[_Rows, list[int]]:
        """Every encoding's one path: the text-count limit, a thread under the limiter,
        the client's input errors as 422, the usage metrics."""
        if rows > self._max_texts:
            raise GatewayError(too_many_texts(rows, self._max_texts))
        encoded, counts = await anyio.to_thread.run_sync(_blocking, call, limiter=self._threads)
        self.metrics.on_encoded(rows, sum(counts))
        return encoded, counts

    async def rerank(self, pairs: list[TextInput], *, raw_scores: bool) -> Ranking:
        """The client's `rerank` of (query, text) pairs (`Dual`s, or a pair cut to ids):
        (index, score) per pair, best first, with the pairs' tokens."""
        encoded = await self.encode_inputs(pairs)
        return Ranking(ranked(encoded.vectors, raw_scores=raw_scores), sum(encoded.token_counts))

    async def predict(self, rows: list[TextInput], *,
                      raw_scores: bool) -> list[list[Prediction]]:
        """The client's `predict`: per row (a text, a `Dual`, or ids) its labels, best first.

        The logits come through `encode`, with their token counts, so the usage
        metrics need no second tokenization, as for embeddings (and `rerank`).
        """
        labels = await anyio.to_thread.run_sync(self.client.classifier_labels)
        encoded = await self.encode_inputs(rows)
        return predictions(encoded.vectors, labels, raw_scores=raw_scores)

    async def encode_sparse(self, inputs: list[TextInput]) -> EncodedSparse:
        """`BertClient.encode_sparse_inputs`: nonzeros and tokens per row, every row sent
        exactly as given; only the nonzeros cross the wire. Raises as `encode`."""
        return EncodedSparse(*await self._run(
            lambda: self.client.encode_sparse_inputs(inputs), len(inputs)))

    async def server_status(self) -> dict[str, Any]:
        """SHOW_STATUS: the server's configuration and its request statistics.

        Not bounded by the encoding threads' limiter: a scrape must not wait behind them.
        """
        return await anyio.to_thread.run_sync(lambda: self.client.server_status)

    async def server_statistic(self) -> dict[str, Any] | None:
        """SHOW_STATUS's `statistic`, or None when the server does not answer (for /metrics)."""
        try:
            status = await self.server_status()
        except Exception:  # a scrape must not fail because the server is down
            return None
        statistic = status.get("statistic")
        return statistic if isinstance(statistic, dict) else None

    def client_status(self) -> dict[str, Any]:
        """The shared client's own state, as JSON values (its identity and id set are not)."""
        status = dict(self.client.status)
        status["identity"] = bytes(status["identity"]).decode("utf-8", "replace")
        status["pending_request"] = sorted(status["pending_request"])
        return status


def _blocking(call: Callable[[], tuple[_Rows, list[int]]]) -> tuple[_Rows, list[int]]:
    try:
        return call()
    except (TypeError, ValueError) as error:  # the client's own input checks
        raise GatewayError(invalid("texts", str(error))) from None


def _dense(vectors: np.ndarray, counts: list[int]) -> Encoded:
    # C order, as orjson writes arrays only in it (the client's rows already are: no copy).
    return Encoded(np.ascontiguousarray(vectors), counts)
