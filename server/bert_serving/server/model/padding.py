"""Rows of token ids to one padded batch: all a worker does with tokens.

The ventilator tokenizes and sends ids on as `RaggedTokens`; a worker only pads
them. This module holds that step and the batch it makes, apart from the
tokenizers, so that what a worker imports and unpickles (a `Padder`) brings no
tokenizer with it: no ``tokenizers`` library, no WordPiece Unicode tables.

Usage::

    padder = Padder(pad_id=0, max_len=25)
    batch = padder.pad(ragged)   # TokenBatch: input_ids, attention_mask, token_type_ids
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bert_serving.proto.internal import RaggedTokens

__all__ = ["Padder", "TokenBatch"]


@dataclass(frozen=True)
class TokenBatch:
    """One batch, padded to its own longest row (the server groups texts by length)."""

    input_ids: np.ndarray
    """int64 [batch, seq], padded with the [PAD] id."""
    attention_mask: np.ndarray
    """int64 [batch, seq], 1 for real tokens."""
    token_type_ids: np.ndarray
    """int64 [batch, seq], 0 for the first text of a pair, 1 for the second."""
    tokens: list[list[str]] | None = None
    """Per text, with [CLS]/[SEP]; only when asked for."""

    @property
    def lengths(self) -> np.ndarray:
        """int64 [batch]: real tokens per row."""
        return self.attention_mask.sum(axis=1, dtype=np.int64)

    @property
    def num_real_tokens(self) -> int:
        """Real tokens in the whole batch, for throughput accounting."""
        return int(self.attention_mask.sum())


class Padder:
    """Rows of ids to one batch padded to its longest row: all a worker needs of a tokenizer.

    The ventilator tokenizes; a worker only pads, so it gets the pad id and, for
    -show_tokens_to_client, the id -> token table, not a tokenizer (WordPiece's
    Unicode tables take ~0.4 s to build). Picklable: it crosses the spawn boundary.
    """

    def __init__(self, pad_id: int, max_len: int, token_of_id: np.ndarray | None = None) -> None:
        self.pad_id = pad_id
        self.max_len = max_len
        """The longest row the tokenizer produces (what a worker's warm-up runs)."""
        self._token_of_id = token_of_id
        """An object array of token strings, indexed by id; None: tokens cannot be returned."""

    def without_tokens(self) -> Padder:
        """The same padder without the id -> token table (a smaller message to a worker)."""
        return Padder(self.pad_id, self.max_len)

    def pad(self, ragged: RaggedTokens, *, with_tokens: bool = False) -> TokenBatch:
        """Rows of ids to one batch padded to its longest row (a worker's only tokenizer work)."""
        width = max(1, int(ragged.lengths.max(initial=0)))
        columns = np.arange(width)
        real = columns < ragged.lengths[:, None]
        input_ids = np.full(real.shape, self.pad_id, dtype=np.int64)
        input_ids[real] = ragged.ids
        return TokenBatch(
            input_ids=input_ids,
            attention_mask=real.astype(np.int64),
            token_type_ids=(real & (columns >= ragged.first_lengths[:, None])).astype(np.int64),
            tokens=self._tokens(input_ids, ragged.lengths) if with_tokens else None,
        )

    def _tokens(self, input_ids: np.ndarray, total: np.ndarray) -> list[list[str]]:
        """Token strings of the real tokens per row, looked up from the ids.

        (encode_batch_fast leaves Encoding.tokens empty, and the ids are what
        the model sees anyway.)
        """
        if self._token_of_id is None:
            raise ValueError("this padder has no id -> token table: build it with one to "
                             "return tokens (-show_tokens_to_client)")
        return [
            self._token_of_id[row[:length]].tolist()
            for row, length in zip(input_ids, total.tolist(), strict=True)
        ]
