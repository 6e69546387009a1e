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


def test_a_rule_refuses_by_name_and_quantizes_what_it_allows() -> None:
    from bert_serving.server.model.quantization import PrecisionRule

    rows = unit_rows(4, 16)
    ranged = PrecisionRule(unit_vector_ranges(16))
    ranged.check("int8")
    np.testing.assert_array_equal(ranged.apply(rows, "int8"),
                                  quantize(rows, "int8", unit_vector_ranges(16)))
    unranged = PrecisionRule(instead="use binary")
    unranged.check("binary")
    with pytest.raises(ValueError, match="uint8 needs each dimension's range.*or use binary"):
        unranged.check("uint8")
    token_vectors = PrecisionRule(refusal="this server answers token vectors")
    with pytest.raises(ValueError, match="precision binary: this server answers token vectors"):
        token_vectors.check("binary")


def test_the_precision_travels_in_the_ext_payloads_and_the_job() -> None:
    from bert_serving.proto import TextPayloadError, decode_texts, encode_texts
    from bert_serving.proto.inputs import encode_inputs
    from bert_serving.proto.internal import JobKey, JobMessage, decode_sink_control, encode_job

    assert encode_texts(["a ||| b"]) == b'["a ||| b"]'  # the 1.10 payload, unchanged
    legacy = decode_texts(encode_texts(["a ||| b"], precision="binary"))
    assert legacy.precision == "binary" and legacy.rows[0] == ("a", "b")
    assert decode_texts(encode_inputs(["x"], native=True, precision="uint8")).precision == "uint8"
    assert decode_texts(b'["x"]').precision is None
    for bad in (b'{"texts": ["x"], "precision": "float32"}', b'{"inputs": ["x"], "precision": 8}'):
        with pytest.raises(TextPayloadError, match="precision must be one of int8, uint8"):
            decode_texts(bad)
    job = JobMessage(JobKey(b"c", 1), 1, False, [3], precision="ubinary")
    assert decode_sink_control(encode_job(job)) == job
