"""SPLADE: a masked-LM folder as a graph of sparse term weights, one per vocabulary entry.

For a `*ForMaskedLM` checkpoint served with `-head sparse`, the graph outputs, per
text, SPLADE's weights (naver/splade, sentence-transformers' `SpladePooling`)::

    w[v] = max over the text's real tokens t of log(1 + relu(logits[t, v]))

where `logits` is BERT's masked-LM head on the last layer: dense -> activation ->
LayerNorm (`cls.predictions.transform`), then the decoder, tied to the word
embeddings, plus its bias. Every token of the attention mask counts, [CLS] and
[SEP] included, as SPLADE does; padding does not. Shape (N, vocab_size), float32.

The max is taken over the logits, before relu and log: both rise with their input,
so max(log(1 + relu(x))) = log(1 + relu(max x)) exactly, even in floating point,
and the bias, relu and log run on (batch, vocab) rather than (batch, seq, vocab).
Padding gets a -1e30 penalty before the max (its logits are not zero; the fp16
conversion clips the constant to -1e4, still far below any logit).

The encoder is `build_bert_graph`'s (token vectors of the last layer); this module
appends the head to that graph and replaces its output, with the encoder builder's
own dense, LayerNorm and activation helpers, so that maths is spelled once.

Usage::

    head = read_mlm_head(hf_tensors, weights)
    model = build_sparse_graph(config, weights, head, pooling=PoolingSpec())
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import UnsupportedModelError
from ..model.head import ModelHead
from ..model.pooling import PoolingSpec, PoolingStrategy
from .bert_config import BertConfig
from .graph import (
    OUTPUT_NAME,
    GraphMetadata,
    SpecialIds,
    _activation,
    _dense,
    _GraphBuilder,
    _layer_norm,
    build_bert_graph,
)
from .weights import EMBEDDINGS, BertWeights

__all__ = ["build_sparse_graph", "read_mlm_head"]

_PADDING_PENALTY = -1e30
_TOKEN_STATES = "token_states"
# Hugging Face names of BERT's masked-LM head (model prefix `cls.predictions.`).
_HF = "cls.predictions."


# Google's names for the masked-LM head (as in Google's checkpoints), kernels [in, out].
TRANSFORM = "cls/predictions/transform/dense"
TRANSFORM_NORM = "cls/predictions/transform/LayerNorm"
DECODER_KERNEL = "cls/predictions/decoder/kernel"
DECODER_BIAS = "cls/predictions/output_bias"


def _tensor(tensors: Mapping[str, np.ndarray], source: str, *names: str) -> np.ndarray:
    for name in names:
        if name in tensors:
            return np.asarray(tensors[name], dtype=np.float32)
    raise UnsupportedModelError(
        f"{source} has no masked-LM head weight {names[0]!r}: -head sparse needs a "
        "*ForMaskedLM checkpoint (SPLADE) with its cls.predictions.* weights"
    )


def read_mlm_head(tensors: Mapping[str, np.ndarray], weights: BertWeights) -> BertWeights:
    """The `cls.predictions.*` tensors of a Hugging Face state dict, under Google's names.

    The decoder is the word embeddings when it is tied (no `decoder.weight` saved).
    LayerNorm weights are read under either spelling (`weight`/`bias`, or the older
    `gamma`/`beta` that splade-tiny's file uses).
    """
    source = weights.source
    norm = f"{_HF}transform.LayerNorm."
    decoder = tensors.get(f"{_HF}decoder.weight")
    if decoder is None:
        decoder = weights[f"{EMBEDDINGS}/word_embeddings"]
    head = {
        f"{TRANSFORM}/kernel": _tensor(tensors, source, f"{_HF}transform.dense.weight").T,
        f"{TRANSFORM}/bias": _tensor(tensors, source, f"{_HF}transform.dense.bias"),
        f"{TRANSFORM_NORM}/gamma": _tensor(tensors, source, f"{norm}weight", f"{norm}gamma"),
        f"{TRANSFORM_NORM}/beta": _tensor(tensors, source, f"{norm}bias", f"{norm}beta"),
        DECODER_KERNEL: np.asarray(decoder, dtype=np.float32).T,
        DECODER_BIAS: _tensor(tensors, source, f"{_HF}bias", f"{_HF}decoder.bias"),
    }
    return BertWeights({k: np.ascontiguousarray(v) for k, v in head.items()}, source)


class _HeadBuilder(_GraphBuilder):
    """The encoder builder's helpers, under names that cannot clash with the encoder's."""

    def _name(self, hint: str) -> str:
        return "sparse." + super()._name(hint)


def _splade(g: _HeadBuilder, states: str, head: BertWeights, config: BertConfig) -> str:
    """[batch, seq, hidden] token states -> [batch, vocab] SPLADE weights."""
    transformed = _activation(g, _dense(g, states, head, TRANSFORM), config.hidden_act)
    normed = _layer_norm(g, transformed, head, TRANSFORM_NORM, config.layer_norm_eps)
    logits = g.op("MatMul", normed, g.const(head[DECODER_KERNEL], "decoder"))
    mask = g.op("Unsqueeze", g.op("Cast", "attention_mask", to=TensorProto.FLOAT), g.ints(2))
    penalty = g.op("Mul", g.op("Sub", g.scalar_f(1.0), mask), g.scalar_f(_PADDING_PENALTY))
    peak = g.op("ReduceMax", g.op("Add", logits, penalty), axes=[1], keepdims=0)
    biased = g.op("Add", peak, g.const(head[DECODER_BIAS], "decoder_bias"))
    return g.op("Log", g.op("Add", g.op("Relu", biased), g.scalar_f(1.0)))


def build_sparse_graph(config: BertConfig, weights: BertWeights, head: BertWeights, *,
                       pooling: PoolingSpec, use_position_embeddings: bool = True
                       ) -> onnx.ModelProto:
    """The encoder with SPLADE's head: output `embeddings` [batch, vocab_size].

    `pooling` is recorded in the metadata only (the server's flags, checked again when
    an exported graph is served); SPLADE pools in its own way.
    """
    decoder_shape = head[DECODER_KERNEL].shape
    if decoder_shape != (config.hidden_size, config.vocab_size):
        raise UnsupportedModelError(
            f"{weights.source}: the masked-LM decoder has shape {decoder_shape[::-1]}, but "
            f"the config implies {(config.vocab_size, config.hidden_size)}")
    model = build_bert_graph(config, weights, PoolingSpec((-1,), PoolingStrategy.NONE),
                             special_ids=SpecialIds(0, 0),
                             use_position_embeddings=use_position_embeddings)
    graph = model.graph
    graph.node[-1].output[0] = _TOKEN_STATES  # the Identity that named the token vectors
    g = _HeadBuilder()
    g.nodes.append(helper.make_node("Identity", [_splade(g, _TOKEN_STATES, head, config)],
                                    [OUTPUT_NAME]))
    graph.node.extend(g.nodes)
    graph.initializer.extend(g.initializers)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(
        OUTPUT_NAME, TensorProto.FLOAT, ["batch", config.vocab_size]))
    metadata = GraphMetadata(pooling, config.hidden_size, config.num_hidden_layers,
                             config.max_position_embeddings, config.vocab_size,
                             num_attention_heads=config.num_attention_heads,
                             position_offset=config.position_offset, head=ModelHead.SPARSE)
    del model.metadata_props[:]
    helper.set_model_props(model, metadata.as_props())
    return model
