"""The engine: token ids in, pooled sentence vectors out, in-process.

An engine is one runner over one prepared graph, with what it pads batches with.
Serving workers get ids the ventilator tokenized, so theirs is built with a
`Padder` alone (`Engine.from_graph(graph, options, padder=...)`); tests and
scripts load one with its tokenizer and pass texts (`Engine.load`, `encode`).
This module does not convert: `Engine.load` calls conversion (`convert.prepare`,
which imports onnx) only when it is used, so a worker never loads it.

Usage::

    engine = Engine.load(EngineOptions(model_dir=Path("./chinese_L-12_H-768_A-12")))
    vectors = engine.encode(["你好", "hello world"])   # float32 [2, 768]

A graph with a native view (`NativeView`) returns rows of `graph.metadata.row_width`:
the server's pooling (`output_width` columns), then the model's own embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import numpy as np

from bert_serving.proto.inputs import (
    TextInput,
    WordPair,
    WordsInput,
    read_legacy_text,
    read_legacy_words,
)

from ..config import EngineOptions
from .graph_contract import TOKENIZER_JSON_NAME, PreparedGraph, default_cache_dir
from .hf_tokenizer import HfTokenizer
from .native_embedding import l2_normalize
from .padding import Padder, TokenBatch
from .precision import resolve_inference
from .runtime import OnnxRunner, Runner, parse_device
from .tokenization import TextTokenizer
from .wordpiece import WordPieceTokenizer

__all__ = ["Engine", "EngineOptions", "build_tokenizer", "open_runner"]
"""`EngineOptions` lives in `config`; it is named here too, where the engine's users look."""

log = logging.getLogger(__name__)


class Engine:
    """A runner over one prepared graph, what it pads with, and (in-process) its tokenizer."""

    def __init__(self, graph: PreparedGraph, tokenizer: TextTokenizer | None, runner: Runner,
                 *, normalize: bool = False, padder: Padder | None = None) -> None:
        if padder is None:
            if tokenizer is None:
                raise ValueError("an Engine needs a tokenizer or a padder")
            padder = tokenizer.padder
        self.graph = graph
        self._tokenizer = tokenizer
        self.padder = padder
        self.runner = runner
        if normalize and graph.metadata.native is not None:  # would mix both halves' norms
            raise ValueError("a graph with a native view is never L2-normalized as a whole: "
                             "its native half is normalized in the graph")
        self.normalize = normalize

    @classmethod
    def load(cls, options: EngineOptions) -> Engine:
        """Locate, convert (or find cached) and load the model, with its tokenizer."""
        from ..convert.prepare import prepare_engine_graph  # the converting process only

        return cls.from_graph(prepare_engine_graph(options), options)

    @classmethod
    def from_graph(cls, graph: PreparedGraph, options: EngineOptions, *,
                   padder: Padder | None = None) -> Engine:
        """Load a graph already prepared (workers get theirs from the server process).

        With `padder` (a worker's case) no tokenizer is built: the engine takes ids only.
        """
        runner = open_runner(graph, options)
        tokenizer = None if padder is not None else build_tokenizer(graph, options)
        return cls(graph, tokenizer, runner, normalize=options.normalize, padder=padder)

    @property
    def tokenizer(self) -> TextTokenizer:
        """The texts' tokenizer; an engine built with a padder alone (a worker's) has none."""
        if self._tokenizer is None:
            raise ValueError("this engine takes token ids only (built with a padder, as a "
                             "worker's): load it with Engine.load to encode texts")
        return self._tokenizer

    @property
    def output_width(self) -> int:
        """The server's pooling's columns; a native view's follow (`metadata.row_width`)."""
        return self.graph.metadata.output_width

    def tokenize(
        self, texts: Sequence[TextInput] | Sequence[WordsInput], *,
        is_tokenized: bool = False, with_tokens: bool = False,
    ) -> TokenBatch:
        """Rows as `BertClient.encode` (whose local twin this is) has the server read them:
        a str in the 1.10 reading ('a ||| b' is a pair: `read_legacy_text`), a `Dual`
        or `Ids` as it is. `self.tokenizer.encode` takes every str verbatim."""
        if is_tokenized:
            words = [read_legacy_words(list(w)) if not isinstance(w, WordPair) else w
                     for w in cast(Sequence[WordsInput], texts)]
            return self.tokenizer.encode_tokenized(words, with_tokens=with_tokens)
        rows = [read_legacy_text(t) if isinstance(t, str) else t
                for t in cast(Sequence[TextInput], texts)]
        return self.tokenizer.encode(rows, with_tokens=with_tokens)

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
        seq = self.padder.max_len
        rows = max(1, min(max_batch_size, max_batch_tokens // seq))
        shapes = [(1, min(seq, 8)), (rows, seq)]
        for shape in shapes:
            ids = np.full(shape, self.padder.pad_id, dtype=np.int64)
            self.embed(TokenBatch(ids, np.ones_like(ids), np.zeros_like(ids)))
        return shapes

    def encode(
        self, texts: Sequence[TextInput] | Sequence[WordsInput], *,
        is_tokenized: bool = False,
    ) -> np.ndarray:
        """Vectors for `texts`, one row each, in order (float32); rows as `tokenize` reads them."""
        return self.embed(self.tokenize(texts, is_tokenized=is_tokenized))


def open_runner(graph: PreparedGraph, options: EngineOptions) -> Runner:
    """The runtime `-dtype`/`-runtime` resolve to on the options' device, over `graph`.

    OpenVINO's compiled blobs go beside the converted graphs (its CACHE_DIR), keyed by
    OpenVINO on the graph and the compile settings, so precisions never share a blob.
    """
    inference = resolve_inference(options.dtype, options.runtime, options.device)
    if inference.runtime == "openvino":
        from .openvino_runner import OpenVinoRunner  # the optional extra's module

        cache = (options.graph_tmp_dir or default_cache_dir()) / "openvino"
        return OpenVinoRunner(graph.path, dtype=inference.dtype,
                              threads=options.intra_op_threads, cache_dir=cache)
    return OnnxRunner(graph.path, device=parse_device(options.device),
                      intra_op_threads=options.intra_op_threads)


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
