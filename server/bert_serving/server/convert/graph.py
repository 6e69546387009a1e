"""Build the BERT encoder and its pooling as one ONNX graph, straight from numpy weights.

The same builder serves the families that differ from BERT only in their
embeddings (see `bert_config`): RoBERTa's positions count real tokens from
`pad_token_id + 1`, DistilBERT has no token types, ELECTRA projects its
embeddings to the hidden size. The encoder layers are BERT's in all of them;
MPNet's add one relative position bias, shared by every layer, to the attention
scores (`_relative_position_bias`). ModernBERT's layers are their own, built by
`modernbert_graph` under the same pooling, and so are the decoder-only Qwen3's and
Qwen2's (`qwen_graph`).

No torch and no TensorFlow: `onnx.helper` nodes over the arrays in `BertWeights`.
The graph takes `input_ids`, `attention_mask`, `token_type_ids` (int64, dynamic
batch and sequence axes) and outputs `embeddings`: [batch, width] pooled vectors,
or [batch, seq, width] token vectors for pooling strategy NONE. Layers above the
deepest one the pooling reads are not built at all. Sequence-classification graphs
(convert/heads.py) reuse `encoder_states` and `assemble_graph` and output their
logits under the same name.

The node pattern follows what PyTorch exports for BERT, so onnxruntime's
transformer optimizer recognises and fuses it (see `optimize`).

Usage::

    model = build_bert_graph(config, weights, PoolingSpec(), special_ids=SpecialIds(101, 102))
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import UnsupportedModelError
from ..model.graph_contract import INPUT_NAMES, OUTPUT_NAME, GraphMetadata, SpecialIds
from ..model.pooling import NativeView, PoolingSpec, PoolingStrategy
from .bert_config import BertConfig
from .weights import (
    EMBEDDINGS,
    EMBEDDINGS_PROJECT,
    POOLER,
    RELATIVE_ATTENTION_BIAS,
    BertWeights,
    layer_prefix,
)

__all__ = ["OPSET", "assemble_graph", "build_bert_graph", "encoder_states", "pair_bias",
           "refuse_without_positions", "relative_position_buckets", "sequence_length",
           "sequence_positions"]

OPSET = 17  # LayerNormalization is a standard op from 17 on
IR_VERSION = 8  # onnxruntime 1.31 reads IR <= 13; 8 is what opset 17 needs
# The original's additive attention bias for padding; exp(-10000) is 0 in float32.
ATTENTION_MASK_BIAS = -10000.0
# The original's mask bias for REDUCE_MAX, so padding never wins the max.
MAX_POOL_MASK_BIAS = -1e30
# MPNet's relative positions further apart than this share the farthest buckets.
RELATIVE_MAX_DISTANCE = 128


class _GraphBuilder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._counter = 0

    def _name(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def const(self, array: np.ndarray, hint: str = "const") -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, *inputs: str, hint: str | None = None, **attrs: Any) -> str:
        output = self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attrs))
        return output

    def scalar_f(self, value: float) -> str:
        return self.const(np.array(value, dtype=np.float32), "scalar")

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, dtype=np.int64), "ints")


def _dense(g: _GraphBuilder, x: str, weights: BertWeights, prefix: str) -> str:
    """x @ kernel + bias, the MatMul+Add pair the optimizer fuses."""
    kernel = g.const(weights[f"{prefix}/kernel"], prefix.replace("/", ".") + ".kernel")
    bias = g.const(weights[f"{prefix}/bias"], prefix.replace("/", ".") + ".bias")
    name = prefix.replace("/", ".")
    return g.op("Add", g.op("MatMul", x, kernel, hint=f"{name}.matmul"), bias)


def _layer_norm(g: _GraphBuilder, x: str, weights: BertWeights, prefix: str, eps: float) -> str:
    gamma = g.const(weights[f"{prefix}/gamma"], prefix.replace("/", ".") + ".gamma")
    beta = g.const(weights[f"{prefix}/beta"], prefix.replace("/", ".") + ".beta")
    return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)


def _activation(g: _GraphBuilder, x: str, name: str) -> str:
    """The encoder's feed-forward activation, in the shapes PyTorch exports."""
    if name == "relu":
        return g.op("Relu", x)
    if name == "silu":  # x sigmoid(x), Qwen's SwiGLU
        return g.op("Mul", x, g.op("Sigmoid", x))
    half = g.op("Mul", x, g.scalar_f(0.5))
    if name == "gelu":  # exact: 0.5 x (1 + erf(x / sqrt 2))
        erf = g.op("Erf", g.op("Div", x, g.scalar_f(math.sqrt(2.0))))
        return g.op("Mul", half, g.op("Add", erf, g.scalar_f(1.0)))
    # gelu_new / gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    cube = g.op("Pow", x, g.scalar_f(3.0))
    inner = g.op("Add", x, g.op("Mul", cube, g.scalar_f(0.044715)))
    tanh = g.op("Tanh", g.op("Mul", inner, g.scalar_f(math.sqrt(2.0 / math.pi))))
    return g.op("Mul", half, g.op("Add", tanh, g.scalar_f(1.0)))


