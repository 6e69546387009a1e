"""Write a tiny random-weight Hugging Face folder of one non-BERT family, for tests.

No PyPI package ships small real weights of RoBERTa, XLM-RoBERTa, CamemBERT,
DistilBERT, ELECTRA, MPNet or ModernBERT, so transformers builds one from a config with random
weights (`XLMRobertaModel(config)` ...) and `save_pretrained` writes it, beside a
`tokenizer.json` trained here, offline, with `tokenizers` on a small built-in
corpus: SentencePiece Unigram for XLM-R and CamemBERT, byte-level BPE for
RoBERTa and MPNet (whose pair layout, ``<s> a </s></s> b </s>``, is RoBERTa's),
WordPiece for DistilBERT and ELECTRA, and for ModernBERT a byte-level BPE with its
specials appended after the merges and its ``[CLS] a [SEP] b [SEP]`` template, as
the released ModernBERT tokenizer.json has them. Qwen3 (and Qwen2, kept out of
FAMILIES: its layers are Qwen3's without q/k norms, checked in test_qwen.py) get
Qwen's byte-level BPE: its split regex, NFC, its specials after the merges, and
Qwen3-Embedding's post-processor, which appends ``<|endoftext|>`` (``a <eos>``,
``a <eos> b <eos>``) so that last-token pooling reads it. Never a download.

Usage: python scripts/make_random_family.py xlm-roberta OUT_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["FAMILIES", "MAX_TOKENS", "write_random_family"]

FAMILIES = ("roberta", "xlm-roberta", "camembert", "distilbert", "electra", "mpnet",
            "modernbert", "qwen3")
MADE_ONLY = ("qwen2",)
"""Families this script makes that the family-wide tests do not run (see test_qwen.py)."""

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street corner while people walk by.",
    "Machine learning models turn sentences into vectors of numbers.",
    "Le chat dort sur le canapé pendant que la pluie tombe dehors.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "El perro come una manzana roja en el jardín de la casa.",
    "今天天气很好，我们去公园散步吧。",
    "Привет, как дела? Всё хорошо, спасибо.",
    "Tokenizers split words into pieces; unknown words become smaller pieces.",
    "Numbers like 3.14, 42 and 2026 appear in texts too!",
    "ÉCOLE, café, naïve, façade, Ångström and Œuvre carry accents.",
    "Short text.",
    "hello world",
]

MAX_TOKENS = 256
"""The longest input of every family made here (RoBERTa's table has 2 rows more)."""

_SPECIALS_ROBERTA = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_SPECIALS_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_SIZES: dict[str, Any] = {"hidden_size": 32, "num_hidden_layers": 3,
                          "num_attention_heads": 4, "intermediate_size": 64}


def _corpus() -> list[str]:
    return [text for text in _CORPUS for _ in range(3)] + [t.lower() for t in _CORPUS]


def _unigram_vocab(vocab_size: int) -> list[tuple[str, float]]:
    """A SentencePiece-style Unigram vocabulary with scores, specials first."""
    from tokenizers import Tokenizer, pre_tokenizers, trainers
    from tokenizers.models import Unigram

    tokenizer = Tokenizer(Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS_ROBERTA,
                                      unk_token="<unk>")
    tokenizer.train_from_iterator(_corpus(), trainer)
    vocab: list[tuple[str, float]] = [
        (str(token), float(score))
        for token, score in json.loads(tokenizer.to_str())["model"]["vocab"]
    ]
    return vocab


def _save_unigram_tokenizer(family: str, vocab_size: int, out: Path) -> None:
    """XLM-R and CamemBERT tokenizers as transformers itself builds and saves them.

    transformers 5 rebuilds these two from the vocabulary (its own normalizer and
    Metaspace settings), so the tokenizer.json is written by transformers, from the
    Unigram trained here: the file then says exactly what transformers runs.
    """
    import transformers as tf

    make = tf.XLMRobertaTokenizer if family == "xlm-roberta" else tf.CamembertTokenizer
    tokenizer = make(vocab=_unigram_vocab(vocab_size), model_max_length=MAX_TOKENS)
    tokenizer.save_pretrained(str(out))


def _byte_bpe_tokenizer(vocab_size: int) -> Any:
    """Byte-level BPE with RoBERTa's post-processor."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS_ROBERTA,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_corpus(), trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", tokenizer.token_to_id("</s>")), ("<s>", tokenizer.token_to_id("<s>")),
        add_prefix_space=False,
    )
    return tokenizer


def _bpe_with_specials_after(vocab_size: int, pre_tokenizer: Any, specials: list[str],
                             normalizer: Any = None) -> Any:
    """Byte-level BPE trained on the corpus, its special tokens added after the merges (as
    ModernBERT's and Qwen's files have them), the vocabulary `vocab_size` in all."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE

    tokenizer = Tokenizer(BPE())
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_corpus(), trainer)
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _modernbert_tokenizer(vocab_size: int) -> Any:
    """Byte-level BPE, specials after the merges, and a [CLS] a [SEP] b [SEP] template."""
    from tokenizers import pre_tokenizers, processors

    tokenizer = _bpe_with_specials_after(
        vocab_size, pre_tokenizers.ByteLevel(add_prefix_space=False), _SPECIALS_BERT)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[(token, tokenizer.token_to_id(token)) for token in ("[CLS]", "[SEP]")])
    return tokenizer


