"""The gateway's request and reply bodies, with the examples /docs shows.

Pydantic stops here: routes turn a validated request into plain lists for the
client. Requests are strict (no "1" for true, no 3 for "3"), so what the server
receives is what the caller meant; every text must be valid Unicode with a
non-blank character, as our client demands, so a bad text is a 422 naming its
index rather than an error from deeper down.

Two families of routes, two shapes:

* the original bert-as-service routes: `POST /encode` with `{"id", "texts",
  "is_tokenized"}` answered by `{"id", "result", "status"}`, errors as
  `ErrorReply`;
* OpenAI's `POST /v1/embeddings`, errors as `OpenAIErrorReply`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

__all__ = [
    "UNION_TAGS",
    "EmbeddingItem",
    "EmbeddingsReply",
    "EmbeddingsRequest",
    "EncodeReply",
    "EncodeRequest",
    "ErrorReply",
    "OpenAIError",
    "OpenAIErrorReply",
    "OutputDtype",
    "ProbeReply",
    "Usage",
]

# Names of the branches of the unions below; they appear in pydantic's error
# locations and errors.py leaves them out of the field names it reports.
_STR, _STRS, _TOKEN_LISTS = "str", "list[str]", "list[list[str]]"
UNION_TAGS = frozenset({_STR, _STRS, _TOKEN_LISTS})
_NON_BLANK = r"\S"  # documented in the schema; enforced by _checked_text


def _checked_text(text: str) -> str:
    if not text.strip():
        raise ValueError("a text needs at least one non-blank character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"a text holds the lone surrogate U+{ord(text[error.start]):04X}: send valid Unicode"
        ) from None
    return text


Text = Annotated[
    str, AfterValidator(_checked_text), Field(json_schema_extra={"pattern": _NON_BLANK})
]
TokenList = Annotated[list[Text], Field(min_length=1)]


def _texts_branch(value: Any) -> str | None:
    """Token lists when the first item is a list (as the server decides), else strings."""
    if not isinstance(value, list):
        return None
    return _TOKEN_LISTS if value and isinstance(value[0], list) else _STRS


def _input_branch(value: Any) -> str | None:
    if isinstance(value, str):
        return _STR
    return _STRS if isinstance(value, list) else None


EncodeTexts = Annotated[
    Annotated[list[Text], Field(min_length=1), Tag(_STRS)]
    | Annotated[list[TokenList], Field(min_length=1), Tag(_TOKEN_LISTS)],
    Discriminator(
        _texts_branch,
        custom_error_type="texts_type",
        custom_error_message="texts must be a list of strings, or of token lists "
        "(lists of strings) with is_tokenized",
    ),
]

EmbeddingInput = Annotated[
    Annotated[Text, Tag(_STR)] | Annotated[list[Text], Field(min_length=1), Tag(_STRS)],
    Discriminator(
        _input_branch,
        custom_error_type="input_type",
        custom_error_message="input must be a string or a list of strings "
        "(token id arrays are not supported)",
    ),
]


OutputDtype = Literal["float", "int8", "uint8", "binary", "ubinary"]
"""What `output_dtype` may ask for on /v1/embeddings and /embed (quantized_embeddings.py)."""


# -- the original bert-as-service routes -----------------------------------------------------


class EncodeRequest(BaseModel):
    """`POST /encode`: the original gateway's body."""

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {"id": 123, "texts": ["hello world", "good day!"]},
                {"id": "a", "texts": [["hello", "world"], ["good", "day"]], "is_tokenized": True},
            ]
        },
    )

    id: Any = Field(default=None, description="echoed back as is; any JSON value")
    texts: EncodeTexts = Field(
        description="texts to encode ('first ||| second' is a sentence pair), "
        "or token lists with is_tokenized"
    )
    is_tokenized: bool | None = Field(
        default=None, description="whether texts are token lists; inferred from texts if left out"
    )

    @field_validator("is_tokenized")
    @classmethod
    def _flag_matches_texts(cls, flag: bool | None, info: ValidationInfo) -> bool | None:
        texts = info.data.get("texts")
        if flag is None or not texts or flag == isinstance(texts[0], list):
            return flag
        held = "token lists" if isinstance(texts[0], list) else "strings"
        raise ValueError(
            f"is_tokenized is {str(flag).lower()} but texts holds {held}: make them agree, "
            "or leave is_tokenized out"
        )

    @property
    def tokenized(self) -> bool:
        return isinstance(self.texts[0], list)


class EncodeReply(BaseModel):
    """One row per text, in order (token-level rows with -pooling_strategy NONE)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": 123, "result": [[0.01, -0.2, 0.3]], "status": 200}]}
    )

    id: Any
    result: list[list[float]] | list[list[list[float]]]
    status: int = 200


class ErrorReply(BaseModel):
    """Every error on the original routes; `description` names the field and the problem."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"description": "texts[1]: Input should be a valid string, got int 3",
                 "type": "ValidationError", "status": 422}
            ]
        }
    )

    description: str
    type: str
    status: int


# -- OpenAI's embeddings --------------------------------------------------------------------


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`, as OpenAI's; fields it has and we do not use are ignored."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"input": "hello world", "model": "all-MiniLM-L6-v2"},
                {"input": ["hello", "good day"], "model": "m", "encoding_format": "base64"},
            ]
        },
    )

    input: EmbeddingInput = Field(description="a text or a list of texts")
    model: str | None = Field(default=None, description="echoed back; any name")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: each vector's own bytes (float: little-endian "
        "float32; int8/uint8: a byte per dimension; binary/ubinary: the packed bits)"
    )
    output_dtype: OutputDtype = Field(
        default="float", description="not OpenAI's (Voyage AI's name): float, or "
        "sentence-transformers' int8, uint8, binary or ubinary quantization of the vector")
    dimensions: int | None = Field(
        default=None, description="keep the first N dimensions, then renormalize (Matryoshka)"
    )
    user: str | None = Field(default=None, description="accepted and ignored")
    truncation: Literal["truncate", "error", "chunk"] | None = Field(
        default=None, description="not OpenAI's: texts over -max_seq_len are cut, refused, or "
        "windows whose vectors are joined (chunk: the server must run -truncation chunk); "
        "default: the server's -truncation")

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | list[int] | list[list[float]] | str


class Usage(BaseModel):
    """Tokens the model read, [CLS]/[SEP] included, after -max_seq_len truncation."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsReply(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.01, -0.2]}],
                    "model": "all-MiniLM-L6-v2",
                    "usage": {"prompt_tokens": 4, "total_tokens": 4},
                }
            ]
        }
    )

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorReply(BaseModel):
    """Every error under /v1, in OpenAI's shape, so OpenAI clients raise their usual errors."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": {"message": "input: Field required", "type": "invalid_request_error",
                           "param": "input", "code": "validation_error"}}
            ]
        }
    )

    error: OpenAIError


# -- probes ---------------------------------------------------------------------------------


class ProbeReply(BaseModel):
    status: str = Field(examples=["ok", "ready", "not ready"])
