"""The independent reference: Hugging Face transformers on torch CPU, pooled as the original.

Tokenized by transformers' slow `BertTokenizer` (Google's algorithm), encoded by
`BertModel` with `output_hidden_states`, pooled in numpy with the original
bert-as-service definitions. `FamilyReference` does the same for the other families
with AutoModel and the fast tokenizer of the folder; `FileReference` with the folder's
tokenizer.json read as it is (`file_tokenizer`). Nothing here imports bert_serving.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bert_serving.proto.inputs import TextInput, read_legacy_text

HELDOUT_PATH = Path(__file__).parent / "data" / "heldout.txt"


TYPELESS = ("distilbert", "mpnet", "modernbert", "qwen3", "qwen2")
"""model_types whose transformers model takes no token_type_ids."""


def heldout_texts() -> list[str]:
    """The multilingual held-out set (one text per line)."""
    return [line for line in HELDOUT_PATH.read_text(encoding="utf-8").split("\n") if line]



def text_windows(tokenizer: Any, text: str, *, max_seq_len: int,
                 overlap: int) -> list[list[int]]:
    """-truncation chunk's windows of a text, cut from transformers' ids of the whole text:
    ``max_seq_len - 2`` text tokens each, each starting `overlap` before the last ended,
    [CLS]/[SEP] around each."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    width, stride = max_seq_len - 2, max_seq_len - 2 - overlap
    starts = range(0, max(len(ids) - overlap, 1), stride)
    return [[tokenizer.cls_token_id, *ids[s: s + width], tokenizer.sep_token_id] for s in starts]


def window_features(windows: list[list[int]]) -> tuple[np.ndarray, np.ndarray,
                                                       dict[str, np.ndarray]]:
    """A text's windows as one padded batch: (ids, mask, the model's inputs)."""
    width = max(map(len, windows))
    ids = np.zeros((len(windows), width), np.int64)
    mask = np.zeros_like(ids)
    for i, window in enumerate(windows):
        ids[i, : len(window)], mask[i, : len(window)] = window, 1
    return ids, mask, {"input_ids": ids, "attention_mask": mask,
                       "token_type_ids": np.zeros_like(ids)}


def reference_model(model_class: Any, model_dir: Path):  # type: ignore[no-untyped-def]
    """`model_class.from_pretrained(model_dir)` on torch CPU, 2 threads, in eval mode:
    every reference here runs its transformers model the same way."""
    import torch

    torch.set_num_threads(2)
    return model_class.from_pretrained(str(model_dir)).eval()

