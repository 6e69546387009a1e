"""Request body of Cohere's embed API, `/v1/embed` and `/v2/embed`, with Cohere's field names.

As Cohere's: `texts`, `input_type` (search_document, search_query,
classification, clustering: each picks the folder's prompt of that purpose, see
`prompt_name_for`), `embedding_types` (float, int8, uint8, binary, ubinary,
base64), `truncate` (END cuts a long text's end, START its start, NONE refuses
it), `output_dimension` (the first N dimensions, renormalized). Images, Cohere
v2's `inputs` and `max_tokens` are not served; other fields are ignored, as
Cohere's SDK sends some this server has no use for.

Usage::

    body = CohereEmbedRequest.model_validate({"texts": ["hi"], "embedding_types": ["int8"]})
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .errors import GatewayError, Problem
from .schemas import Text

__all__ = ["CohereEmbedRequest", "EmbeddingType", "InputType", "prompt_name_for"]

EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]
InputType = Literal["search_document", "search_query", "classification", "clustering"]

_PROMPT_NAMES: dict[str, tuple[str, ...]] = {
    "search_query": ("query", "search_query"),
    "search_document": ("document", "passage", "search_document", "corpus"),
    "classification": ("classification",),
    "clustering": ("clustering",),
}
"""The prompt names (config_sentence_transformers.json) each input_type looks for, in order."""


def prompt_name_for(input_type: InputType | None, prompts: dict[str, str],
                    default: str | None) -> str | None:
    """The folder's prompt for `input_type`; without one (or without input_type) its default."""
    if input_type is not None:
        for name in _PROMPT_NAMES[input_type]:
            if name in prompts:
                return name
    return default


def _uppercase(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class CohereEmbedRequest(BaseModel):
    """`POST /v1/embed` and `/v2/embed`: Cohere's embed, on an embedding model."""

    model_config = ConfigDict(
        strict=True, extra="ignore",
        json_schema_extra={"examples": [{"texts": ["What is Deep Learning?"],
                                         "input_type": "search_query",
                                         "embedding_types": ["float", "int8"]}]},
    )

    model: str | None = Field(default=None, description="any name; the server's model answers")
    texts: list[Text] = Field(description="the texts to embed")
    input_type: InputType | None = Field(
        default=None, description="picks the folder's prompt of that purpose (query, document, "
        "classification, clustering) if it has one; default: the folder's default prompt")
    embedding_types: list[EmbeddingType] | None = Field(
        default=None, description="the forms to answer; default: float (v1: the floats alone)")
    truncate: Annotated[Literal["NONE", "START", "END"] | None,
                        BeforeValidator(_uppercase)] = Field(
        default=None, description="END: cut a long text's end; START: its start; NONE: "
        "refuse it; default: the server's -truncation")
    output_dimension: int | None = Field(
        default=None, ge=1, description="keep the first N dimensions, renormalized")

    @property
    def checked_texts(self) -> list[str]:
        if not self.texts:
            raise GatewayError(Problem("Empty", 400, "texts: cannot be empty", "texts"))
        return list(self.texts)

    @property
    def types(self) -> list[EmbeddingType]:
        """The requested forms, each once, in order; float when none are named."""
        if self.embedding_types is None:
            return ["float"]
        if not self.embedding_types:
            raise GatewayError(Problem("Empty", 400, "embedding_types: cannot be empty",
                                       "embedding_types"))
        return list(dict.fromkeys(self.embedding_types))