def _embeddings(
    g: _GraphBuilder, config: BertConfig, weights: BertWeights, use_positions: bool
) -> str:
    words = g.op("Gather", g.const(weights[f"{EMBEDDINGS}/word_embeddings"], "word_emb"),
                 "input_ids", axis=0)
    summed = words
    if config.type_vocab_size:  # DistilBERT has none: its graph ignores token_type_ids
        types = g.op("Gather",
                     g.const(weights[f"{EMBEDDINGS}/token_type_embeddings"], "type_emb"),
                     "token_type_ids", axis=0)
        summed = g.op("Add", words, types)
    if use_positions:
        table = g.const(weights[f"{EMBEDDINGS}/position_embeddings"], "pos_emb")
        positions = _position_ids(g, config)
        summed = g.op("Add", summed, g.op("Gather", table, positions, axis=0))
    normed = _layer_norm(g, summed, weights, f"{EMBEDDINGS}/LayerNorm", config.layer_norm_eps)
    if config.embedding_width != config.hidden_size:  # ELECTRA
        return _dense(g, normed, weights, EMBEDDINGS_PROJECT)
    return normed


def _position_ids(g: _GraphBuilder, config: BertConfig) -> str:
    """[seq] 0, 1, 2 ... for BERT; [batch, seq] for RoBERTa, as transformers makes them.

    RoBERTa's real tokens take positions pad_token_id + 1 onwards and padding takes
    pad_token_id (transformers' create_position_ids_from_input_ids, which counts
    non-padding ids; the attention mask says the same without reading ids).
    """
    if not config.position_offset:
        return sequence_positions(g, hint="position_ids")
    counted = g.op("CumSum", "attention_mask", g.const(np.array(1, np.int64)))
    real = g.op("Mul", counted, "attention_mask")
    return g.op("Add", real, g.const(np.array(config.pad_token_id, np.int64)),
                hint="position_ids")


def sequence_length(g: _GraphBuilder) -> str:
    """[1] int64: the batch's sequence length, for slicing tables built for the longest."""
    return g.op("Slice", g.op("Shape", "input_ids"), g.ints(1), g.ints(2))


def sequence_positions(g: _GraphBuilder, hint: str | None = None) -> str:
    """[seq] int64 0, 1, 2 ...: the batch's positions (Shape, Gather, Range, as PyTorch
    exports BERT's position ids)."""
    seq_len = g.op("Gather", g.op("Shape", "input_ids"), g.const(np.array(1, np.int64)),
                   axis=0)
    return g.op("Range", g.const(np.array(0, np.int64)), seq_len,
                g.const(np.array(1, np.int64)), hint=hint)


def pair_bias(g: _GraphBuilder, blocked: str) -> str:
    """[1, 1, seq, seq] additive bias: -10000 where `blocked` ([query, key] bool) is true."""
    masked = g.op("Mul", g.op("Cast", blocked, to=TensorProto.FLOAT),
                  g.scalar_f(ATTENTION_MASK_BIAS))
    return g.op("Unsqueeze", masked, g.ints(0, 1))