QWEN_EOS = "<|endoftext|>"
"""What Qwen3-Embedding's tokenizer.json appends to each text, and pads with."""
_SPECIALS_QWEN = [QWEN_EOS, "<|im_start|>", "<|im_end|>"]
_QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
"""The regex Qwen's tokenizer.json splits words with, before the byte-level mapping."""


def _qwen_tokenizer(vocab_size: int) -> Any:
    """Qwen's byte-level BPE, with Qwen3-Embedding's post-processor (a <eos>, a <eos> b <eos>).

    The released Qwen3-Embedding tokenizer.json appends <|endoftext|> through a
    TemplateProcessing post-processor, the second text and its <|endoftext|> of type 1.
    """
    from tokenizers import Regex, normalizers, pre_tokenizers, processors

    tokenizer = _bpe_with_specials_after(vocab_size, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        _SPECIALS_QWEN, normalizer=normalizers.NFC())
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {QWEN_EOS}:0", pair=f"$A:0 {QWEN_EOS}:0 $B:1 {QWEN_EOS}:1",
        special_tokens=[(QWEN_EOS, tokenizer.token_to_id(QWEN_EOS))])
    return tokenizer


def _wordpiece_tokenizer(vocab_size: int) -> Any:
    """BERT's uncased WordPiece, as DistilBERT and ELECTRA ship it."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import WordPiece

    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS_BERT)
    tokenizer.train_from_iterator(_corpus(), trainer)
    tokenizer.post_processor = processors.BertProcessing(
        ("[SEP]", tokenizer.token_to_id("[SEP]")), ("[CLS]", tokenizer.token_to_id("[CLS]")),
    )
    return tokenizer


def _model(family: str, vocab_size: int, pad_id: int, cls_sep: tuple[int, int]) -> Any:
    """transformers' base model of the family, random weights, tiny shapes."""
    import transformers as tf

    if family in ("qwen3", "qwen2"):  # 4 query heads of width 16 (not 32 / 4) on 2 kv heads
        make_config = tf.Qwen3Config if family == "qwen3" else tf.Qwen2Config
        config = make_config(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, intermediate_size=64,
            max_position_embeddings=MAX_TOKENS, rope_theta=QWEN_ROPE_THETA,
            pad_token_id=pad_id, eos_token_id=pad_id, bos_token_id=None,
            tie_word_embeddings=False, **({"attention_bias": True} if family == "qwen3" else {}))
        return (tf.Qwen3Model if family == "qwen3" else tf.Qwen2Model)(config)
    if family == "modernbert":  # 4 layers: global, local, local, global (as every 3rd)
        config = tf.ModernBertConfig(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=MAX_TOKENS, pad_token_id=pad_id,
            bos_token_id=cls_sep[0], cls_token_id=cls_sep[0], eos_token_id=cls_sep[1],
            sep_token_id=cls_sep[1], global_attn_every_n_layers=3,
            local_attention=8,  # each token of a local layer sees 4 either side
            global_rope_theta=160_000.0, local_rope_theta=10_000.0,
            attention_bias=True)  # and no mlp or norm bias: both ways of a layer are built
        return tf.ModernBertModel(config)
    if family == "distilbert":
        config = tf.DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=3, n_heads=4,
                                     hidden_dim=64, max_position_embeddings=MAX_TOKENS,
                                     pad_token_id=pad_id)
        return tf.DistilBertModel(config)
    if family == "electra":
        config = tf.ElectraConfig(vocab_size=vocab_size, embedding_size=16,
                                  max_position_embeddings=MAX_TOKENS, pad_token_id=pad_id, **_SIZES)
        return tf.ElectraModel(config)
    if family == "mpnet":
        config = tf.MPNetConfig(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS + 2,
                                pad_token_id=pad_id, bos_token_id=0, eos_token_id=2,
                                relative_attention_num_buckets=32, **_SIZES)
        return tf.MPNetModel(config)
    config_class, model_class = {
        "roberta": (tf.RobertaConfig, tf.RobertaModel),
        "xlm-roberta": (tf.XLMRobertaConfig, tf.XLMRobertaModel),
        "camembert": (tf.CamembertConfig, tf.CamembertModel),
    }[family]
    config = config_class(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS + 2,
                          type_vocab_size=1, pad_token_id=pad_id, bos_token_id=0, eos_token_id=2,
                          **_SIZES)
    return model_class(config)


