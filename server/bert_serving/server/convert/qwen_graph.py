"""Qwen3's and Qwen2's decoder as ONNX nodes: the hidden states `graph.encoder_states` returns.

Qwen3-Embedding (and the Qwen2-based gte-Qwen2) are decoder-only language models
read as encoders: ids in, one vector per token and layer out, so pooling, the
model's own embedding (last-token pooling, then Normalize), metadata and the
precision steps are graph.py's. The layers are transformers' `Qwen3Model`'s:

- embeddings: the token table only; no positions table, no token types, no norm;
- pre-norm layers: ``x + o_proj(attention(input_layernorm(x)))``, then
  ``x + mlp(post_attention_layernorm(x))``, every norm an RMSNorm
  (``w * x / sqrt(mean(x^2) + rms_norm_eps)``);
- attention: separate q/k/v projections (Qwen2's with biases) into heads of
  `head_dim`, which need not be hidden / heads; Qwen3 RMS-norms each query and key
  head (`q_norm`, `k_norm`) before the rotary embedding; grouped-query attention:
  query head h reads key/value head ``h // (heads / num_key_value_heads)``, as
  transformers' `repeat_kv`; causal: a token sees itself and the tokens before it,
  and no padding;
- feed-forward: SwiGLU, ``down_proj(silu(gate_proj(x)) * up_proj(x))``;
- the final `norm` after the last layer. As in transformers 5, only the last hidden
  state is normed (`output_hidden_states` gives it as `last_hidden_state`).

Rotary positions are ModernBERT's (`modernbert_graph`): float32 cos/sin tables of base
`rope_theta`, positions 0, 1, 2 ... from the first token, as transformers' default
`position_ids`; the server pads on the right, so with causal attention the padding
changes no real token, and each row's last real token (the EOS the tokenizer.json's
post-processor appends) is what LAST_TOKEN pools. A bias is added wherever the
checkpoint has one.

Usage (through graph.py, which dispatches on `config.family`)::

    states = qwen_states(g, config, weights, depth, use_positions=True)
"""

from __future__ import annotations

from .bert_config import BertConfig
from .graph import (
    _activation,
    _attention_bias,
    _GraphBuilder,
    pair_bias,
    refuse_without_positions,
    sequence_positions,
)
from .modernbert_graph import FINAL_NORM, _linear, _rotary, _rotate
from .weights import EMBEDDINGS, BertWeights, layer_prefix

__all__ = ["qwen_states"]


def qwen_states(g: _GraphBuilder, config: BertConfig, weights: BertWeights, depth: int,
                use_positions: bool) -> list[str]:
    """The token embeddings and each of the first `depth` layers' outputs (the last normed)."""
    if not use_positions:
        refuse_without_positions(config.family)
    _check_shapes(config, weights, depth)
    states = [g.op("Gather", g.const(weights[f"{EMBEDDINGS}/word_embeddings"], "word_emb"),
                   "input_ids", axis=0)]
    if not depth:
        return states
    padding = _attention_bias(g)  # [batch, 1, 1, seq]
    bias = g.op("Unsqueeze", g.op("Add", padding, _causal_bias(g)), g.ints(1))  # [b,1,1,s,s]
    rotary = _rotary(g, config, config.rope_theta)
    for index in range(depth):
        states.append(_layer(g, states[-1], bias, rotary, config, weights, index))
    if depth == config.num_hidden_layers:
        states[-1] = _rms_norm(g, states[-1], weights, FINAL_NORM, config.layer_norm_eps)
    return states


def _check_shapes(config: BertConfig, weights: BertWeights, depth: int) -> None:
    hidden, inner, size = config.hidden_size, config.intermediate_size, config.head_size
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    expected: dict[str, tuple[int, ...]] = {
        f"{EMBEDDINGS}/word_embeddings": (config.vocab_size, hidden)}
    for index in range(depth):
        p = layer_prefix(index)
        expected[f"{p}/input_layernorm/gamma"] = (hidden,)
        expected[f"{p}/self_attn/q_proj/kernel"] = (hidden, heads * size)
        expected[f"{p}/self_attn/k_proj/kernel"] = (hidden, kv_heads * size)
        expected[f"{p}/self_attn/v_proj/kernel"] = (hidden, kv_heads * size)
        expected[f"{p}/self_attn/o_proj/kernel"] = (heads * size, hidden)
        if config.family == "qwen3":
            expected[f"{p}/self_attn/q_norm/gamma"] = (size,)
            expected[f"{p}/self_attn/k_norm/gamma"] = (size,)
        expected[f"{p}/post_attention_layernorm/gamma"] = (hidden,)
        expected[f"{p}/mlp/gate_proj/kernel"] = (hidden, inner)
        expected[f"{p}/mlp/up_proj/kernel"] = (hidden, inner)
        expected[f"{p}/mlp/down_proj/kernel"] = (inner, hidden)
    if depth == config.num_hidden_layers:
        expected[f"{FINAL_NORM}/gamma"] = (hidden,)
    weights.check_named_shapes(expected)


