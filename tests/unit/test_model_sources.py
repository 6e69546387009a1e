"""Models as users have them: Google TF checkpoint, HF safetensors or .bin, ready ONNX; bad folders.

Every format must give the same vectors as transformers on the MiniLM (1e-4),
and every broken folder must fail at start with a message naming the file.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from reference import TransformersReference, heldout_texts

from bert_serving.server.errors import ModelError, ModelNotFoundError, UnsupportedModelError
from bert_serving.server.export_cli import main as export_main
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.pooling import PoolingSpec, PoolingStrategy

TOLERANCE = 1e-4
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load(model_dir: Path, cache: Path, **overrides: object) -> Engine:
    return Engine.load(EngineOptions(model_dir=model_dir, graph_tmp_dir=cache, **overrides))  # type: ignore[arg-type]


def copy_hf_folder(minilm_dir: Path, target: Path, names: tuple[str, ...]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(minilm_dir / name, target / name)
    return target


@pytest.fixture(scope="module")
def google_dir(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MiniLM written as a Google checkpoint folder by real TensorFlow."""
    pytest.importorskip("tensorflow")
    spec = importlib.util.spec_from_file_location("make_google_checkpoint",
                                                  SCRIPTS / "make_google_checkpoint.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("google")
    module.write_google_checkpoint(minilm_dir, out)
    return out


def test_google_tf_checkpoint_matches_transformers(
    google_dir: Path, graph_cache: Path, reference: TransformersReference
) -> None:
    texts = heldout_texts()
    for spec, strategy in [(PoolingSpec(), "REDUCE_MEAN"),
                           (PoolingSpec((-1,), PoolingStrategy.CLS_POOLED), "CLS_POOLED")]:
        engine = load(google_dir, graph_cache, pooling=spec)
        want = reference.encode(texts, layers=spec.layers, strategy=strategy)
        np.testing.assert_allclose(engine.encode(texts), want, atol=TOLERANCE, rtol=0)


def test_tuned_model_dir_and_ckpt_name(google_dir: Path, tmp_path: Path, graph_cache: Path,
                                       reference: TransformersReference) -> None:
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    for path in google_dir.glob("bert_model.ckpt*"):
        shutil.copy(path, tuned / path.name.replace("bert_model.ckpt", "model.ckpt-100"))
    engine = load(google_dir, graph_cache, tuned_model_dir=tuned, ckpt_name="model.ckpt-100")
    texts = heldout_texts()[:4]
    np.testing.assert_allclose(engine.encode(texts), reference.encode(texts), atol=TOLERANCE,
                               rtol=0)


def test_pytorch_model_bin_without_torch_unpickling(
    minilm_dir: Path, tmp_path: Path, graph_cache: Path, reference: TransformersReference
) -> None:
    import torch
    from safetensors.torch import load_file

    folder = copy_hf_folder(minilm_dir, tmp_path / "bin", ("config.json", "vocab.txt"))
    torch.save(load_file(str(minilm_dir / "model.safetensors")), folder / "pytorch_model.bin")
    texts = heldout_texts()
    np.testing.assert_allclose(load(folder, graph_cache).encode(texts), reference.encode(texts),
                               atol=TOLERANCE, rtol=0)


def test_exported_onnx_file_is_served_as_is(
    minilm_dir: Path, tmp_path: Path, graph_cache: Path, reference: TransformersReference
) -> None:
    output = tmp_path / "exported" / "model.onnx"
    assert export_main(["-model_dir", str(minilm_dir), "-graph_tmp_dir", str(graph_cache),
                        "-o", str(output)]) == 0
    assert (output.parent / "vocab.txt").is_file()
    for model_dir in (output, output.parent):  # the file, or its folder
        engine = load(model_dir, tmp_path / "unused-cache")
        assert engine.graph.path == output and not engine.graph.converted_now
        texts = heldout_texts()
        np.testing.assert_allclose(engine.encode(texts), reference.encode(texts),
                                   atol=TOLERANCE, rtol=0)
    with pytest.raises(UnsupportedModelError, match="REDUCE_MAX"):
        load(output, tmp_path / "unused-cache",
             pooling=PoolingSpec((-2,), PoolingStrategy.REDUCE_MAX))


def test_second_start_uses_the_cache(minilm_dir: Path, tmp_path: Path) -> None:
    first = load(minilm_dir, tmp_path)
    second = load(minilm_dir, tmp_path)
    assert first.graph.converted_now and not second.graph.converted_now
    assert first.graph.path == second.graph.path
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".onnx"] == [first.graph.path.name]


