"""Request bodies of text-embeddings-inference's routes, with TEI's field names and defaults.

As TEI's: `inputs` is a string or a list of strings, `normalize` defaults to
true, `truncate` to the server's -truncation (by default a cut at
-max_seq_len: TEI's auto-truncate), `truncation_direction` to right,
`add_special_tokens` and `skip_special_tokens` to true. TEI also takes token-id
arrays as `inputs`; this server refuses them with a message saying so. Fields
TEI has and these routes do not use are ignored, as TEI's serde does.

Replies are plain JSON arrays (TEI's), written by the routes; errors are
`TEIErrorReply`, rendered by errors.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from .errors import GatewayError, Problem
from .schemas import OutputDtype, Text

__all__ = ["DecodeRequest", "EmbedRequest", "EmbedSparseRequest", "SparseValue",
           "TEIErrorReply", "TokenizeRequest"]

_STR, _STRS = "str", "list[str]"


def _input_branch(value: Any) -> str | None:
    if isinstance(value, str):
        return _STR
    return _STRS if isinstance(value, list) else None


TEIInputs = Annotated[
    Annotated[Text, Tag(_STR)] | Annotated[list[Text], Tag(_STRS)],
    Discriminator(
        _input_branch,
        custom_error_type="inputs_type",
        custom_error_message="inputs must be a string or a list of strings "
        "(token id arrays are not supported)",
    ),
]


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _TEIRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    inputs: TEIInputs = Field(description="a text or a list of texts")
    prompt_name: str | None = Field(
        default=None, description="a key of the folder's prompts (config_sentence_transformers."
        "json), put before each text; default: the folder's default_prompt_name, if any")

    @property
    def texts(self) -> list[str]:
        """The inputs as a list; an empty one is TEI's `empty` error (400), not a 422."""
        texts = [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)
        if not texts:
            raise GatewayError(Problem("Empty", 400, "inputs: cannot be empty", "inputs"))
        return texts


class EmbedRequest(_TEIRequest):
    """`POST /embed`, `POST /` and `POST /embed_all` (which ignores normalize and dimensions)."""

    model_config = ConfigDict(
        strict=True, extra="ignore",
        json_schema_extra={"examples": [{"inputs": "What is Deep Learning?"},
                                        {"inputs": ["a", "b"], "normalize": False}]},
    )

    truncate: bool | None = Field(
        default=None, description="false: refuse texts longer than -max_seq_len; "
        "true: cut them there; default: the server's -truncation")
    truncation_direction: Annotated[Literal["right", "left"], BeforeValidator(_lowercase)] = (
        Field(default="right", description="which end of a long text is cut off"))
    truncation: Literal["truncate", "error", "chunk"] | None = Field(
        default=None, description="texts over -max_seq_len: cut, refused, or windows whose "
        "vectors are joined (chunk: the server must run -truncation chunk); default: the "
        "server's -truncation; overrides truncate")
    normalize: bool = Field(default=True, description="L2-normalize each vector")
    dimensions: int | None = Field(
        default=None, description="keep the first N dimensions (Matryoshka), normalized after")
    output_dtype: OutputDtype = Field(
        default="float", description="not TEI's: float, or sentence-transformers' int8, uint8, "
        "binary or ubinary quantization of each vector (after dimensions and normalize)")


class EmbedSparseRequest(_TEIRequest):
    """`POST /embed_sparse` on a sparse (SPLADE) model: TEI's fields."""

    model_config = ConfigDict(
        strict=True, extra="ignore",
        json_schema_extra={"examples": [{"inputs": "What is Deep Learning?"},
                                        {"inputs": ["a", "b"], "truncate": True}]},
    )

    truncate: bool | None = Field(
        default=None, description="false: refuse texts longer than -max_seq_len; "
        "true: cut them there; default: the server's -truncation")
    truncation_direction: Annotated[Literal["right", "left"], BeforeValidator(_lowercase)] = (
        Field(default="right", description="which end of a long text is cut off"))


class SparseValue(BaseModel):
    """One nonzero term weight of `/embed_sparse`'s reply (TEI's `SparseValue`)."""

    index: int = Field(description="the term's vocabulary id")
    value: float


class TokenizeRequest(_TEIRequest):
    """`POST /tokenize`: each text's tokens with their byte offsets, as TEI's."""

    add_special_tokens: bool = True


class DecodeRequest(BaseModel):
    """`POST /decode`: token ids (one list, or a list of lists) back to text."""

    model_config = ConfigDict(strict=True, extra="ignore")

    ids: list[Annotated[int, Field(ge=0)]] | list[list[Annotated[int, Field(ge=0)]]] = Field(
        description="token ids, or a list of token id lists")
    skip_special_tokens: bool = True

    @property
    def rows(self) -> list[list[int]]:
        if self.ids and isinstance(self.ids[0], list):
            return [list(row) for row in self.ids]
        return [list(self.ids)]  # type: ignore[arg-type]


class TEIErrorReply(BaseModel):
    """Every error on TEI's routes: TEI's `{"error", "error_type"}`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "inputs: Field required",
                                         "error_type": "validation"}]}
    )

    error: str
    error_type: Literal["validation", "empty", "overloaded", "backend", "unhealthy", "tokenizer"]
