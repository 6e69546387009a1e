"""RoBERTa, XLM-RoBERTa, CamemBERT, DistilBERT, ELECTRA, MPNet, ModernBERT and Qwen3 against
transformers.

Each family is a tiny random-weight model made by scripts/make_random_family.py
(transformers' own model class, `save_pretrained`, a tokenizer.json trained
offline), once per session. The reference is transformers on torch CPU: AutoModel
for the hidden states and the fast tokenizer loaded from the same folder, pooled
as the original bert-as-service does (tests/reference.py).

Tolerance: 1e-4 absolute on every element (observed below 1e-6).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from make_random_family import MAX_TOKENS
from precision_graphs import precision_cosines
from reference import FamilyReference, heldout_texts, legacy_rows

from bert_serving.proto.inputs import Dual
from bert_serving.server.convert.sources import detect_model_source
from bert_serving.server.errors import ConfigError, UnsupportedModelError
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.hf_tokenizer import HfTokenizer, read_special_template
from bert_serving.server.model.pooling import PoolingSpec, PoolingStrategy

TOLERANCE = 1e-4

CASES = [
    ((-2,), "REDUCE_MEAN", False),
    ((-1,), "REDUCE_MEAN", False),
    ((-1, -2), "REDUCE_MEAN", False),
    ((0,), "REDUCE_MEAN", False),  # the embeddings' output (ELECTRA's after its projection)
    ((-2,), "REDUCE_MAX", False),
    ((-1,), "REDUCE_MEAN_MAX", False),
    ((-2,), "FIRST_TOKEN", False),
    ((-2,), "LAST_TOKEN", False),
    ((-1,), "CLS_POOLED", False),
    ((-2,), "NONE", False),
    ((-2,), "REDUCE_MEAN", True),
]
PAIRS = [
    "a short one ||| and its partner",
    "Le chat dort. ||| The cat sleeps on the sofa while it rains outside.",
    " ||| only a second half",
]
HAS_POOLER = ("roberta", "xlm-roberta", "camembert", "mpnet")
TOKENIZER_JSON_ONLY = (*HAS_POOLER, "modernbert", "qwen3")
"""Families whose tokenizer (Unigram, byte-level BPE) has no vocab.txt to fall back to."""


def family_of(model_dir: Path) -> str:
    return str(json.loads((model_dir / "config.json").read_text())["model_type"])


@pytest.fixture(scope="session")
def family_reference(family_dir: Path) -> FamilyReference:
    return FamilyReference(family_dir)


def load_engine(model_dir: Path, cache: Path, **overrides: object) -> Engine:
    options = EngineOptions(model_dir=model_dir, graph_tmp_dir=cache, **overrides)  # type: ignore[arg-type]
    return Engine.load(options)


@pytest.mark.parametrize(("layers", "strategy", "mask_cls_sep"), CASES)
def test_family_matches_transformers(
    family_dir: Path,
    family_reference: FamilyReference,
    graph_cache: Path,
    layers: tuple[int, ...],
    strategy: str,
    mask_cls_sep: bool,
) -> None:
    if strategy == "CLS_POOLED" and family_of(family_dir) not in HAS_POOLER:
        pytest.skip("DistilBERT, ELECTRA, ModernBERT and Qwen3 have no pooler (refusal tested "
                    "below)")
    spec = PoolingSpec(layers, PoolingStrategy[strategy], mask_cls_sep)
    engine = load_engine(family_dir, graph_cache, pooling=spec, max_seq_len=None)
    texts = heldout_texts() + PAIRS
    got = engine.encode(texts)
    want = family_reference.encode(texts, layers=layers, strategy=strategy, max_seq_len=None,
                                   mask_cls_sep=mask_cls_sep)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


UNRELATED = ["The quick brown fox jumps over the lazy dog.", "今天天气很好，我们去公园散步吧。",
             "Numbers like 3.14, 42 and 2026 appear in texts too!", "ok",
             "Привет, как дела? Всё хорошо, спасибо.", "Short text."]


@pytest.mark.parametrize("layer", [-1, -2])
def test_the_random_model_tells_unrelated_texts_apart(
    family_reference: FamilyReference, layer: int
) -> None:
    """A parity figure is only worth something where texts get different vectors: at a
    random model's default init they nearly coincide, and a wrong position id, mask or
    pooling hides under 1e-4. Each family's random weights are scaled for this."""
    vectors = family_reference.encode(UNRELATED, layers=(layer,), max_seq_len=None)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ unit.T - 2 * np.eye(len(UNRELATED))
    assert cosines.max() < 0.9, cosines.max()


