"""The server's configuration: one typed object, built in one place from argv and the environment.

Every flag of the original `bert-serving-start`, single-dash spelled (double-dash
accepted), with its defaults; flags with no meaning on onnxruntime are accepted
and said so once. Nothing else in the package reads argv or the environment.

Each flag is declared once, on the field it sets (`flags.setting`): the parser,
the parsing, SHOW_CONFIG's flag keys and the start banner are derived from the
fields, in their order. To add a flag, add a field.

Usage::

    config = parse_server_config(["-model_dir", "./bert", "-num_worker", "2"])
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .access import AccessPolicy, IpNetwork, load_curve_secret_key, parse_allow_ip
from .errors import ConfigError
from .flags import MODEL_POOLING, as_is, flag, parse_max_seq_len, setting, setting_of
from .model.chunking import TRUNCATION_MODES, Truncation, reduction_for
from .model.default_model import default_model_dir
from .model.graph_contract import PreparedGraph
from .model.head import ModelHead
from .model.native_embedding import (
    NativeEmbedding,
    model_native_embedding,
    read_native_embedding,
)
from .model.pooling import NativeView, PoolingSpec, PoolingStrategy
from .model.precision import DTYPES, RUNTIMES, Running
from .model.quantization import configured_ranges

__all__ = [
    "CPU_BATCH_TOKENS",
    "GPU_BATCH_TOKENS",
    "IGNORED_FLAGS",
    "EngineOptions",
    "ServerConfig",
    "add_model_flags",
    "batch_token_budget",
    "build_parser",
    "engine_options_from_args",
    "parse_server_config",
    "show_config",
]

# Accepted for compatibility; onnxruntime has no use for them.
IGNORED_FLAGS = {
    "xla": "XLA is a TensorFlow compiler; onnxruntime optimizes the graph itself",
    "gpu_memory_fraction": "onnxruntime's CUDA provider allocates what it needs",
    "fixed_embed_length": "token-level replies are padded to -max_seq_len when it is set",
}

# Measured on MiniLM, seq 4-128, 2 cores: 4096 padded tokens per batch ran 1.36x faster than
# 16384 (batches stay in cache); GPUs need large batches to fill their cores.
CPU_BATCH_TOKENS = 4096
GPU_BATCH_TOKENS = 16384


# -- how composite fields are read and shown ------------------------------------------------

def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _allow_ip(value: str) -> tuple[IpNetwork, ...]:
    try:
        return parse_allow_ip(value)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


HEAD_CHOICES = ("auto", ModelHead.SPARSE.value)
"""-head's values: auto (what the folder or graph is) and the heads asked for by name."""


def _head_from_args(args: argparse.Namespace) -> ModelHead | None:
    """None for auto; sparse refuses the pooling flags, which SPLADE's own pooling replaces."""
    if args.head != ModelHead.SPARSE.value:
        return None
    given = [flag for flag, is_set in (
        ("-pooling_strategy", args.pooling_strategy != "REDUCE_MEAN"),
        ("-pooling_layer", list(args.pooling_layer) != [-2]),
        ("-mask_cls_sep", args.mask_cls_sep)) if is_set]
    if given:
        raise ConfigError(f"{', '.join(given)} does not apply to -head sparse, which max-pools "
                          "SPLADE's term weights over every token of the last layer; drop it")
    return ModelHead.SPARSE


def _pooling_from_args(args: argparse.Namespace) -> tuple[PoolingSpec, bool]:
    """The pooling and whether vectors are L2-normalized; MODEL takes the folder's own."""
    layers, strategy = tuple(args.pooling_layer), args.pooling_strategy
    if strategy != MODEL_POOLING:
        return PoolingSpec.from_flags(layers, strategy, args.mask_cls_sep), False
    if args.mask_cls_sep:
        raise ConfigError("-mask_cls_sep does not apply to -pooling_strategy MODEL: the model's "
                          "own pooling reads every token; drop one of them")
    if list(layers) not in ([-2], [-1]):  # -2 is the flag's default
        raise ConfigError(f"-pooling_layer {' '.join(map(str, layers))} does not "
                          "apply to -pooling_strategy MODEL, which pools the last layer as the "
                          "model does; drop one of them")
    native = _native_from_args(args)
    assert native is not None  # under MODEL, _native_from_args refuses a folder without one
    return native.pooling_spec(), native.normalize


