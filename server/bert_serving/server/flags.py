"""The original bert-serving-start flags for the model side, and their parsing into options.

Shared by `bert-serving-export` and `bert-serving-start`, so both spell and
default every model flag the same way. Single-dash spelling as the original
(`-model_dir`); the double-dash spelling is accepted too.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .default_model import default_model_dir
from .engine import EngineOptions
from .errors import ConfigError
from .native_embedding import model_native_embedding
from .pooling import PoolingSpec, PoolingStrategy

__all__ = [
    "MODEL_POOLING",
    "add_flag",
    "add_model_flags",
    "engine_options_from_args",
    "parse_max_seq_len",
]

MODEL_POOLING = "MODEL"
"""-pooling_strategy MODEL: the model's own embedding, from its sentence-transformers modules."""


def parse_max_seq_len(value: str) -> int | None:
    """An int, or NONE for 'pad to the longest text of each batch'."""
    if value.strip().upper() == "NONE":
        return None
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"-max_seq_len must be an integer or NONE, not {value!r}"
        ) from None
    if number < 3:
        raise argparse.ArgumentTypeError(f"-max_seq_len {number} leaves no room for [CLS]/[SEP]")
    return number


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str,
             **kwargs: Any) -> None:
    """Add a flag under the original single-dash spelling(s), double-dash accepted too."""
    spelled = [f"-{n}" for n in names] + [f"--{n}" for n in names]
    parser.add_argument(*spelled, **kwargs)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that decide which model is loaded and what the graph computes."""
    group = parser.add_argument_group("model")
    add_flag(group, "model_dir", type=Path, default=None,
          help="model folder (Google BERT checkpoint, or Hugging Face BERT, RoBERTa, "
               "XLM-RoBERTa, CamemBERT, DistilBERT, ELECTRA) or .onnx file; "
               "default: the embedded all-MiniLM-L6-v2")
    add_flag(group, "tuned_model_dir", type=Path, default=None,
          help="folder of a fine-tuned checkpoint; config and vocab still come from -model_dir")
    add_flag(group, "ckpt_name", default="bert_model.ckpt", help="checkpoint file name prefix")
    add_flag(group, "config_name", default="bert_config.json", help="Google config file name")
    add_flag(group, "graph_tmp_dir", type=Path, default=None,
          help="where converted graphs are cached; default: ~/.cache/bert-serving")
    add_flag(group, "max_seq_len", type=parse_max_seq_len, default=25,
          help="max tokens per text incl. [CLS]/[SEP]; NONE: the longest text of each batch")
    add_flag(group, "cased_tokenization", action="store_true",
          help="keep case and accents (for cased models)")
    add_flag(group, "pooling_layer", type=int, nargs="+", default=[-2],
          help="encoder layer(s) to pool: -1 the last, -2 the one below (default); "
               "several are concatenated")
    add_flag(group, "pooling_strategy", default="REDUCE_MEAN",
          choices=[*PoolingStrategy.__members__, MODEL_POOLING],
          type=lambda s: s.strip().upper(),
          help="how token vectors become one vector; MODEL: the model's own embedding "
               "(last layer, its sentence-transformers pooling and normalization)")
    add_flag(group, "mask_cls_sep", action="store_true",
          help="leave [CLS]/[SEP] out of pooling (they stay visible to attention)")
    add_flag(group, "no_special_token", action="store_true",
          help="tokenized input only: do not add [CLS]/[SEP]")
    add_flag(group, "no_position_embeddings", action="store_true",
          help="do not add position embeddings")
    add_flag(group, "int8", action="store_true",
          help="CPU: block-wise int8 MatMul weights, fp32 activations (a text's vector "
               "independent of its batch), cosine to fp32 >= 0.999; smaller, not faster")


def engine_options_from_args(args: argparse.Namespace, *, device: str = "cpu",
                             intra_op_threads: int | None = None) -> EngineOptions:
    """The one place parsed model flags become an `EngineOptions`."""
    pooling, normalize = _pooling_from_args(args)
    return EngineOptions(
        model_dir=args.model_dir,
        tuned_model_dir=args.tuned_model_dir,
        ckpt_name=args.ckpt_name,
        config_name=args.config_name,
        graph_tmp_dir=args.graph_tmp_dir,
        max_seq_len=args.max_seq_len,
        cased_tokenization=args.cased_tokenization,
        pooling=pooling,
        normalize=normalize,
        no_special_token=args.no_special_token,
        no_position_embeddings=args.no_position_embeddings,
        int8=args.int8,
        device=device,
        intra_op_threads=intra_op_threads,
    )


def _pooling_from_args(args: argparse.Namespace) -> tuple[PoolingSpec, bool]:
    """The pooling and whether vectors are L2-normalized; MODEL reads the folder's modules."""
    if args.pooling_strategy != MODEL_POOLING:
        spec = PoolingSpec.from_flags(args.pooling_layer, args.pooling_strategy, args.mask_cls_sep)
        return spec, False
    if args.mask_cls_sep:
        raise ConfigError("-mask_cls_sep does not apply to -pooling_strategy MODEL: the model's "
                          "own pooling reads every token; drop one of them")
    if list(args.pooling_layer) not in ([-2], [-1]):  # -2 is the flag's default
        raise ConfigError(f"-pooling_layer {' '.join(map(str, args.pooling_layer))} does not "
                          "apply to -pooling_strategy MODEL, which pools the last layer as the "
                          "model does; drop one of them")
    native = model_native_embedding(args.model_dir or default_model_dir())
    return native.pooling_spec(), native.normalize
