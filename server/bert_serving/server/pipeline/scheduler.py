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
- Jobs of at most `priority_batch_size` texts are served before larger ones.
- Jobs that fit in one batch's rows (at most `max_batch_size` texts: the 32-text
  requests of HTTP clients) share batches, grouped by length across jobs: eight
  concurrent requests of 32 mixed texts run as ten length-grouped batches instead of
  thirty-five padded ones (`_SharedPool`; the small jobs share batches the same way).
- Larger jobs take turns, one batch each, and take turns with the shared pool, so
  one 20,000-text request does not starve another client.

Usage::

    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=16384)
    scheduler.add(JobRows(key, tokens, tokens.lengths))   # a request's RaggedTokens
    batch = scheduler.next_batch()
    payload = RaggedTokens.concatenate([p.take(s.rows) for p, s in batch.parts()])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any

import numpy as np

from bert_serving.proto.internal import JobKey, Segment

__all__ = ["MAX_PADDING", "WINDOW_JOBS", "WINDOW_ROWS", "Batch", "BatchLimits", "BatchScheduler",
           "JobRows"]


@dataclass
class JobRows:
    """The rows of one request waiting to run, with their token lengths.

    The scheduler never looks inside `payload`, and never copies it: a batch says
    which rows of which job's payload it holds. The server's payload is the
    request's `RaggedTokens`; tests use lists of strings.
    """

    key: JobKey
    payload: Any
    row_lengths: InitVar[Sequence[int] | np.ndarray]
    lengths: np.ndarray = field(init=False)  # each row's token count
    pending: np.ndarray = field(init=False)  # rows not yet in a batch, shortest first

    def __post_init__(self, row_lengths: Sequence[int] | np.ndarray) -> None:
        self.lengths = np.asarray(row_lengths)
        self.pending = np.argsort(self.lengths, kind="stable")

    @property
    def size(self) -> int:
        return len(self.lengths)

    @property
    def remaining(self) -> int:
        return len(self.pending)


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


WINDOW_ROWS = 2048
"""Waiting rows of the shared pool's oldest jobs that one batch is chosen from."""

WINDOW_JOBS = 256
"""Jobs one batch is chosen from at most: a backlog of one-text requests costs as little
to batch as one of 32-text requests."""


@dataclass(frozen=True)
class BatchLimits:
    """What bounds one batch: rows, padded tokens, and padding once it is big enough."""

    max_rows: int
    max_tokens: int
    max_padding: float = MAX_PADDING
    min_tokens: int = MIN_BATCH_TOKENS


class _BatchFiller:
    """Counts a batch's rows against the size, token and padding limits."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
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

    def offer(self, length: int) -> bool:
        """Count a row of `length` tokens in, if it fits; False leaves the batch as it was."""
        if not self.fits(length):
            return False
        self.rows += 1
        self.longest = max(self.longest, length)
        self.real_tokens += length
        return True

    def build(self, jobs_rows: list[tuple[JobRows, list[int]]]) -> Batch:
        segments = [Segment(job.key, rows) for job, rows in jobs_rows]
        payloads = [job.payload for job, _ in jobs_rows]
        return Batch(segments, payloads, self.rows, self.rows * self.longest)


def _take_shortest(job: JobRows, filler: _BatchFiller) -> list[int]:
    """A job's next rows, shortest first, as many as the filler takes."""
    count = 0
    for row in job.pending:
        if not filler.offer(int(job.lengths[row])):
            break
        count += 1
    rows = [int(row) for row in job.pending[:count]]
    job.pending = job.pending[count:]
    return rows


def _grow_around(seed: int, by_length: np.ndarray, lengths: np.ndarray,
                 filler: _BatchFiller) -> np.ndarray:
    """The entries of `by_length` next to position `seed` that the filler takes: the
    seed, then longer rows while they fit, then shorter ones while they fit."""
    chosen = [int(by_length[seed])]
    filler.offer(int(lengths[chosen[0]]))
    for direction in (by_length[seed + 1:], by_length[:seed][::-1]):
        for entry in direction:
            if not filler.offer(int(lengths[entry])):
                break
            chosen.append(int(entry))
    return np.array(chosen)


def _without(jobs: deque[JobRows], should_drop: Callable[[JobKey], bool],
             ) -> tuple[deque[JobRows], int]:
    """The jobs to keep, and how many waiting rows the dropped ones had."""
    dropped = sum(job.remaining for job in jobs if should_drop(job.key))
    return deque(job for job in jobs if not should_drop(job.key)), dropped


