"""Write a tiny random-weight sequence-classification folder, for tests of /rerank and /predict.

Built by transformers from a config with random weights and saved with
`save_pretrained` (never a download):

- `bert`: `BertForSequenceClassification`, 3 labels (negative/neutral/positive),
  a WordPiece vocab.txt trained here (what the server's Google tokenizer reads);
- `xlm-roberta`: an `XLMRobertaForSequenceClassification` cross-encoder (one
  logit, as rerankers such as bge-reranker have), with a SentencePiece
  tokenizer.json written by transformers;
- `distilbert` and `electra`: their `...ForSequenceClassification` with 2 labels
  (their heads differ: pre_classifier + ReLU, dense + GELU), WordPiece tokenizer.json.

Usage: python scripts/make_random_classifier.py bert OUT_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from make_random_family import (
    MAX_TOKENS,
    _save_unigram_tokenizer,
    _tokenizer_config,
    _wordpiece_tokenizer,
)

__all__ = ["CLASSIFIER_KINDS", "LABELS", "write_random_classifier"]

CLASSIFIER_KINDS = ("bert", "xlm-roberta", "distilbert", "electra")
LABELS = {"bert": ("negative", "neutral", "positive"), "xlm-roberta": ("relevance",),
          "distilbert": ("no", "yes"), "electra": ("no", "yes")}
_SIZES: dict[str, Any] = {"hidden_size": 32, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "intermediate_size": 64}


def _write_bert_vocab(out: Path, vocab_size: int) -> int:
    """vocab.txt (ids by line) from a WordPiece trained here; returns its size."""
    tokenizer = _wordpiece_tokenizer(vocab_size)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    (out / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertTokenizer", "do_lower_case": True,
        "model_max_length": MAX_TOKENS}))
    return len(vocab)


def _model(kind: str, vocab_size: int) -> Any:
    import transformers as tf

    labels = LABELS[kind]
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    if kind == "bert":
        config = tf.BertConfig(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS,
                               num_labels=len(labels), id2label=id2label, label2id=label2id,
                               **_SIZES)
        return tf.BertForSequenceClassification(config)
    if kind == "distilbert":
        config = tf.DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=4,
                                     hidden_dim=64, max_position_embeddings=MAX_TOKENS,
                                     id2label=id2label, label2id=label2id)
        return tf.DistilBertForSequenceClassification(config)
    if kind == "electra":
        config = tf.ElectraConfig(vocab_size=vocab_size, embedding_size=16,
                                  max_position_embeddings=MAX_TOKENS, id2label=id2label,
                                  label2id=label2id, **_SIZES)
        return tf.ElectraForSequenceClassification(config)
    config = tf.XLMRobertaConfig(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS + 2,
                                 type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                                 eos_token_id=2, num_labels=1, id2label=id2label,
                                 label2id=label2id, **_SIZES)
    return tf.XLMRobertaForSequenceClassification(config)


def write_random_classifier(kind: str, out: Path, *, seed: int = 0, vocab_size: int = 400) -> Path:
    """A folder with config.json (architectures, id2label), model.safetensors and a tokenizer."""
    import torch
    from tokenizers import Tokenizer

    if kind not in CLASSIFIER_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {CLASSIFIER_KINDS}")
    out.mkdir(parents=True, exist_ok=True)
    if kind == "bert":
        size = _write_bert_vocab(out, vocab_size)
    elif kind in ("distilbert", "electra"):
        tokenizer = _wordpiece_tokenizer(vocab_size)
        tokenizer.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(kind)))
        size = tokenizer.get_vocab_size()
    else:
        _save_unigram_tokenizer("xlm-roberta", vocab_size, out)
        size = Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab_size()
    torch.manual_seed(seed)
    model = _model(kind, size)
    with torch.no_grad():  # init leaves LayerNorms at 1/0 and biases at 0: make every weight count
        for name, parameter in model.named_parameters():
            # A large head spreads the logits of different texts apart, so rankings differ.
            scale = 2.0 if name.startswith("classifier") else 0.05
            parameter.add_(torch.randn_like(parameter) * scale)
    model.eval().save_pretrained(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=CLASSIFIER_KINDS)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {write_random_classifier(args.kind, args.out, seed=args.seed)}")


if __name__ == "__main__":
    main()
