"""Write a BERT-base-shaped Hugging Face folder with random weights, for speed work.

Shapes as chinese_L-12_H-768_A-12 (12 layers, hidden 768, 12 heads, intermediate
3072, vocab 21128). The vocabulary is made up (special tokens, then generated
word pieces) so texts tokenize into realistic lengths. Never a download.

Usage: python scripts/make_random_bert.py OUT_DIR [--layers 12 --hidden 768 ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import string
from pathlib import Path

import numpy as np

SPECIAL = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_vocab(size: int) -> list[str]:
    """Special tokens, single characters, then letter pairs/triples and their ## forms."""
    vocab = list(SPECIAL) + list(string.ascii_lowercase + string.digits + string.punctuation)
    for length in (2, 3):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            word = "".join(letters)
            vocab += [word, f"##{word}"]
            if len(vocab) >= size:
                return vocab[:size]
    return vocab[:size]


def random_state_dict(layers: int, hidden: int, inner: int, vocab: int,
                      seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    state = {
        "embeddings.word_embeddings.weight": normal(vocab, hidden),
        "embeddings.position_embeddings.weight": normal(512, hidden),
        "embeddings.token_type_embeddings.weight": normal(2, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
        "pooler.dense.weight": normal(hidden, hidden),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        linears = {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
                   "attention.self.value": (hidden, hidden),
                   "attention.output.dense": (hidden, hidden),
                   "intermediate.dense": (inner, hidden), "output.dense": (hidden, inner)}
        for name, (out_dim, in_dim) in linears.items():
            state[f"{p}{name}.weight"] = normal(out_dim, in_dim)
            state[f"{p}{name}.bias"] = np.zeros(out_dim, np.float32)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[f"{p}{norm}.weight"] = np.ones(hidden, np.float32)
            state[f"{p}{norm}.bias"] = np.zeros(hidden, np.float32)
    return state


def write_random_bert(out: Path, *, layers: int = 12, hidden: int = 768, heads: int = 12,
                      inner: int = 3072, vocab_size: int = 21128, seed: int = 0) -> Path:
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_act": "gelu",
              "vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": inner,
              "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "vocab.txt").write_text("\n".join(make_vocab(vocab_size)) + "\n")
    save_file(random_state_dict(layers, hidden, inner, vocab_size, seed),
              str(out / "model.safetensors"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--inner", type=int, default=3072)
    parser.add_argument("--vocab", type=int, default=21128)
    args = parser.parse_args()
    path = write_random_bert(args.out, layers=args.layers, hidden=args.hidden, heads=args.heads,
                             inner=args.inner, vocab_size=args.vocab)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
