"""The sending half of `BertClient.encode_async`, run in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BatchSender"]


class BatchSender(threading.Thread):
    """Sends `encode_async`'s batches without blocking the caller's loop.

    `finished` is set once every batch has been sent (or sending failed); an error
    is kept for the consuming thread to raise with `raise_error`.
    """

    def __init__(
        self,
        send: Callable[[list[Any]], object],
        batches: Iterable[list[Any]],
        max_num_batch: int | None,
    ) -> None:
        super().__init__(name="bert-serving-async-sender", daemon=True)
        self._send, self._batches, self._max = send, batches, max_num_batch
        self.finished = threading.Event()
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            for count, texts in enumerate(self._batches, start=1):
                self._send(texts)
                if self._max and count == self._max:
                    break
        except BaseException as error:  # handed to the consuming thread
            self._error = error
        finally:
            self.finished.set()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error
