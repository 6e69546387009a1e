"""Batching policy: limits, length grouping, priority for small requests, retries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_serving.proto.internal import JobKey
from bert_serving.server.pipeline.scheduler import (
    MIN_BATCH_TOKENS,
    WINDOW_JOBS,
    WINDOW_ROWS,
    Batch,
    BatchScheduler,
    JobRows,
)


def job(name: str, lengths: list[int]) -> JobRows:
    return JobRows(key(name), [f"{name}-{i}" for i in range(len(lengths))], lengths)


def key(name: str) -> JobKey:
    return JobKey(name.encode(), 1)


def names(batch: Batch | None) -> list[str]:
    assert batch is not None
    return [segment.key.client_id.decode() for segment in batch.segments]


def items(batch: Batch) -> list[str]:
    """The rows a batch holds, taken from each job's payload as the ventilator does."""
    return [payload[row] for payload, segment in batch.parts() for row in segment.rows]


def drain(scheduler: BatchScheduler) -> list:
    batches = []
    while (batch := scheduler.next_batch()) is not None:
        batches.append(batch)
    return batches


def test_batches_respect_size_and_token_limits() -> None:
    scheduler = BatchScheduler(max_batch_size=8, max_batch_tokens=100, priority_batch_size=0)
    lengths = [5, 40, 7, 30, 12, 3, 50, 9, 11, 25, 6, 33]
    scheduler.add(job("a", lengths))
    for batch in drain(scheduler):
        longest = max(lengths[r] for s in batch.segments for r in s.rows)
        assert len(batch) <= 8
        assert len(batch) == 1 or len(batch) * longest <= 100


def test_rows_are_grouped_by_length() -> None:
    scheduler = BatchScheduler(max_batch_size=4, max_batch_tokens=10_000, priority_batch_size=0)
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(3, 128, size=64)]
    scheduler.add(job("a", lengths))
    padded = sum(b.padded_tokens for b in drain(scheduler))
    unsorted_padding = sum(4 * max(lengths[i:i + 4]) for i in range(0, 64, 4))
    assert padded < unsorted_padding  # sorting by length cuts padding
    assert padded <= sum(lengths) * 1.3


def batch_lengths(batch: Batch, lengths: list[int]) -> list[int]:
    return [lengths[row] for segment in batch.segments for row in segment.rows]


def test_a_mixed_request_is_cut_where_padding_would_grow() -> None:
    """32 texts of 5-128 tokens, well within the limits: one batch padded to its longest
    without the padding cut; with it, each batch ends where its next, longer row would
    have made padding over 10% of its real tokens, and the request's padding falls."""
    rng = np.random.default_rng(3)
    lengths = [int(x) for x in rng.integers(5, 129, size=32)]

    def plan(max_padding: float) -> list[Batch]:
        scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=16384,
                                   priority_batch_size=0, max_padding=max_padding)
        scheduler.add(job("a", lengths))
        return drain(scheduler)

    uncut, cut = plan(float("inf")), plan(0.1)
    assert len(uncut) == 1
    assert len(cut) > 1
    for batch, following in itertools.pairwise(cut):
        rows = batch_lengths(batch, lengths)
        refused = batch_lengths(following, lengths)[0]
        assert len(rows) * max(rows) >= MIN_BATCH_TOKENS
        assert (len(rows) + 1) * refused > 1.1 * (sum(rows) + refused)
    assert sum(b.padded_tokens for b in cut) < 0.85 * uncut[0].padded_tokens


def test_small_batches_are_not_cut_for_padding() -> None:
    """Under MIN_BATCH_TOKENS a forward pass costs more in overhead than its padding."""
    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=16384, priority_batch_size=0)
    scheduler.add(job("a", [3, 5, 40, 60, 100]))  # 500 padded tokens at most
    assert len(drain(scheduler)) == 1


def test_small_request_jumps_the_queue() -> None:
    scheduler = BatchScheduler(max_batch_size=32, max_batch_tokens=10_000, priority_batch_size=16)
    scheduler.add(job("big", [10] * 20_000))
    assert names(scheduler.next_batch()) == ["big"]
    scheduler.add(job("small", [4]))
    assert names(scheduler.next_batch()) == ["small"]


def test_large_jobs_take_turns() -> None:
    scheduler = BatchScheduler(max_batch_size=10, max_batch_tokens=10_000, priority_batch_size=0)
    scheduler.add(job("a", [5] * 100))
    scheduler.add(job("b", [5] * 100))
    assert [names(scheduler.next_batch())[0] for _ in range(4)] == ["a", "b", "a", "b"]


