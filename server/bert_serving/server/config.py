"""The server's configuration: one typed object, built in one place from argv and the environment.

Every flag of the original `bert-serving-start`, single-dash spelled (double-dash
accepted), with its defaults; flags with no meaning on onnxruntime are accepted
and said so once. Nothing else in the package reads argv or the environment.

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

from . import __version__
from .access import AccessPolicy, IpNetwork, load_curve_secret_key, parse_allow_ip
from .chunking import TRUNCATION_MODES, Truncation, reduction_for
from .engine import EngineOptions
from .errors import ConfigError
from .flags import add_flag, add_model_flags, engine_options_from_args
from .model_head import ModelHead

__all__ = [
    "CPU_BATCH_TOKENS",
    "GPU_BATCH_TOKENS",
    "IGNORED_FLAGS",
    "ServerConfig",
    "batch_token_budget",
    "build_parser",
    "parse_server_config",
]

# Accepted for compatibility; onnxruntime has no use for them.
IGNORED_FLAGS = {
    "xla": "XLA is a TensorFlow compiler; onnxruntime optimizes the graph itself",
    "gpu_memory_fraction": "onnxruntime's CUDA provider allocates what it needs",
    "fixed_embed_length": "token-level replies are padded to -max_seq_len when it is set",
}


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server process needs to start."""

    engine: EngineOptions = field(default_factory=EngineOptions)
    bind_ip: str = "127.0.0.1"
    port: int = 5555
    port_out: int = 5556
    http_port: int | None = None
    http_max_connect: int = 10
    http_max_body_bytes: int = 10 * 1024 * 1024
    cors: str = "*"
    api_key: str | None = None
    open_metrics: bool = False
    access: AccessPolicy = field(default_factory=AccessPolicy)
    num_worker: int = 1
    max_batch_size: int = 256
    max_batch_tokens: int | None = None  # None: by device, see `batch_token_budget`
    priority_batch_size: int = 16
    max_request_texts: int = 100_000
    max_queue_texts: int = 1_000_000
    max_text_bytes: int = 1 << 20
    cpu: bool = False
    fp16: bool = False
    device_map: tuple[int, ...] = ()
    prefetch_size: int = 2
    intra_op_threads: int | None = None
    show_tokens_to_client: bool = False
    truncation: Truncation = "truncate"
    chunk_overlap: int = 4
    job_timeout: float = 600.0
    verbose: bool = False
    ignored_flags: tuple[str, ...] = ()
    fault: str | None = None
    """BERT_SERVING_INJECT_FAULT: `ventilator` or `sink` makes that loop die (tests only)."""

    def engine_for(self, device: str, threads: int | None) -> EngineOptions:
        return dataclasses.replace(self.engine, device=device, intra_op_threads=threads)

    def as_wire_dict(self) -> dict[str, Any]:
        """The original's SHOW_CONFIG keys (pooling_strategy as its integer enum)."""
        engine = self.engine
        return {
            "model_dir": str(engine.model_dir) if engine.model_dir else None,
            "tuned_model_dir": str(engine.tuned_model_dir) if engine.tuned_model_dir else None,
            "ckpt_name": engine.ckpt_name,
            "config_name": engine.config_name,
            "graph_tmp_dir": str(engine.graph_tmp_dir) if engine.graph_tmp_dir else None,
            "max_seq_len": engine.max_seq_len,
            "cased_tokenization": engine.cased_tokenization,
            "pooling_layer": list(engine.pooling.layers),
            "pooling_strategy": int(engine.pooling.strategy),
            "mask_cls_sep": engine.pooling.mask_cls_sep,
            "normalize": engine.normalize,
            "no_special_token": engine.no_special_token,
            "no_position_embeddings": engine.no_position_embeddings,
            "int8": engine.int8,
            "show_tokens_to_client": self.show_tokens_to_client,
            "truncation": self.truncation,
            "port": self.port,
            "port_out": self.port_out,
            "http_port": self.http_port,
            "http_max_connect": self.http_max_connect,
            "cors": self.cors,
            "num_worker": self.num_worker,
            "max_batch_size": self.max_batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "max_text_bytes": self.max_text_bytes,
            "allow_ip": [str(network) for network in self.access.allow],
            "curve": self.access.curve_secret_key is not None,
            "priority_batch_size": self.priority_batch_size,
            "cpu": self.cpu,
            "fp16": self.fp16,
            "device_map": list(self.device_map),
            "prefetch_size": self.prefetch_size,
            "verbose": self.verbose,
            "xla": False,
            "gpu_memory_fraction": None,
            "fixed_embed_length": False,
        }