def _native_from_args(args: argparse.Namespace) -> NativeEmbedding | None:
    """The folder's own embedding (sentence-transformers modules): read once per parse, kept
    on the parsed flags, for `pooling`, `normalize` and `ServerConfig.native_embedding`.

    Under -pooling_strategy MODEL a folder without one, or with modules this server does
    not compute, is a ConfigError; otherwise such a folder simply has none to offer.
    """
    parsed = vars(args)
    if "_native" not in parsed:
        model_dir: Path = args.model_dir or default_model_dir()
        parsed["_native"] = _read_native(model_dir,
                                         required=args.pooling_strategy == MODEL_POOLING)
    found: NativeEmbedding | None = parsed["_native"]
    return found


def _read_native(model_dir: Path, *, required: bool) -> NativeEmbedding | None:
    if required:
        return model_native_embedding(model_dir)
    try:
        return read_native_embedding(model_dir.parent if model_dir.suffix == ".onnx"
                                     else model_dir)
    except ConfigError:  # modules this server does not compute: nothing to offer
        return None


def _pooling_wire(_name: str, pooling: PoolingSpec) -> dict[str, Any]:
    """The original's three keys, pooling_strategy as its integer enum."""
    return {"pooling_layer": list(pooling.layers), "pooling_strategy": int(pooling.strategy),
            "mask_cls_sep": pooling.mask_cls_sep}


def _pooling_banner(name: str, pooling: PoolingSpec) -> dict[str, Any]:
    return {**_pooling_wire(name, pooling), "pooling_strategy": pooling.strategy.name}


def _dtype_from_args(args: argparse.Namespace) -> str:
    """-dtype, with -int8 its older spelling of `-dtype int8`."""
    dtype: str = args.dtype
    if not args.int8:
        return dtype
    if dtype not in ("auto", "int8"):
        raise ConfigError(f"-int8 means -dtype int8, but -dtype {dtype} is given: drop one")
    return "int8"


def _dtype_wire(name: str, dtype: str) -> dict[str, Any]:
    """-dtype, and -int8 as the bool older SHOW_CONFIG readers know."""
    return {name: dtype, "int8": dtype == "int8"}


def _access_from_args(args: argparse.Namespace) -> AccessPolicy:
    key = args.curve_secret_key
    return AccessPolicy(allow=args.allow_ip,
                        curve_secret_key=load_curve_secret_key(key) if key else None)


def _access_wire(_name: str, access: AccessPolicy) -> dict[str, Any]:
    return {"allow_ip": [str(network) for network in access.allow],
            "curve": access.curve_secret_key is not None}