class TransformersReference:
    """transformers' BertModel over a Hugging Face folder, on CPU, in float32."""

    def __init__(self, model_dir: Path, *, lowercase: bool = True) -> None:
        self.model_dir = model_dir
        self.lowercase = lowercase

    @cached_property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        try:  # transformers 5: BertTokenizer is Rust-backed, and truncates pairs differently
            from transformers.models.bert.tokenization_bert_legacy import (
                BertTokenizerLegacy as BertTokenizer,
            )
        except ImportError:  # transformers < 5: BertTokenizer is the slow one
            from transformers import BertTokenizer

        tokenizer = BertTokenizer(str(self.model_dir / "vocab.txt"), do_lower_case=self.lowercase)
        assert not tokenizer.is_fast, "the reference is the slow, pure-Python tokenizer"
        return tokenizer

    @cached_property
    def model(self):  # type: ignore[no-untyped-def]
        from transformers import BertModel

        return reference_model(BertModel, self.model_dir)

    def features(self, texts: Sequence[str], max_seq_len: int | None) -> dict[str, np.ndarray]:
        firsts, seconds = split_pairs(texts)
        encoded = [
            self.tokenizer(
                a, b, truncation="longest_first" if max_seq_len else False,
                max_length=max_seq_len, return_token_type_ids=True, return_attention_mask=True,
            )
            for a, b in zip(firsts, seconds, strict=False)
        ]
        return pad_features(encoded, pad_id=0)

    def hidden_states(self, features: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            result = self.model(**{k: torch.from_numpy(v) for k, v in features.items()},
                                output_hidden_states=True)
        return [h.numpy() for h in result.hidden_states]

    def pooler(self, last_state: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.pooler(torch.from_numpy(last_state)).numpy()

    def encode(
        self,
        texts: Sequence[str],
        *,
        layers: Sequence[int] = (-2,),
        strategy: str = "REDUCE_MEAN",
        max_seq_len: int | None = 25,
        mask_cls_sep: bool = False,
    ) -> np.ndarray:
        features = self.features(texts, max_seq_len)
        states = self.hidden_states(features)
        if strategy == "CLS_POOLED":
            return self.pooler(states[-1])
        picked = np.concatenate([states[layer] for layer in layers], axis=-1)
        mask = features["attention_mask"].astype(np.float32)
        pool_mask = mask.copy()
        if mask_cls_sep:
            ids = features["input_ids"]
            special = np.isin(ids, [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id])
            pool_mask[special] = 0.0
        return pool(picked, mask, pool_mask, strategy)


def pool(states: np.ndarray, mask: np.ndarray, pool_mask: np.ndarray, strategy: str) -> np.ndarray:
    """The original bert-as-service pooling definitions, in numpy."""
    m = pool_mask[..., None]
    mean = (states * m).sum(1) / (m.sum(1) + 1e-10)
    maximum = (states + (1.0 - m) * -1e30).max(1)
    if strategy == "REDUCE_MEAN":
        return mean
    if strategy == "REDUCE_MAX":
        return maximum
    if strategy == "REDUCE_MEAN_MAX":
        return np.concatenate([mean, maximum], axis=1)
    if strategy in ("FIRST_TOKEN", "CLS_TOKEN"):
        return states[:, 0]
    if strategy in ("LAST_TOKEN", "SEP_TOKEN"):
        last = mask.sum(1).astype(int) - 1
        return states[np.arange(len(states)), last]
    if strategy == "NONE":
        return states * m
    raise ValueError(strategy)


class FolderReference:
    """A folder's fast tokenizer and one transformers Auto class over it, both loaded lazily.

    Subclasses name the Auto class (`MODEL_CLASS`) and say what they compute from it.
    """

    MODEL_CLASS = "AutoModel"

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    @cached_property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.model_dir))

    @cached_property
    def model(self):  # type: ignore[no-untyped-def]
        import transformers

        return reference_model(getattr(transformers, self.MODEL_CLASS), self.model_dir)

    def features(self, texts: Sequence[str], max_seq_len: int | None, *,
                 pairs: bool = True) -> dict[str, np.ndarray]:
        """Tokenized by transformers, padded with the pad id; pairs split on '|||' unless
        `pairs=False` (then '|||' is text, as the HTTP routes read it)."""
        firsts, seconds = split_pairs(texts) if pairs else (list(texts), [None] * len(texts))
        encoded = [
            self.tokenizer(a, b, truncation="longest_first" if max_seq_len else False,
                           max_length=max_seq_len, return_token_type_ids=True)
            for a, b in zip(firsts, seconds, strict=True)
        ]
        return pad_features(encoded, pad_id=self.tokenizer.pad_token_id)