def test_truncated_texts_match_transformers(
    family_dir: Path, family_reference: FamilyReference, graph_cache: Path
) -> None:
    engine = load_engine(family_dir, graph_cache, max_seq_len=12)
    texts = [text for text in heldout_texts() if "|||" not in text]
    np.testing.assert_allclose(engine.encode(texts),
                               family_reference.encode(texts, max_seq_len=12),
                               atol=TOLERANCE, rtol=0)


def test_longest_input_fills_the_position_table(
    family_dir: Path, family_reference: FamilyReference, graph_cache: Path
) -> None:
    """RoBERTa's table has max_position_embeddings rows but takes 2 tokens fewer."""
    engine = load_engine(family_dir, graph_cache, max_seq_len=None)
    assert engine.tokenizer.max_len == MAX_TOKENS
    long_text = " ".join([text for text in heldout_texts() if "|||" not in text] * 20)
    batch = engine.tokenize([long_text, "short"])
    assert batch.input_ids.shape == (2, MAX_TOKENS)
    np.testing.assert_allclose(engine.encode([long_text, "short"]),
                               family_reference.encode([long_text, "short"],
                                                       max_seq_len=MAX_TOKENS),
                               atol=TOLERANCE, rtol=0)


def test_max_seq_len_beyond_the_longest_input_is_refused(
    family_dir: Path, graph_cache: Path
) -> None:
    with pytest.raises(ConfigError, match=f"-max_seq_len {MAX_TOKENS + 1} is too long"):
        load_engine(family_dir, graph_cache, max_seq_len=MAX_TOKENS + 1)


def test_cls_pooled_without_a_pooler_is_refused(family_dir: Path, graph_cache: Path) -> None:
    if family_of(family_dir) in HAS_POOLER:
        pytest.skip("this family has a pooler")
    spec = PoolingSpec((-1,), PoolingStrategy.CLS_POOLED)
    with pytest.raises(UnsupportedModelError, match="has no pooler.*CLS_TOKEN or REDUCE_MEAN"):
        load_engine(family_dir, graph_cache, pooling=spec)


# -- tokenization against transformers' fast tokenizer of the same folder -------------------


def tokenizer_of(model_dir: Path, **options: object) -> HfTokenizer:
    return HfTokenizer(model_dir / "tokenizer.json", max_position_embeddings=MAX_TOKENS,
                       **options)  # type: ignore[arg-type]


def transformers_rows(reference: FamilyReference, texts: list[str],
                      max_seq_len: int | None) -> list[tuple[list[int], list[int]]]:
    features = reference.features(texts, max_seq_len)
    lengths = features["attention_mask"].sum(1)
    return [(ids[:n].tolist(), types[:n].tolist()) for ids, types, n in
            zip(features["input_ids"], features["token_type_ids"], lengths, strict=True)]


def our_rows(batch_ids: np.ndarray, batch_types: np.ndarray,
             lengths: np.ndarray) -> list[tuple[list[int], list[int]]]:
    return [(ids[:n].tolist(), types[:n].tolist()) for ids, types, n in
            zip(batch_ids, batch_types, lengths, strict=True)]


@pytest.mark.parametrize("max_seq_len", [None, 9])
def test_ids_and_token_types_match_transformers(
    family_dir: Path, family_reference: FamilyReference, max_seq_len: int | None
) -> None:
    """Texts, pairs and single-text truncation (pairs cut only where both rules agree)."""
    texts = heldout_texts() + PAIRS
    if max_seq_len is not None:  # pair truncation is tested on its own, below
        texts = [text for text in texts if "|||" not in text]
    batch = tokenizer_of(family_dir, max_seq_len=max_seq_len).encode(legacy_rows(texts))
    got = our_rows(batch.input_ids, batch.token_type_ids, batch.lengths)
    assert got == transformers_rows(family_reference, texts, max_seq_len)


