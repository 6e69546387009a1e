"""Request bodies of /rerank and /predict, with text-embeddings-inference's field names.

As TEI's: `/rerank` takes `query` and `texts` and answers one `{"index",
"score", "text"?}` per text, best first; `/predict` takes `inputs`: one text,
one pair `[first, second]`, or a batch of `[text]` / `[first, second]` lists,
and answers `{"label", "score"}` per label, best first (a list of those per
input for a batch). `raw_scores` returns the logits themselves. `truncate`:
false refuses a text (or pair) longer than -max_seq_len, naming it; true cuts it
(a pair by the family's pair rule); absent, the server's -truncation decides
(truncate cuts, error refuses).

`/v1/rerank` and `/v2/rerank` take Cohere's body (as Jina's, vLLM's and
infinity's rerank APIs do): `query`, `documents` (texts, or `{"text": ...}` as
Cohere's v1 allowed), `top_n`, `return_documents`; a pair over -max_seq_len is
cut whatever -truncation says, as Cohere truncates a long document rather than
refusing it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from .errors import GatewayError, Problem
from .schemas import Text

__all__ = ["CohereRerankRequest", "PredictRequest", "RerankRequest"]

_STR, _STRS, _LISTS = "str", "list[str]", "list[list[str]]"


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _predict_branch(value: Any) -> str | None:
    if isinstance(value, str):
        return _STR
    if isinstance(value, list) and value and isinstance(value[0], list):
        return _LISTS
    return _STRS if isinstance(value, list) else None


PredictInputs = Annotated[
    Annotated[Text, Tag(_STR)]
    | Annotated[list[Text], Tag(_STRS)]
    | Annotated[list[list[Text]], Tag(_LISTS)],
    Discriminator(
        _predict_branch,
        custom_error_type="inputs_type",
        custom_error_message="inputs must be a text, a pair [text, text] or a batch "
        "[[text], [text, text], ...]",
    ),
]


class _ClassifierRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    truncate: bool | None = Field(
        default=None, description="false: refuse inputs longer than -max_seq_len; "
        "true: cut them there; default: the server's -truncation (truncate or error)")
    truncation_direction: Annotated[Literal["right", "left"], BeforeValidator(_lowercase)] = Field(
        default="right", description="which end of a long input a cut takes off (left: its last "
        "tokens are kept; a pair keeps as many of each part as right would, from each end)")
    raw_scores: bool = Field(default=False, description="the logits, not sigmoid/softmax")


class RerankRequest(_ClassifierRequest):
    """`POST /rerank`: score each text against the query with a cross-encoder."""

    model_config = ConfigDict(
        strict=True, extra="ignore",
        json_schema_extra={"examples": [{"query": "What is Deep Learning?",
                                         "texts": ["Deep Learning is ...", "Paris is ..."]}]},
    )

    query: Text
    texts: list[Text] = Field(description="the texts to rank against the query")
    return_text: bool = Field(default=False, description="put each text in its answer")

    @property
    def checked_texts(self) -> list[str]:
        if not self.texts:
            raise GatewayError(Problem("Empty", 400, "texts: cannot be empty", "texts"))
        return list(self.texts)


class PredictRequest(_ClassifierRequest):
    """`POST /predict`: each input's labels, with scores, from a classifier."""

    model_config = ConfigDict(
        strict=True, extra="ignore",
        json_schema_extra={"examples": [{"inputs": "I like you."},
                                        {"inputs": [["I like you."], ["Hi", "Hello"]]}]},
    )

    inputs: PredictInputs = Field(description="a text, a pair, or a batch of texts and pairs")

    @property
    def is_batch(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs, list) and isinstance(
            self.inputs[0], list)

    @property
    def items(self) -> list[list[str]]:
        """Each input as [text] or [first, second]; TEI's errors for other shapes."""
        inputs = self.inputs
        if isinstance(inputs, str):
            rows: list[list[str]] = [[inputs]]
        elif self.is_batch:
            rows = [list(row) for row in inputs if isinstance(row, list)]
        else:
            rows = [[text for text in inputs if isinstance(text, str)]]
        if not rows or not rows[0]:
            raise GatewayError(Problem("Empty", 400, "inputs: cannot be empty", "inputs"))
        for index, row in enumerate(rows):
            if len(row) not in (1, 2):
                where = f"inputs[{index}]" if self.is_batch else "inputs"
                raise GatewayError(Problem(
                    "ValidationError", 422, f"{where}: has {len(row)} texts; an input is one "
                    "text or a pair [first, second] (a batch is a list of those lists)", "inputs"))
        return rows


class CohereDocument(BaseModel):
    """A document as Cohere's v1 `/rerank` also took it: `{"text": ...}`."""

    model_config = ConfigDict(strict=True, extra="ignore")

    text: Text


class CohereRerankRequest(BaseModel):
    """`POST /v1/rerank` and `/v2/rerank`: Cohere's rerank, on a cross-encoder."""

    model_config = ConfigDict(
        strict=True, extra="ignore",
        json_schema_extra={"examples": [{"query": "What is Deep Learning?", "top_n": 1,
                                         "documents": ["Deep Learning is ...", "Paris is ..."]}]},
    )

    model: str | None = Field(default=None, description="echoed back; any name")
    query: Text
    documents: list[Text | CohereDocument] = Field(description="the texts to rank")
    top_n: int | None = Field(default=None, ge=1, description="answer the best N only")
    return_documents: bool = Field(default=False, description="put each text in its result")

    @property
    def texts(self) -> list[str]:
        if not self.documents:
            raise GatewayError(Problem("Empty", 400, "documents: cannot be empty", "documents"))
        return [item if isinstance(item, str) else item.text for item in self.documents]