MODERNBERT_SHARPENING = 4.0
"""What the random ModernBERT's Wqkv and Wi are multiplied by (see `_sharpen_modernbert`)."""


def _sharpen_modernbert(model: Any) -> None:
    """Attention scores and GELU inputs of order 1, as a trained model's are.

    Left at init plus noise (weights ~0.05 at width 32), every attention score is
    ~0.1: attention is near uniform, so the rotary base of a layer barely moves a
    vector (2e-4, twice the tests' tolerance), and the GELU's inputs are so small
    that erf and tanh GELU agree within 4e-6. Scaled, a wrong rotary base moves
    vectors 1e-2 to 9e-2, tanh GELU 1.5e-4, and unrelated texts stay below cosine 0.86.
    """
    for layer in model.layers:
        layer.attn.Wqkv.weight.mul_(MODERNBERT_SHARPENING)
        layer.mlp.Wi.weight.mul_(MODERNBERT_SHARPENING)


QWEN_ROPE_THETA = 20_000.0
"""The random Qwen's rotary base (Qwen3-Embedding's is 1e6; any base not 10000 shows it is
read)."""
QWEN_SHARPENING = 4.0
"""What the random Qwen's gate_proj and up_proj are multiplied by (see `_sharpen_qwen`)."""
QWEN_ATTENTION_SHARPENING = 2.0
QWEN_EMBEDDING_SHARPENING = 4.0
"""What the random Qwen's token embeddings are multiplied by."""
"""What Qwen3's q_norm and k_norm (Qwen2's q_proj and k_proj) are multiplied by."""


def _sharpen_qwen(model: Any) -> None:
    """SwiGLU inputs and attention scores of order 1 and more, as a trained model's.

    Left at init plus noise, the SwiGLU's inputs are ~0.3 and q_norm/k_norm give each
    head unit RMS, so attention is broad and every text's last token ends up alike
    (unrelated texts at cosine 0.92). Scaled, Qwen3's stay below 0.86 (last token and
    mean of the last layer), and a wrong rotary base, causal mask or key/value head moves
    vectors far beyond the tests' tolerance (measured in the commit adding Qwen3).
    """
    # The residual stream's own part of each token, as for the encoders (`_sharpen_encoder`):
    # without it unrelated texts' last-layer means sat at cosine 0.91, with it at 0.67.
    model.embed_tokens.weight.mul_(QWEN_EMBEDDING_SHARPENING)
    for layer in model.layers:
        layer.mlp.gate_proj.weight.mul_(QWEN_SHARPENING)
        layer.mlp.up_proj.weight.mul_(QWEN_SHARPENING)
        attention = layer.self_attn
        for part in ((attention.q_norm, attention.k_norm) if hasattr(attention, "q_norm")
                     else (attention.q_proj, attention.k_proj)):
            part.weight.mul_(QWEN_ATTENTION_SHARPENING)


WORD_EMBEDDING_SHARPENING = 8.0
"""What the BERT-like families' word embeddings are multiplied by (see `_sharpen_encoder`)."""


