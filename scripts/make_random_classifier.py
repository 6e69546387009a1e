"""Write a tiny random-weight sequence-classification folder, for tests of /rerank and /predict.

Built by transformers from a config with random weights and saved with
`save_pretrained` (never a download):

- `bert`: `BertForSequenceClassification`, 3 labels (negative/neutral/positive),
  a WordPiece vocab.txt trained here (what the server's Google tokenizer reads);
- `xlm-roberta`: an `XLMRobertaForSequenceClassification` cross-encoder (one
  logit, as rerankers such as bge-reranker have), with a SentencePiece
  tokenizer.json written by transformers;
- `roberta`: a `RobertaForSequenceClassification` cross-encoder (one logit, as
  the ms-marco RoBERTa rerankers have), with a byte-level BPE tokenizer.json and
  RoBERTa's tokenizer_config.json: the third tokenizer model (BPE) a reranker
  can ship, beside Unigram and WordPiece;
- `distilbert` and `electra`: their `...ForSequenceClassification` with 2 labels
  (their heads differ: pre_classifier + ReLU, dense + GELU), WordPiece tokenizer.json;
- `mpnet`: `MPNetForSequenceClassification` (RoBERTa's head), byte-level BPE, 2 labels;
- `modernbert`: `ModernBertForSequenceClassification` with `classifier_pooling: mean`
  (its head reads the tokens' mean, then dense, GELU and a LayerNorm), 2 labels.

Usage: python scripts/make_random_classifier.py bert OUT_DIR [--seed 0]
       python scripts/make_random_classifier.py electra OUT_DIR --labels relevance --spread 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from make_random_family import (
    _CORPUS,
    MAX_TOKENS,
    _byte_bpe_tokenizer,
    _modernbert_tokenizer,
    _save_unigram_tokenizer,
    _tokenizer_config,
    _wordpiece_tokenizer,
)

__all__ = ["CLASSIFIER_KINDS", "LABELS", "write_random_classifier"]

CLASSIFIER_KINDS = ("bert", "xlm-roberta", "distilbert", "electra", "roberta", "mpnet",
                    "modernbert")
LABELS = {"bert": ("negative", "neutral", "positive"), "xlm-roberta": ("relevance",),
          "roberta": ("relevance",), "distilbert": ("no", "yes"), "electra": ("no", "yes"),
          "mpnet": ("no", "yes"), "modernbert": ("no", "yes")}
_SIZES: dict[str, Any] = {"hidden_size": 32, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "intermediate_size": 64}


def _write_bert_vocab(out: Path, vocab_size: int) -> Any:
    """vocab.txt (ids by line) from a WordPiece trained here; returns that WordPiece."""
    tokenizer = _wordpiece_tokenizer(vocab_size)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    (out / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertTokenizer", "do_lower_case": True,
        "model_max_length": MAX_TOKENS}))
    return tokenizer


def _model(kind: str, vocab_size: int, labels: tuple[str, ...], tokenizer: Any) -> Any:
    import transformers as tf

    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in id2label.items()}
    config: Any  # one of several config classes, by kind; num_labels follows id2label
    if kind == "bert":
        config = tf.BertConfig(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS,
                               id2label=id2label, label2id=label2id, **_SIZES)
        return tf.BertForSequenceClassification(config)
    if kind == "distilbert":
        config = tf.DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=4,
                                     hidden_dim=64, max_position_embeddings=MAX_TOKENS,
                                     id2label=id2label, label2id=label2id)
        return tf.DistilBertForSequenceClassification(config)
    if kind == "mpnet":
        config = tf.MPNetConfig(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS + 2,
                                pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                relative_attention_num_buckets=32, id2label=id2label,
                                label2id=label2id, **_SIZES)
        return tf.MPNetForSequenceClassification(config)
    if kind == "modernbert":  # 3 layers: global, local, local; a mean-pooling head
        cls, sep, pad = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
        config = tf.ModernBertConfig(
            vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS, pad_token_id=pad,
            bos_token_id=cls, cls_token_id=cls, eos_token_id=sep, sep_token_id=sep,
            global_attn_every_n_layers=3, local_attention=8, global_rope_theta=160_000.0,
            local_rope_theta=10_000.0, classifier_pooling="mean", id2label=id2label,
            label2id=label2id, **{**_SIZES, "num_hidden_layers": 3})
        return tf.ModernBertForSequenceClassification(config)
    if kind == "electra":
        config = tf.ElectraConfig(vocab_size=vocab_size, embedding_size=16,
                                  max_position_embeddings=MAX_TOKENS, id2label=id2label,
                                  label2id=label2id, **_SIZES)
        return tf.ElectraForSequenceClassification(config)
    config_class, model_class = {
        "xlm-roberta": (tf.XLMRobertaConfig, tf.XLMRobertaForSequenceClassification),
        "roberta": (tf.RobertaConfig, tf.RobertaForSequenceClassification),
    }[kind]
    config = config_class(vocab_size=vocab_size, max_position_embeddings=MAX_TOKENS + 2,
                          type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                          id2label=id2label, label2id=label2id, **_SIZES)
    return model_class(config)


def write_random_classifier(kind: str, out: Path, *, seed: int = 0, vocab_size: int = 400,
                            labels: tuple[str, ...] | None = None,
                            spread: float | None = None) -> Path:
    """A folder with config.json (architectures, id2label), model.safetensors and a tokenizer.

    `labels` replaces the kind's own (`LABELS`): `("relevance",)` makes any kind a
    cross-encoder, one logit. `spread` recentres the logits: random heads put them far
    from 0 (-34 or +70 are usual), where a sigmoid answers 0.0 or 1.0 for every text and
    no test can tell two texts apart by score; with `spread`, each logit has mean 0 and
    standard deviation `spread` over the tokenizer's training texts (`_calibrate`).
    """
    import torch
    from tokenizers import Tokenizer

    if kind not in CLASSIFIER_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {CLASSIFIER_KINDS}")
    out.mkdir(parents=True, exist_ok=True)
    if kind == "bert":
        tokenizer = _write_bert_vocab(out, vocab_size)
    elif kind in ("distilbert", "electra", "roberta", "mpnet", "modernbert"):
        make = {"roberta": _byte_bpe_tokenizer, "mpnet": _byte_bpe_tokenizer,
                "modernbert": _modernbert_tokenizer}.get(kind, _wordpiece_tokenizer)
        tokenizer = make(vocab_size)
        tokenizer.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(kind)))
    else:
        _save_unigram_tokenizer("xlm-roberta", vocab_size, out)
        tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    torch.manual_seed(seed)
    model = _model(kind, tokenizer.get_vocab_size(), labels or LABELS[kind], tokenizer)
    with torch.no_grad():  # init leaves LayerNorms at 1/0 and biases at 0: make every weight count
        for name, parameter in model.named_parameters():
            # A large head spreads the logits of different texts apart, so rankings differ.
            scale = 2.0 if name.startswith("classifier") else 0.05
            parameter.add_(torch.randn_like(parameter) * scale)
    model.eval()
    if spread is not None:
        _calibrate(model, tokenizer, spread)
    model.save_pretrained(str(out))
    return out


def _calibrate(model: Any, tokenizer: Any, spread: float) -> None:
    """Rescale the head's last Linear so each logit has mean 0 and std `spread`.

    Measured over the texts the tokenizer was trained on, alone and in every ordered
    pair, as the folder's own tokenizer encodes them (special tokens and token types
    included: the head reads the first token's state). z' = (z - mean) * spread / std is
    one affine map of the last layer, so the model stays a plain transformers model.
    """
    import torch

    texts = list(_CORPUS)
    encodings = [tokenizer.encode(text) for text in texts]
    encodings += [tokenizer.encode(a, b) for a in texts for b in texts]
    logits = []
    with torch.no_grad():
        for encoding in encodings:
            inputs = {"input_ids": torch.tensor([encoding.ids])}
            if model.config.model_type in ("bert", "electra"):  # the others have no types
                inputs["token_type_ids"] = torch.tensor([encoding.type_ids])
            logits.append(model(**inputs).logits[0])
        stacked = torch.stack(logits)
        mean, std = stacked.mean(0), stacked.std(0).clamp_min(1e-6)
        head = model.classifier
        out_layer = head.out_proj if hasattr(head, "out_proj") else head
        factor = spread / std
        out_layer.weight.mul_(factor[:, None])
        out_layer.bias.sub_(mean).mul_(factor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=CLASSIFIER_KINDS)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", nargs="+", help="label names (one: a cross-encoder)")
    parser.add_argument("--spread", type=float, help="logits' std over the training texts, mean 0")
    args = parser.parse_args()
    labels = tuple(args.labels) if args.labels else None
    out = write_random_classifier(args.kind, args.out, seed=args.seed, labels=labels,
                                  spread=args.spread)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