def _rms_norm(g: _GraphBuilder, x: str, weights: BertWeights, prefix: str, eps: float) -> str:
    """gamma * x / sqrt(mean(x^2) + eps) over the last axis (the pattern ORT's
    SimplifiedLayerNormalization fusion looks for)."""
    square = g.op("Pow", x, g.scalar_f(2.0))
    mean = g.op("ReduceMean", square, axes=[-1], keepdims=1)
    root = g.op("Sqrt", g.op("Add", mean, g.scalar_f(eps)))
    gamma = g.const(weights[f"{prefix}/gamma"], prefix.replace("/", ".") + ".gamma")
    return g.op("Mul", g.op("Div", x, root), gamma)


def _causal_bias(g: _GraphBuilder) -> str:
    """[1, 1, seq, seq]: -10000 where the key comes after the query."""
    positions = sequence_positions(g)
    return pair_bias(g, g.op("Greater", g.op("Unsqueeze", positions, g.ints(0)),
                             g.op("Unsqueeze", positions, g.ints(1))))  # [query, key]: key > query


def _heads(g: _GraphBuilder, x: str, weights: BertWeights, config: BertConfig, prefix: str,
           name: str, count: int) -> str:
    """[b, count, s, head_size]: one projection split into heads (Qwen3's q/k RMS-normed)."""
    projected = _linear(g, x, weights, f"{prefix}/self_attn/{name}_proj")
    split = g.op("Reshape", projected, g.ints(0, 0, count, config.head_size))
    norm = f"{prefix}/self_attn/{name}_norm"
    if weights.has(f"{norm}/gamma"):
        split = _rms_norm(g, split, weights, norm, config.layer_norm_eps)
    return g.op("Transpose", split, perm=[0, 2, 1, 3])


def _attention(g: _GraphBuilder, x: str, bias: str, rotary: tuple[str, str],
               config: BertConfig, weights: BertWeights, prefix: str) -> str:
    """Grouped-query attention: the query heads as [b, kv_heads, groups, s, d], so each
    key/value head serves its `groups` consecutive query heads by broadcasting."""
    heads, kv_heads, size = (config.num_attention_heads, config.num_key_value_heads,
                             config.head_size)
    groups = heads // kv_heads
    query = _rotate(g, _heads(g, x, weights, config, prefix, "q", heads), rotary, size)
    key = _rotate(g, _heads(g, x, weights, config, prefix, "k", kv_heads), rotary, size)
    value = _heads(g, x, weights, config, prefix, "v", kv_heads)
    grouped = g.op("Reshape", query, g.ints(0, kv_heads, groups, -1, size))
    keys = g.op("Unsqueeze", g.op("Transpose", key, perm=[0, 1, 3, 2]), g.ints(2))
    scores = g.op("Mul", g.op("MatMul", grouped, keys), g.scalar_f(size ** -0.5))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)  # [b, kv, groups, s, s]
    context = g.op("MatMul", probs, g.op("Unsqueeze", value, g.ints(2)))
    per_head = g.op("Reshape", context, g.ints(0, heads, -1, size))
    merged = g.op("Reshape", g.op("Transpose", per_head, perm=[0, 2, 1, 3]),
                  g.ints(0, 0, heads * size))
    return _linear(g, merged, weights, f"{prefix}/self_attn/o_proj")


def _mlp(g: _GraphBuilder, x: str, config: BertConfig, weights: BertWeights,
         prefix: str) -> str:
    """SwiGLU: down_proj(act(gate_proj(x)) * up_proj(x))."""
    gate = _activation(g, _linear(g, x, weights, f"{prefix}/mlp/gate_proj"), config.hidden_act)
    up = _linear(g, x, weights, f"{prefix}/mlp/up_proj")
    return _linear(g, g.op("Mul", gate, up), weights, f"{prefix}/mlp/down_proj")


def _layer(g: _GraphBuilder, x: str, bias: str, rotary: tuple[str, str], config: BertConfig,
           weights: BertWeights, index: int) -> str:
    prefix = layer_prefix(index)
    eps = config.layer_norm_eps
    normed = _rms_norm(g, x, weights, f"{prefix}/input_layernorm", eps)
    x = g.op("Add", x, _attention(g, normed, bias, rotary, config, weights, prefix))
    normed = _rms_norm(g, x, weights, f"{prefix}/post_attention_layernorm", eps)
    return g.op("Add", x, _mlp(g, normed, config, weights, prefix))