def refuse_without_positions(family: str) -> NoReturn:
    """-no_position_embeddings for a rotary family: there is no table to leave out."""
    raise UnsupportedModelError(
        f"-no_position_embeddings does not apply to {family}: its positions are rotary, "
        "part of every attention layer, not a table added to the embeddings; drop the flag")


def _attention_bias(g: _GraphBuilder) -> str:
    """[batch, 1, 1, seq] additive bias: 0 for real tokens, -10000 for padding.

    Built in the order PyTorch exports it (Unsqueeze, Unsqueeze, Cast, Sub, Mul),
    which is what onnxruntime's attention fusion looks for.
    """
    expanded = g.op("Unsqueeze", g.op("Unsqueeze", "attention_mask", g.ints(1)), g.ints(2))
    mask = g.op("Cast", expanded, to=TensorProto.FLOAT)
    inverted = g.op("Sub", g.scalar_f(1.0), mask)
    return g.op("Mul", inverted, g.scalar_f(ATTENTION_MASK_BIAS))


def relative_position_buckets(length: int, num_buckets: int,
                              max_distance: int = RELATIVE_MAX_DISTANCE) -> np.ndarray:
    """int32 [length, length]: the bucket of key position j seen from query position i.

    MPNet's (T5's bidirectional) rule, as transformers' `relative_position_bucket`
    computes it, in float32 like torch so the cut between buckets falls on the same
    distances: half the buckets per direction, exact up to a quarter of them, then
    logarithmic up to `max_distance`.
    """
    positions = np.arange(length, dtype=np.int64)
    n = positions[:, None] - positions[None, :]  # -(key - query)
    half = num_buckets // 2
    bucket = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    max_exact = half // 2
    with np.errstate(divide="ignore"):
        scaled = (np.log(n.astype(np.float32) / max_exact)
                  / np.float32(math.log(max_distance / max_exact)) * (half - max_exact))
    large = max_exact + np.where(n < max_exact, 0, scaled).astype(np.int64)
    bucket += np.where(n < max_exact, n, np.minimum(large, half - 1))
    return bucket.astype(np.int32)


def _relative_position_bias(g: _GraphBuilder, config: BertConfig, weights: BertWeights) -> str:
    """[1, heads, seq, seq]: MPNet's learned bias for each query/key distance.

    The bucket of every (i, j) up to the longest input is computed here once and
    sliced to the batch's length in the graph; the table lookup gives each head's
    bias, added to the padding bias so each layer's attention adds both at once.
    """
    buckets = relative_position_buckets(config.max_position_embeddings,
                                        config.relative_attention_num_buckets)
    seq = sequence_length(g)
    ends = g.op("Concat", seq, seq, axis=0)
    window = g.op("Slice", g.const(buckets, "relative_buckets"), g.ints(0, 0), ends,
                  g.ints(0, 1))
    table = g.const(weights[RELATIVE_ATTENTION_BIAS], "relative_attention_bias")
    per_pair = g.op("Gather", table, window, axis=0)  # [seq, seq, heads]
    return g.op("Unsqueeze", g.op("Transpose", per_pair, perm=[2, 0, 1]), g.ints(0))


def _self_attention(
    g: _GraphBuilder, x: str, bias: str, config: BertConfig, weights: BertWeights, prefix: str
) -> str:
    heads, head_size = config.num_attention_heads, config.head_size
    split_heads = g.ints(0, 0, heads, head_size)

    def project(name: str, perm: list[int]) -> str:
        projected = _dense(g, x, weights, f"{prefix}/attention/self/{name}")
        return g.op("Transpose", g.op("Reshape", projected, split_heads), perm=perm)

    query = project("query", [0, 2, 1, 3])  # [b, h, s, d]
    key = project("key", [0, 2, 3, 1])  # [b, h, d, s]
    value = project("value", [0, 2, 1, 3])
    scores = g.op("Div", g.op("MatMul", query, key), g.scalar_f(math.sqrt(head_size)))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", probs, value), perm=[0, 2, 1, 3])
    return g.op("Reshape", context, g.ints(0, 0, config.hidden_size))