def _ignored(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(name for name in IGNORED_FLAGS if getattr(args, name) not in (False, None))


def _ignored_wire(_name: str, _ignored_flags: tuple[str, ...]) -> dict[str, Any]:
    """The TensorFlow-only flags, as the original's defaults (they change nothing here)."""
    return {"xla": False, "gpu_memory_fraction": None, "fixed_embed_length": False}


def _secret(name: str, value: Any) -> dict[str, Any]:
    return {name: "(set)" if value else None}


def _api_key(args: argparse.Namespace) -> str | None:
    """-api_key, else BERT_SERVING_API_KEY as it is when the flags are parsed."""
    given: str | None = args.api_key
    return given if given is not None else os.environ.get("BERT_SERVING_API_KEY")


def _fault_from_environment(_args: argparse.Namespace) -> str | None:
    return os.environ.get("BERT_SERVING_INJECT_FAULT") or None


# -- the options --------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineOptions:
    """The model-side options, with the original CLI's names and defaults."""

    model_dir: Path | None = setting(None, group="model", flags=(flag(
        "model_dir", type=Path, default=None,
        help="model folder (Google BERT checkpoint, or Hugging Face BERT, RoBERTa, "
             "XLM-RoBERTa, CamemBERT, DistilBERT, ELECTRA, MPNet, ModernBERT, Qwen3, Qwen2) "
             "or .onnx file; default: the embedded all-MiniLM-L6-v2"),))
    tuned_model_dir: Path | None = setting(None, group="model", flags=(flag(
        "tuned_model_dir", type=Path, default=None,
        help="folder of a fine-tuned checkpoint; config and vocab still come from -model_dir"),))
    ckpt_name: str = setting("bert_model.ckpt", group="model", flags=(flag(
        "ckpt_name", default="bert_model.ckpt", help="checkpoint file name prefix"),))
    config_name: str = setting("bert_config.json", group="model", flags=(flag(
        "config_name", default="bert_config.json", help="Google config file name"),))
    graph_tmp_dir: Path | None = setting(None, group="model", flags=(flag(
        "graph_tmp_dir", type=Path, default=None,
        help="where converted graphs are cached; default: ~/.cache/bert-serving"),))
    max_seq_len: int | None = setting(25, group="model", flags=(flag(
        "max_seq_len", type=parse_max_seq_len, default=25,
        help="max tokens per text incl. [CLS]/[SEP]; NONE: the longest text of each batch"),))
    """None: pad to the longest text of each batch."""
    cased_tokenization: bool = setting(False, group="model", flags=(flag(
        "cased_tokenization", action="store_true",
        help="keep case and accents (for cased models)"),))
    pooling: PoolingSpec = setting(
        default_factory=PoolingSpec, group="model", flags=(
            flag("pooling_layer", type=int, nargs="+", default=[-2],
                 help="encoder layer(s) to pool: -1 the last, -2 the one below (default); "
                      "several are concatenated"),
            flag("pooling_strategy", default="REDUCE_MEAN",
                 choices=[*PoolingStrategy.__members__, MODEL_POOLING],
                 type=lambda s: s.strip().upper(),
                 help="how token vectors become one vector; MODEL: the model's own embedding "
                      "(last layer, its sentence-transformers pooling and normalization)"),
            flag("mask_cls_sep", action="store_true",
                 help="leave [CLS]/[SEP] out of pooling (they stay visible to attention)"),
        ),
        read=lambda args: _pooling_from_args(args)[0], wire=_pooling_wire, banner=_pooling_banner)
    normalize: bool = setting(False, read=lambda args: _pooling_from_args(args)[1])
    """L2-normalize each vector (-pooling_strategy MODEL, the model's Normalize module)."""
    no_special_token: bool = setting(False, group="model", flags=(flag(
        "no_special_token", action="store_true",
        help="tokenized input only: do not add [CLS]/[SEP]"),))
    no_position_embeddings: bool = setting(False, group="model", flags=(flag(
        "no_position_embeddings", action="store_true", help="do not add position embeddings"),))
    dtype: str = setting("auto", group="model", read=_dtype_from_args, wire=_dtype_wire,
                         flags=(
        flag("dtype", choices=DTYPES, default="auto",
             help="compute precision: auto (GPU: float16; CPU: float32), float32, "
                  "bfloat16 (OpenVINO, CPU with AVX512_BF16 or AMX), float16 (GPU), int8 "
                  "(CPU: block-wise int8 MatMul weights, fp32 activations, cosine to fp32 "
                  ">= 0.999; smaller, not faster)"),
        flag("int8", action="store_true", help="the same as -dtype int8"),
    ))
    """One of DTYPES; `auto` until `BertServer.start` resolves it for the workers' device."""
    runtime: str = setting("auto", group="model", flags=(flag(
        "runtime", choices=RUNTIMES, default="auto",
        help="auto (OpenVINO for -dtype bfloat16, else onnxruntime), onnxruntime, or openvino "
             "(CPU, the openvino extra: float32 or bfloat16)"),))
    """One of RUNTIMES; `auto` until resolved with `dtype` (`model.precision`)."""
    head: ModelHead | None = setting(None, group="model", read=_head_from_args,
                                     wire=None, flags=(flag(
        "head", choices=HEAD_CHOICES, default="auto",
        help="what the graph outputs: auto (a .onnx graph's own kind, else embeddings); "
             "sparse: SPLADE term weights from a BertForMaskedLM folder (-pooling flags do "
             "not apply), served by /embed_sparse and BertClient.encode_sparse"),))
    """None: what the folder is (-head auto)."""
    device: str = "cpu"
    intra_op_threads: int | None = None
    native_view: NativeView | None = None
    """The model's own embedding, computed beside `pooling` for the HTTP routes: decided
    once at start by `parse_server_config` (`native_view_for`), never a flag."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server process needs to start."""

    engine: EngineOptions = setting(default_factory=EngineOptions, nested=EngineOptions)
    port: int = setting(5555, group="serving", flags=(flag(
        "port", "port_in", "port_data", dest="port", type=int, default=5555,
        help="port clients push requests to"),))
    port_out: int = setting(5556, group="serving", flags=(flag(
        "port_out", "port_result", dest="port_out", type=int, default=5556,
        help="port clients receive replies from"),))
    bind_ip: str = setting("127.0.0.1", group="serving", wire=None, banner=as_is, flags=(flag(
        "bind_ip", default="127.0.0.1",
        help="address to bind: 127.0.0.1 (this host only), * for all interfaces"),))
    access: AccessPolicy = setting(
        default_factory=AccessPolicy, group="serving", read=_access_from_args, wire=_access_wire,
        flags=(
            flag("allow_ip", type=_allow_ip, default=(),
                 help="ZeroMQ: accept connections only from these addresses/CIDRs, comma "
                      "separated (e.g. 10.0.0.0/8,127.0.0.1)"),
            flag("curve_secret_key", type=Path, default=None,
                 help="ZeroMQ: require CURVE with this secret key file (zmq.auth .key_secret)"),
        ))
    http_port: int | None = setting(None, group="serving", flags=(flag(
        "http_port", type=int, default=None, help="also serve HTTP on this port"),))
    http_max_connect: int = setting(10, group="serving", flags=(flag(
        "http_max_connect", type=_positive, default=10,
        help="max concurrent in-flight HTTP requests; beyond it: 429 with Retry-After"),))
    http_max_body_bytes: int = setting(
        10 * 1024 * 1024, group="serving", wire=None, banner=as_is, flags=(flag(
            "http_max_body_bytes", type=_positive, default=10 * 1024 * 1024,
            help="larger HTTP request bodies get 413"),))
    cors: str = setting("*", group="serving", flags=(flag(
        "cors", default="*", help="HTTP CORS allowed origins, comma separated"),))
    api_key: str | None = setting(
        None, group="serving", read=_api_key, wire=None, banner=_secret, flags=(flag(
            "api_key", default=None,
            help="require 'Authorization: Bearer KEY' on HTTP (env BERT_SERVING_API_KEY)"),))
    open_metrics: bool = setting(False, group="serving", wire=None, flags=(flag(
        "open_metrics", action="store_true",
        help="serve /metrics without the API key (for scrapers); /health, /ready always are"),))
    embedding_ranges: Path | None = setting(
        None, group="serving", wire=None, banner=as_is, flags=(flag(
            "embedding_ranges", type=Path, default=None,
            help="int8/uint8 embeddings (HTTP output_dtype, a client's precision): a .npy "
                 "[2, dim] array of each dimension's min and max over the vectors the HTTP "
                 "routes serve; default: [-r, r], r = min(1, 4/sqrt(dim)), for unit vectors "
                 "only"),))
    num_worker: int = setting(1, group="serving", flags=(flag(
        "num_worker", type=_positive, default=1, help="worker processes"),))
    max_batch_size: int = setting(256, group="serving", flags=(flag(
        "max_batch_size", type=_positive, default=256, help="max texts per batch"),))
    max_batch_tokens: int | None = setting(None, group="serving", flags=(flag(
        "max_batch_tokens", type=_positive, default=None,
        help="max padded tokens per batch (texts x longest text); default: "
             f"{CPU_BATCH_TOKENS} on CPU, {GPU_BATCH_TOKENS} on GPU"),))
    """None: by device; `BertServer.start` resolves it once (`batch_token_budget`)."""
    priority_batch_size: int = setting(16, group="serving", flags=(flag(
        "priority_batch_size", type=int, default=16,
        help="requests with at most this many texts are served first"),))
    max_request_texts: int = setting(100_000, group="serving", wire=None, banner=as_is, flags=(
        flag("max_request_texts", type=_positive, default=100_000,
             help="larger requests get an error reply"),))
    max_queue_texts: int = setting(1_000_000, group="serving", wire=None, banner=as_is, flags=(
        flag("max_queue_texts", type=_positive, default=1_000_000,
             help="past this many waiting texts, requests get a 'server busy' error"),))
    max_text_bytes: int = setting(1 << 20, group="serving", flags=(flag(
        "max_text_bytes", type=_positive, default=1 << 20,
        help="longer texts (UTF-8 bytes) get an error reply before tokenizing"),))
    prefetch_size: int = setting(2, group="serving", flags=(flag(
        "prefetch_size", type=_positive, default=2,
        help="batches handed to each worker ahead (at hand when the previous ends)"),))
    show_tokens_to_client: bool = setting(False, group="serving", flags=(flag(
        "show_tokens_to_client", action="store_true",
        help="send each text's tokens with its vector"),))
    truncation: Truncation = setting("truncate", group="serving", flags=(flag(
        "truncation", choices=TRUNCATION_MODES, default="truncate",
        help="texts over -max_seq_len: truncate (cut on the right), error (refused, "
             "naming the text), chunk (windows of -max_seq_len, vectors joined)"),))
    chunk_overlap: int = setting(4, group="serving", wire=None, flags=(flag(
        "chunk_overlap", type=int, default=4,
        help="-truncation chunk: tokens each window shares with the one before"),))
    job_timeout: float = setting(600.0, group="serving", wire=None, banner=as_is, flags=(flag(
        "job_timeout", type=float, default=600.0,
        help="seconds after which an unfinished request is dropped"),))
    cpu: bool = setting(False, group="devices", flags=(flag(
        "cpu", action="store_true", help="run on CPU only"),))
    device_map: tuple[int, ...] = setting(
        (), group="devices", read=lambda args: tuple(args.device_map), wire=None, banner=as_is,
        flags=(flag("device_map", type=int, nargs="+", default=[],
                    help="GPU ids the workers cycle over; default: every visible GPU"),))
    """SHOW_CONFIG's device_map is each worker's device, as resolved (`show_config`)."""
    fp16: bool = setting(False, group="devices", flags=(flag(
        "fp16", action="store_true", help="reply with float16 vectors"),))
    intra_op_threads: int | None = setting(
        None, group="devices", wire=None, banner=as_is, flags=(flag(
            "intra_op_threads", type=_positive, default=None,
            help="onnxruntime threads per worker; default: CPU cores / workers on CPU, "
                 "1 on GPU"),))
    ignored_flags: tuple[str, ...] = setting(
        (), group="devices", read=_ignored, wire=_ignored_wire, flags=(
            flag("xla", action="store_true", help="accepted, ignored (TensorFlow only)"),
            flag("gpu_memory_fraction", type=float, default=None,
                 help="accepted, ignored (TensorFlow only)"),
            flag("fixed_embed_length", action="store_true", help="accepted, ignored"),
        ))
    verbose: bool = setting(False, group="devices", flags=(flag(
        "verbose", action="store_true", help="debug logging"),))
    fault: str | None = setting(None, read=_fault_from_environment, wire=None)
    """BERT_SERVING_INJECT_FAULT (tests only): `ventilator` or `sink` makes that loop die;
    `worker_load` makes each worker's model load never end."""
    native_embedding: NativeEmbedding | None = field(default=None, compare=False)
    """The folder's own embedding (pooling, Normalize, prompts, max_seq_length), read once
    by `parse_server_config`; None: not a sentence-transformers folder, or modules this
    server does not compute. Read from what the flags name (as `loaded_ranges`), so
    configs compare by their flags alone."""
    loaded_ranges: np.ndarray | None = field(default=None, compare=False)
    """-embedding_ranges' [2, dim] array, loaded and checked once by `parse_server_config`;
    its width is checked against the graph's when the server knows the graph."""

    @property
    def batch_tokens(self) -> int:
        """-max_batch_tokens as `BertServer.start` resolved it for its devices."""
        if self.max_batch_tokens is None:
            raise ConfigError("max_batch_tokens is not resolved yet: BertServer.start resolves "
                              "it for the workers' devices (batch_token_budget)")
        return self.max_batch_tokens

    def engine_for(self, device: str, threads: int | None) -> EngineOptions:
        return dataclasses.replace(self.engine, device=device, intra_op_threads=threads)

    def as_wire_dict(self) -> dict[str, Any]:
        """The original's SHOW_CONFIG keys for the flags (pooling_strategy as its integer enum)."""
        return _shown(self, banner=False)

    def as_banner_dict(self) -> dict[str, Any]:
        """Every setting by flag name, as a person reads them (the start banner)."""
        return _shown(self, banner=True)


def _shown(options: Any, *, banner: bool) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for item in dataclasses.fields(options):
        how = setting_of(item)
        value = getattr(options, item.name)
        if how is not None and how.nested is not None:
            rows.update(_shown(value, banner=banner))
        elif how is not None:
            rows.update(how.shown(item.name, value, banner=banner))
    return rows


def show_config(config: ServerConfig, devices: Sequence[str],
                graph: PreparedGraph, running: Running | None = None) -> dict[str, Any]:
    """SHOW_CONFIG's fixed contents, built here only.

    The flags under their original names, `device_map` as the device each worker got
    (as the original reported its resolved map), and the graph being served, with the
    precision its runtime reports it computes in (`running`; by default the graph's
    own). The ventilator adds what changes (times, pending texts) when it answers.
    """
    metadata = graph.metadata
    running = running or Running(config.engine.runtime, metadata.precision)
    return {
        **config.as_wire_dict(),
        "device_map": list(devices),
        "output_dim": metadata.output_width,
        "graph_path": str(graph.path),
        "graph_precision": metadata.precision,
        "inference_precision": running.precision,
        "model_head": metadata.head.value,  # a classifier's encode answers its logits
        "id2label": {str(i): label for i, label in enumerate(metadata.labels)},
    }


def batch_token_budget(config: ServerConfig, devices: Sequence[str]) -> int:
    """-max_batch_tokens if given, else the default for these devices: decided once, at start.

    One scheduler batches for every worker, so there is one budget: the GPU one when
    the workers run on GPUs (`assign_devices` never mixes CPU and GPU workers).
    """
    if config.max_batch_tokens:
        return config.max_batch_tokens
    on_cpu = all(device == "cpu" for device in devices)
    return CPU_BATCH_TOKENS if on_cpu else GPU_BATCH_TOKENS


# -- parsing ----------------------------------------------------------------------------

def _add_flags(parser: argparse.ArgumentParser, options: type,
               groups: dict[str, argparse._ArgumentGroup]) -> None:
    """Every flag of `options`' fields, in field order, under its group's heading."""
    for item in dataclasses.fields(options):
        how = setting_of(item)
        if how is None:
            continue
        if how.nested is not None:
            _add_flags(parser, how.nested, groups)
            continue
        for one in how.flags:
            if how.group not in groups:
                groups[how.group] = parser.add_argument_group(how.group)
            one.add_to(groups[how.group])


def _read(options: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of `options` that the parsed flags (or the environment) set."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(options):
        how = setting_of(item)
        if how is None:
            continue
        if how.nested is not None:
            values[item.name] = how.nested(**_read(how.nested, args))
        elif how.read is not None:
            values[item.name] = how.read(args)
        elif how.flags:
            values[item.name] = getattr(args, how.flags[0].dest)
    return values


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that decide which model is loaded and what the graph computes (start and export)."""
    _add_flags(parser, EngineOptions, {})


def engine_options_from_args(args: argparse.Namespace, *, device: str = "cpu",
                             intra_op_threads: int | None = None) -> EngineOptions:
    """The one place parsed model flags become an `EngineOptions`."""
    return EngineOptions(**_read(EngineOptions, args), device=device,
                         intra_op_threads=intra_op_threads)


def build_parser() -> argparse.ArgumentParser:
    """The `bert-serving-start` parser (also the source of the README's CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="bert-serving-start",
        description="Serve BERT sentence embeddings over ZeroMQ (and HTTP) on onnxruntime.",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    _add_flags(parser, ServerConfig, groups)
    groups["devices"].add_argument("-version", "--version", action="version",
                                   version=f"bert-serving {__version__}")
    return parser


def _port_clash(args: argparse.Namespace) -> str | None:
    """Two of our own sockets on one port: say so, rather than "is another server running?"."""
    ports = {"-port": args.port, "-port_out": args.port_out, "-http_port": args.http_port}
    seen: dict[int, str] = {}
    for flag_name, port in ports.items():
        if port is not None and port in seen:
            return f"{seen[port]} and {flag_name} are both {port}: each needs its own port"
        if port is not None:
            seen[port] = flag_name
    return None


def parse_server_config(argv: Sequence[str] | None = None) -> ServerConfig:
    """Parse argv: argparse exits with usage on a malformed flag; ConfigError on a flag that
    the folder or another flag rules out.

    The files the flags name are read here, once: the folder's own embedding and the
    -embedding_ranges array ride on the config to the gateway and the sink, so nothing
    after the start reads them again or finds them changed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    clash = _port_clash(args)
    if clash:
        parser.error(clash)
    # A flag the model folder or another flag cannot honour is a ConfigError, which
    # bert-serving-start prints as one line (argparse's usage would bury it).
    config = ServerConfig(**_read(ServerConfig, args))
    if config.truncation == "chunk":
        reduction_for(config.engine.pooling.strategy)  # refuses NONE
    config = dataclasses.replace(config, native_embedding=_native_from_args(args),
                                 loaded_ranges=configured_ranges(config.embedding_ranges))
    engine = dataclasses.replace(config.engine, native_view=native_view_for(config))
    return dataclasses.replace(config, engine=engine)


def native_view_for(config: ServerConfig) -> NativeView | None:
    """The model's own embedding to compute beside the server's pooling, if both are needed.

    They are when the gateway runs (-http_port: its TEI and OpenAI routes owe the folder's
    users the vectors the model was trained for), the folder is a sentence-transformers
    one this server can pool, and the server's pooling (the 1.10 protocol's) is another:
    layer -2 masked mean on a plain start. Not for token vectors (NONE), a -head other
    than embeddings, or a ready .onnx graph (exported with one pooling).
    """
    engine = config.engine
    if (config.http_port is None or engine.head not in (None, ModelHead.EMBEDDING)
            or engine.pooling.strategy is PoolingStrategy.NONE):
        return None
    model_dir = engine.model_dir or default_model_dir()
    if model_dir.suffix == ".onnx" or (model_dir / "model.onnx").is_file():
        return None
    native = config.native_embedding
    if native is None or native.is_pooled_by(engine.pooling, engine.normalize):
        return None
    return NativeView(native.pooling_spec(), native.normalize)
