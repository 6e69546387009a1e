"""model.quantization against sentence-transformers' own `quantize_embeddings`: exact equality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bert_serving.server.model.quantization import (
    PRECISIONS,
    load_ranges,
    quantize,
    ranges_for,
    unit_vector_ranges,
)


def unit_rows(count: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dim", [384, 100, 8])
def test_matches_sentence_transformers(precision: str, dim: int) -> None:
    from sentence_transformers.util.quantization import quantize_embeddings

    rows = unit_rows(50, dim)
    rows[0, :3] = [0.0, 1.0, -1.0]  # at zero, and past the default range on both sides
    for ranges in (unit_vector_ranges(dim), np.stack([rows.min(0), rows.max(0)]),
                   np.stack([np.full(dim, 0.1), np.full(dim, 0.1)]).astype(np.float32)):
        want = quantize_embeddings(rows, precision=precision, ranges=ranges)  # type: ignore[arg-type]
        got = quantize(rows, precision, ranges)  # type: ignore[arg-type]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_a_rows_value_does_not_depend_on_the_others() -> None:
    rows = unit_rows(20, 64)
    ranges = unit_vector_ranges(64)
    alone = np.concatenate([quantize(rows[i:i + 1], "int8", ranges) for i in range(20)])
    np.testing.assert_array_equal(alone, quantize(rows, "int8", ranges))


def test_unit_vector_ranges_are_four_root_mean_squares() -> None:
    ranges = unit_vector_ranges(400)
    assert ranges.shape == (2, 400) and ranges.dtype == np.float32
    np.testing.assert_allclose(ranges, [[-0.2] * 400, [0.2] * 400])
    assert unit_vector_ranges(4)[1, 0] == 1.0  # never wider than a unit vector's coordinates


def test_ranges_for_follows_the_file_then_unit_vectors() -> None:
    configured = np.stack([np.full(16, -2.0), np.full(16, 2.0)]).astype(np.float32)
    assert ranges_for(16, unit_vectors=False, configured=None) is None
    assert ranges_for(16, unit_vectors=False, configured=configured) is configured
    cut = ranges_for(8, unit_vectors=True, configured=configured, cut=True)
    assert cut is not None and cut.shape == (2, 8)
    assert ranges_for(8, unit_vectors=False, configured=configured, cut=True) is None
    with pytest.raises(ValueError, match="16 dimensions; this server's vectors have 8"):
        ranges_for(8, unit_vectors=True, configured=configured)


def test_load_ranges_checks_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.stack([np.zeros(4), np.ones(4)]))
    assert load_ranges(good).dtype == np.float32
    cases = {"shape": (np.zeros((3, 4)), "shape \\[3, 4\\]"),
             "nan": (np.array([[0.0, np.nan], [1.0, 1.0]]), "finite"),
             "order": (np.array([[0.0, 2.0], [1.0, 1.0]]), "dimension 1")}
    for name, (array, message) in cases.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        with pytest.raises(ValueError, match=message):
            load_ranges(path)