def _encoder_layer(
    g: _GraphBuilder, x: str, bias: str, config: BertConfig, weights: BertWeights, index: int
) -> str:
    prefix = layer_prefix(index)
    eps = config.layer_norm_eps
    context = _self_attention(g, x, bias, config, weights, prefix)
    attended = g.op("Add", _dense(g, context, weights, f"{prefix}/attention/output/dense"), x)
    attended = _layer_norm(g, attended, weights, f"{prefix}/attention/output/LayerNorm", eps)
    inner = _activation(g, _dense(g, attended, weights, f"{prefix}/intermediate/dense"),
                        config.hidden_act)
    output = g.op("Add", _dense(g, inner, weights, f"{prefix}/output/dense"), attended)
    return _layer_norm(g, output, weights, f"{prefix}/output/LayerNorm", eps)


def _pooling_mask(g: _GraphBuilder, spec: PoolingSpec, special: SpecialIds) -> str:
    """[batch, seq, 1] float: which tokens pooling reads."""
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    if spec.mask_cls_sep:
        ids = "input_ids"
        is_cls = g.op("Equal", ids, g.const(np.array(special.cls_id, np.int64)))
        is_sep = g.op("Equal", ids, g.const(np.array(special.sep_id, np.int64)))
        keep = g.op("Cast", g.op("Not", g.op("Or", is_cls, is_sep)), to=TensorProto.FLOAT)
        mask = g.op("Mul", mask, keep)
    return g.op("Unsqueeze", mask, g.ints(2))


def _masked_mean(g: _GraphBuilder, states: str, mask: str) -> str:
    total = g.op("ReduceSum", g.op("Mul", states, mask), g.ints(1), keepdims=0)
    count = g.op("ReduceSum", mask, g.ints(1), keepdims=0)
    return g.op("Div", total, g.op("Add", count, g.scalar_f(1e-10)))


def _masked_max(g: _GraphBuilder, states: str, mask: str) -> str:
    penalty = g.op("Mul", g.op("Sub", g.scalar_f(1.0), mask), g.scalar_f(MAX_POOL_MASK_BIAS))
    # ReduceMax takes axes as an attribute up to opset 17 (ReduceSum as an input).
    return g.op("ReduceMax", g.op("Add", states, penalty), axes=[1], keepdims=0)


def _last_real_token(g: _GraphBuilder, states: str) -> str:
    """The state of each row's last real token ([SEP] for plain texts)."""
    lengths = g.op("ReduceSum", "attention_mask", g.ints(1), keepdims=1)
    last = g.op("Sub", lengths, g.const(np.array(1, np.int64)))
    return g.op("GatherND", states, last, batch_dims=1)


def _first_token(g: _GraphBuilder, states: str) -> str:
    return g.op("Gather", states, g.const(np.array(0, np.int64)), axis=1)


def _pool(
    g: _GraphBuilder,
    hidden_states: list[str],
    spec: PoolingSpec,
    config: BertConfig,
    weights: BertWeights,
    special: SpecialIds,
) -> str:
    strategy = spec.strategy
    if strategy is PoolingStrategy.CLS_POOLED:
        if not weights.has(f"{POOLER}/kernel"):
            raise UnsupportedModelError(
                f"{weights.source} has no pooler (DistilBERT, ELECTRA, ModernBERT and Qwen never "
                "do), "
                "so -pooling_strategy CLS_POOLED cannot be computed: use CLS_TOKEN or REDUCE_MEAN"
            )
        first = _first_token(g, hidden_states[-1])
        return g.op("Tanh", _dense(g, first, weights, POOLER))
    picked = [hidden_states[i] for i in spec.resolved_layers(config.num_hidden_layers)]
    states = picked[0] if len(picked) == 1 else g.op("Concat", *picked, axis=-1)
    mask = _pooling_mask(g, spec, special)
    if strategy is PoolingStrategy.REDUCE_MEAN:
        return _masked_mean(g, states, mask)
    if strategy is PoolingStrategy.REDUCE_MAX:
        return _masked_max(g, states, mask)
    if strategy is PoolingStrategy.REDUCE_MEAN_MAX:
        return g.op("Concat", _masked_mean(g, states, mask), _masked_max(g, states, mask),
                    axis=1)
    if strategy is PoolingStrategy.FIRST_TOKEN:
        return _first_token(g, states)
    if strategy is PoolingStrategy.LAST_TOKEN:
        return _last_real_token(g, states)
    return g.op("Mul", states, mask)  # NONE: token vectors, padding rows zeroed


