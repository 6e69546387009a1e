"""Sequence-classification heads: a folder's classifier or cross-encoder as a logits graph.

A Hugging Face folder whose config.json names one of `CLASSIFIER_ARCHITECTURES`
is served as a classifier: the graph runs every encoder layer and outputs the
logits, shape (N, num_labels), under the usual output name, so the worker and
the sink carry them as any (N, width) rows. The two heads transformers uses:

    BERT:            logits = classifier(tanh(pooler.dense(h[CLS])))
    RoBERTa family:  logits = out_proj(tanh(dense(h[<s>])))

    ELECTRA:         logits = out_proj(gelu(dense(h[CLS])))
    DistilBERT:      logits = classifier(relu(pre_classifier(h[CLS])))
    MPNet:           RoBERTa's head, on h[<s>]
    ModernBERT:      logits = classifier(norm(act(head.dense(pooled))))
                     pooled = h[CLS] or the masked mean of h (`classifier_pooling`),
                     act = `classifier_activation` (GELU by default)

ModernBERT's `head.dense` and `head.norm` are read as `pre_classifier` and
`pre_classifier/norm` (weights.py), its `classifier` as BERT's.

(dropout is identity at inference). The label names (`id2label`, in logit
order) are stored in the graph's metadata, so a server started from the
exported `.onnx` alone knows them.

Pooling flags do not apply: a classifier has one fixed head. A server started
on one with a non-default -pooling_strategy/-pooling_layer/-mask_cls_sep is
refused (`check_classifier_pooling`) rather than silently serving something
other than what was asked.

Usage::

    head = read_classifier_head(folder / "config.json")   # None: not a classifier
    model = build_classifier_graph(config, weights, head)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from ..errors import ConfigError, UnsupportedModelError
from ..model.graph_contract import GraphMetadata
from ..model.head import ModelHead
from ..model.pooling import PoolingSpec
from .bert_config import BertConfig
from .graph import (  # the builder's parts, shared with the embedding graphs
    _activation,
    _first_token,
    _GraphBuilder,
    _masked_mean,
    assemble_graph,
    encoder_states,
)
from .modernbert_graph import _layer_norm, _linear  # bias and beta where the folder has them
from .weights import CLASSIFIER, POOLER, BertWeights

__all__ = [
    "CLASSIFIER_ARCHITECTURES",
    "ClassifierHead",
    "build_classifier_graph",
    "check_classifier_pooling",
    "head_matmuls",
    "read_classifier_head",
]

CLASSIFIER_ARCHITECTURES = {
    "BertForSequenceClassification": "bert",
    "RobertaForSequenceClassification": "roberta",
    "XLMRobertaForSequenceClassification": "roberta",
    "CamembertForSequenceClassification": "roberta",
    "ElectraForSequenceClassification": "electra",
    "DistilBertForSequenceClassification": "distilbert",
    "MPNetForSequenceClassification": "roberta",
    "ModernBertForSequenceClassification": "modernbert",
}
"""config.json `architectures` served as classifiers -> the head's layout."""


@dataclass(frozen=True)
class ClassifierHead:
    """Which classification head a folder has, and its labels in logit order."""

    layout: str
    """A value of CLASSIFIER_ARCHITECTURES: which of the module docstring's heads."""
    labels: tuple[str, ...]
    pooling: str = "cls"
    """What the head reads: the first token (`cls`), or ModernBERT's `mean` of the tokens."""
    activation: str | None = None
    """The config's `classifier_activation`, where the family has one (ModernBERT)."""

    @property
    def num_labels(self) -> int:
        return len(self.labels)


def read_classifier_head(config_path: Path) -> ClassifierHead | None:
    """The head a config.json declares, or None when it is not a served classifier."""
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    architectures = raw.get("architectures") or []
    layouts = [CLASSIFIER_ARCHITECTURES[a] for a in architectures if a in CLASSIFIER_ARCHITECTURES]
    if not layouts:
        _refuse_other_classifiers(architectures, config_path)
        return None
    if layouts[0] != "modernbert":
        return ClassifierHead(layouts[0], _labels(raw, config_path))
    pooling = raw.get("classifier_pooling", "cls")
    if pooling not in ("cls", "mean"):
        raise UnsupportedModelError(
            f"{config_path}: classifier_pooling {pooling!r} is not 'cls' or 'mean', the two "
            "ModernBERT's classifier reads")
    return ClassifierHead("modernbert", _labels(raw, config_path), str(pooling),
                          str(raw.get("classifier_activation", "gelu")))


def _refuse_other_classifiers(architectures: list[str], config_path: Path) -> None:
    """A classification head of another family would be served as an embedder: refuse it.

    Dropping the head silently would hand a user who asked for scores vectors of a
    model that was never trained to give them.
    """
    others = [a for a in architectures if a.endswith("ForSequenceClassification")]
    if others:
        served = ", ".join(sorted(CLASSIFIER_ARCHITECTURES))
        raise UnsupportedModelError(
            f"{config_path}: {others[0]} is a classification head this server does not "
            f"build (it serves {served}); serve its encoder as an embedding model by "
            "removing 'architectures' from config.json, or convert it to one of these")


