"""The engine's vectors against transformers' hidden states, pooled the same way.

Tolerance: 1e-4 absolute on every element (observed ~3e-6 in float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference import TransformersReference, heldout_texts

from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.pooling import PoolingSpec, PoolingStrategy

TOLERANCE = 1e-4

CASES = [
    ((-2,), "REDUCE_MEAN", False),
    ((-1,), "REDUCE_MEAN", False),
    ((-1, -2), "REDUCE_MEAN", False),
    ((-4, -1), "REDUCE_MEAN", False),
    ((0,), "REDUCE_MEAN", False),
    ((-2,), "REDUCE_MAX", False),
    ((-1,), "REDUCE_MEAN_MAX", False),
    ((-2,), "FIRST_TOKEN", False),
    ((-2,), "LAST_TOKEN", False),
    ((-1,), "CLS_POOLED", False),
    ((-2,), "NONE", False),
    ((-2,), "REDUCE_MEAN", True),
    ((-1, -2), "REDUCE_MAX", True),
]


def load_engine(model_dir: Path, cache: Path, **overrides: object) -> Engine:
    options = EngineOptions(model_dir=model_dir, graph_tmp_dir=cache, **overrides)  # type: ignore[arg-type]
    return Engine.load(options)


@pytest.mark.parametrize(("layers", "strategy", "mask_cls_sep"), CASES)
def test_matches_transformers(
    minilm_dir: Path,
    graph_cache: Path,
    reference: TransformersReference,
    layers: tuple[int, ...],
    strategy: str,
    mask_cls_sep: bool,
) -> None:
    spec = PoolingSpec(layers, PoolingStrategy[strategy], mask_cls_sep)
    engine = load_engine(minilm_dir, graph_cache, pooling=spec)
    texts = heldout_texts()
    got = engine.encode(texts)
    want = reference.encode(texts, layers=layers, strategy=strategy, mask_cls_sep=mask_cls_sep)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_max_seq_len_none_pads_to_longest(
    minilm_dir: Path, graph_cache: Path, reference: TransformersReference
) -> None:
    engine = load_engine(minilm_dir, graph_cache, max_seq_len=None)
    texts = heldout_texts()
    got = engine.encode(texts)
    want = reference.encode(texts, max_seq_len=None)
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_rows_do_not_depend_on_batch_neighbours(minilm_dir: Path, graph_cache: Path) -> None:
    """Padding must not leak: a text alone and in a batch of longer texts agree."""
    engine = load_engine(minilm_dir, graph_cache, max_seq_len=None)
    texts = heldout_texts()
    together = engine.encode(texts)
    alone = np.stack([engine.encode([text])[0] for text in texts])
    np.testing.assert_allclose(together, alone, atol=TOLERANCE, rtol=0)


def test_warm_up_runs_one_text_and_the_largest_batch_the_scheduler_forms(
    minilm_dir: Path, graph_cache: Path
) -> None:
    engine = load_engine(minilm_dir, graph_cache)  # -max_seq_len 25
    assert engine.warm_up(4096, 256) == [(1, 8), (163, 25)]
    assert engine.warm_up(100_000, 256) == [(1, 8), (256, 25)]  # capped by -max_batch_size
    unbounded = load_engine(minilm_dir, graph_cache, max_seq_len=None)
    assert unbounded.warm_up(4096, 256) == [(1, 8), (8, 512)]  # the model's own limit


def test_default_pools_second_to_last_layer_mean(minilm_dir: Path, graph_cache: Path) -> None:
    engine = load_engine(minilm_dir, graph_cache)
    assert engine.graph.metadata.pooling == PoolingSpec((-2,), PoolingStrategy.REDUCE_MEAN)
    assert engine.output_width == 384
    assert engine.encode(["你好"]).shape == (1, 384)
