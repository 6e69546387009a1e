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

from ..config import EngineOptions
from ..errors import ConfigError, UnsupportedModelError
from ..model.default_model import default_model_dir
from ..model.graph_contract import TOKENIZER_JSON_NAME, GraphMetadata, PreparedGraph, SpecialIds
from ..model.head import ModelHead
from ..model.pooling import NativeView, PoolingSpec
from ..model.precision import choose_inference
from ..model.runtime import Device, parse_device
from ..model.wordpiece import read_vocab
from .bert_config import BertConfig, read_bert_config
from .cache import GraphCache, default_cache_dir, digest_files
from .graph import build_bert_graph
from .graph_file import data_file_name, save_graph
from .heads import (
    ClassifierHead,
    build_classifier_graph,
    check_classifier_pooling,
    head_matmuls,
    read_classifier_head,
)
from .hf_weights import read_hf_weights
from .optimize import (
    INT8_ACCURACY_LEVEL,
    INT8_BLOCK_SIZE,
    PRECISIONS,
    apply_fusions,
    convert_to_fp16,
    quantize_to_int8,
)
from .sources import ModelKind, ModelSource, detect_model_source
from .sparse_head import build_sparse_graph, read_mlm_head
from .tf_bundle import read_tensor_bundle
from .weights import BertWeights, from_google_names, from_hf_state_dict

__all__ = [
    "ConversionOptions",
    "conversion_options",
    "prepare_engine_graph",
    "prepare_graph",
    "read_vocab_special_ids",
]

log = logging.getLogger(__name__)
# Bump when the graph builder's output changes, so stale cache entries are not reused.
BUILDER_VERSION = "8"  # 6: classifier folders become logits graphs; 7: native view's Clip;
# 8: MPNet and ModernBERT classifier folders become logits graphs (they were embedders)


