"""Where the forward pass spends its time, by operator, from onnxruntime's own profiler.

Runs the server's CPU graph (fp32, and int8 with --int8) on the batches the
server's scheduler forms for the comparison load (1,500 texts of 4-120 words,
max_seq_len 128), with `SessionOptions.enable_profiling`, and prints the share of
kernel time per operator type, plus how much of each batch is padding.

Usage: python scripts/profile_engine.py [--texts 1500] [--int8] [--threads 2]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts")]
from benchmark_engine import make_texts, server_batches  # noqa: E402
from scratch import scratch_dir  # noqa: E402

from bert_serving.server.model.default_model import default_model_dir  # noqa: E402
from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402
from bert_serving.server.model.padding import TokenBatch  # noqa: E402
from bert_serving.server.model.runtime import (  # noqa: E402
    CPU_PROVIDER,
    disabled_optimizers,
    parse_device,
    session_options,
)


def kernel_time_by_op(graph: Path, batches: list[TokenBatch], threads: int) -> dict[str, int]:
    """Microseconds of kernel time per operator type over one pass of every batch.

    No warm-up: shares, not speeds, are what this reports, and the first batch's
    extra cost is a small part of 38.
    """
    options = session_options(threads)  # the server's session, profiled
    options.enable_profiling = True
    options.profile_file_prefix = str(scratch_dir("ort-events") / "ort")
    session = ort.InferenceSession(str(graph), options, providers=[CPU_PROVIDER],
                                   disabled_optimizers=disabled_optimizers(parse_device("cpu")))
    for batch in batches:
        session.run(None, _feeds(batch))
    events = json.loads(Path(session.end_profiling()).read_text())
    totals: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"]
    return dict(totals)


def _feeds(batch: TokenBatch) -> dict[str, object]:
    return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
            "token_type_ids": batch.token_type_ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args()
    texts = make_texts(args.texts, seed=1)
    cache = scratch_dir("ort-profile")
    engine = Engine.load(EngineOptions(model_dir=default_model_dir(), graph_tmp_dir=cache,
                                       max_seq_len=128, dtype="int8" if args.int8 else "auto"))
    batches = [tokens for _, tokens in server_batches(engine, texts)]
    real = sum(batch.num_real_tokens for batch in batches)
    padded = sum(batch.input_ids.size for batch in batches)
    print(f"{len(batches)} batches, {real} real of {padded} padded tokens "
          f"({1 - real / padded:.1%} padding); {'int8' if args.int8 else 'fp32'}, "
          f"{args.threads} threads")
    totals = kernel_time_by_op(engine.graph.path, batches, args.threads)
    whole = sum(totals.values())
    print(f"kernel time {whole / 1e6:.2f} s\n{'operator':28} {'share':>7}")
    for op, micros in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{op:28} {micros / whole:7.1%}")


if __name__ == "__main__":
    main()
