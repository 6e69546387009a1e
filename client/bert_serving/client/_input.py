"""Checks of the texts given to `encode`, run before anything is sent.

The server checks too, but a mistake caught here costs no round trip and the
message names the offending index in the caller's own list.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_texts", "longer_than"]


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
