"""Cohere embed's pure rules: which prompt an input_type picks, and when int8/uint8 are refused."""

from __future__ import annotations

import numpy as np
import pytest

from bert_serving.server.http.cohere_routes import _check_ranged
from bert_serving.server.http.cohere_schemas import prompt_name_for
from bert_serving.server.http.errors import GatewayError


def test_input_types_pick_the_prompt_of_their_purpose_else_the_default() -> None:
    prompts = {"query": "q: ", "passage": "p: ", "clustering": "c: "}
    assert prompt_name_for("search_query", prompts, None) == "query"
    assert prompt_name_for("search_document", prompts, None) == "passage"
    assert prompt_name_for("clustering", prompts, None) == "clustering"
    assert prompt_name_for("classification", prompts, "query") == "query"
    assert prompt_name_for(None, prompts, None) is None
    assert prompt_name_for("search_query", {}, None) is None


def test_int8_and_uint8_need_unit_vectors_or_ranges() -> None:
    ranges = np.zeros((2, 4), dtype=np.float32)
    _check_ranged(["int8", "binary"], unit_vectors=True, configured=None)
    _check_ranged(["uint8"], unit_vectors=False, configured=ranges)
    _check_ranged(["float", "binary", "ubinary", "base64"], unit_vectors=False, configured=None)
    with pytest.raises(GatewayError, match="uint8 needs each dimension's range.*-embedding_ranges"):
        _check_ranged(["float", "uint8"], unit_vectors=False, configured=None)