def test_missing_vocab_names_the_file(minilm_dir: Path, tmp_path: Path) -> None:
    folder = copy_hf_folder(minilm_dir, tmp_path / "m", ("config.json", "model.safetensors"))
    with pytest.raises(ModelNotFoundError, match=r"vocab\.txt is missing"):
        load(folder, tmp_path / "cache")


def test_unknown_architecture_says_what_was_found(minilm_dir: Path, tmp_path: Path) -> None:
    folder = copy_hf_folder(minilm_dir, tmp_path / "m", ("model.safetensors", "vocab.txt"))
    config = json.loads((minilm_dir / "config.json").read_text())
    config.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="model_type 'gpt2' .*GPT2LMHeadModel"):
        load(folder, tmp_path / "cache")


def test_truncated_weights_name_the_file(minilm_dir: Path, tmp_path: Path) -> None:
    folder = copy_hf_folder(minilm_dir, tmp_path / "m", ("config.json", "vocab.txt"))
    data = (minilm_dir / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"model\.safetensors is truncated or corrupt"):
        load(folder, tmp_path / "cache")


def test_wrong_ckpt_name_lists_the_checkpoints_there(google_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"check -ckpt_name.*bert_model\.ckpt"):
        load(google_dir, tmp_path / "cache", ckpt_name="model.ckpt-999")


def test_a_folder_that_is_no_model_lists_its_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedModelError, match="found: notes.txt"):
        load(tmp_path, tmp_path / "cache")


def test_a_file_that_is_no_model_is_not_called_missing(tmp_path: Path) -> None:
    readme = tmp_path / "readme.txt"
    readme.write_text("hello")
    with pytest.raises(UnsupportedModelError, match=r"readme\.txt is a file but not a \.onnx"):
        load(readme, tmp_path / "cache")


def test_max_seq_len_above_the_model_limit_fails_at_start(minilm_dir: Path,
                                                          graph_cache: Path) -> None:
    from bert_serving.server.errors import ConfigError

    with pytest.raises(ConfigError, match="-max_seq_len 513"):
        load(minilm_dir, graph_cache, max_seq_len=513)


def test_exported_fp32_graph_is_quantized_for_int8_and_int8_export_served_as_is(
    minilm_dir: Path, tmp_path: Path, graph_cache: Path
) -> None:
    fp32_file = tmp_path / "fp32" / "model.onnx"
    int8_file = tmp_path / "int8" / "model.onnx"
    base = ["-model_dir", str(minilm_dir), "-graph_tmp_dir", str(graph_cache)]
    assert export_main([*base, "-o", str(fp32_file)]) == 0
    assert export_main([*base, "-int8", "-o", str(int8_file)]) == 0
    quantized = load(fp32_file, tmp_path / "cache", dtype="int8")
    assert quantized.graph.metadata.precision == "int8" and quantized.graph.converted_now
    as_is = load(int8_file, tmp_path / "cache")  # an int8 graph cannot become fp32 again
    assert as_is.graph.path == int8_file and as_is.graph.metadata.precision == "int8"
    texts = heldout_texts()
    np.testing.assert_allclose(quantized.encode(texts), as_is.encode(texts), atol=1e-5, rtol=0)
