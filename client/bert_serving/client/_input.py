"""Checks of the texts given to `encode`, run before anything is sent.

The server checks too, but a mistake caught here costs no round trip and the
message names the offending index in the caller's own list.
"""

from __future__ import annotations

from typing import Any

from bert_serving.proto.inputs import MAX_TOKEN_ID, Dual, Ids

__all__ = ["check_inputs", "check_texts", "longer_than"]


def check_texts(texts: Any, is_tokenized: bool) -> None:
    """Raise TypeError/ValueError unless `texts` is a non-empty list of texts (or token lists)."""
    if not isinstance(texts, list):
        hint = f": wrap a single text as [{texts!r:.40}]" if isinstance(texts, str) else ""
        raise TypeError(f"texts must be a list, got a {type(texts).__name__}{hint}")
    if not texts:
        raise ValueError("texts is an empty list: pass at least one text")
    check = _check_token_list if is_tokenized else _check_text
    for index, text in enumerate(texts):
        check(text, index)


def check_inputs(inputs: Any) -> None:
    """Raise TypeError/ValueError unless `inputs` is a non-empty list of texts, `Dual`s, `Ids`.

    A single text needs a non-blank character (as in `encode`); either side of a
    pair may be anything, an empty string included, as transformers encodes it.
    """
    if not isinstance(inputs, list):
        raise TypeError(f"inputs must be a list, got a {type(inputs).__name__}")
    if not inputs:
        raise ValueError("inputs is an empty list: pass at least one text")
    for index, item in enumerate(inputs):
        if isinstance(item, Dual):
            for side, part in zip(("first", "second"), item, strict=True):
                if isinstance(part, Ids):
                    _check_ids(part, index)
                elif not isinstance(part, str):
                    raise TypeError(f"inputs[{index}].{side} is {_a(part)}, not a str or Ids")
        elif isinstance(item, Ids):
            _check_ids(item, index)
        else:
            _check_text(item, index)


def _check_ids(item: Ids, index: int) -> None:
    for position, token_id in enumerate(item.ids):
        if type(token_id) is not int or not 0 <= token_id <= MAX_TOKEN_ID:
            raise TypeError(f"inputs[{index}].ids[{position}] is {token_id!r:.40}, not a "
                            f"token id (an int from 0 to {MAX_TOKEN_ID})")


def _check_text(text: Any, index: int) -> None:
    if isinstance(text, list):
        raise TypeError(
            f"texts[{index}] is a list: token lists need encode(..., is_tokenized=True)"
        )
    if not isinstance(text, str):
        raise TypeError(f"texts[{index}] is {_a(text)}, not a str")
    if not text.strip():
        raise ValueError(f"texts[{index}] is {text!r}: every text needs a non-blank character")


def _check_token_list(tokens: Any, index: int) -> None:
    if not isinstance(tokens, list):
        raise TypeError(
            f"texts[{index}] is {_a(tokens)}: with is_tokenized=True every "
            "text is a list of token strings (or pass is_tokenized=False)"
        )
    if not tokens:
        raise ValueError(f"texts[{index}] is an empty token list")
    for position, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(
                f"texts[{index}][{position}] is {_a(token)}, not a str"
            )
        if not token.strip():
            raise ValueError(f"texts[{index}][{position}] is a blank token {token!r}")


def _a(value: Any) -> str:
    """`an int`, `a float`: the value's type with the article English wants."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def longer_than(texts: list[Any], limit: int, is_tokenized: bool) -> bool:
    """Whether some text has more than `limit` tokens, counting words as a rough guide."""
    if is_tokenized:
        return any(len(tokens) > limit for tokens in texts)
    return any(len(text.split()) > limit for text in texts)
