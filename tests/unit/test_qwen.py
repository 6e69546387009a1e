"""Qwen3 (and Qwen2) embedding models: the sentence-transformers folder, the config, Qwen2.

Qwen3's parity with transformers (every pooling strategy, pairs, truncation, the GPU
fusions, `model.`-prefixed checkpoints) is tested with the other families in
test_families.py. Here: a Qwen3-Embedding-style sentence-transformers folder (last-token
pooling, Normalize, instruction prompts) served with -pooling_strategy MODEL against
sentence-transformers' own encode; the hub's config keys (top-level `rope_theta`) read
as transformers reads them; what is refused; and Qwen2 (q/k/v biases, no q/k norms)
against transformers' Qwen2Model.

Tolerance: 1e-4 absolute on every element; the -int8 and fp16 graphs 0.999 cosine per row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from make_random_family import MAX_TOKENS, QWEN_EOS, QWEN_ROPE_THETA, write_random_family
from precision_graphs import precision_cosines
from reference import FamilyReference, heldout_texts

from bert_serving.server.config import parse_server_config
from bert_serving.server.convert.bert_config import read_bert_config
from bert_serving.server.errors import UnsupportedModelError
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.pooling import PoolingSpec, PoolingStrategy

TOLERANCE = 1e-4
QUERY_PROMPT = ("Instruct: Given a web search query, retrieve relevant passages that answer "
                "the query\nQuery:")
"""Qwen3-Embedding's query prompt, as its config_sentence_transformers.json has it."""


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_family("qwen3", tmp_path_factory.mktemp("qwen3"))


@pytest.fixture(scope="module")
def qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_family("qwen2", tmp_path_factory.mktemp("qwen2"))


@pytest.fixture(scope="module")
def sentence_transformer(qwen3_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Qwen3-Embedding's modules over the random Qwen3: Transformer, last-token Pooling,
    Normalize, and its prompts, saved by sentence-transformers itself."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers 6's module paths; `models` is deprecated there
        from sentence_transformers.base.modules import Normalize
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer

    transformer = Transformer(str(qwen3_dir))
    pooling = Pooling(32, pooling_mode="lasttoken")  # the random Qwen3's width
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()],
                                prompts={"query": QUERY_PROMPT, "document": ""}, device="cpu")
    folder = tmp_path_factory.mktemp("qwen3-st")
    model.save(str(folder))
    return model, folder


def texts_without_pairs() -> list[str]:
    long_text = " ".join(["a long text that needs cutting"] * 60)
    return [t for t in heldout_texts() if "|||" not in t] + [long_text]


def test_model_pooling_matches_sentence_transformers(sentence_transformer, graph_cache: Path,  # type: ignore[no-untyped-def]
                                                     ) -> None:
    """Last token (the eos the tokenizer appends), normalized: with and without the
    query prompt, and for a text cut at the model's length (the eos is kept)."""
    model, folder = sentence_transformer
    argv = ["-model_dir", str(folder), "-pooling_strategy", "MODEL", "-max_seq_len",
            str(MAX_TOKENS), "-graph_tmp_dir", str(graph_cache)]
    engine = Engine.load(parse_server_config(argv).engine)
    texts = texts_without_pairs()
    ours = engine.encode(texts)
    theirs = model.encode(texts, convert_to_numpy=True)
    assert ours.shape == theirs.shape == (len(texts), 32)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    prompted = engine.encode([QUERY_PROMPT + text for text in texts])
    np.testing.assert_allclose(prompted, model.encode(texts, prompt_name="query",
                                                      convert_to_numpy=True),
                               atol=TOLERANCE, rtol=0)
    assert np.abs(prompted - ours).max() > 0.1  # the prompt is in the vectors


def test_every_row_ends_with_the_eos_last_token_pools(qwen3_dir: Path, graph_cache: Path
                                                      ) -> None:
    """Cut texts too: Qwen3-Embedding reads its embedding at the eos."""
    from tokenizers import Tokenizer

    engine = Engine.load(EngineOptions(model_dir=qwen3_dir, graph_tmp_dir=graph_cache,
                                       max_seq_len=12))
    batch = engine.tokenize(texts_without_pairs())
    eos = Tokenizer.from_file(str(qwen3_dir / "tokenizer.json")).token_to_id(QWEN_EOS)
    last = batch.input_ids[np.arange(len(batch.lengths)), batch.lengths - 1]
    assert (last == eos).all()


