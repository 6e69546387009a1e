"""The engine: texts in, pooled sentence vectors out, in-process.

This is the public entry point for the model side of the server. It resolves
the model folder, converts (or finds in the cache) the ONNX graph, builds the
tokenizer and the runner. Workers hold one engine each; tests and scripts use
it directly.

Usage::

    engine = Engine.load(EngineOptions(model_dir=Path("./chinese_L-12_H-768_A-12")))
    vectors = engine.encode(["你好", "hello world"])   # float32 [2, 768]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .convert.cache import GraphCache, default_cache_dir
from .convert.prepare import ConversionOptions, PreparedGraph, prepare_graph
from .convert.sources import TOKENIZER_JSON_NAME, detect_model_source
from .default_model import default_model_dir
from .errors import ConfigError
from .hf_tokenizer import HfTokenizer
from .model_head import ModelHead
from .native_embedding import l2_normalize
from .pooling import PoolingSpec
from .runtime import Device, OnnxRunner, parse_device
from .tokenization import TextTokenizer, TokenBatch, WordPieceTokenizer

__all__ = ["Engine", "EngineOptions", "build_tokenizer", "prepare_engine_graph"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """The model-side options, with the original CLI's names and defaults."""

    model_dir: Path | None = None  # None: the embedded MiniLM
    tuned_model_dir: Path | None = None
    ckpt_name: str = "bert_model.ckpt"
    config_name: str = "bert_config.json"
    graph_tmp_dir: Path | None = None  # None: the user cache folder
    max_seq_len: int | None = 25  # None: pad to the longest text of each batch
    cased_tokenization: bool = False
    pooling: PoolingSpec = field(default_factory=PoolingSpec)
    normalize: bool = False  # L2-normalize each vector (-pooling_strategy MODEL, Normalize module)
    no_special_token: bool = False
    no_position_embeddings: bool = False
    int8: bool = False
    head: ModelHead | None = None  # None: what the folder is (-head auto)
    device: str = "cpu"
    intra_op_threads: int | None = None

    def conversion(self, device: Device) -> ConversionOptions:
        """The graph this engine needs on `device`: fp16 + fusions on GPU, int8 on request."""
        on_gpu = device.kind == "cuda"
        if self.int8 and on_gpu:
            raise ConfigError("-int8 is a CPU option: on GPU the graph runs in fp16; drop -int8")
        precision = "int8" if self.int8 else "fp16" if on_gpu else "fp32"
        return ConversionOptions(
            pooling=self.pooling,
            use_position_embeddings=not self.no_position_embeddings,
            precision=precision,
            fuse_for_gpu=on_gpu,
            head=self.head or ModelHead.EMBEDDING,
        )


class Engine:
    """A tokenizer and a runner over one prepared graph."""

    def __init__(self, graph: PreparedGraph, tokenizer: TextTokenizer, runner: OnnxRunner,
                 *, normalize: bool = False) -> None:
        self.graph = graph
        self.tokenizer = tokenizer
        self.runner = runner
        self.normalize = normalize

    @classmethod
    def load(cls, options: EngineOptions) -> Engine:
        """Locate, convert (or find cached) and load the model."""
        return cls.from_graph(prepare_engine_graph(options), options)

    @classmethod
    def from_graph(cls, graph: PreparedGraph, options: EngineOptions) -> Engine:
        """Load a graph already prepared (workers get theirs from the server process)."""
        runner = OnnxRunner(
            graph.path, device=parse_device(options.device),
            intra_op_threads=options.intra_op_threads,
        )
        return cls(graph, build_tokenizer(graph, options), runner, normalize=options.normalize)

    @property
    def output_width(self) -> int:
        return self.graph.metadata.output_width

    def tokenize(
        self, texts: Sequence[str] | Sequence[Sequence[str]], *, is_tokenized: bool = False,
        with_tokens: bool = False,
    ) -> TokenBatch:
        if is_tokenized:
            return self.tokenizer.encode_tokenized(texts, with_tokens=with_tokens)
        return self.tokenizer.encode(texts, with_tokens=with_tokens)  # type: ignore[arg-type]

    def embed(self, batch: TokenBatch) -> np.ndarray:
        """The graph's vectors; L2-normalized here, after pooling, when the model's own asks."""
        vectors = self.runner.embed(batch)
        return l2_normalize(vectors) if self.normalize else vectors

    def warm_up(self, max_batch_tokens: int, max_batch_size: int) -> list[tuple[int, int]]:
        """Run a one-text batch and the largest batch the scheduler may form, before serving.

        Two reasons: a graph that cannot run on this device (a missing CUDA kernel,
        too little memory for the largest batch) fails the start, in the worker's log,
        not the first client's request; and a session's first runs size its memory
        arena and, on CUDA, load kernels and create handles, which the first clients
        would otherwise wait for. (On CPU the second was not measurable: the first
        single-text request took ~10 ms with or without.) Returns the (rows, seq) shapes.
        """
        seq = self.tokenizer.max_len
        rows = max(1, min(max_batch_size, max_batch_tokens // seq))
        shapes = [(1, min(seq, 8)), (rows, seq)]
        for shape in shapes:
            ids = np.full(shape, self.tokenizer.pad_id, dtype=np.int64)
            self.embed(TokenBatch(ids, np.ones_like(ids), np.zeros_like(ids)))
        return shapes

    def encode(
        self, texts: Sequence[str] | Sequence[Sequence[str]], *, is_tokenized: bool = False
    ) -> np.ndarray:
        """Vectors for `texts`, one row each, in order (float32)."""
        return self.embed(self.tokenize(texts, is_tokenized=is_tokenized))


def build_tokenizer(graph: PreparedGraph, options: EngineOptions) -> TextTokenizer:
    """The tokenizer that goes with `graph` under these options.

    Google's WordPiece over vocab.txt for BERT (as the original); the folder's own
    tokenizer.json for the other families (-cased_tokenization does not apply there).
    """
    if graph.vocab_path.name == TOKENIZER_JSON_NAME:
        return HfTokenizer(
            graph.vocab_path,
            max_seq_len=options.max_seq_len,
            max_position_embeddings=graph.metadata.max_tokens,
            add_special_tokens=not options.no_special_token,
        )
    return WordPieceTokenizer(
        graph.vocab_path,
        lowercase=not options.cased_tokenization,
        max_seq_len=options.max_seq_len,
        max_position_embeddings=graph.metadata.max_tokens,
        add_special_tokens=not options.no_special_token,
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
    return prepare_graph(source, options.conversion(parse_device(options.device)), cache)