def build_bert_graph(
    config: BertConfig,
    weights: BertWeights,
    pooling: PoolingSpec,
    *,
    special_ids: SpecialIds,
    use_position_embeddings: bool = True,
    native: NativeView | None = None,
) -> onnx.ModelProto:
    """The encoder up to the deepest pooled layer, with pooling, as an ONNX model.

    With `native`, each row also holds the model's own embedding after the pooled
    columns (`NativeView`): one encoder run, built as deep as the deeper of the two.
    """
    if native is not None and pooling.strategy is PoolingStrategy.NONE:
        raise UnsupportedModelError("token vectors (-pooling_strategy NONE) cannot share "
                                    "rows with the model's own embedding")
    depth = max(pooling.deepest_layer(config.num_hidden_layers),
                native.pooling.deepest_layer(config.num_hidden_layers) if native else 0)
    g = _GraphBuilder()
    hidden_states = encoder_states(g, config, weights, depth, use_position_embeddings)
    pooled = _pool(g, hidden_states, pooling, config, weights, special_ids)
    width = pooling.output_width(config.hidden_size)
    native_width = native.pooling.output_width(config.hidden_size) if native else 0
    if native is not None:
        own = _pool(g, hidden_states, native.pooling, config, weights, special_ids)
        pooled = g.op("Concat", pooled, _l2_normalized(g, own) if native.normalize else own,
                      axis=1)
    out_shape: list[str | int] = ["batch", width + native_width]
    if pooling.strategy is PoolingStrategy.NONE:
        out_shape = ["batch", "sequence", width]
    metadata = GraphMetadata(pooling, config.hidden_size, config.num_hidden_layers,
                             config.max_position_embeddings, width,
                             num_attention_heads=config.num_attention_heads,
                             position_offset=config.position_offset,
                             native=native, native_width=native_width)
    return assemble_graph(g, pooled, out_shape, metadata)


def _l2_normalized(g: _GraphBuilder, vectors: str) -> str:
    """Rows scaled to unit length as torch's normalize does (norms clamped at 1e-12).

    Clip, not Max: the fp16 converter keeps Max in fp32 (its block list) without a Cast
    in front, and onnxruntime then refuses the GPU graph for mixing the two types.
    """
    norms = g.op("ReduceL2", vectors, axes=[1], keepdims=1)
    return g.op("Div", vectors, g.op("Clip", norms, g.scalar_f(1e-12)))


def encoder_states(
    g: _GraphBuilder, config: BertConfig, weights: BertWeights, depth: int, use_positions: bool
) -> list[str]:
    """The embeddings' output and each of the first `depth` layers' (shapes checked first)."""
    if config.family == "modernbert":  # layers of its own; that module imports this one
        from .modernbert_graph import modernbert_states

        return modernbert_states(g, config, weights, depth, use_positions)
    if config.family in ("qwen3", "qwen2"):  # decoder layers; that module imports this one
        from .qwen_graph import qwen_states

        return qwen_states(g, config, weights, depth, use_positions)
    weights.check_shapes(config, depth)
    hidden_states = [_embeddings(g, config, weights, use_positions)]
    bias = _attention_bias(g)
    if config.relative_attention_num_buckets:
        bias = g.op("Add", bias, _relative_position_bias(g, config, weights))
    for index in range(depth):
        hidden_states.append(_encoder_layer(g, hidden_states[-1], bias, config, weights, index))
    return hidden_states


def assemble_graph(g: _GraphBuilder, output: str, out_shape: list[str | int],
                   metadata: GraphMetadata) -> onnx.ModelProto:
    """The model whose `OUTPUT_NAME` is `output`, with `metadata` in its props."""
    g.nodes.append(helper.make_node("Identity", [output], [OUTPUT_NAME]))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in INPUT_NAMES]
    value = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(g.nodes, "bert_serving", inputs, [value], g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="bert-serving",
        ir_version=IR_VERSION,
    )
    helper.set_model_props(model, metadata.as_props())
    return model
