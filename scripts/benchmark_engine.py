"""Engine speed on CPU: bert-serving fp32 and int8 against transformers on torch, one run.

Same texts (mixed lengths, 4-120 words), same max_seq_len, same pooling (mean of
hidden_states[-2]), same length-sorted batches of 32 (what sentence-transformers
does), same thread count. Repeats are interleaved; medians and ratios are printed.

Usage: python scripts/benchmark_engine.py [--texts 1500] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import heldout_texts, legacy_rows
from scratch import scratch_dir
from timing import interleaved_medians

from bert_serving.proto.internal import JobKey
from bert_serving.server.config import ServerConfig, batch_token_budget
from bert_serving.server.model.default_model import default_model_dir
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.padding import TokenBatch
from bert_serving.server.pipeline.scheduler import BatchScheduler, JobRows

BATCH = 32
MAX_SEQ_LEN = 128


def make_texts(count: int, seed: int = 0) -> list[str]:
    words = " ".join(heldout_texts()).split()
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(4, 120))) for _ in range(count)]


def server_batches(engine: Engine, texts: list[str]) -> list[tuple[list[int], TokenBatch]]:
    """The batches a CPU server's scheduler forms for one request of texts, with their rows."""
    defaults = ServerConfig()
    scheduler = BatchScheduler(max_batch_size=defaults.max_batch_size,
                               max_batch_tokens=batch_token_budget(defaults, ["cpu"]),
                               priority_batch_size=defaults.priority_batch_size)
    rows_read = legacy_rows(texts)  # as the server reads a 1.10 request, and engine.tokenize
    scheduler.add(JobRows(JobKey(b"all", 1), texts, engine.tokenizer.lengths(rows_read)))
    batches = []
    while (batch := scheduler.next_batch()) is not None:
        rows = batch.segments[0].rows
        batches.append((rows, engine.tokenize([texts[row] for row in rows])))
    return batches


def engine_runner(engine: Engine, texts: list[str]) -> Callable[[], np.ndarray]:
    order = np.argsort([len(t) for t in texts])
    ordered = [texts[i] for i in order]

    def run() -> np.ndarray:
        parts = [engine.encode(ordered[i:i + BATCH]) for i in range(0, len(ordered), BATCH)]
        return np.concatenate(parts)

    return run


def transformers_runner(
    model_dir: Path, texts: list[str], threads: int
) -> Callable[[], np.ndarray]:
    import torch
    from transformers import BertModel, BertTokenizerFast

    torch.set_num_threads(threads)
    tokenizer = BertTokenizerFast(str(model_dir / "vocab.txt"))
    model = BertModel.from_pretrained(str(model_dir)).eval()
    order = np.argsort([len(t) for t in texts])
    ordered = [texts[i] for i in order]

    def run() -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for i in range(0, len(ordered), BATCH):
                features = tokenizer(ordered[i:i + BATCH], padding=True, truncation=True,
                                     max_length=MAX_SEQ_LEN, return_tensors="pt")
                states = model(**features, output_hidden_states=True).hidden_states[-2]
                mask = features["attention_mask"].unsqueeze(-1).float()
                parts.append(((states * mask).sum(1) / mask.sum(1)).numpy())
        return np.concatenate(parts)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model_dir = default_model_dir()
    texts = make_texts(args.texts)
    cache = scratch_dir("bench")
    options = dict(model_dir=model_dir, graph_tmp_dir=cache, max_seq_len=MAX_SEQ_LEN,
                   intra_op_threads=args.threads)
    fp32 = Engine.load(EngineOptions(**options))  # type: ignore[arg-type]
    int8 = Engine.load(EngineOptions(**options, dtype="int8"))  # type: ignore[arg-type]
    real_tokens = int(fp32.tokenize(texts).num_real_tokens)
    contenders = {
        "transformers (torch CPU)": transformers_runner(model_dir, texts, args.threads),
        "bert-serving fp32": engine_runner(fp32, texts),
        "bert-serving int8": engine_runner(int8, texts),
    }
    medians, outputs = interleaved_medians(contenders, args.repeats)
    base = medians["transformers (torch CPU)"]
    print(f"{len(texts)} texts, {real_tokens} real tokens, max_seq_len {MAX_SEQ_LEN}, "
          f"batch {BATCH}, {args.threads} threads, median of {args.repeats}")
    print(f"{'contender':28} {'sent/s':>9} {'tokens/s':>10} {'vs transformers':>16}")
    for name, median in medians.items():
        print(f"{name:28} {len(texts) / median:9.1f} {real_tokens / median:10.0f} "
              f"{base / median:15.2f}x")
    a, b = outputs["bert-serving int8"], outputs["bert-serving fp32"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"int8 vs fp32 cosine: min {cosine.min():.4f}, mean {cosine.mean():.4f}")


if __name__ == "__main__":
    main()