# Measured on MiniLM, seq 4-128, 2 cores: 4096 padded tokens per batch ran 1.36x faster than
# 16384 (batches stay in cache); GPUs need large batches to fill their cores.
CPU_BATCH_TOKENS = 4096
GPU_BATCH_TOKENS = 16384


def batch_token_budget(config: ServerConfig, device: str) -> int:
    """-max_batch_tokens if given, else the default for the device kind."""
    if config.max_batch_tokens:
        return config.max_batch_tokens
    return CPU_BATCH_TOKENS if device == "cpu" else GPU_BATCH_TOKENS


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


def _add_serving_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("serving")
    add_flag(group, "port", "port_in", "port_data", dest="port", type=int, default=5555,
          help="port clients push requests to")
    add_flag(group, "port_out", "port_result", dest="port_out", type=int, default=5556,
          help="port clients receive replies from")
    add_flag(group, "bind_ip", default="127.0.0.1",
          help="address to bind: 127.0.0.1 (this host only), * for all interfaces")
    add_flag(group, "allow_ip", type=_allow_ip, default=(),
          help="ZeroMQ: accept connections only from these addresses/CIDRs, comma separated "
               "(e.g. 10.0.0.0/8,127.0.0.1)")
    add_flag(group, "curve_secret_key", type=Path, default=None,
          help="ZeroMQ: require CURVE with this secret key file (zmq.auth .key_secret)")
    add_flag(group, "http_port", type=int, default=None, help="also serve HTTP on this port")
    add_flag(group, "http_max_connect", type=_positive, default=10,
          help="max concurrent in-flight HTTP requests; beyond it: 429 with Retry-After")
    add_flag(group, "http_max_body_bytes", type=_positive, default=10 * 1024 * 1024,
          help="larger HTTP request bodies get 413")
    add_flag(group, "cors", default="*", help="HTTP CORS allowed origins, comma separated")
    add_flag(group, "api_key", default=os.environ.get("BERT_SERVING_API_KEY"),
          help="require 'Authorization: Bearer KEY' on HTTP (env BERT_SERVING_API_KEY)")
    add_flag(group, "open_metrics", action="store_true",
          help="serve /metrics without the API key (for scrapers); /health, /ready always are")
    add_flag(group, "num_worker", type=_positive, default=1, help="worker processes")
    add_flag(group, "max_batch_size", type=_positive, default=256, help="max texts per batch")
    add_flag(group, "max_batch_tokens", type=_positive, default=None,
          help="max padded tokens per batch (texts x longest text); default: "
               f"{CPU_BATCH_TOKENS} on CPU, {GPU_BATCH_TOKENS} on GPU")
    add_flag(group, "priority_batch_size", type=int, default=16,
          help="requests with at most this many texts are served first")
    add_flag(group, "max_request_texts", type=_positive, default=100_000,
          help="larger requests get an error reply")
    add_flag(group, "max_queue_texts", type=_positive, default=1_000_000,
          help="past this many waiting texts, requests get a 'server busy' error")
    add_flag(group, "max_text_bytes", type=_positive, default=1 << 20,
          help="longer texts (UTF-8 bytes) get an error reply before tokenizing")
    add_flag(group, "prefetch_size", type=_positive, default=2,
          help="batches handed to each worker ahead (at hand when the previous ends)")
    add_flag(group, "show_tokens_to_client", action="store_true",
          help="send each text's tokens with its vector")
    add_flag(group, "truncation", choices=TRUNCATION_MODES, default="truncate",
          help="texts over -max_seq_len: truncate (cut on the right), error (refused, "
               "naming the text), chunk (windows of -max_seq_len, vectors joined)")
    add_flag(group, "chunk_overlap", type=int, default=4,
          help="-truncation chunk: tokens each window shares with the one before")
    add_flag(group, "job_timeout", type=float, default=600.0,
          help="seconds after which an unfinished request is dropped")


