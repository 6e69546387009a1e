"""A random Qwen3 of Qwen3-Embedding-0.6B's shapes (2.4 GB of fp32 weights) converts and matches.

Past protobuf's 2 GB, the graph's weights go to `<graph>.onnx.data` (convert/graph_file.py);
the unit tests run that path on a tiny model with the threshold lowered. This runs it at
real size: it makes the model (2.4 GB on disk), converts it into WORK_DIR/cache, and
compares layer -2's mean with transformers. About 5 minutes and 10 GB of memory on 2 cores.

Usage: python scripts/check_large_qwen3.py WORK_DIR
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "tests")]
from make_random_family import write_random_family  # noqa: E402
from reference import FamilyReference, heldout_texts  # noqa: E402

from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402

SHAPES = {"vocab_size": 151669, "hidden_size": 1024, "num_hidden_layers": 28,
          "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
          "intermediate_size": 3072, "rope_theta": 1_000_000.0}
"""Qwen3-Embedding-0.6B's config.json values that size it."""


def make_model(out: Path) -> None:
    """The test family's tokenizer and specials, with the real model's shapes."""
    import torch
    import transformers

    write_random_family("qwen3", out)
    small = json.loads((out / "config.json").read_text())
    config = transformers.Qwen3Config(
        max_position_embeddings=small["max_position_embeddings"],
        pad_token_id=small["pad_token_id"], eos_token_id=small["eos_token_id"],
        bos_token_id=None, tie_word_embeddings=False, **SHAPES)
    torch.manual_seed(0)
    model = transformers.Qwen3Model(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    model.eval().save_pretrained(str(out))


def main() -> None:
    work = Path(sys.argv[1])
    folder, cache = work / "qwen3-0.6b-shape", work / "cache"
    config = folder / "config.json"
    if not config.is_file() or json.loads(config.read_text()).get("hidden_size") != 1024:
        make_model(folder)  # once: a second run reuses the folder
    print("folder bytes", sum(p.stat().st_size for p in folder.iterdir()), flush=True)
    texts = [*heldout_texts()[:16], "ok", "今天天气很好，我们去公园散步吧。"]
    started = time.perf_counter()
    engine = Engine.load(EngineOptions(model_dir=folder, graph_tmp_dir=cache, max_seq_len=None))
    print(f"converted and loaded in {time.perf_counter() - started:.0f} s", flush=True)
    print(sorted((p.name, p.stat().st_size) for p in cache.iterdir()), flush=True)
    got = engine.encode(texts)
    del engine
    want = FamilyReference(folder).encode(texts, layers=(-2,), strategy="REDUCE_MEAN",
                                          max_seq_len=None, mask_cls_sep=False)
    cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    print(f"max |ours - transformers| {np.abs(got - want).max():.3g} "
          f"(largest value {np.abs(want).max():.3g}), worst cosine {cosine.min():.7f}")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")


if __name__ == "__main__":
    main()
