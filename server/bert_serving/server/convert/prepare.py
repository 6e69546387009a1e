"""From a located model to a cached, ready-to-load ONNX graph: the conversion pipeline.

    source --read weights--> BertWeights --build--> fp32 graph --precision--> cache

Every step runs once per content and options; a second start finds the graph in
the cache and only hashes the input files.

Usage::

    prepared = prepare_graph(detect_model_source(path), ConversionOptions(), GraphCache(dir))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from ..errors import ConfigError, UnsupportedModelError
from ..pooling import PoolingSpec
from .bert_config import BertConfig, read_bert_config
from .cache import GraphCache, digest_files
from .graph import GraphMetadata, SpecialIds, build_bert_graph
from .hf_weights import read_hf_weights
from .optimize import (
    INT8_ACCURACY_LEVEL,
    INT8_BLOCK_SIZE,
    PRECISIONS,
    apply_fusions,
    convert_to_fp16,
    quantize_to_int8,
)
from .sources import TOKENIZER_JSON_NAME, ModelKind, ModelSource
from .tf_bundle import read_tensor_bundle
from .weights import BertWeights, from_google_names, from_hf_state_dict

__all__ = ["ConversionOptions", "PreparedGraph", "prepare_graph", "read_vocab_special_ids"]

log = logging.getLogger(__name__)
# Bump when the graph builder's output changes, so stale cache entries are not reused.
BUILDER_VERSION = "5"


@dataclass(frozen=True)
class ConversionOptions:
    """Every option that changes the converted graph (all of them go into the cache key)."""

    pooling: PoolingSpec = field(default_factory=PoolingSpec)
    use_position_embeddings: bool = True
    precision: str = "fp32"
    fuse_for_gpu: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {PRECISIONS}")

    def cache_fields(self) -> dict[str, object]:
        fields = dataclasses.asdict(self)
        fields["pooling"] = GraphMetadata(self.pooling, 0, 0, 0, 0).as_props()
        if self.precision == "int8":  # a new quantization scheme must not reuse old graphs
            fields["int8_scheme"] = (f"MatMulNBits bits=8 block={INT8_BLOCK_SIZE} "
                                    f"accuracy_level={INT8_ACCURACY_LEVEL}")
        return fields


@dataclass(frozen=True)
class PreparedGraph:
    """A graph on disk that is ready to load, and what it computes."""

    path: Path
    metadata: GraphMetadata
    vocab_path: Path
    converted_now: bool


def read_vocab_special_ids(vocab_path: Path) -> SpecialIds:
    """[CLS] and [SEP] ids from vocab.txt (one token per line, id = line number).

    For tokenizer.json, the first and last special token its post-processor puts
    around a text (RoBERTa's <s> and </s>).
    """
    if vocab_path.name == TOKENIZER_JSON_NAME:
        from ..hf_tokenizer import read_special_template

        template = read_special_template(vocab_path)
        return SpecialIds(template.cls_id, template.sep_id)
    ids: dict[str, int] = {}
    with vocab_path.open(encoding="utf-8") as file:
        for index, line in enumerate(file):
            token = line.rstrip("\n")
            if token in ("[CLS]", "[SEP]"):
                ids[token] = index
    missing = {"[CLS]", "[SEP]"} - ids.keys()
    if missing:
        raise UnsupportedModelError(
            f"{vocab_path} lacks {', '.join(sorted(missing))}: not a BERT WordPiece vocabulary"
        )
    return SpecialIds(ids["[CLS]"], ids["[SEP]"])


def _cache_key(source: ModelSource, options: ConversionOptions) -> str:
    content = digest_files(source.content_files())
    recipe = json.dumps(
        {"builder": BUILDER_VERSION, "kind": source.kind.value, "options": options.cache_fields()},
        sort_keys=True,
    )
    return hashlib.sha256(f"{content}\n{recipe}".encode()).hexdigest()[:32]


def _read_weights(source: ModelSource) -> BertWeights:
    if source.kind is ModelKind.GOOGLE_TF:
        assert source.checkpoint_prefix is not None
        tensors = read_tensor_bundle(source.checkpoint_prefix)
        return from_google_names(tensors, str(source.checkpoint_prefix))
    tensors = read_hf_weights(list(source.weight_files))
    return from_hf_state_dict(tensors, str(source.weight_files[0]))


def _read_onnx_metadata(path: Path) -> GraphMetadata:
    model = onnx.load(str(path), load_external_data=False)
    metadata = GraphMetadata.from_props({p.key: p.value for p in model.metadata_props})
    if metadata is None:
        raise UnsupportedModelError(
            f"{path} was not made by bert-serving-export, so what it outputs is unknown: "
            "point -model_dir at the original checkpoint folder instead, or export it with "
            "`bert-serving-export -model_dir CHECKPOINT -o model.onnx`"
        )
    return metadata


def _config_from_metadata(metadata: GraphMetadata) -> BertConfig | None:
    """Enough of the config for the GPU fusions, from a graph's metadata (None if unknown)."""
    if not metadata.num_attention_heads:
        return None
    return BertConfig(0, metadata.hidden_size, metadata.num_hidden_layers,
                      metadata.num_attention_heads, 0, metadata.max_position_embeddings, 0)


def _check_onnx_pooling(path: Path, metadata: GraphMetadata, wanted: PoolingSpec) -> None:
    if metadata.pooling != wanted:
        have = metadata.pooling
        raise UnsupportedModelError(
            f"{path} outputs pooling_layer {list(have.layers)} {have.strategy.name} "
            f"(mask_cls_sep={have.mask_cls_sep}), but the server asks for "
            f"{list(wanted.layers)} {wanted.strategy.name} (mask_cls_sep={wanted.mask_cls_sep}): "
            "start it with matching -pooling_layer/-pooling_strategy, or re-export the graph"
        )


def _build_fp32(
    source: ModelSource, options: ConversionOptions
) -> tuple[onnx.ModelProto, BertConfig]:
    assert source.config_path is not None
    config = read_bert_config(source.config_path)
    weights = _read_weights(source)
    special = read_vocab_special_ids(source.vocab_path)
    model = build_bert_graph(
        config,
        weights,
        options.pooling,
        special_ids=special,
        use_position_embeddings=options.use_position_embeddings,
    )
    return model, config


def _apply_precision(
    model: onnx.ModelProto, config: BertConfig | None, options: ConversionOptions, out: Path
) -> None:
    """Write `model` to `out` in the asked precision (fusions first, for GPU graphs)."""
    props = {p.key: p.value for p in model.metadata_props}
    if options.fuse_for_gpu and config is not None:
        model = apply_fusions(model, config, use_gpu=True)
    if options.precision == "fp16":
        model = convert_to_fp16(model)
    props["bert_serving.precision"] = options.precision
    onnx.helper.set_model_props(model, props)
    if options.precision != "int8":
        onnx.save(model, str(out))
        return
    fp32_path = out.with_name(out.name + ".fp32")
    onnx.save(model, str(fp32_path))
    try:
        quantize_to_int8(fp32_path, out)
        quantized = onnx.load(str(out))
        onnx.helper.set_model_props(quantized, props)
        onnx.save(quantized, str(out))
    finally:
        fp32_path.unlink(missing_ok=True)


def _ready_onnx_graph(source: ModelSource, options: ConversionOptions) -> PreparedGraph | None:
    """An exported graph served as is, or None when it is fp32 and the device wants fp16/int8."""
    assert source.onnx_path is not None
    metadata = _read_onnx_metadata(source.onnx_path)
    _check_onnx_pooling(source.onnx_path, metadata, options.pooling)
    if metadata.precision == "fp32" and options.precision != "fp32":
        return None
    if metadata.precision != options.precision:  # fp16/int8 cannot go back to fp32
        log.warning("%s is an %s graph; serving it as is (this device would use %s)",
                    source.onnx_path, metadata.precision, options.precision)
    return PreparedGraph(source.onnx_path, metadata, source.vocab_path, False)


def prepare_graph(
    source: ModelSource,
    options: ConversionOptions,
    cache: GraphCache,
    progress: Callable[[str], None] = log.info,
) -> PreparedGraph:
    """The cached graph for this source and options, converting it on first use."""
    if source.kind is ModelKind.ONNX:
        ready = _ready_onnx_graph(source, options)
        if ready is not None:
            return ready
    started = time.perf_counter()
    progress(f"hashing {source.describe()} for the graph cache")
    key = _cache_key(source, options)

    def build(out: Path) -> None:
        progress(f"converting {source.describe()} to ONNX ({options.precision}); done once")
        if source.kind is ModelKind.ONNX:
            assert source.onnx_path is not None
            metadata = _read_onnx_metadata(source.onnx_path)
            model, config = onnx.load(str(source.onnx_path)), _config_from_metadata(metadata)
        else:
            model, config = _build_fp32(source, options)
        _apply_precision(model, config, options, out)

    path, built = cache.get_or_build(key, build)
    elapsed = time.perf_counter() - started
    progress(f"graph {'converted' if built else 'found in cache'} in {elapsed:.1f}s: {path}")
    return PreparedGraph(path, _read_onnx_metadata(path), source.vocab_path, built)