def test_pairs_are_laid_out_as_the_family_does(
    family_dir: Path, family_reference: FamilyReference
) -> None:
    tokenizer = tokenizer_of(family_dir, max_seq_len=None)
    batch = tokenizer.encode([Dual("hello", "world")], with_tokens=True)
    assert batch.tokens is not None
    tokens = batch.tokens[0]
    want = family_reference.tokenizer.convert_ids_to_tokens(
        family_reference.tokenizer("hello", "world")["input_ids"])
    assert tokens == want
    if family_of(family_dir) in HAS_POOLER:  # <s> A </s></s> B </s>, one token type
        assert tokens[0] == "<s>" and tokens[-1] == "</s>"
        assert tokens.count("</s>") == 3
        assert batch.token_type_ids.max() == 0
    elif family_of(family_dir) == "qwen3":  # Qwen3-Embedding's: A <eos> B <eos>, nothing before
        assert tokens[-1] == "<|endoftext|>" and tokens.count("<|endoftext|>") == 2
        assert tokens[0] != "<|endoftext|>"
    else:
        assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2


@pytest.mark.parametrize("max_seq_len", [20, 21])
def test_pair_truncation_is_the_rule_of_the_folders_tokenizer(
    family_dir: Path, family_reference: FamilyReference, max_seq_len: int
) -> None:
    """tokenizers' rule, as transformers' fast tokenizer over the same file applies it:
    the shorter part keeps floor(budget / 2), the longer the rest (Google's rule, kept
    for vocab.txt folders, gives the odd token to the first part instead)."""
    long_a, long_b = " ".join(["hello world"] * 10), " ".join(["guitar street"] * 10)
    plain = tokenizer_of(family_dir, max_seq_len=None, add_special_tokens=False)
    rows = plain.tokenize_rows([long_a, long_b])
    ids_a, ids_b = (rows.row(i).tolist() for i in range(2))
    template = read_special_template(family_dir / "tokenizer.json")
    budget = max_seq_len - template.pair_size
    keep_a, keep_b = (budget // 2, budget - budget // 2) if len(ids_a) <= len(ids_b) else (
        budget - budget // 2, budget // 2)
    assert len(ids_a) > keep_a and len(ids_b) > keep_b  # both parts are cut
    want = [*template.prefix, *ids_a[:keep_a], *template.middle, *ids_b[:keep_b],
            *template.suffix]
    cut = tokenizer_of(family_dir, max_seq_len=max_seq_len)
    rows = cut.tokenize_rows([Dual(long_a, long_b)])
    assert rows.ids.tolist() == want
    assert [want] == [ids for ids, _ in transformers_rows(
        family_reference, [f"{long_a} ||| {long_b}"], max_seq_len)]


def test_show_tokens_are_the_family_tokens_and_round_trip(
    family_dir: Path, family_reference: FamilyReference
) -> None:
    tokenizer = tokenizer_of(family_dir, max_seq_len=None)
    texts = heldout_texts()
    batch = tokenizer.encode(texts, with_tokens=True)
    assert batch.tokens is not None
    for row, tokens in enumerate(batch.tokens):
        ids = batch.input_ids[row, : batch.lengths[row]].tolist()
        assert tokens == family_reference.tokenizer.convert_ids_to_tokens(ids)
    # The tokens between the specials, sent back pre-tokenized, are the same ids.
    template = read_special_template(family_dir / "tokenizer.json")
    inner = slice(len(template.prefix), -len(template.suffix))
    again = tokenizer.encode_tokenized([tokens[inner] for tokens in batch.tokens])
    np.testing.assert_array_equal(again.input_ids, batch.input_ids)


def test_pieces_and_decode_are_the_family_tokenizers(
    family_dir: Path, family_reference: FamilyReference
) -> None:
    """/tokenize and /decode on any family: transformers' tokens, offsets and decoding."""
    tokenizer = tokenizer_of(family_dir, max_seq_len=9)
    reference = family_reference.tokenizer
    long_text = " ".join(["hello world"] * 20)  # pieces() ignores -max_seq_len
    for text in [*heldout_texts(), long_text]:
        want = reference(text, add_special_tokens=False, return_offsets_mapping=True)
        pieces = tokenizer.pieces(text)
        assert [p.id for p in pieces] == want["input_ids"]
        assert [p.token for p in pieces] == reference.convert_ids_to_tokens(want["input_ids"])
        assert [(p.start, p.stop) for p in pieces] == [tuple(o) for o in want["offset_mapping"]]
        ids = reference(text)["input_ids"]
        assert tokenizer.decode(ids) == reference.decode(ids, skip_special_tokens=True)
        assert tokenizer.decode(ids, skip_special_tokens=False) == reference.decode(ids)
    with pytest.raises(ValueError, match="token id 10000000 is not in"):
        tokenizer.decode([10_000_000])


def test_no_special_token_leaves_only_the_text(family_dir: Path) -> None:
    plain = tokenizer_of(family_dir, max_seq_len=None, add_special_tokens=False)
    full = tokenizer_of(family_dir, max_seq_len=None)
    text = heldout_texts()[0]
    template = read_special_template(family_dir / "tokenizer.json")
    inner = slice(len(template.prefix), -len(template.suffix))
    assert (plain.tokenize_rows([text]).ids.tolist()
            == full.tokenize_rows([text]).ids[inner].tolist())


# -- what is not served ----------------------------------------------------------------------

UNSERVED = [
    ("nomic_bert", "NomicBertModel"),
    ("new", "NewModel"),  # Alibaba's GTE
    ("jina_bert", "JinaBertModel"),
]


@pytest.mark.parametrize(("model_type", "architecture"), UNSERVED)
def test_other_model_types_are_refused_in_one_line(
    tmp_path: Path, model_type: str, architecture: str
) -> None:
    from safetensors.numpy import save_file

    config = {"model_type": model_type, "architectures": [architecture], "hidden_size": 8}
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"embeddings.word_embeddings.weight": np.zeros((4, 8), np.float32)},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(UnsupportedModelError) as caught:
        detect_model_source(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"model_type {model_type!r}" in message
    for served in ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra",
                   "mpnet", "modernbert", "qwen3", "qwen2"):
        assert served in message


