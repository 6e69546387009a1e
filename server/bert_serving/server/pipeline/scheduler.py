"""Which texts run together: length-grouped batches across clients, small requests first.

Pure logic, no sockets: the ventilator adds jobs and asks for the next batch.

- A job's rows are sorted by token length once, so each batch takes neighbours
  in length and padding stays small (the original padded every text to max_seq_len).
- A batch is bounded by `max_batch_size` texts and by `max_batch_tokens` padded
  tokens (rows x longest row), so long texts make smaller batches.
- A batch is also cut where its next, longer row would make padding more than
  `max_padding` of its real tokens, once it holds `min_batch_tokens`: a request of
  32 mixed texts is otherwise one batch padded to its longest (35% padding on the
  benchmark's texts). Measured on the raw session, requests of 32 cut this way ran
  1.29x faster (scripts/benchmark_peers.py's HTTP case, docs/benchmarks.md); a
  large sorted request is barely cut, its neighbours are already close in length.
- Jobs of at most `priority_batch_size` texts are served before larger ones and
  share batches with each other; large jobs take turns, one batch each, so one
  20,000-text request does not starve another client.

Usage::

    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=16384)
    scheduler.add(JobRows(key, tokens, tokens.lengths))   # a request's RaggedTokens
    batch = scheduler.next_batch()
    payload = RaggedTokens.concatenate([p.take(s.rows) for p, s in batch.parts()])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bert_serving.proto.internal import JobKey, Segment

__all__ = ["MAX_PADDING", "Batch", "BatchLimits", "BatchScheduler", "JobRows"]


@dataclass
class JobRows:
    """The rows of one request waiting to run, with their token lengths.

    The scheduler never looks inside `payload`, and never copies it: a batch says
    which rows of which job's payload it holds. The server's payload is the
    request's `RaggedTokens`; tests use lists of strings.
    """

    key: JobKey
    payload: Any
    lengths: Sequence[int] | np.ndarray
    order: np.ndarray = field(init=False)  # row indices, shortest first
    next_row: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.order = np.argsort(np.asarray(self.lengths), kind="stable")

    @property
    def size(self) -> int:
        return len(self.order)

    @property
    def remaining(self) -> int:
        return len(self.order) - self.next_row


@dataclass(frozen=True)
class Batch:
    """Rows that run in one forward pass: `segments[i]` are rows of `payloads[i]`."""

    segments: list[Segment]
    payloads: list[Any]
    rows: int
    padded_tokens: int

    def __len__(self) -> int:
        return self.rows

    def parts(self) -> Iterator[tuple[Any, Segment]]:
        """Each job's payload with the segment of its rows, in batch order."""
        return zip(self.payloads, self.segments, strict=True)


MAX_PADDING = 0.1
"""Padding a batch may carry, as a share of its real tokens, once it is worth cutting."""

MIN_BATCH_TOKENS = 512
"""Padded tokens below which a batch is never cut for padding: smaller forward passes
pay more in per-call overhead than padding costs (512 measured fastest of 256-2048)."""


@dataclass(frozen=True)
class BatchLimits:
    """What bounds one batch: rows, padded tokens, and padding once it is big enough."""

    max_rows: int
    max_tokens: int
    max_padding: float = MAX_PADDING
    min_tokens: int = MIN_BATCH_TOKENS


class _BatchFiller:
    """Accumulates rows under the size, token and padding limits."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self.segments: list[Segment] = []
        self.payloads: list[Any] = []
        self.rows = 0
        self.longest = 0
        self.real_tokens = 0

    def fits(self, length: int) -> bool:
        if not self.rows:
            return True  # one row always fits, however long
        rows = self.rows + 1
        padded = rows * max(self.longest, length)
        if rows > self.limits.max_rows or padded > self.limits.max_tokens:
            return False
        if self.rows * self.longest < self.limits.min_tokens:
            return True
        return padded <= (self.real_tokens + length) * (1 + self.limits.max_padding)

    def take_from(self, job: JobRows) -> None:
        rows: list[int] = []
        while job.remaining:
            row = int(job.order[job.next_row])
            length = int(job.lengths[row])
            if not self.fits(length):
                break
            rows.append(row)
            self.rows += 1
            self.longest = max(self.longest, length)
            self.real_tokens += length
            job.next_row += 1
        if rows:
            self.segments.append(Segment(job.key, rows))
            self.payloads.append(job.payload)

    def build(self) -> Batch:
        return Batch(self.segments, self.payloads, self.rows, self.rows * self.longest)


class BatchScheduler:
    """Waiting jobs and the policy that turns them into batches."""

    def __init__(
        self, *, max_batch_size: int = 256, max_batch_tokens: int = 16384,
        priority_batch_size: int = 16, max_padding: float = MAX_PADDING,
    ) -> None:
        self.limits = BatchLimits(max_batch_size, max_batch_tokens, max_padding)
        self.priority_batch_size = priority_batch_size
        self._priority: deque[JobRows] = deque()
        self._normal: deque[JobRows] = deque()
        self._retry: deque[Batch] = deque()
        self.pending_texts = 0

    def add(self, job: JobRows) -> None:
        small = job.size <= self.priority_batch_size
        (self._priority if small else self._normal).append(job)
        self.pending_texts += job.size

    def __bool__(self) -> bool:
        return bool(self._retry or self._priority or self._normal)

    def next_batch(self) -> Batch | None:
        """The next batch to run, or None when nothing waits."""
        if self._retry:
            batch = self._retry.popleft()
            self.pending_texts -= len(batch)
            return batch
        if self._priority:
            return self._fill_from_priority()
        if self._normal:
            return self._fill_from_normal()
        return None

    def _fill_from_priority(self) -> Batch:
        filler = _BatchFiller(self.limits)
        while self._priority:
            job = self._priority[0]
            filler.take_from(job)
            if job.remaining:
                break
            self._priority.popleft()
        return self._finish(filler)

    def _fill_from_normal(self) -> Batch:
        job = self._normal.popleft()
        filler = _BatchFiller(self.limits)
        filler.take_from(job)
        if job.remaining:
            self._normal.append(job)  # take turns with the other large jobs
        return self._finish(filler)

    def _finish(self, filler: _BatchFiller) -> Batch:
        batch = filler.build()
        self.pending_texts -= len(batch)
        return batch

    def cancel(self, should_drop: Callable[[JobKey], bool]) -> int:
        """Drop the waiting rows of jobs whose key matches (their client left); returns rows."""
        dropped = 0
        for queue in (self._priority, self._normal):
            kept = [job for job in queue if not should_drop(job.key)]
            dropped += sum(job.remaining for job in queue if should_drop(job.key))
            queue.clear()
            queue.extend(kept)
        self.pending_texts -= dropped
        return dropped

    def requeue(self, batch: Batch) -> None:
        """Run `batch` again, before anything else (its worker died mid-batch)."""
        self._retry.append(batch)
        self.pending_texts += len(batch)