def test_small_jobs_share_a_batch() -> None:
    """Raw and pre-tokenized requests too: by then both are token ids."""
    scheduler = BatchScheduler(max_batch_size=32, max_batch_tokens=10_000, priority_batch_size=16)
    scheduler.add(job("a", [5, 6]))
    scheduler.add(job("b", [7]))
    scheduler.add(job("t", [4]))
    scheduler.add(job("big", [5] * 40))
    first = scheduler.next_batch()
    assert names(first) == ["a", "b", "t"]
    assert first is not None and items(first) == ["a-0", "a-1", "b-0", "t-0"]


def plan_padding(jobs: list[list[int]], *, together: bool) -> tuple[int, int]:
    """Padding tokens and batch count of `jobs` scheduled together, or each on its own."""
    padding = batches = 0
    for group in [jobs] if together else [[lengths] for lengths in jobs]:
        scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=4096)
        for index, lengths in enumerate(group):
            scheduler.add(job(str(index), lengths))
        for batch in drain(scheduler):
            padding += batch.padded_tokens - sum(
                group[int(s.key.client_id)][row] for s in batch.segments for row in s.rows)
            batches += 1
    return padding, batches


def test_concurrent_requests_share_length_grouped_batches() -> None:
    """Eight clients' requests of 32 mixed texts (the HTTP load): scheduled one request
    at a time each is cut into padded sets of its own; in the shared pool the rows of
    all eight are grouped by length together."""
    rng = np.random.default_rng(5)
    jobs = [[int(x) for x in rng.integers(5, 129, size=32)] for _ in range(8)]
    alone_padding, alone_batches = plan_padding(jobs, together=False)
    shared_padding, shared_batches = plan_padding(jobs, together=True)
    assert shared_padding < 0.5 * alone_padding  # measured 0.44
    assert shared_batches < alone_batches / 2  # 10 against 35


def test_a_sweep_finishes_while_shorter_requests_keep_coming() -> None:
    """Shortest-first across jobs would starve the long texts for as long as short
    requests arrive; a sweep serves the jobs it began with first."""
    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=4096)
    scheduler.add(job("long", list(range(97, 129))))  # 32 rows of 97-128 tokens
    long_rows = []
    for arrival in range(20):
        batch = scheduler.next_batch()
        assert batch is not None
        long_rows += [row for s in batch.segments if s.key.client_id == b"long" for row in s.rows]
        scheduler.add(job(f"short-{arrival}", [5] * 200))  # 1,000 tokens, worth cutting
    assert sorted(long_rows) == list(range(32))


def test_a_request_that_arrives_mid_sweep_runs_in_the_next() -> None:
    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=4096)
    scheduler.add(job("first", list(range(40, 72))))
    assert names(scheduler.next_batch()) == ["first"]
    scheduler.add(job("short", [5] * 20))  # below the sweep: waits for the next one
    served = []
    for arrival in range(10):
        served.append(names(scheduler.next_batch()))
        scheduler.add(job(f"long-{arrival}", [100] * 20))  # joins the sweep under way
        if "short" in served[-1]:
            break
    assert "short" in served[-1]
    assert len(served) <= 3


def test_a_backlog_is_batched_from_its_oldest_requests() -> None:
    """With thousands of requests waiting, a batch is chosen among the oldest
    WINDOW_ROWS rows: its cost stays bounded and the queue keeps its order."""
    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=4096)
    rng = np.random.default_rng(7)
    for index in range(300):
        scheduler.add(job(str(index), [int(x) for x in rng.integers(5, 129, size=32)]))
    oldest = WINDOW_ROWS // 32
    first = scheduler.next_batch()
    requests = [int(name) for name in names(first)]
    assert max(requests) < oldest
    assert len(requests) > 8  # still grouped across requests
    served = len(first) + sum(map(len, drain(scheduler)))  # type: ignore[arg-type]
    assert served == 300 * 32 and scheduler.pending_texts == 0


def test_a_backlog_of_one_text_requests_is_batched_from_the_oldest_jobs() -> None:
    scheduler = BatchScheduler(max_batch_size=256, max_batch_tokens=4096, priority_batch_size=0)
    for index in range(3000):
        scheduler.add(job(str(index), [5 + index % 7]))
    first = [int(name) for name in names(scheduler.next_batch())]
    assert len(first) > 50 and max(first) < WINDOW_JOBS  # 75: rows of 5-6 tokens
    assert sum(map(len, drain(scheduler))) + len(first) == 3000