def test_roberta_folder_without_tokenizer_json_names_the_file(
    family_dir: Path, tmp_path: Path
) -> None:
    if family_of(family_dir) not in TOKENIZER_JSON_ONLY:
        pytest.skip("WordPiece families fall back to vocab.txt")
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((family_dir / name).read_bytes())
    with pytest.raises(Exception, match="tokenizer.json is missing"):
        detect_model_source(tmp_path)


def test_gpu_fusions_keep_every_family_exact(
    family_dir: Path, family_reference: FamilyReference, graph_cache: Path
) -> None:
    """The graph the GPU gets, with ORT's fusions, run in fp32 on CPU.

    The fusions must leave RoBERTa's positions alone (they are not BERT's Range),
    and may drop DistilBERT's unread token_type_ids input (the runner feeds what
    the session has).
    """
    from bert_serving.server.convert.cache import GraphCache
    from bert_serving.server.convert.prepare import ConversionOptions, prepare_graph
    from bert_serving.server.model.engine import build_tokenizer
    from bert_serving.server.model.runtime import OnnxRunner

    graph = prepare_graph(detect_model_source(family_dir), ConversionOptions(fuse_for_gpu=True),
                          GraphCache(graph_cache))
    options = EngineOptions(model_dir=family_dir, max_seq_len=None)
    engine = Engine(graph, build_tokenizer(graph, options), OnnxRunner(graph.path))
    texts = heldout_texts() + PAIRS
    np.testing.assert_allclose(engine.encode(texts),
                               family_reference.encode(texts, max_seq_len=None),
                               atol=TOLERANCE, rtol=0)


def test_int8_and_the_fp16_gpu_graph_stay_close_to_fp32(family_dir: Path,
                                                        graph_cache: Path) -> None:
    """Every family through the same builder's -int8 graph (CPU) and its fp16 GPU graph (run
    here on CPU, as CI has no GPU): worst row >= 0.999 cosine to fp32 on the held-out and
    short texts, the graphs' nodes checked (tests/precision_graphs.py). Measured worst:
    int8 0.99983 (Qwen3, "yes"), fp16 0.999999. Qwen2's: test_qwen.py.
    """
    for name, cosines in precision_cosines(family_dir, graph_cache).items():
        assert min(cosines.values()) >= 0.999, (name, cosines)


