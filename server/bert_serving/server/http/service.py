"""What routes call: plain texts in, vectors and token counts out, through the shared BertClient.

The client is thread-safe and blocking, so each call runs in a worker thread
with no lock around it: many HTTP requests are in the server's queue at once and
get batched together, as the same number of ZeroMQ clients would. A capacity
limiter sized to -http_max_connect bounds those threads (anyio's default pool of
40 would otherwise cap how many requests the server sees at once).

Token counts come from `count_tokens`, handed in by the server: its own
tokenizer's count after -max_seq_len truncation, [CLS]/[SEP] included, which is
what the model reads (and what the server's `num_tokens` statistic adds up).

Usage::

    service = EmbeddingService(client, count_tokens, metrics, output_dim=384,
                               max_texts=100_000, max_concurrency=10)
    encoded = await service.encode(["hello world"], is_tokenized=False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from bert_serving.client import BertClient, SparseVector

from .errors import GatewayError, invalid, too_many_texts
from .metrics import GatewayMetrics

__all__ = ["EmbeddingService", "Encoded", "EncodedSparse", "TokenCounter"]

TokenCounter = Callable[[Sequence[Any], bool], list[int]]
"""(texts, is_tokenized) -> tokens per text, as the server counts them."""


@dataclass(frozen=True)
class Encoded:
    """Rows in the texts' order (C-contiguous), and the tokens the model read per text."""

    vectors: np.ndarray
    token_counts: list[int]


@dataclass(frozen=True)
class EncodedSparse:
    """One sparse vector per text, in the texts' order, and the tokens the model read."""

    vectors: list[SparseVector]
    token_counts: list[int]


class EmbeddingService:
    """Encodes through one shared BertClient; the gateway's only path to the server."""

    def __init__(self, client: BertClient, count_tokens: TokenCounter, metrics: GatewayMetrics,
                 *, output_dim: int, max_texts: int, max_concurrency: int) -> None:
        self.client = client
        self.output_dim = output_dim
        self.metrics = metrics
        self._count_tokens = count_tokens
        self._max_texts = max_texts
        self._threads = anyio.CapacityLimiter(max_concurrency)

    async def encode(self, texts: list[Any], *, is_tokenized: bool) -> Encoded:
        """Vectors (one row per text, in order) and tokens per text.

        Raises GatewayError (too many texts), ServerError, BertClientTimeout.
        """
        if len(texts) > self._max_texts:
            raise GatewayError(too_many_texts(len(texts), self._max_texts))
        encoded = await anyio.to_thread.run_sync(self._encode_blocking, texts, is_tokenized,
                                                 limiter=self._threads)
        self.metrics.on_encoded(len(texts), sum(encoded.token_counts))
        return encoded

    def _encode_blocking(self, texts: list[Any], is_tokenized: bool) -> Encoded:
        try:
            vectors = self.client.encode(texts, is_tokenized=is_tokenized)
        except (TypeError, ValueError) as error:  # the client's own input checks
            raise GatewayError(invalid("texts", str(error))) from None
        # C order, as orjson writes arrays only in it (the client's rows already are).
        return Encoded(np.ascontiguousarray(vectors), self._count_tokens(texts, is_tokenized))

    async def encode_sparse(self, texts: list[Any], *, is_tokenized: bool) -> EncodedSparse:
        """`BertClient.encode_sparse`'s vectors and tokens per text; raises as `encode`."""
        if len(texts) > self._max_texts:
            raise GatewayError(too_many_texts(len(texts), self._max_texts))
        encoded = await anyio.to_thread.run_sync(self._encode_sparse_blocking, texts,
                                                 is_tokenized, limiter=self._threads)
        self.metrics.on_encoded(len(texts), sum(encoded.token_counts))
        return encoded

    def _encode_sparse_blocking(self, texts: list[Any], is_tokenized: bool) -> EncodedSparse:
        try:
            vectors = self.client.encode_sparse(texts, is_tokenized=is_tokenized)
        except (TypeError, ValueError) as error:
            raise GatewayError(invalid("texts", str(error))) from None
        return EncodedSparse(vectors, self._count_tokens(texts, is_tokenized))

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

