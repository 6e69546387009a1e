"""ModernBERT's encoder as ONNX nodes: the hidden states `graph.encoder_states` returns for it.

ModernBERT (transformers' `ModernBertModel`) keeps BERT's interface (ids in, one vector
per token and layer out), so pooling, the model's own embedding, metadata and the
precision steps are graph.py's; its layers are its own:

- embeddings: the token table, then a LayerNorm; no position table, no token types;
- pre-norm layers: ``x + Wo(attention(attn_norm(x)))``, then ``x + mlp(mlp_norm(x))``,
  where layer 0's attn_norm is the identity (the embeddings are normed already);
- attention: one fused Wqkv; rotary position embeddings on queries and keys, base
  `global_rope_theta` on global layers and `local_rope_theta` on local ones; a local
  layer's token sees only the tokens at most ``local_attention // 2`` positions away;
- feed-forward: GeGLU, ``Wo(act(input) * gate)`` with Wi's output split in halves;
- `final_norm` after the last layer. As in transformers 5, only the last hidden state
  is normed (`output_hidden_states` gives it as `last_hidden_state`); the earlier
  layers' outputs are the residual stream as it is.

A bias is added where the checkpoint has one (`attention_bias`, `mlp_bias`,
`norm_bias`; all off in the released models). Positions count 0, 1, 2 ... from the
first token, as transformers' default `position_ids`: the server pads on the right.

Usage (through graph.py, which dispatches on `config.family`)::

    states = modernbert_states(g, config, weights, depth, use_positions=True)
"""

from __future__ import annotations

import numpy as np

from .bert_config import BertConfig
from .graph import (
    _activation,
    _attention_bias,
    _GraphBuilder,
    pair_bias,
    refuse_without_positions,
    sequence_length,
    sequence_positions,
)
from .weights import EMBEDDINGS, BertWeights, layer_prefix

__all__ = ["FINAL_NORM", "modernbert_states", "rotary_tables"]

FINAL_NORM = "bert/encoder/final_norm"