def _add_device_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("devices")
    add_flag(group, "cpu", action="store_true", help="run on CPU only")
    add_flag(group, "device_map", type=int, nargs="+", default=[],
          help="GPU ids the workers cycle over; default: every visible GPU")
    add_flag(group, "fp16", action="store_true", help="reply with float16 vectors")
    add_flag(group, "intra_op_threads", type=_positive, default=None,
          help="onnxruntime threads per worker; default: CPU cores / workers on CPU, 1 on GPU")
    add_flag(group, "xla", action="store_true", help="accepted, ignored (TensorFlow only)")
    add_flag(group, "gpu_memory_fraction", type=float, default=None,
          help="accepted, ignored (TensorFlow only)")
    add_flag(group, "fixed_embed_length", action="store_true", help="accepted, ignored")
    add_flag(group, "verbose", action="store_true", help="debug logging")
    parser.add_argument("-version", "--version", action="version",
                        version=f"bert-serving {__version__}")


def build_parser() -> argparse.ArgumentParser:
    """The `bert-serving-start` parser (also the source of the README's CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="bert-serving-start",
        description="Serve BERT sentence embeddings over ZeroMQ (and HTTP) on onnxruntime.",
    )
    add_model_flags(parser)
    _add_serving_flags(parser)
    _add_device_flags(parser)
    return parser


def _ignored(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(name for name in IGNORED_FLAGS if getattr(args, name) not in (False, None))


def _port_clash(args: argparse.Namespace) -> str | None:
    """Two of our own sockets on one port: say so, rather than "is another server running?"."""
    ports = {"-port": args.port, "-port_out": args.port_out, "-http_port": args.http_port}
    seen: dict[int, str] = {}
    for flag, port in ports.items():
        if port is not None and port in seen:
            return f"{seen[port]} and {flag} are both {port}: each needs its own port"
        if port is not None:
            seen[port] = flag
    return None


def parse_server_config(argv: Sequence[str] | None = None) -> ServerConfig:
    """Parse argv: argparse exits with usage on a malformed flag; ConfigError on a flag that
    the folder or another flag rules out."""
    parser = build_parser()
    args = parser.parse_args(argv)
    clash = _port_clash(args)
    if clash:
        parser.error(clash)
    # A flag the model folder or another flag cannot honour is a ConfigError, which
    # bert-serving-start prints as one line (argparse's usage would bury it).
    return _config_from_args(args)


def _config_from_args(args: argparse.Namespace) -> ServerConfig:
    engine = engine_options_from_args(args)
    if args.truncation == "chunk":
        if engine.head is ModelHead.SPARSE:
            raise ConfigError("-truncation chunk is not supported with -head sparse yet: use "
                              "truncate or error")
        reduction_for(engine.pooling.strategy)  # refuses NONE
    return ServerConfig(
        engine=engine,
        bind_ip=args.bind_ip,
        port=args.port,
        port_out=args.port_out,
        http_port=args.http_port,
        http_max_connect=args.http_max_connect,
        http_max_body_bytes=args.http_max_body_bytes,
        cors=args.cors,
        api_key=args.api_key,
        open_metrics=args.open_metrics,
        access=AccessPolicy(
            allow=args.allow_ip,
            curve_secret_key=(load_curve_secret_key(args.curve_secret_key)
                              if args.curve_secret_key else None),
        ),
        num_worker=args.num_worker,
        max_batch_size=args.max_batch_size,
        max_batch_tokens=args.max_batch_tokens,
        priority_batch_size=args.priority_batch_size,
        max_request_texts=args.max_request_texts,
        max_queue_texts=args.max_queue_texts,
        max_text_bytes=args.max_text_bytes,
        cpu=args.cpu,
        fp16=args.fp16,
        device_map=tuple(args.device_map),
        prefetch_size=args.prefetch_size,
        intra_op_threads=args.intra_op_threads,
        show_tokens_to_client=args.show_tokens_to_client,
        truncation=args.truncation,
        chunk_overlap=args.chunk_overlap,
        job_timeout=args.job_timeout,
        verbose=args.verbose,
        ignored_flags=_ignored(args),
        fault=os.environ.get("BERT_SERVING_INJECT_FAULT") or None,
    )
