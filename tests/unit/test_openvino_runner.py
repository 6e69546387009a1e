"""The OpenVINO runner, in-process, on real models: the same vectors, logits and SPLADE
weights as transformers (torch CPU fp32), and the precision it reports is what ran.

This file runs OpenVINO in f32 on any CPU. On a CPU with AVX512_BF16 or AMX-BF16 it
also checks bf16: the compiled model reports bf16 and the MiniLM's rows stay at cosine
>= 0.999 to fp32; elsewhere that test is skipped (bf16 is refused there, which
tests/integration/test_openvino_server.py checks through the server).
Tolerance for f32: 1e-4 absolute, as every fp32 graph test here (the runtimes sum in
another order than torch; a wrong graph is off by far more).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from make_random_classifier import write_random_classifier
from reference import ClassifierReference, TransformersReference, heldout_texts
from splade_reference import SpladeReference, splade_tiny_dir

from bert_serving.server.model.cpu_features import cpu_flags, has_bf16
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.head import ModelHead

TOLERANCE = 1e-4
SHORT_TEXTS = ["ok", "thanks", "yes", "好"]
PAIRS = ["what is a fox ||| The quick brown fox jumps over the lazy dog.",
         "what is a fox ||| hello world", "Short text."]
OPENVINO_F32 = {"runtime": "openvino", "dtype": "float32"}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def minilm_f32(minilm_dir: Path, graph_cache: Path) -> Engine:
    return Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache,
                                     **OPENVINO_F32))


def test_minilm_f32_matches_transformers_and_reports_f32(
        minilm_f32: Engine, reference: TransformersReference) -> None:
    texts = [*heldout_texts(), *SHORT_TEXTS]
    assert (minilm_f32.runner.runtime, minilm_f32.runner.precision) == ("openvino", "fp32")
    np.testing.assert_allclose(minilm_f32.encode(texts), reference.encode(texts),
                               atol=TOLERANCE, rtol=0)


def test_a_texts_vector_does_not_depend_on_its_batch(minilm_f32: Engine) -> None:
    texts = [*SHORT_TEXTS, *heldout_texts()]
    alone = np.concatenate([minilm_f32.encode([text]) for text in texts])
    batched = minilm_f32.encode(texts)
    assert cosine_rows(alone, batched).min() >= 0.99999


def test_the_compiled_blobs_go_to_the_cache_folder(minilm_f32: Engine,
                                                   graph_cache: Path) -> None:
    assert list((graph_cache / "openvino").glob("*.blob"))


@pytest.mark.parametrize("kind", ["bert", "xlm-roberta"])
def test_classifier_and_cross_encoder_logits_match_transformers(
        kind: str, tmp_path: Path) -> None:
    folder = write_random_classifier(kind, tmp_path / kind)
    engine = Engine.load(EngineOptions(model_dir=folder, graph_tmp_dir=tmp_path / "cache",
                                       max_seq_len=128, **OPENVINO_F32))
    assert engine.graph.metadata.head is ModelHead.CLASSIFIER
    np.testing.assert_allclose(engine.encode(PAIRS), ClassifierReference(folder).logits(PAIRS),
                               atol=TOLERANCE, rtol=0)


def test_splade_weights_match_transformers(graph_cache: Path) -> None:
    engine = Engine.load(EngineOptions(model_dir=splade_tiny_dir(), head=ModelHead.SPARSE,
                                       max_seq_len=None, graph_tmp_dir=graph_cache,
                                       **OPENVINO_F32))
    texts = heldout_texts()
    want = SpladeReference(splade_tiny_dir()).encode(texts, max_seq_len=None)
    np.testing.assert_allclose(engine.encode(texts), want, atol=TOLERANCE, rtol=0)


@pytest.mark.skipif(not has_bf16(cpu_flags()), reason="this CPU has no AVX512_BF16 or AMX-BF16")
def test_bf16_reports_bf16_and_keeps_minilm_rows_at_0_999(
        minilm_dir: Path, graph_cache: Path, minilm_f32: Engine) -> None:
    bf16 = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache,
                                     runtime="openvino", dtype="bfloat16"))
    assert bf16.runner.precision == "bf16"
    texts = [*SHORT_TEXTS, *heldout_texts()]
    assert cosine_rows(bf16.encode(texts), minilm_f32.encode(texts)).min() >= 0.999
    alone = np.concatenate([bf16.encode([text]) for text in texts])
    assert cosine_rows(alone, bf16.encode(texts)).min() >= 0.99999