def test_exported_family_graph_serves_with_its_tokenizer_json(
    family_dir: Path, graph_cache: Path, tmp_path: Path
) -> None:
    from bert_serving.server.export_cli import main as export_main

    out = tmp_path / "exported" / "model.onnx"
    assert export_main(["-model_dir", str(family_dir), "-o", str(out), "-max_seq_len", "NONE",
                        "-graph_tmp_dir", str(graph_cache)]) == 0
    assert (out.parent / "tokenizer.json").is_file()
    exported = load_engine(out, graph_cache, max_seq_len=None)
    original = load_engine(family_dir, graph_cache, max_seq_len=None)
    assert exported.tokenizer.max_len == MAX_TOKENS
    texts = heldout_texts() + PAIRS
    np.testing.assert_allclose(exported.encode(texts), original.encode(texts), atol=1e-6, rtol=0)


def test_checkpoints_of_the_task_heads_load_by_their_prefixed_names(
    family_dir: Path, graph_cache: Path, tmp_path: Path
) -> None:
    """Hub folders are often saved from a head class: `roberta.`, `distilbert.`, `electra.`,
    ModernBERT's `model.`, Qwen3ForCausalLM's `model.` (beside its `lm_head`)."""
    from safetensors.numpy import load_file, save_file

    prefix = {"distilbert": "distilbert.", "electra": "electra.", "mpnet": "mpnet.",
              "modernbert": "model.", "qwen3": "model."}.get(family_of(family_dir), "roberta.")
    state = {prefix + name: array
             for name, array in load_file(str(family_dir / "model.safetensors")).items()}
    state["lm_head.dense.weight"] = np.ones((4, 4), np.float32)  # a head, to be left out
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((family_dir / name).read_bytes())
    save_file(state, str(tmp_path / "model.safetensors"))
    texts = heldout_texts()
    np.testing.assert_allclose(load_engine(tmp_path, graph_cache).encode(texts),
                               load_engine(family_dir, graph_cache).encode(texts),
                               atol=1e-6, rtol=0)


def test_padding_and_truncation_saved_in_tokenizer_json_are_ignored(
    family_dir: Path, tmp_path: Path
) -> None:
    """sentence-transformers folders save `"padding": {"Fixed": 128}` and truncation in the
    file (all-mpnet-base-v2 does); they once hid the specials after the text, as padding."""
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(family_dir / "tokenizer.json"))
    saved.enable_padding(length=64, pad_id=1, pad_token="<pad>")
    saved.enable_truncation(5)
    saved.save(str(tmp_path / "tokenizer.json"))
    texts = [*heldout_texts()[:5], "a text longer than five tokens, surely"]
    plain = HfTokenizer(family_dir / "tokenizer.json", max_seq_len=None,
                        max_position_embeddings=MAX_TOKENS)
    padded = HfTokenizer(tmp_path / "tokenizer.json", max_seq_len=None,
                         max_position_embeddings=MAX_TOKENS)
    assert padded.tokenize_rows(texts).ids.tolist() == plain.tokenize_rows(texts).ids.tolist()
    assert read_special_template(tmp_path / "tokenizer.json") == read_special_template(
        family_dir / "tokenizer.json")


@pytest.mark.parametrize("max_seq_len", [20, 21])
def test_a_pair_whose_parts_both_pass_the_limit_is_cut_by_their_real_lengths(
    family_dir: Path, family_reference: FamilyReference, max_seq_len: int
) -> None:
    """Each part is cut at the single-text limit before the pair rule runs; two parts cut
    there look equally long, but tokenizers' rule gives the odd token to the longer one."""
    long_a, long_b = " ".join(["hello world"] * 30), " ".join(["guitar street"] * 12)
    cut = tokenizer_of(family_dir, max_seq_len=max_seq_len)
    for first, second in ((long_a, long_b), (long_b, long_a)):
        rows = cut.tokenize_rows([Dual(first, second)])
        assert [rows.ids.tolist()] == [ids for ids, _ in transformers_rows(
            family_reference, [f"{first} ||| {second}"], max_seq_len)]
