"""Keeping the test session's graph cache under a size budget, least recently used first.

It relies on what the README tells users: a start that reuses a graph refreshes its access
time (GraphCache), so the oldest access time is the graph unused for longest. An entry's
files (`entry_files`) go together, and a pruned entry is simply converted again when a test
needs it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bert_serving.server.convert.cache import entry_files

GRAPH_CACHE_BUDGET_BYTES = 1 << 30  # some 12 MiniLM graphs; the whole suite converts 3.6 GB


def _entry_bytes(graph: Path) -> int:
    total = 0
    for path in entry_files(graph):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def prune_graph_cache(root: Path, budget_bytes: int) -> list[Path]:
    """Remove the least recently used entries of `root` until the rest fit `budget_bytes`;
    returns the graphs removed, oldest first."""
    graphs = sorted(root.glob("*.onnx"), key=lambda graph: graph.stat().st_atime_ns)
    sizes = {graph: _entry_bytes(graph) for graph in graphs}
    total = sum(sizes.values())
    removed: list[Path] = []
    for graph in graphs:
        if total <= budget_bytes:
            break
        for path in entry_files(graph):
            path.unlink(missing_ok=True)
        total -= sizes[graph]
        removed.append(graph)
    return removed