class FamilyReference(FolderReference):
    """transformers' AutoModel and its fast tokenizer over a folder of any served family.

    For the random-weight RoBERTa, XLM-R, CamemBERT, DistilBERT, ELECTRA, MPNet,
    ModernBERT and Qwen models of scripts/make_random_family.py; pooled with the same
    `pool` as above.
    """

    def encode(
        self,
        texts: Sequence[str],
        *,
        layers: Sequence[int] = (-2,),
        strategy: str = "REDUCE_MEAN",
        max_seq_len: int | None = 25,
        mask_cls_sep: bool = False,
    ) -> np.ndarray:
        features = self.features(texts, max_seq_len)
        return self.pool_features(features, layers, strategy, mask_cls_sep)

    def encode_tokens(self, tokens: Sequence[str]) -> np.ndarray:
        """One pre-tokenized text: each token's id (unknown: unk), between cls and sep (Qwen's:
        no cls, and its eos after)."""
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        ids = [*([] if cls is None else [cls]),
               *self.tokenizer.convert_tokens_to_ids(list(tokens)),
               self.tokenizer.eos_token_id if sep is None else sep]
        features = {"input_ids": np.array([ids], np.int64),
                    "attention_mask": np.ones((1, len(ids)), np.int64),
                    "token_type_ids": np.zeros((1, len(ids)), np.int64)}
        return self.pool_features(features, (-2,), "REDUCE_MEAN", False)

    def pool_features(self, features: dict[str, np.ndarray], layers: Sequence[int],
                      strategy: str, mask_cls_sep: bool) -> np.ndarray:
        import torch

        inputs = {k: torch.from_numpy(v) for k, v in features.items()}
        if self.model.config.model_type in TYPELESS:
            del inputs["token_type_ids"]
        with torch.no_grad():
            result = self.model(**inputs, output_hidden_states=True)
        states = [h.numpy() for h in result.hidden_states]
        if strategy == "CLS_POOLED":
            return result.pooler_output.numpy()
        picked = np.concatenate([states[layer] for layer in layers], axis=-1)
        mask = features["attention_mask"].astype(np.float32)
        pool_mask = mask.copy()
        if mask_cls_sep:  # Qwen's tokenizer has neither: its one special is the eos it appends
            marks = [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id]
            if marks == [None, None]:
                marks = [self.tokenizer.eos_token_id]
            special = np.isin(features["input_ids"], marks)
            pool_mask[special] = 0.0
        return pool(picked, mask, pool_mask, strategy)


def legacy_rows(texts: Sequence[str]) -> list[TextInput]:
    """Texts in the 1.10 notation ('a ||| b' is a pair) as the tokenizer's rows, read as the
    server reads a 1.10 payload: for tests that feed the tokenizer what the references split."""
    return [read_legacy_text(text) for text in texts]


LEGACY_SEPARATOR_PADDING = " \t\n\r\x0b\x0c"
"""What the 1.10 wire's `a ||| b` drops beside the separator: the ASCII whitespace that
writes it (the server's proto.inputs.read_legacy_text); the texts' outer edges are kept."""


def split_pairs(texts: Sequence[str]) -> tuple[list[str], list[str | None]]:
    """Each text's first and second sentence, split on the first '|||' (None: no pair)."""
    firsts: list[str] = []
    seconds: list[str | None] = []
    for text in texts:
        first, sep, second = text.partition("|||")
        firsts.append(first.rstrip(LEGACY_SEPARATOR_PADDING) if sep else text)
        seconds.append(second.lstrip(LEGACY_SEPARATOR_PADDING) if sep else None)
    return firsts, seconds


def pad_features(encoded: Sequence[Any], *, pad_id: int) -> dict[str, np.ndarray]:
    """transformers' per-text encodings as padded int64 model inputs."""
    width = max(len(e["input_ids"]) for e in encoded)
    out = {k: np.zeros((len(encoded), width), np.int64)
           for k in ("input_ids", "attention_mask", "token_type_ids")}
    out["input_ids"][:] = pad_id
    for row, e in enumerate(encoded):
        for key in out:
            out[key][row, : len(e[key])] = e[key]
    return out


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row i's cosine between a[i] and b[i]: how far a precision or runtime moved each vector."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """A cross-encoder's score from its logit, as TEI's /rerank and Cohere's rerank give it."""
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    """A classifier's label scores from its logits (last axis), as /predict gives them."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class ClassifierReference(FamilyReference):
    """A sequence-classification folder's logits, by AutoModelForSequenceClassification.

    For scripts/make_random_classifier.py's BERT classifier and XLM-R cross-encoder;
    pairs are written 'a ||| b' and tokenized by transformers as (a, b).
    """

    MODEL_CLASS = "AutoModelForSequenceClassification"

    def logits(self, texts: Sequence[str], *, max_seq_len: int | None = None) -> np.ndarray:
        import torch

        inputs = {k: torch.from_numpy(v) for k, v in self.features(texts, max_seq_len).items()}
        if self.model.config.model_type in TYPELESS:
            del inputs["token_type_ids"]
        with torch.no_grad():
            out = self.model(**inputs)
        return np.asarray(out.logits.numpy(), dtype=np.float64)


SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "cls_token", "sep_token", "pad_token",
                       "unk_token", "mask_token")


def file_tokenizer(model_dir: Path):  # type: ignore[no-untyped-def]
    """The folder's tokenizer.json as it is, as a transformers fast tokenizer.

    The special tokens are the ones tokenizer_config.json names. Not AutoTokenizer:
    transformers 5 rebuilds XLM-R's and CamemBERT's tokenizers from their class (its own
    pre-tokenizer, and no normalizer unless it is handed SentencePiece's charsmap), so a
    folder whose file says otherwise is not tokenized as the file says.

        tokenizer = file_tokenizer(folder); tokenizer(query, doc, truncation=True, max_length=128)
    """
    from transformers import PreTrainedTokenizerFast

    config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    specials = {}
    for name in SPECIAL_TOKEN_NAMES:
        token = config.get(name)
        if isinstance(token, dict):  # an AddedToken, as some folders write them
            token = token.get("content")
        if isinstance(token, str):
            specials[name] = token
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"),
                                        **specials)
    assert tokenizer.is_fast
    return tokenizer


class FileReference(FamilyReference):
    """`FamilyReference` with the folder's tokenizer.json read as it is (`file_tokenizer`),
    on texts and (first, second) pairs given as they are: no '|||' split, nothing stripped."""

    @cached_property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        return file_tokenizer(self.model_dir)

    def features_of(self, item: str | tuple[str, str],
                    max_seq_len: int | None) -> dict[str, np.ndarray]:
        """One text or pair as transformers tokenizes it, cut at `max_seq_len` (None: not
        cut), as a batch of one."""
        first, second = (item, None) if isinstance(item, str) else item
        encoded = self.tokenizer(first, second, truncation=max_seq_len is not None,
                                 max_length=max_seq_len, return_token_type_ids=True)
        return pad_features([encoded], pad_id=self.tokenizer.pad_token_id)

    def embed(self, items: Sequence[str | tuple[str, str]], *,
              max_seq_len: int | None) -> np.ndarray:
        """REDUCE_MEAN of hidden_states[-2] over every real token (specials included): what
        the server pools a family folder by when the folder declares no pooling."""
        return np.concatenate([
            self.pool_features(self.features_of(item, max_seq_len), (-2,), "REDUCE_MEAN", False)
            for item in items])


class FileClassifierReference(FileReference):
    """A sequence-classification folder's logits, tokenized by its tokenizer.json as it is."""

    MODEL_CLASS = "AutoModelForSequenceClassification"

    def logits(self, items: Sequence[str | tuple[str, str]], *,
               max_seq_len: int | None) -> np.ndarray:
        """One row of logits per text or (first, second) pair, each run alone (no padding)."""
        import torch

        rows = []
        for item in items:
            inputs = {k: torch.from_numpy(v)
                      for k, v in self.features_of(item, max_seq_len).items()}
            if self.model.config.model_type in TYPELESS:
                del inputs["token_type_ids"]
            with torch.no_grad():
                rows.append(self.model(**inputs).logits[0].numpy())
        return np.asarray(rows, dtype=np.float64)
