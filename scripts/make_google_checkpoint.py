#!/usr/bin/env python
"""Write a Hugging Face BERT as a Google-released TF checkpoint folder, using real TensorFlow.

The tensor-bundle reader (`bert_serving.server.convert.tf_bundle`) must not be tested
against files it wrote itself, so its fixtures come from TensorFlow's own `Saver`, the
writer Google used for `chinese_L-12_H-768_A-12`. This is the only place the project
uses TensorFlow. The output folder has Google's layout::

    bert_config.json  vocab.txt  bert_model.ckpt.index
    bert_model.ckpt.data-00000-of-00001  bert_model.ckpt.meta

The weight naming here is written out independently of the package's own
`weights.py`, so a shared mistake cannot make the round-trip test pass.

Usage: python scripts/make_google_checkpoint.py HF_DIR OUT_DIR [--ckpt-name NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

__all__ = ["GOOGLE_CONFIG_KEYS", "google_tensors", "write_google_checkpoint"]

GOOGLE_CONFIG_KEYS = (
    "attention_probs_dropout_prob",
    "hidden_act",
    "hidden_dropout_prob",
    "hidden_size",
    "initializer_range",
    "intermediate_size",
    "max_position_embeddings",
    "num_attention_heads",
    "num_hidden_layers",
    "type_vocab_size",
    "vocab_size",
)

# Google name suffix -> Hugging Face name suffix, per encoder layer.
_LAYER_NAMES = {
    "attention/self/query": "attention.self.query",
    "attention/self/key": "attention.self.key",
    "attention/self/value": "attention.self.value",
    "attention/output/dense": "attention.output.dense",
    "intermediate/dense": "intermediate.dense",
    "output/dense": "output.dense",
}
_LAYER_NORMS = {
    "attention/output/LayerNorm": "attention.output.LayerNorm",
    "output/LayerNorm": "output.LayerNorm",
}


def _hf(state: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Look a tensor up with or without the `bert.` prefix BertForPreTraining adds."""
    for key in (name, f"bert.{name}"):
        if key in state:
            return np.asarray(state[key], dtype=np.float32)
    raise KeyError(f"{name!r} not in the safetensors file: is this a BERT?")


def _dense(out: dict[str, np.ndarray], state: dict[str, np.ndarray], google: str, hf: str) -> None:
    """Google stores kernels [in, out]: the transpose of torch Linear's [out, in] weight."""
    out[f"{google}/kernel"] = np.ascontiguousarray(_hf(state, f"{hf}.weight").T)
    out[f"{google}/bias"] = _hf(state, f"{hf}.bias")


def _layer_norm(
    out: dict[str, np.ndarray], state: dict[str, np.ndarray], google: str, hf: str
) -> None:
    out[f"{google}/gamma"] = _hf(state, f"{hf}.weight")
    out[f"{google}/beta"] = _hf(state, f"{hf}.bias")


def google_tensors(state: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    """HF state dict -> float32 arrays under Google's variable names (no extras)."""
    out: dict[str, np.ndarray] = {}
    for table in ("word", "position", "token_type"):
        out[f"bert/embeddings/{table}_embeddings"] = _hf(
            state, f"embeddings.{table}_embeddings.weight"
        )
    _layer_norm(out, state, "bert/embeddings/LayerNorm", "embeddings.LayerNorm")
    for i in range(num_layers):
        for google, hf in _LAYER_NAMES.items():
            _dense(out, state, f"bert/encoder/layer_{i}/{google}", f"encoder.layer.{i}.{hf}")
        for google, hf in _LAYER_NORMS.items():
            _layer_norm(out, state, f"bert/encoder/layer_{i}/{google}", f"encoder.layer.{i}.{hf}")
    _dense(out, state, "bert/pooler/dense", "pooler.dense")
    return out


def _extras(vocab_size: int) -> dict[str, np.ndarray]:
    """Variables a real Google checkpoint also holds, which readers must ignore."""
    rng = np.random.default_rng(0)
    return {
        "global_step": np.array(1000000, dtype=np.int64),
        "cls/predictions/output_bias": rng.standard_normal(vocab_size).astype(np.float32),
    }


def _save_with_tensorflow(tensors: dict[str, np.ndarray], prefix: Path) -> None:
    """TF1-style graph + `tf.compat.v1.train.Saver`: writes .index, .data-*, .meta.

    Values are fed through placeholders so the .meta graph stays small, as Google's is.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        feeds, variables = {}, {}
        for name, array in tensors.items():
            placeholder = v1.placeholder(tf.as_dtype(array.dtype), shape=array.shape)
            variables[name] = v1.Variable(placeholder, name=name)
            feeds[placeholder] = array
        session.run(v1.global_variables_initializer(), feed_dict=feeds)
        saver = v1.train.Saver(var_list=variables, write_version=v1.train.SaverDef.V2)
        saver.save(session, str(prefix), write_state=False)


def write_google_checkpoint(
    hf_dir: Path, out_dir: Path, ckpt_name: str = "bert_model.ckpt"
) -> Path:
    """Write `out_dir` in Google's layout from a HF BERT folder; returns the checkpoint prefix."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    hf_config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    state = load_file(str(hf_dir / "model.safetensors"))
    tensors = google_tensors(state, hf_config["num_hidden_layers"])
    tensors.update(_extras(hf_config["vocab_size"]))

    out_dir.mkdir(parents=True, exist_ok=True)
    google_config = {key: hf_config[key] for key in GOOGLE_CONFIG_KEYS}
    (out_dir / "bert_config.json").write_text(
        json.dumps(google_config, indent=2) + "\n", encoding="utf-8"
    )
    shutil.copyfile(hf_dir / "vocab.txt", out_dir / "vocab.txt")
    prefix = out_dir / ckpt_name
    _save_with_tensorflow(tensors, prefix)
    return prefix


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "hf_dir", type=Path, help="HF BERT folder: config.json, model.safetensors, vocab.txt"
    )
    parser.add_argument("out_dir", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--ckpt-name", default="bert_model.ckpt", help="checkpoint prefix name")
    args = parser.parse_args(argv)
    prefix = write_google_checkpoint(args.hf_dir, args.out_dir, args.ckpt_name)
    print(f"wrote {prefix}.index and {prefix}.data-00000-of-00001")


if __name__ == "__main__":
    main()