def test_a_job_without_rows_is_refused() -> None:
    scheduler = BatchScheduler()
    with pytest.raises(ValueError, match="no rows"):
        scheduler.add(job("empty", []))
    assert not scheduler and scheduler.pending_texts == 0


def test_shared_requests_and_large_jobs_take_turns() -> None:
    scheduler = BatchScheduler(max_batch_size=10, max_batch_tokens=10_000, priority_batch_size=0)
    scheduler.add(job("large", [5] * 100))  # more than one batch's rows
    scheduler.add(job("shared-a", [5] * 8))
    scheduler.add(job("shared-b", [5] * 8))
    turns = [names(scheduler.next_batch()) for _ in range(4)]
    assert turns == [["large"], ["shared-a", "shared-b"], ["large"], ["shared-b"]]


def test_requeued_batch_runs_next_unchanged() -> None:
    scheduler = BatchScheduler(max_batch_size=4, max_batch_tokens=10_000, priority_batch_size=0)
    scheduler.add(job("a", [5] * 12))
    lost = scheduler.next_batch()
    assert lost is not None
    scheduler.requeue(lost)
    assert scheduler.next_batch() is lost


@settings(max_examples=200, deadline=None)
@given(
    jobs=st.lists(st.lists(st.integers(1, 200), min_size=1, max_size=60), min_size=1, max_size=8),
    max_batch_size=st.integers(1, 64),
    max_tokens=st.integers(1, 4096),
    priority=st.integers(0, 20),
    max_padding=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_every_row_is_scheduled_exactly_once(
    jobs: list[list[int]], max_batch_size: int, max_tokens: int, priority: int,
    max_padding: float,
) -> None:
    scheduler = BatchScheduler(max_batch_size=max_batch_size, max_batch_tokens=max_tokens,
                               priority_batch_size=priority, max_padding=max_padding)
    for index, lengths in enumerate(jobs):
        scheduler.add(job(str(index), lengths))
    seen: dict[str, list[int]] = {str(i): [] for i in range(len(jobs))}
    for batch in drain(scheduler):
        assert 1 <= len(batch) <= max_batch_size
        assert len(items(batch)) == len(batch)
        for payload, segment in batch.parts():
            name = segment.key.client_id.decode()
            for row in segment.rows:
                assert payload[row] == f"{name}-{row}"  # each segment points at its own job
                seen[name].append(row)
    for index, lengths in enumerate(jobs):
        assert sorted(seen[str(index)]) == list(range(len(lengths)))
    assert scheduler.pending_texts == 0


@settings(max_examples=200, deadline=None)
@given(
    jobs=st.lists(st.lists(st.integers(1, 200), min_size=1, max_size=40), min_size=1, max_size=10),
    batches_between=st.lists(st.integers(0, 3), min_size=10, max_size=10),
    max_batch_size=st.integers(1, 48),
)
def test_jobs_arriving_between_batches_are_each_scheduled_once(
    jobs: list[list[int]], batches_between: list[int], max_batch_size: int,
) -> None:
    """Jobs join the pools mid-sweep: still every row once, and the scheduler drains."""
    scheduler = BatchScheduler(max_batch_size=max_batch_size, max_batch_tokens=2048,
                               priority_batch_size=4)
    seen: list[str] = []
    for index, lengths in enumerate(jobs):
        scheduler.add(job(str(index), lengths))
        for _ in range(batches_between[index]):
            if (batch := scheduler.next_batch()) is not None:
                seen += items(batch)
    seen += [item for batch in drain(scheduler) for item in items(batch)]
    assert sorted(seen) == sorted(f"{i}-{row}" for i, rows in enumerate(jobs)
                                  for row in range(len(rows)))
    assert scheduler.pending_texts == 0 and not scheduler


def test_cancel_drops_a_gone_clients_waiting_rows_only() -> None:
    scheduler = BatchScheduler(max_batch_size=10, max_batch_tokens=10_000, priority_batch_size=5)
    scheduler.add(job("gone-big", [5] * 100))
    scheduler.add(job("gone-small", [5] * 3))
    scheduler.add(job("kept", [5] * 50))
    started = scheduler.next_batch()  # the small job goes first; handed out, it completes
    assert names(started) == ["gone-small"]
    assert scheduler.cancel(lambda key: key.client_id.startswith(b"gone")) == 100
    assert scheduler.pending_texts == 50
    assert {name for batch in drain(scheduler) for name in names(batch)} == {"kept"}