def modernbert_states(g: _GraphBuilder, config: BertConfig, weights: BertWeights, depth: int,
                      use_positions: bool) -> list[str]:
    """The embeddings' output and each of the first `depth` layers' (the last one normed)."""
    if not use_positions:
        refuse_without_positions("ModernBERT")
    _check_shapes(config, weights, depth)
    eps = config.layer_norm_eps
    words = g.op("Gather", g.const(weights[f"{EMBEDDINGS}/word_embeddings"], "word_emb"),
                 "input_ids", axis=0)
    states = [_layer_norm(g, words, weights, f"{EMBEDDINGS}/LayerNorm", eps)]
    padding = _attention_bias(g)  # [batch, 1, 1, seq]
    biases = {False: padding}  # by locality, built for the first layer that needs them
    rotary: dict[bool, tuple[str, str]] = {}
    for index in range(depth):
        local = index in config.local_layers
        if local not in biases:
            biases[local] = g.op("Add", padding, _window_bias(g, config.local_attention // 2))
        if local not in rotary:
            theta = config.local_rope_theta if local else config.global_rope_theta
            rotary[local] = _rotary(g, config, theta)
        states.append(_layer(g, states[-1], biases[local], rotary[local], config, weights,
                             index))
    if depth == config.num_hidden_layers:
        states[-1] = _layer_norm(g, states[-1], weights, FINAL_NORM, eps)
    return states


def _check_shapes(config: BertConfig, weights: BertWeights, depth: int) -> None:
    hidden, inner = config.hidden_size, config.intermediate_size
    expected: dict[str, tuple[int, ...]] = {
        f"{EMBEDDINGS}/word_embeddings": (config.vocab_size, hidden),
        f"{EMBEDDINGS}/LayerNorm/gamma": (hidden,),
    }
    for index in range(depth):
        p = layer_prefix(index)
        if index:
            expected[f"{p}/attn_norm/gamma"] = (hidden,)
        expected[f"{p}/attn/Wqkv/kernel"] = (hidden, 3 * hidden)
        expected[f"{p}/attn/Wo/kernel"] = (hidden, hidden)
        expected[f"{p}/mlp_norm/gamma"] = (hidden,)
        expected[f"{p}/mlp/Wi/kernel"] = (hidden, 2 * inner)
        expected[f"{p}/mlp/Wo/kernel"] = (inner, hidden)
    if depth == config.num_hidden_layers:
        expected[f"{FINAL_NORM}/gamma"] = (hidden,)
    weights.check_named_shapes(expected)


def _linear(g: _GraphBuilder, x: str, weights: BertWeights, prefix: str) -> str:
    """x @ kernel, plus the bias where the checkpoint has one."""
    name = prefix.replace("/", ".")
    out = g.op("MatMul", x, g.const(weights[f"{prefix}/kernel"], f"{name}.kernel"),
               hint=f"{name}.matmul")
    if weights.has(f"{prefix}/bias"):
        out = g.op("Add", out, g.const(weights[f"{prefix}/bias"], f"{name}.bias"))
    return out


def _layer_norm(g: _GraphBuilder, x: str, weights: BertWeights, prefix: str, eps: float) -> str:
    """LayerNorm, with a zero beta where `norm_bias` is off (the kernels and fusions want one)."""
    gamma = weights[f"{prefix}/gamma"]
    beta = weights[f"{prefix}/beta"] if weights.has(f"{prefix}/beta") else np.zeros_like(gamma)
    name = prefix.replace("/", ".")
    return g.op("LayerNormalization", x, g.const(gamma, f"{name}.gamma"),
                g.const(beta, f"{name}.beta"), axis=-1, epsilon=eps)


def _window_bias(g: _GraphBuilder, half_window: int) -> str:
    """[1, 1, seq, seq]: -10000 where key and query are more than `half_window` apart.

    transformers' bidirectional sliding window: |query - key| <= local_attention // 2.
    """
    positions = sequence_positions(g)
    distance = g.op("Abs", g.op("Sub", g.op("Unsqueeze", positions, g.ints(1)),
                                g.op("Unsqueeze", positions, g.ints(0))))
    return pair_bias(g, g.op("Greater", distance, g.const(np.array(half_window, np.int64))))


def rotary_tables(length: int, head_size: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 cos and sin, [length, head_size], of positions 0 .. length - 1.

    As transformers computes them, in float32 like torch: inverse frequencies
    ``1 / theta ** (arange(0, d, 2) / d)``, angles position * frequency, each
    frequency twice (the two halves rotate together).
    """
    exponents = np.arange(0, head_size, 2, dtype=np.float32) / np.float32(head_size)
    inverse = np.float32(1.0) / np.power(np.float32(theta), exponents, dtype=np.float32)
    angles = np.arange(length, dtype=np.float32)[:, None] * inverse[None, :]
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _rotary(g: _GraphBuilder, config: BertConfig, theta: float) -> tuple[str, str]:
    """cos and sin for the batch's length: the full tables, sliced in the graph."""
    cos, sin = rotary_tables(config.max_position_embeddings, config.head_size, theta)
    seq = sequence_length(g)

    def sliced(table: np.ndarray, name: str) -> str:
        return g.op("Slice", g.const(table, name), g.ints(0), seq, g.ints(0))

    return sliced(cos, "rope_cos"), sliced(sin, "rope_sin")


def _rotate(g: _GraphBuilder, x: str, rotary: tuple[str, str], head_size: int) -> str:
    """x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1] over the last axis."""
    cos, sin = rotary
    half = head_size // 2
    first = g.op("Slice", x, g.ints(0), g.ints(half), g.ints(-1))
    second = g.op("Slice", x, g.ints(half), g.ints(head_size), g.ints(-1))
    rotated = g.op("Concat", g.op("Neg", second), first, axis=-1)
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotated, sin))


def _attention(g: _GraphBuilder, x: str, bias: str, rotary: tuple[str, str],
               config: BertConfig, weights: BertWeights, prefix: str) -> str:
    heads, head_size = config.num_attention_heads, config.head_size
    qkv = _linear(g, x, weights, f"{prefix}/attn/Wqkv")  # [b, s, 3 * hidden]
    split = g.op("Transpose", g.op("Reshape", qkv, g.ints(0, 0, 3, heads, head_size)),
                 perm=[2, 0, 3, 1, 4])  # [3, b, h, s, d]

    def part(index: int) -> str:
        return g.op("Gather", split, g.const(np.array(index, np.int64)), axis=0)

    query = _rotate(g, part(0), rotary, head_size)
    key = g.op("Transpose", _rotate(g, part(1), rotary, head_size), perm=[0, 1, 3, 2])
    scores = g.op("Mul", g.op("MatMul", query, key), g.scalar_f(head_size ** -0.5))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", probs, part(2)), perm=[0, 2, 1, 3])
    merged = g.op("Reshape", context, g.ints(0, 0, config.hidden_size))
    return _linear(g, merged, weights, f"{prefix}/attn/Wo")


def _mlp(g: _GraphBuilder, x: str, config: BertConfig, weights: BertWeights,
         prefix: str) -> str:
    """GeGLU: Wi's output is [input | gate]; Wo(act(input) * gate)."""
    inner = config.intermediate_size
    both = _linear(g, x, weights, f"{prefix}/mlp/Wi")
    first = g.op("Slice", both, g.ints(0), g.ints(inner), g.ints(-1))
    gate = g.op("Slice", both, g.ints(inner), g.ints(2 * inner), g.ints(-1))
    activated = g.op("Mul", _activation(g, first, config.hidden_act), gate)
    return _linear(g, activated, weights, f"{prefix}/mlp/Wo")


def _layer(g: _GraphBuilder, x: str, bias: str, rotary: tuple[str, str], config: BertConfig,
           weights: BertWeights, index: int) -> str:
    prefix = layer_prefix(index)
    eps = config.layer_norm_eps
    normed = x if index == 0 else _layer_norm(g, x, weights, f"{prefix}/attn_norm", eps)
    x = g.op("Add", x, _attention(g, normed, bias, rotary, config, weights, prefix))
    mlp = _mlp(g, _layer_norm(g, x, weights, f"{prefix}/mlp_norm", eps), config, weights, prefix)
    return g.op("Add", x, mlp)