@dataclass(frozen=True)
class ConversionOptions:
    """Every option that changes the converted graph (all of them go into the cache key)."""

    pooling: PoolingSpec = field(default_factory=PoolingSpec)
    use_position_embeddings: bool = True
    precision: str = "fp32"
    fuse_for_gpu: bool = False
    head: ModelHead = ModelHead.EMBEDDING
    """SPARSE: a masked-LM folder's SPLADE weights (see sparse_head) instead of pooling."""
    native: NativeView | None = None
    """The model's own embedding beside `pooling` in every row (embedding graphs only)."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {PRECISIONS}")

    def cache_fields(self) -> dict[str, object]:
        fields = dataclasses.asdict(self)
        fields["pooling"] = GraphMetadata(self.pooling, 0, 0, 0, 0).as_props()
        fields["head"] = self.head.value
        if self.native is not None:
            fields["native"] = GraphMetadata(self.native.pooling, 0, 0, 0, 0, native=self.native,
                                             native_width=1).as_props()
        else:
            del fields["native"]  # graphs cached before the field keep their keys
        if self.precision == "int8":  # a new quantization scheme must not reuse old graphs
            fields["int8_scheme"] = (f"MatMulNBits bits=8 block={INT8_BLOCK_SIZE} "
                                    f"accuracy_level={INT8_ACCURACY_LEVEL} heads fp32")
        return fields


def read_vocab_special_ids(vocab_path: Path) -> SpecialIds:
    """[CLS] and [SEP] ids from vocab.txt (one token per line, id = line number).

    For tokenizer.json, the first and last special token its post-processor puts
    around a text (RoBERTa's <s> and </s>).
    """
    if vocab_path.name == TOKENIZER_JSON_NAME:
        from ..model.hf_tokenizer import read_special_template

        template = read_special_template(vocab_path)
        return SpecialIds(template.cls_id, template.sep_id)
    ids = read_vocab(vocab_path)
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


def _read_weights(source: ModelSource, head: ModelHead) -> tuple[BertWeights, BertWeights | None]:
    """The encoder's weights, and the masked-LM head's when the graph is sparse."""
    if source.kind is ModelKind.GOOGLE_TF:
        assert source.checkpoint_prefix is not None
        if head is ModelHead.SPARSE:
            raise UnsupportedModelError(
                f"-head sparse reads Hugging Face BertForMaskedLM folders; "
                f"{source.checkpoint_prefix} is a Google TF checkpoint: convert it to a "
                "Hugging Face folder first")
        tensors = read_tensor_bundle(source.checkpoint_prefix)
        return from_google_names(tensors, str(source.checkpoint_prefix)), None
    tensors = read_hf_weights(list(source.weight_files))
    weights = from_hf_state_dict(tensors, str(source.weight_files[0]))
    return weights, read_mlm_head(tensors, weights) if head is ModelHead.SPARSE else None


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
    if metadata.head is ModelHead.CLASSIFIER:
        check_classifier_pooling(wanted)
        return
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
    if options.head is ModelHead.SPARSE and config.family != "bert":
        raise UnsupportedModelError(
            f"-head sparse reads BERT masked-LM heads (BertForMaskedLM, as SPLADE's); "
            f"{source.config_path} is a {config.family}-family model")
    weights, mlm_head = _read_weights(source, options.head)
    if mlm_head is not None:
        sparse = build_sparse_graph(config, weights, mlm_head, pooling=options.pooling,
                                    use_position_embeddings=options.use_position_embeddings)
        return sparse, config
    head = _classifier_head(source)
    if head is not None:
        return build_classifier_graph(config, weights, head, use_position_embeddings=(
            options.use_position_embeddings)), config
    special = read_vocab_special_ids(source.vocab_path)
    model = build_bert_graph(
        config,
        weights,
        options.pooling,
        special_ids=special,
        use_position_embeddings=options.use_position_embeddings,
        native=options.native,
    )
    return model, config


def _classifier_head(source: ModelSource) -> ClassifierHead | None:
    """The folder's sequence-classification head (Hugging Face folders only), if it has one."""
    if source.kind is not ModelKind.HUGGING_FACE or source.config_path is None:
        return None
    return read_classifier_head(source.config_path)


def _apply_precision(
    model: onnx.ModelProto, config: BertConfig | None, options: ConversionOptions, out: Path,
    data_name: str,
) -> None:
    """Write `model` to `out` in the asked precision (fusions first, for GPU graphs).

    Weights too large for one file go to `data_name` beside `out` (see graph_file).
    """
    props = {p.key: p.value for p in model.metadata_props}
    if options.fuse_for_gpu and config is not None:
        model = apply_fusions(model, config, use_gpu=True)
    if options.precision == "fp16":
        model = convert_to_fp16(model)
    props["bert_serving.precision"] = options.precision
    onnx.helper.set_model_props(model, props)
    if options.precision != "int8":
        save_graph(model, out, data_name=data_name)
        return
    keep_fp32 = head_matmuls(model)
    fp32_path = out.with_name(out.name + ".fp32")
    save_graph(model, fp32_path)
    try:
        quantized = quantize_to_int8(fp32_path, keep_fp32=keep_fp32)
        onnx.helper.set_model_props(quantized, props)
        save_graph(quantized, out, data_name=data_name)
    finally:
        for written in (fp32_path, fp32_path.with_name(data_file_name(fp32_path.name))):
            written.unlink(missing_ok=True)


def _ready_onnx_graph(source: ModelSource, options: ConversionOptions) -> PreparedGraph | None:
    """An exported graph served as is, or None when it is fp32 and the device wants fp16/int8."""
    assert source.onnx_path is not None
    metadata = _read_onnx_metadata(source.onnx_path)
    _check_onnx_pooling(source.onnx_path, metadata, options.pooling)
    if options.head is ModelHead.SPARSE and metadata.head is not ModelHead.SPARSE:
        raise UnsupportedModelError(
            f"{source.onnx_path} outputs {metadata.head.value} vectors, not sparse ones: export "
            "the BertForMaskedLM folder with -head sparse, or drop -head sparse")
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
    if _classifier_head(source) is not None:  # before any work: one line, not a conversion
        check_classifier_pooling(options.pooling)
        # A logits graph pools nothing: a cross-encoder folder's modules.json asks for no view.
        options = dataclasses.replace(options, native=None)
    started = time.perf_counter()
    progress(f"hashing {source.describe()} for the graph cache")
    key = _cache_key(source, options)

    def build(out: Path, data_name: str) -> None:
        progress(f"converting {source.describe()} to ONNX ({options.precision}); done once")
        if source.kind is ModelKind.ONNX:
            assert source.onnx_path is not None
            metadata = _read_onnx_metadata(source.onnx_path)
            model, config = onnx.load(str(source.onnx_path)), _config_from_metadata(metadata)
        else:
            model, config = _build_fp32(source, options)
        _apply_precision(model, config, options, out, data_name)

    path, built = cache.get_or_build(key, build)
    elapsed = time.perf_counter() - started
    progress(f"graph {'converted' if built else 'found in cache'} in {elapsed:.1f}s: {path}")
    return PreparedGraph(path, _read_onnx_metadata(path), source.vocab_path, built)


def conversion_options(options: EngineOptions, device: Device) -> ConversionOptions:
    """The graph an engine needs on `device`: fp16 + fusions on GPU, int8 on request.

    -dtype bfloat16 runs OpenVINO over the fp32 graph, so an export (which runs nothing)
    needs neither a bf16 CPU nor OpenVINO; a start checks those (`choose_inference`).
    """
    on_gpu = device.kind == "cuda"
    precision = "fp32"  # float32, auto and bfloat16 on CPU
    if on_gpu or options.dtype in ("float16", "int8"):  # refused where the device has none
        precision = choose_inference(options.dtype, "onnxruntime", on_gpu=on_gpu, flags=(),
                                     openvino=False).graph_precision
    return ConversionOptions(
        pooling=options.pooling,
        use_position_embeddings=not options.no_position_embeddings,
        precision=precision,
        fuse_for_gpu=on_gpu,
        head=options.head or ModelHead.EMBEDDING,
        native=options.native_view,
    )


def prepare_engine_graph(options: EngineOptions) -> PreparedGraph:
    """Locate the model and convert it (or find it in the cache) for the chosen device."""
    model_dir = options.model_dir or default_model_dir()
    source = detect_model_source(
        model_dir,
        ckpt_name=options.ckpt_name,
        config_name=options.config_name,
        tuned_model_dir=options.tuned_model_dir,
    )
    cache = GraphCache(options.graph_tmp_dir or default_cache_dir())
    return prepare_graph(source, conversion_options(options, parse_device(options.device)), cache)
