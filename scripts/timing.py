"""Interleaved timing for the benchmark scripts: each contender once per round, then medians.

These machines drift by 30% or more between runs. Running the contenders in
turn, round after round, lets drift hit each alike, and the median shrugs off
one slow round.

Usage::

    medians, outputs = interleaved_medians({"ours": run_ours, "theirs": run_theirs}, rounds=5)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

__all__ = ["interleaved_medians"]

Output = TypeVar("Output")


def interleaved_medians(
    contenders: Mapping[str, Callable[[], Output]], rounds: int
) -> tuple[dict[str, float], dict[str, Output]]:
    """Median seconds per run of each contender, after one untimed warm-up run each;
    and each contender's output from its last run."""
    for run in contenders.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, Output] = {}
    for _ in range(rounds):
        for name, run in contenders.items():
            started = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(samples) for name, samples in times.items()}, outputs
