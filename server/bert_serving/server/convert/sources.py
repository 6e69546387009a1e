"""What the user pointed -model_dir at, detected from the files that are there.

Three kinds, checked in this order:

1. a ready ONNX graph: a `.onnx` file, or a folder holding `model.onnx`, with `vocab.txt`
   (or `tokenizer.json`) beside it;
2. a Google BERT TensorFlow checkpoint folder: `bert_config.json` + `bert_model.ckpt.*`
   (names from -config_name / -ckpt_name; the checkpoint may live in -tuned_model_dir);
3. a Hugging Face folder of a served family: `config.json` + `model.safetensors` or
   `pytorch_model.bin`.

`ModelSource.vocab_path` is the file the tokenizer reads: `vocab.txt` for BERT (Google's
WordPiece, as the original), `tokenizer.json` for the other families (RoBERTa's BPE and
XLM-R's SentencePiece have no vocab.txt; DistilBERT and ELECTRA fall back to vocab.txt).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError, UnsupportedModelError
from ..model.graph_contract import TOKENIZER_JSON_NAME
from .bert_config import model_family
from .graph_file import external_data_files
from .hf_weights import HF_WEIGHT_FILES, find_hf_weight_files

__all__ = ["ModelKind", "ModelSource", "detect_model_source"]

VOCAB_NAME = "vocab.txt"
ONNX_NAME = "model.onnx"


class ModelKind(enum.Enum):
    ONNX = "onnx"
    GOOGLE_TF = "google-tf"
    HUGGING_FACE = "hugging-face"


@dataclass(frozen=True)
class ModelSource:
    """The files of one model, located and checked to exist."""

    kind: ModelKind
    vocab_path: Path
    """vocab.txt or tokenizer.json: what the tokenizer reads."""
    config_path: Path | None = None
    weight_files: tuple[Path, ...] = ()
    onnx_path: Path | None = None
    checkpoint_prefix: Path | None = None

    def content_files(self) -> tuple[Path, ...]:
        """Every file whose bytes decide the converted graph (hashed for the cache key)."""
        files = [self.vocab_path, *self.weight_files]
        if self.config_path is not None:
            files.insert(0, self.config_path)
        if self.onnx_path is not None:
            files += [self.onnx_path, *external_data_files(self.onnx_path)]
        return tuple(files)

    def describe(self) -> str:
        main = self.onnx_path or self.checkpoint_prefix or self.config_path
        return f"{self.kind.value} model at {main.parent if main else self.vocab_path.parent}"


def detect_model_source(
    model_dir: Path,
    *,
    ckpt_name: str = "bert_model.ckpt",
    config_name: str = "bert_config.json",
    tuned_model_dir: Path | None = None,
) -> ModelSource:
    """Locate the model's files, or fail with a message naming what is missing."""
    if model_dir.is_file() and model_dir.suffix == ".onnx":
        return _onnx_source(model_dir)
    if model_dir.is_file():
        raise UnsupportedModelError(
            f"-model_dir {model_dir} is a file but not a .onnx graph: give the folder that "
            "holds the model (Google TF checkpoint or Hugging Face) or a .onnx file"
        )
    if not model_dir.is_dir():
        raise ModelNotFoundError(
            f"-model_dir {model_dir} does not exist: give a BERT folder (Google TF "
            "checkpoint or Hugging Face) or a .onnx file"
        )
    if (model_dir / ONNX_NAME).is_file():
        return _onnx_source(model_dir / ONNX_NAME)
    checkpoint_dir = tuned_model_dir or model_dir
    if _has_checkpoint(checkpoint_dir, ckpt_name):
        return _google_source(model_dir, checkpoint_dir, ckpt_name, config_name)
    if (model_dir / "config.json").is_file() and find_hf_weight_files(model_dir):
        return _hf_source(model_dir)
    if (model_dir / config_name).is_file() or any(checkpoint_dir.glob("*.index")):
        return _google_source(model_dir, checkpoint_dir, ckpt_name, config_name)
    if (model_dir / "config.json").is_file():
        return _hf_source(model_dir)
    found = ", ".join(sorted(p.name for p in model_dir.iterdir())[:12]) or "nothing"
    raise UnsupportedModelError(
        f"-model_dir {model_dir} is not a model folder we know: expected {config_name} + "
        f"{ckpt_name}.index (Google BERT), config.json + model.safetensors (Hugging Face) or "
        f"{ONNX_NAME}; found: {found}"
    )


def _require_vocab(folder: Path) -> Path:
    vocab = folder / VOCAB_NAME
    if not vocab.is_file():
        raise ModelNotFoundError(
            f"{vocab} is missing: the tokenizer needs the model's WordPiece vocabulary; "
            "copy the vocab.txt that came with the model into that folder"
        )
    return vocab


def _tokenizer_file(folder: Path, family: str) -> Path:
    """tokenizer.json, else (for WordPiece families) vocab.txt; BERT keeps vocab.txt first."""
    tokenizer_json = folder / TOKENIZER_JSON_NAME
    if family == "bert" and (folder / VOCAB_NAME).is_file():
        return folder / VOCAB_NAME
    if tokenizer_json.is_file():
        return tokenizer_json
    if family in ("roberta", "mpnet", "modernbert", "qwen3", "qwen2"):
        raise ModelNotFoundError(
            f"{tokenizer_json} is missing: a {family}-family model is tokenized by the "
            "tokenizer.json it was trained with; copy it into that folder"
        )
    return _require_vocab(folder)


def _onnx_source(path: Path) -> ModelSource:
    folder = path.parent
    if not (folder / VOCAB_NAME).is_file() and (folder / TOKENIZER_JSON_NAME).is_file():
        return ModelSource(ModelKind.ONNX, folder / TOKENIZER_JSON_NAME, onnx_path=path)
    return ModelSource(ModelKind.ONNX, _require_vocab(folder), onnx_path=path)


def _has_checkpoint(folder: Path, ckpt_name: str) -> bool:
    return (folder / f"{ckpt_name}.index").is_file()


def _google_source(
    model_dir: Path, checkpoint_dir: Path, ckpt_name: str, config_name: str
) -> ModelSource:
    config = model_dir / config_name
    if not config.is_file():
        raise ModelNotFoundError(f"{config} is missing: check -config_name")
    prefix = checkpoint_dir / ckpt_name
    index = prefix.with_name(prefix.name + ".index")
    if not index.is_file():
        others = sorted(p.name[: -len(".index")] for p in checkpoint_dir.glob("*.index"))
        hint = f"; checkpoints there: {', '.join(others)}" if others else ""
        raise ModelNotFoundError(f"{index} is missing: check -ckpt_name{hint}")
    shards = tuple(sorted(checkpoint_dir.glob(f"{ckpt_name}.data-*")))
    if not shards:
        raise ModelNotFoundError(
            f"{prefix}.data-00000-of-00001 is missing: the checkpoint's weights were not copied"
        )
    return ModelSource(
        ModelKind.GOOGLE_TF,
        _require_vocab(model_dir),
        config_path=config,
        weight_files=(index, *shards),
        checkpoint_prefix=prefix,
    )


def _hf_source(model_dir: Path) -> ModelSource:
    weights = find_hf_weight_files(model_dir)
    if not weights:
        raise ModelNotFoundError(
            f"{model_dir} has config.json but no weights: expected one of "
            f"{', '.join(HF_WEIGHT_FILES)}"
        )
    config = model_dir / "config.json"
    return ModelSource(
        ModelKind.HUGGING_FACE,
        _tokenizer_file(model_dir, model_family(config)),
        config_path=config,
        weight_files=tuple(weights),
    )
