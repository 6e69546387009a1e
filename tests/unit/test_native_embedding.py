"""The model's own embedding: reading sentence-transformers folders, and -pooling_strategy MODEL.

Parity is against sentence-transformers itself (run offline from the MiniLM's
folder, on torch CPU): 1e-4 absolute on every element (observed ~2e-7).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from reference import heldout_texts

from bert_serving.server.cli import start
from bert_serving.server.config import ServerConfig, parse_server_config
from bert_serving.server.errors import ConfigError
from bert_serving.server.http.served_model import native_embedding_notes
from bert_serving.server.model.engine import Engine
from bert_serving.server.model.graph_contract import GraphMetadata
from bert_serving.server.model.native_embedding import (
    NativeEmbedding,
    l2_normalize,
    model_native_embedding,
    read_native_embedding,
)
from bert_serving.server.model.pooling import NativeView, PoolingSpec, PoolingStrategy
from bert_serving.server.model.served_graph import ServedGraph

TOLERANCE = 1e-4
_POOLING = "sentence_transformers.models.Pooling"


def st_folder(root: Path, modules: list[str], pooling: dict[str, object],
              prompts: dict[str, object] | None = None) -> Path:
    """A folder with only the sentence-transformers files this module reads."""
    folder = root / "st"
    (folder / "1_Pooling").mkdir(parents=True)
    entries = [{"idx": i, "name": str(i), "path": "1_Pooling" if t == "Pooling" else "",
                "type": f"sentence_transformers.models.{t}"} for i, t in enumerate(modules)]
    (folder / "modules.json").write_text(json.dumps(entries))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if prompts is not None:
        (folder / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    return folder


def planned_graph(config: ServerConfig) -> ServedGraph:
    """The served graph a start of `config` would have (a MiniLM-sized one), unconverted:
    its pooling and the native view `parse_server_config` decided to build beside it."""
    view = config.engine.native_view
    metadata = GraphMetadata(config.engine.pooling, 384, 6, 512, 384, native=view,
                             native_width=384 if view else 0)
    return ServedGraph.of(metadata, normalize=config.engine.normalize,
                          native=config.native_embedding)


def test_reads_the_minilm(minilm_dir: Path) -> None:
    native = read_native_embedding(minilm_dir)
    assert native == NativeEmbedding(PoolingStrategy.REDUCE_MEAN, normalize=True,
                                     max_seq_length=256)
    assert native.pooling_spec() == PoolingSpec((-1,), PoolingStrategy.REDUCE_MEAN, False)
    assert native.pooling_name == "mean"


@pytest.mark.parametrize(("mode", "strategy"), [
    ("pooling_mode_cls_token", PoolingStrategy.FIRST_TOKEN),
    ("pooling_mode_max_tokens", PoolingStrategy.REDUCE_MAX),
    ("pooling_mode_lasttoken", PoolingStrategy.LAST_TOKEN),
])
def test_pooling_modes(tmp_path: Path, mode: str, strategy: PoolingStrategy) -> None:
    folder = st_folder(tmp_path, ["Transformer", "Pooling"], {mode: True},
                       {"prompts": {"query": "query: ", "passage": "passage: "},
                        "default_prompt_name": "query"})
    native = read_native_embedding(folder)
    assert native is not None
    assert (native.strategy, native.normalize) == (strategy, False)
    assert native.prompts == {"query": "query: ", "passage": "passage: "}
    assert native.default_prompt_name == "query"


def test_a_folder_without_modules_is_not_native(tmp_path: Path) -> None:
    assert read_native_embedding(tmp_path) is None
    with pytest.raises(ConfigError, match="needs a sentence-transformers folder"):
        model_native_embedding(tmp_path)


@pytest.mark.parametrize(("modules", "pooling", "message"), [
    (["Transformer", "Pooling", "Dense", "Normalize"], {"pooling_mode_mean_tokens": True},
     "Transformer, Pooling, Dense, Normalize"),
    (["Transformer"], {}, "no Pooling module"),
    (["Transformer", "Pooling"], {"pooling_mode_weightedmean_tokens": True},
     "pooling_mode_weightedmean_tokens"),
    (["Transformer", "Pooling"],
     {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, "exactly one"),
    (["Transformer", "Pooling"], {"pooling_mode_mean_tokens": True, "include_prompt": False},
     "include_prompt false"),
])
def test_refuses_what_it_does_not_compute(tmp_path: Path, modules: list[str],
                                          pooling: dict[str, object], message: str) -> None:
    folder = st_folder(tmp_path, modules, pooling)
    with pytest.raises(ConfigError, match=message):
        read_native_embedding(folder)


def test_l2_normalize_keeps_zero_rows() -> None:
    rows = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    assert np.allclose(l2_normalize(rows), [[0.6, 0.8], [0.0, 0.0]])
    assert l2_normalize(rows).dtype == np.float32


def test_model_flag_resolves_from_the_folder(minilm_dir: Path) -> None:
    argv = ["-model_dir", str(minilm_dir), "-pooling_strategy", "model"]
    engine = parse_server_config(argv).engine
    assert engine.pooling == PoolingSpec((-1,), PoolingStrategy.REDUCE_MEAN, False)
    assert engine.normalize
    default = parse_server_config([]).engine
    assert (default.pooling, default.normalize) == (PoolingSpec(), False)
    with pytest.raises(ConfigError, match="-mask_cls_sep"):
        parse_server_config(["-pooling_strategy", "MODEL", "-mask_cls_sep"])
    with pytest.raises(ConfigError, match="-pooling_layer -4 -1 does not apply"):
        parse_server_config(["-pooling_strategy", "MODEL", "-pooling_layer", "-4", "-1"])
    last = parse_server_config(["-pooling_strategy", "MODEL", "-pooling_layer", "-1"]).engine
    assert last.pooling.layers == (-1,)


def test_model_flag_on_a_plain_folder_names_the_problem(
    minilm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(minilm_dir, plain, ignore=shutil.ignore_patterns("modules.json"))
    argv = ["-model_dir", str(plain), "-pooling_strategy", "MODEL"]
    with pytest.raises(ConfigError, match="has no modules.json"):
        parse_server_config(argv)
    assert start(argv) == 1  # bert-serving-start: one line, no traceback
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "has no modules.json" in lines[0]


def test_the_folder_is_read_once_at_start(tmp_path: Path) -> None:
    """parse_server_config decides the native embedding; what the gateway says of it later
    comes from the config, so a folder changed after the start changes nothing served."""
    folder = st_folder(tmp_path, ["Transformer", "Pooling"], {"pooling_mode_cls_token": True},
                       {"prompts": {"query": "query: "}, "default_prompt_name": "query"})
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    config = parse_server_config(["-model_dir", str(folder), "-http_port", "1"])
    assert config.native_embedding == read_native_embedding(folder)
    assert config.engine.native_view == NativeView(
        PoolingSpec((-1,), PoolingStrategy.FIRST_TOKEN), normalize=False)
    notes = native_embedding_notes(config, planned_graph(config))
    assert notes and "-max_seq_len 25 cuts texts the model reads up to 128" in notes[0]
    (folder / "modules.json").unlink()
    assert native_embedding_notes(config, planned_graph(config)) == notes


def test_modules_it_does_not_compute_refuse_model_only(tmp_path: Path) -> None:
    """A Dense module: -pooling_strategy MODEL is refused by name; a plain start serves the
    folder with no native embedding (and so no second pooling)."""
    folder = st_folder(tmp_path, ["Transformer", "Pooling", "Dense"],
                       {"pooling_mode_mean_tokens": True})
    plain = parse_server_config(["-model_dir", str(folder), "-http_port", "1"])
    assert (plain.native_embedding, plain.engine.native_view) == (None, None)
    assert native_embedding_notes(plain, planned_graph(plain)) == []
    with pytest.raises(ConfigError, match="Transformer, Pooling, Dense"):
        parse_server_config(["-model_dir", str(folder), "-pooling_strategy", "MODEL"])


def test_prompts_that_are_not_a_mapping_are_named(tmp_path: Path) -> None:
    """Every start reads the folder now, so a malformed file must be a ConfigError (MODEL's
    refusal), never a traceback; without MODEL the folder just has no native embedding."""
    folder = st_folder(tmp_path, ["Transformer", "Pooling"], {"pooling_mode_mean_tokens": True},
                       {"prompts": ["query: "]})
    with pytest.raises(ConfigError, match="prompts are not a mapping"):
        read_native_embedding(folder)
    assert parse_server_config(["-model_dir", str(folder)]).native_embedding is None


def test_model_pooling_matches_sentence_transformers(minilm_dir: Path, graph_cache: Path) -> None:
    from sentence_transformers import SentenceTransformer

    argv = ["-model_dir", str(minilm_dir), "-pooling_strategy", "MODEL", "-max_seq_len", "256",
            "-graph_tmp_dir", str(graph_cache)]
    engine = Engine.load(parse_server_config(argv).engine)
    # No 'a ||| b': the engine reads it as a sentence pair (the original protocol's), where
    # sentence-transformers reads the bars as text (as the HTTP routes, which send it verbatim).
    texts = [t for t in heldout_texts() if "|||" not in t] + ["a long text " * 100]
    model = SentenceTransformer(str(minilm_dir), device="cpu")
    expected = model.encode(texts, convert_to_numpy=True)
    ours = engine.encode(texts)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < TOLERANCE


def test_one_graph_pools_the_servers_and_the_models_own_embedding(
        minilm_dir: Path, graph_cache: Path) -> None:
    """A plain start with -http_port: [layer -2 mean | last layer mean, normalized] per row,
    each half what a graph of that pooling alone gives (the encoder runs once)."""
    both_options = parse_server_config(["-model_dir", str(minilm_dir), "-http_port", "1",
                                        "-graph_tmp_dir", str(graph_cache)]).engine
    view = both_options.native_view
    assert view is not None and view.normalize
    both = Engine.load(both_options)
    served = Engine.load(dataclasses.replace(both_options, native_view=None))
    own = Engine.load(parse_server_config(["-model_dir", str(minilm_dir), "-pooling_strategy",
                                           "MODEL", "-graph_tmp_dir", str(graph_cache)]).engine)
    metadata = both.graph.metadata
    assert (metadata.native, metadata.output_width, metadata.row_width) == (view, 384, 768)
    texts = heldout_texts()
    rows = both.encode(texts)
    assert rows.shape == (len(texts), 768)
    np.testing.assert_allclose(rows[:, :384], served.encode(texts), atol=1e-6, rtol=0)
    np.testing.assert_allclose(rows[:, 384:], own.encode(texts), atol=1e-6, rtol=0)


def test_a_folder_saved_by_sentence_transformers_6_is_read_as_its_model(
        minilm_dir: Path, graph_cache: Path, tmp_path: Path) -> None:
    """6.x writes `sentence_transformers.<package>.modules.pooling.Pooling` and
    `"pooling_mode": "mean"` where 5.x wrote `...models.Pooling` and one switch a mode."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    model.save(str(tmp_path / "saved"))
    saved = tmp_path / "saved"
    types = [m["type"] for m in json.loads((saved / "modules.json").read_text())]
    pooling = json.loads((saved / "1_Pooling" / "config.json").read_text())
    if types[1] == "sentence_transformers.models.Pooling" and "pooling_mode" not in pooling:
        pytest.skip("this sentence-transformers writes the 5.x layout, tested above")
    native = read_native_embedding(saved)
    assert native is not None
    assert (native.strategy, native.normalize) == (PoolingStrategy.REDUCE_MEAN, True)
    argv = ["-model_dir", str(saved), "-pooling_strategy", "MODEL", "-max_seq_len", "256",
            "-graph_tmp_dir", str(graph_cache)]
    texts = [t for t in heldout_texts() if "|||" not in t]
    np.testing.assert_allclose(Engine.load(parse_server_config(argv).engine).encode(texts),
                               model.encode(texts, convert_to_numpy=True), atol=TOLERANCE,
                               rtol=0)
    (saved / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "median"}))
    with pytest.raises(ConfigError, match="pooling_mode median"):
        read_native_embedding(saved)