def _hub_style(raw: dict[str, object], theta: float) -> dict[str, object]:
    hub = {key: value for key, value in raw.items() if key != "rope_parameters"}
    hub["rope_theta"] = theta
    return hub


@pytest.mark.parametrize("theta", [QWEN_ROPE_THETA, 1_000_000.0])
def test_hub_config_keys_are_read_as_transformers_reads_them(
    qwen3_dir: Path, tmp_path: Path, theta: float
) -> None:
    """Hub config.json files (Qwen3-Embedding's) say `rope_theta` at the top level."""
    from transformers import AutoConfig

    raw = json.loads((qwen3_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(_hub_style(raw, theta)))
    ours = read_bert_config(tmp_path / "config.json")
    theirs = AutoConfig.from_pretrained(str(tmp_path))
    assert ours.rope_theta == theirs.rope_parameters["rope_theta"] == theta
    assert (ours.head_size, ours.num_key_value_heads) == (theirs.head_dim,
                                                          theirs.num_key_value_heads)
    assert ours.layer_norm_eps == theirs.rms_norm_eps


def test_saved_layout_is_read(qwen3_dir: Path) -> None:
    config = read_bert_config(qwen3_dir / "config.json")
    assert (config.family, config.type_vocab_size) == ("qwen3", 0)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_size) == (4, 2, 16)
    assert config.rope_theta == QWEN_ROPE_THETA


def test_qwen3_head_dim_defaults_to_128_as_transformers(qwen3_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoConfig

    raw = json.loads((qwen3_dir / "config.json").read_text())
    del raw["head_dim"]
    raw.update(hidden_size=512, num_attention_heads=8)
    (tmp_path / "config.json").write_text(json.dumps(raw))
    assert read_bert_config(tmp_path / "config.json").head_size == 128
    assert AutoConfig.from_pretrained(str(tmp_path)).head_dim == 128


@pytest.mark.parametrize(("key", "value", "message"), [
    ("use_sliding_window", True, "sliding-window attention"),
    ("rope_parameters", {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0},
     "rope_type 'yarn' is not supported for qwen3"),
    ("num_key_value_heads", 3, "not a multiple of num_key_value_heads 3"),
])
def test_what_the_graph_cannot_build_is_refused(qwen3_dir: Path, tmp_path: Path, key: str,
                                                value: object, message: str) -> None:
    raw = json.loads((qwen3_dir / "config.json").read_text())
    raw[key] = value
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(UnsupportedModelError, match=message):
        read_bert_config(tmp_path / "config.json")


def test_no_position_embeddings_is_refused(qwen3_dir: Path, tmp_path: Path) -> None:
    options = EngineOptions(model_dir=qwen3_dir, graph_tmp_dir=tmp_path,
                            no_position_embeddings=True)
    with pytest.raises(UnsupportedModelError, match="-no_position_embeddings does not apply"):
        Engine.load(options)


@pytest.mark.parametrize(("layers", "strategy"), [
    ((-1,), "LAST_TOKEN"), ((-1,), "REDUCE_MEAN"), ((-2,), "REDUCE_MAX"), ((0,), "REDUCE_MEAN"),
])
def test_qwen2_matches_transformers(qwen2_dir: Path, graph_cache: Path,
                                    layers: tuple[int, ...], strategy: str) -> None:
    """Qwen2: Qwen3's layers with q/k/v biases and without q/k norms."""
    spec = PoolingSpec(layers, PoolingStrategy[strategy])
    engine = Engine.load(EngineOptions(model_dir=qwen2_dir, graph_tmp_dir=graph_cache,
                                       pooling=spec, max_seq_len=None))
    texts = [*heldout_texts(), "a short one ||| and its partner"]
    want = FamilyReference(qwen2_dir).encode(texts, layers=layers, strategy=strategy,
                                             max_seq_len=None)
    np.testing.assert_allclose(engine.encode(texts), want, atol=TOLERANCE, rtol=0)


def test_qwen2_int8_and_the_fp16_gpu_graph_stay_close_to_fp32(qwen2_dir: Path,
                                                              graph_cache: Path) -> None:
    """Qwen2's -int8 graph (MatMulNBits) and fp16 GPU graph (FLOAT16 initializers, run on
    CPU): worst row >= 0.999 cosine to fp32 on the short and held-out texts, as every
    family in test_families.py. Measured worst: int8 0.999842 ("好"), fp16 0.999999 ("a")."""
    for name, cosines in precision_cosines(qwen2_dir, graph_cache).items():
        assert min(cosines.values()) >= 0.999, (name, cosines)
