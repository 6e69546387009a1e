"""Request statistics for SHOW_STATUS, counted for real as requests arrive."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

__all__ = ["ServerStatistics"]


def _summary(prefix: str, values: list[float]) -> dict[str, float]:
    if not values:
        return {f"min_{prefix}": 0, f"max_{prefix}": 0, f"avg_{prefix}": 0}
    return {
        f"min_{prefix}": min(values),
        f"max_{prefix}": max(values),
        f"avg_{prefix}": sum(values) / len(values),
    }


class ServerStatistics:
    """Counts of requests, texts and clients, with the original's min/max/avg summaries."""

    def __init__(self) -> None:
        self.started = time.time()
        self.num_requests = 0
        self.num_sequences = 0
        self.num_data_requests = 0
        self.num_control_requests = 0
        self.num_malformed = 0
        self.num_rejected = 0
        self._requests_per_client: Counter[bytes] = Counter()
        self._sizes: list[int] = []
        self._recent_sizes_limit = 10_000
        self.num_tokens = 0
        self.num_batches = 0
        self.num_batched_seq = 0  # rows handed to workers: what was computed, re-runs included
        self.num_worker_restarts = 0
        self.batch_size_histogram: Counter[int] = Counter()  # upper bound (power of 2) -> batches

    def on_data_request(self, client_id: bytes, num_texts: int) -> None:
        self.num_requests += 1
        self.num_data_requests += 1
        self.num_sequences += num_texts
        self._requests_per_client[client_id] += 1
        self._sizes.append(num_texts)
        if len(self._sizes) > self._recent_sizes_limit:
            del self._sizes[: len(self._sizes) // 2]

    def on_tokens(self, count: int) -> None:
        self.num_tokens += count

    def on_batch(self, size: int) -> None:
        self.num_batches += 1
        self.num_batched_seq += size
        self.batch_size_histogram[1 << max(size - 1, 0).bit_length()] += 1

    def on_worker_restart(self) -> None:
        self.num_worker_restarts += 1

    def on_control_request(self, client_id: bytes) -> None:
        self.num_requests += 1
        self.num_control_requests += 1
        self._requests_per_client[client_id] += 1

    def on_malformed(self) -> None:
        self.num_malformed += 1

    def on_rejected(self) -> None:
        self.num_rejected += 1

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(time.time() - self.started, 1e-9)
        per_client = [float(v) for v in self._requests_per_client.values()]
        return {
            "num_total_request": self.num_requests,
            "num_data_request": self.num_data_requests,
            "num_sys_request": self.num_control_requests,
            "num_total_seq": self.num_sequences,
            "num_total_client": len(self._requests_per_client),
            "num_malformed_request": self.num_malformed,
            "num_rejected_request": self.num_rejected,
            "avg_request_per_second": self.num_requests / elapsed,
            "num_tokens": self.num_tokens,
            "num_batches": self.num_batches,
            "num_batched_seq": self.num_batched_seq,
            "num_worker_restarts": self.num_worker_restarts,
            "batch_size_histogram": {
                str(size): count for size, count in sorted(self.batch_size_histogram.items())
            },
            **_summary("size_per_request", [float(s) for s in self._sizes]),
            **_summary("request_per_client", per_client),
        }
