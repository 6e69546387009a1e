"""`bert-serving-export`: convert a model ahead of time, e.g. while building a container image.

Writes the graph and the vocab.txt beside it (and `OUT.onnx.data`, the weights, for a
graph past graph_file's one-file size); `bert-serving-start -model_dir OUT.onnx`
(with the same pooling flags) then serves it without converting.

Usage::

    bert-serving-export -model_dir ./chinese_L-12_H-768_A-12 -o /models/bert/model.onnx
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from . import __version__
from .config import add_model_flags, engine_options_from_args
from .convert.graph_file import copy_graph
from .convert.prepare import prepare_engine_graph
from .errors import BertServingError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-serving-export",
        description="Convert a BERT checkpoint to the ONNX graph bert-serving runs.",
    )
    add_model_flags(parser)
    parser.add_argument("-o", "-output", "--output", type=Path, required=True,
                        help="output .onnx file; its vocab.txt or tokenizer.json goes beside it")
    parser.add_argument("-gpu", "--gpu", action="store_true",
                        help="export the GPU graph (fp16, fused attention) instead of CPU fp32")
    parser.add_argument("-version", "--version", action="version",
                        version=f"bert-serving {__version__}")
    return parser


def export(args: argparse.Namespace) -> Path:
    options = engine_options_from_args(args, device="cuda:0" if args.gpu else "cpu")
    graph = prepare_engine_graph(options)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    copy_graph(graph.path, output)  # with its weights file beside it, if it has one
    vocab = output.parent / graph.vocab_path.name  # vocab.txt, or tokenizer.json
    if vocab.resolve() != graph.vocab_path.resolve():
        shutil.copyfile(graph.vocab_path, vocab)
    return output


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        output = export(args)
    except BertServingError as error:
        print(f"bert-serving-export: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output} and its tokenizer file beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