def _sharpen_encoder(model: Any) -> None:
    """Scale the word embeddings (and ELECTRA's projection of them) up.

    At init plus noise, unrelated texts came out of the random RoBERTa, XLM-R, CamemBERT
    and ELECTRA at cosine 0.975-0.99: the one part of a token's input that is its own, the
    word embedding, was small beside the position embeddings and the biases every token
    shares, so every text got nearly one vector and a wrong mask or pooling could hide
    under the tests' 1e-4. Scaled by 8 (scaling every matrix by 4 made it worse, 0.99),
    they stay below cosine 0.8 (a test per family checks 0.9), and shifting every
    position id by one still moves RoBERTa's vectors by 2e-2, 200 times the tolerance.
    """
    for name, parameter in model.named_parameters():
        if "word_embeddings" in name or "embeddings_project" in name:
            parameter.mul_(WORD_EMBEDDING_SHARPENING)


def _tokenizer_config(family: str) -> dict[str, Any]:
    """What transformers' AutoTokenizer needs beside a tokenizer.json made here."""
    if family in ("qwen3", "qwen2"):  # the file as it is; its post-processor appends the eos
        return {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": QWEN_EOS,
                "pad_token": QWEN_EOS, "model_max_length": MAX_TOKENS,
                "clean_up_tokenization_spaces": False,
                "model_input_names": ["input_ids", "attention_mask"]}
    if family == "modernbert":  # the released ModernBERT's, but for its length
        return {"tokenizer_class": "PreTrainedTokenizerFast", "cls_token": "[CLS]",
                "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                "mask_token": "[MASK]", "model_max_length": MAX_TOKENS,
                "clean_up_tokenization_spaces": True,
                "model_input_names": ["input_ids", "attention_mask"]}
    if family in ("distilbert", "electra"):
        return {"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "unk_token": "[UNK]", "mask_token": "[MASK]", "model_max_length": MAX_TOKENS}
    return {"tokenizer_class": "RobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
            "cls_token": "<s>", "sep_token": "</s>", "pad_token": "<pad>",
            "unk_token": "<unk>", "mask_token": "<mask>", "model_max_length": MAX_TOKENS}


def write_random_family(family: str, out: Path, *, seed: int = 0, vocab_size: int = 400) -> Path:
    """A folder with config.json, model.safetensors and tokenizer.json of `family`."""
    import torch
    from tokenizers import Tokenizer

    if family not in FAMILIES + MADE_ONLY:
        raise ValueError(f"family {family!r} is not one of {FAMILIES + MADE_ONLY}")
    out.mkdir(parents=True, exist_ok=True)
    if family in ("xlm-roberta", "camembert"):
        _save_unigram_tokenizer(family, vocab_size, out)
        tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    else:
        make = {"roberta": _byte_bpe_tokenizer, "mpnet": _byte_bpe_tokenizer,
                "modernbert": _modernbert_tokenizer, "qwen3": _qwen_tokenizer,
                "qwen2": _qwen_tokenizer}.get(family, _wordpiece_tokenizer)
        tokenizer = make(vocab_size)
        tokenizer.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(family),
                                                              indent=2))
    bert_specials = family in ("distilbert", "electra", "modernbert")
    pad_token, cls_token, sep_token = (("[PAD]", "[CLS]", "[SEP]") if bert_specials
                                       else ("<pad>", "<s>", "</s>"))
    if family in ("qwen3", "qwen2"):
        pad_token = cls_token = sep_token = QWEN_EOS
    torch.manual_seed(seed)
    model = _model(family, tokenizer.get_vocab_size(), tokenizer.token_to_id(pad_token),
                   (tokenizer.token_to_id(cls_token), tokenizer.token_to_id(sep_token)))
    with torch.no_grad():  # init leaves LayerNorms at 1/0 and biases at 0: make every weight count
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        if family == "modernbert":
            _sharpen_modernbert(model)
        elif family in ("qwen3", "qwen2"):
            _sharpen_qwen(model)
        else:
            _sharpen_encoder(model)
    model.eval().save_pretrained(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("family", choices=FAMILIES + MADE_ONLY)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {write_random_family(args.family, args.out, seed=args.seed)}")


if __name__ == "__main__":
    main()