class _SharedPool:
    """Jobs whose rows share batches, grouped by length across jobs.

    The pool sweeps upward in length over the jobs present when the sweep began:
    each batch starts at the sweep's shortest waiting row and takes the rows of
    every job in the pool next to it in length (longer ones, then shorter ones while
    the limits allow). So eight requests of 32 mixed texts run as batches of similar
    lengths from all of them, not as eight padded sets. A job that arrives during a
    sweep joins it with the rows it has next to the sweep's; its other rows wait for
    the next sweep, which starts once the current one's jobs are done. Every batch
    takes a row of the current sweep, so a job among the oldest (the window: at most
    WINDOW_ROWS rows of WINDOW_JOBS jobs) waits at most two sweeps; the jobs behind the
    window wait their turn in arrival order.
    """

    def __init__(self) -> None:
        self.jobs: deque[JobRows] = deque()
        self.sweep: list[JobRows] = []

    def __bool__(self) -> bool:
        return bool(self.jobs)

    def add(self, job: JobRows) -> None:
        self.jobs.append(job)

    def fill(self, limits: BatchLimits) -> Batch:
        jobs, counts = self._window()
        self.sweep = [job for job in self.sweep if job.remaining] or jobs
        lengths = np.concatenate([job.lengths[job.pending] for job in jobs])
        owners = np.repeat(np.arange(len(jobs)), counts)
        by_length = np.lexsort((owners, lengths))  # ties: the older job first
        swept = {id(job) for job in self.sweep}
        in_sweep = np.array([id(job) in swept for job in jobs])
        seed = int(np.argmax(in_sweep[owners[by_length]]))  # the sweep's shortest row
        filler = _BatchFiller(limits)
        chosen = _grow_around(seed, by_length, lengths, filler)
        return filler.build(self._remove(jobs, counts, owners, chosen))

    def _window(self) -> tuple[list[JobRows], list[int]]:
        """The oldest jobs, at most WINDOW_JOBS of them and WINDOW_ROWS waiting rows (one
        job at least), with their waiting rows: what one batch is chosen from.

        Bounds a batch's cost when thousands of requests wait; the jobs behind
        wait their turn, in order.
        """
        window: list[JobRows] = []
        counts: list[int] = []
        rows = 0
        for job in self.jobs:
            count = job.remaining
            if window and (rows + count > WINDOW_ROWS or len(window) == WINDOW_JOBS):
                break
            window.append(job)
            counts.append(count)
            rows += count
        return window, counts

    def _remove(self, jobs: list[JobRows], counts: list[int], owners: np.ndarray,
                chosen: np.ndarray) -> list[tuple[JobRows, list[int]]]:
        """Take the chosen entries out of their jobs; each job's rows, in job age order."""
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        taken = []
        for index in np.unique(owners[chosen]):
            job = jobs[index]
            positions = np.sort(chosen[owners[chosen] == index] - starts[index])
            taken.append((job, [int(row) for row in job.pending[positions]]))
            keep = np.ones(job.remaining, dtype=bool)
            keep[positions] = False
            job.pending = job.pending[keep]
        if any(not job.remaining for job, _ in taken):  # the window is the deque's head:
            for _ in jobs:                                # put back its unfinished jobs
                self.jobs.popleft()
            self.jobs.extendleft(reversed([job for job in jobs if job.remaining]))
        return taken

    def cancel(self, should_drop: Callable[[JobKey], bool]) -> int:
        self.jobs, dropped = _without(self.jobs, should_drop)
        self.sweep = [job for job in self.sweep if not should_drop(job.key)]
        return dropped


class BatchScheduler:
    """Waiting jobs and the policy that turns them into batches."""

    def __init__(
        self, *, max_batch_size: int = 256, max_batch_tokens: int = 16384,
        priority_batch_size: int = 16, max_padding: float = MAX_PADDING,
    ) -> None:
        self.limits = BatchLimits(max_batch_size, max_batch_tokens, max_padding)
        self.priority_batch_size = priority_batch_size
        self._priority = _SharedPool()
        self._shared = _SharedPool()
        self._large: deque[JobRows] = deque()
        self._retry: deque[Batch] = deque()
        self._large_turn = False
        self.pending_texts = 0

    def add(self, job: JobRows) -> None:
        if not job.size:
            raise ValueError(f"job {job.key} has no rows to schedule")
        if job.size <= self.priority_batch_size:
            self._priority.add(job)
        elif job.size <= self.limits.max_rows:
            self._shared.add(job)
        else:
            self._large.append(job)
        self.pending_texts += job.size

    def __bool__(self) -> bool:
        return bool(self._retry or self._priority or self._shared or self._large)

    def next_batch(self) -> Batch | None:
        """The next batch to run, or None when nothing waits."""
        if self._retry:
            batch = self._retry.popleft()
        elif self._priority:
            batch = self._priority.fill(self.limits)
        elif self._shared and self._large:  # the shared pool and the large jobs take turns
            self._large_turn = not self._large_turn
            batch = self._fill_from_large() if self._large_turn else self._shared.fill(self.limits)
        elif self._shared:
            batch = self._shared.fill(self.limits)
        elif self._large:
            batch = self._fill_from_large()
        else:
            return None
        self.pending_texts -= len(batch)
        return batch

    def _fill_from_large(self) -> Batch:
        job = self._large.popleft()
        filler = _BatchFiller(self.limits)
        rows = _take_shortest(job, filler)
        if job.remaining:
            self._large.append(job)  # take turns with the other large jobs
        return filler.build([(job, rows)])

    def cancel(self, should_drop: Callable[[JobKey], bool]) -> int:
        """Drop the waiting rows of jobs whose key matches (their client left); returns rows."""
        self._large, dropped = _without(self._large, should_drop)
        dropped += self._priority.cancel(should_drop) + self._shared.cancel(should_drop)
        self.pending_texts -= dropped
        return dropped

    def requeue(self, batch: Batch) -> None:
        """Run `batch` again, before anything else (its worker died mid-batch)."""
        self._retry.append(batch)
        self.pending_texts += len(batch)
