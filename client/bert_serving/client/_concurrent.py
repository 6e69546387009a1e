"""ConcurrentBertClient: a pool of BertClients, one borrowed per call.

A single BertClient is already thread-safe; the pool gives each concurrent call
its own sockets and identity, as bert-serving-client 1.10.0's did (the HTTP
gateway of the original used it). A call finding every client busy raises
RuntimeError, as in 1.10.0, rather than queueing.

Usage::

    with ConcurrentBertClient(max_concurrency=4, ip="localhost") as pool:
        vectors = pool.encode(["hello world"])
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, NoReturn

import numpy as np

from bert_serving.proto.inputs import TextInput

from ._client import BertClient, Response
from ._scores import Prediction, Rank
from ._sparse import SparseVector

__all__ = ["ConcurrentBertClient"]


class ConcurrentBertClient:
    """`max_concurrency` BertClients built with `kwargs`; same methods as BertClient."""

    def __init__(self, max_concurrency: int = 10, **kwargs: Any) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._clients: list[BertClient] = []
        try:
            for _ in range(max_concurrency):
                self._clients.append(BertClient(**kwargs))
        except BaseException:
            self.close()
            raise
        self._idle = list(self._clients)
        self._lock = threading.Lock()

    @contextmanager
    def _borrow(self) -> Iterator[BertClient]:
        with self._lock:
            if not self._idle:
                raise RuntimeError(
                    f"all {self.max_concurrency} clients are busy: too many concurrent calls; "
                    "raise ConcurrentBertClient(max_concurrency=...)"
                )
            client = self._idle.pop()
        try:
            yield client
        finally:
            with self._lock:
                self._idle.append(client)

    def encode(
        self,
        texts: list[str] | list[list[str]],
        blocking: bool = True,
        is_tokenized: bool = False,
        show_tokens: bool = False,
        precision: str = "float32",
    ) -> Any:
        """BertClient.encode on a borrowed client; only blocking calls (see `fetch`)."""
        if not blocking:
            _no_fetch()
        with self._borrow() as client:
            return client.encode(texts, is_tokenized=is_tokenized, show_tokens=show_tokens,
                                 precision=precision)

    def encode_with_token_counts(
        self, texts: list[str] | list[list[str]], is_tokenized: bool = False
    ) -> tuple[np.ndarray, list[int]]:
        """BertClient.encode_with_token_counts on a borrowed client."""
        with self._borrow() as client:
            return client.encode_with_token_counts(texts, is_tokenized=is_tokenized)

    def encode_inputs(self, inputs: Sequence[TextInput], *, native: bool = False,
                      precision: str = "float32") -> tuple[np.ndarray, list[int]]:
        """BertClient.encode_inputs on a borrowed client."""
        with self._borrow() as client:
            return client.encode_inputs(inputs, native=native, precision=precision)

    def rerank(self, query: str, texts: Sequence[str], raw_scores: bool = False) -> list[Rank]:
        """BertClient.rerank on a borrowed client."""
        with self._borrow() as client:
            return client.rerank(query, texts, raw_scores)

    def predict(self, texts_or_pairs: Sequence[str | Sequence[str]],
                raw_scores: bool = False) -> list[list[Prediction]]:
        """BertClient.predict on a borrowed client."""
        with self._borrow() as client:
            return client.predict(texts_or_pairs, raw_scores)

    def encode_sparse(
        self, texts: list[str] | list[list[str]], is_tokenized: bool = False
    ) -> list[SparseVector]:
        """BertClient.encode_sparse on a borrowed client."""
        with self._borrow() as client:
            return client.encode_sparse(texts, is_tokenized=is_tokenized)

    def encode_async(
        self,
        batch_generator: Iterable[list[str] | list[list[str]]],
        max_num_batch: int | None = None,
        delay: float = 0.1,
        **kwargs: Any,
    ) -> Iterator[Response]:
        """BertClient.encode_async on a client borrowed until the generator is done."""
        with self._borrow() as client:
            yield from client.encode_async(batch_generator, max_num_batch, delay, **kwargs)

    def fetch(self, delay: float = 0.0) -> NoReturn:
        _no_fetch()

    def fetch_all(self, sort: bool = True, concat: bool = False) -> NoReturn:
        _no_fetch()

    @property
    def server_config(self) -> dict[str, Any]:
        with self._borrow() as client:
            return client.server_config

    @property
    def server_status(self) -> dict[str, Any]:
        with self._borrow() as client:
            return client.server_status

    @property
    def status(self) -> dict[str, Any]:
        """The status of one of the pooled clients (as in 1.10.0)."""
        with self._borrow() as client:
            return client.status

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> ConcurrentBertClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()


def _no_fetch() -> NoReturn:
    raise NotImplementedError(
        "a ConcurrentBertClient cannot tell which pooled client holds a non-blocking "
        "result: use encode_async, or a BertClient with encode(blocking=False) and fetch"
    )