def _labels(raw: dict[str, object], path: Path) -> tuple[str, ...]:
    """id2label by id; transformers' LABEL_i names when the config has no id2label."""
    id2label = raw.get("id2label")
    count = raw.get("num_labels")
    if isinstance(id2label, dict) and id2label:
        try:
            by_id = {int(key): str(value) for key, value in id2label.items()}
        except ValueError:
            raise UnsupportedModelError(f"{path}: id2label keys must be label ids") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise UnsupportedModelError(
                f"{path}: id2label ids {sorted(by_id)} are not 0 to {len(by_id) - 1}")
        return tuple(by_id[i] for i in range(len(by_id)))
    number = int(count) if isinstance(count, int) else 2  # transformers' default
    return tuple(f"LABEL_{i}" for i in range(number))


def check_classifier_pooling(pooling: PoolingSpec) -> None:
    """Refuse pooling flags on a classifier: its head reads the first token, always."""
    default = PoolingSpec()
    given = [f"-pooling_strategy {pooling.strategy.name}"] * (pooling.strategy != default.strategy)
    given += [f"-pooling_layer {' '.join(map(str, pooling.layers))}"] * (
        pooling.layers != default.layers)
    given += ["-mask_cls_sep"] * pooling.mask_cls_sep
    if given:
        raise ConfigError(
            f"{', '.join(given)}: pooling flags do not apply to a sequence-classification "
            "model, which outputs its classifier's logits (its head reads the first token): "
            "drop them")


def build_classifier_graph(config: BertConfig, weights: BertWeights, head: ClassifierHead, *,
                           use_position_embeddings: bool = True) -> onnx.ModelProto:
    """Every encoder layer, then the head on the first token: logits (batch, num_labels)."""
    _check_width(weights, head)
    g = _GraphBuilder()
    states = encoder_states(g, config, weights, config.num_hidden_layers,
                            use_position_embeddings)
    pooled = (_first_token(g, states[-1]) if head.pooling == "cls" else _masked_mean(
        g, states[-1], g.op("Unsqueeze", g.op("Cast", "attention_mask", to=TensorProto.FLOAT),
                            g.ints(2))))
    logits = _head_logits(g, pooled, weights, head, config.layer_norm_eps)
    metadata = GraphMetadata(PoolingSpec(), config.hidden_size, config.num_hidden_layers,
                             config.max_position_embeddings, head.num_labels,
                             num_attention_heads=config.num_attention_heads,
                             position_offset=config.position_offset,
                             head=ModelHead.CLASSIFIER, labels=head.labels)
    return assemble_graph(g, logits, ["batch", head.num_labels], metadata)


# layout -> (hidden Linear, its activation, output Linear), as transformers names them
_HEADS = {
    "bert": (POOLER, "tanh", CLASSIFIER),
    "roberta": (f"{CLASSIFIER}/dense", "tanh", f"{CLASSIFIER}/out_proj"),
    "electra": (f"{CLASSIFIER}/dense", "gelu", f"{CLASSIFIER}/out_proj"),
    "distilbert": (f"pre_{CLASSIFIER}", "relu", CLASSIFIER),
    "modernbert": (f"pre_{CLASSIFIER}", "gelu", CLASSIFIER),  # and a LayerNorm, see below
}
_MODERNBERT_HEAD_NORM = f"pre_{CLASSIFIER}/norm"


HEAD_KERNELS = frozenset(f"{name.replace('/', '.')}.kernel"
                         for hidden, _, output in _HEADS.values() for name in (hidden, output))
"""Every head's Linear weights, as `_dense` names them (the builder adds `_<counter>`)."""


def head_matmuls(model: onnx.ModelProto) -> list[str]:
    """The MatMul nodes of a classifier's head (and BERT's pooler), which `-int8` keeps fp32.

    They are two small Linear layers (h x h, h x labels) that act on the logits
    directly. Measured on the random test classifiers, max |int8 - fp32| of the
    logits with the head quantized -> kept fp32: BERT 0.032 -> 0.006, DistilBERT
    0.017 -> 0.002, ELECTRA 0.82 -> 0.12 (logits up to 143), XLM-R 0.083 -> 0.059;
    they are a few thousand of the model's millions of multiply-adds per text.
    """
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1].rsplit("_", 1)[0] in HEAD_KERNELS]


def _head_logits(g: _GraphBuilder, pooled: str, weights: BertWeights, head: ClassifierHead,
                 norm_eps: float) -> str:
    hidden_name, activation, output_name = _HEADS[head.layout]
    activation = head.activation or activation
    hidden = _linear(g, pooled, weights, hidden_name)
    activated = g.op("Tanh", hidden) if activation == "tanh" else _activation(g, hidden,
                                                                                activation)
    if head.layout == "modernbert":
        activated = _layer_norm(g, activated, weights, _MODERNBERT_HEAD_NORM, norm_eps)
    return _linear(g, activated, weights, output_name)


def _check_width(weights: BertWeights, head: ClassifierHead) -> None:
    name = f"{_HEADS[head.layout][2]}/kernel"
    width = int(weights[name].shape[1])
    if width != head.num_labels:
        raise UnsupportedModelError(
            f"{weights.source}: the classifier outputs {width} logits but config.json names "
            f"{head.num_labels} labels (id2label): do the config and the weights belong "
            "together?")
