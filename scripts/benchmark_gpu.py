"""GPU figures (shared/gpu.md): raw ORT session, whole server and transformers fp16, one run.

On BERT-base shapes with random weights (scripts/make_random_bert.py): for seq 32
and 128 and batch 1, 32, 256, sentences/s and real tokens/s of

- the raw onnxruntime session on the fp16 GPU graph (CUDA provider) as the server's worker
  runs it, vectors copied back to the host;
- the same session through IOBinding to device memory: the token batches are put on the GPU
  beforehand and the output is bound to a CUDA OrtValue, so the figure is the graph's own
  speed with no host transfer in the loop (the ceiling for any GPU server);
- the whole server end to end (client -> ventilator -> workers -> sink -> client);
- transformers BertModel in fp16 on the same GPU, same pooling;

then p50/p99 latency of single-sentence requests through the server. Repeats are
interleaved; medians are printed. Each contender's vectors are then checked, row by row,
against transformers in fp32 on the same device (cosine >= 0.999), so none is fast by
computing something else; the script exits 1 naming any that is not.

`--dry-run` (`--device cpu --quick --repeats 1`) runs every path on a CPU machine, in CI
(tests/integration/test_benchmark_scripts.py): the same fp16 fused graph on the CPU
provider, transformers in fp32 (torch's fp16 CPU kernels are slow), a tiny random BERT,
16 texts, the vectors checked, so the script is known to work before GPU time is spent.
Its timings mean little: the contenders in this process share the cores with the server's.

Usage: python scripts/benchmark_gpu.py [--model DIR] [--device cuda|cpu] [--quick] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from make_random_bert import make_vocab, write_random_bert  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from server_process import READY_MARK, ServerProcess  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.client import BertClient  # noqa: E402
from bert_serving.server.convert.prepare import prepare_engine_graph  # noqa: E402
from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402

Runner = Callable[[], None]
MIN_COSINE = 0.999  # per row, fp16 (the GPU graph, transformers fp16) to transformers fp32


def make_texts(count: int, seq: int, seed: int) -> list[str]:
    """Texts long enough to fill `seq` tokens (the tokenizer truncates the rest)."""
    words = [w for w in make_vocab(2000)[200:] if not w.startswith("##") and len(w) == 3]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=seq)) for _ in range(count)]


@dataclass(frozen=True)
class Contender:
    """One way to get the vectors: `run` is what is timed; `vectors` (untimed, after the
    timing) returns what that way computes for the same texts, so it can be checked."""

    run: Runner
    vectors: Callable[[], np.ndarray]


class TransformersBert:
    """transformers' BertModel on `device` in `dtype`, the same pooling as the server's
    default (masked mean of the second-to-last layer)."""

    def __init__(self, model_dir: Path, device: str, dtype: str) -> None:
        import torch
        from transformers import BertModel, BertTokenizerFast

        self.torch = torch
        self.device = device
        self.model = BertModel.from_pretrained(str(model_dir), dtype=getattr(torch, dtype))
        self.model = self.model.to(device).eval()
        self.tokenizer = BertTokenizerFast(str(model_dir / "vocab.txt"))  # positional: see README

    def contender(self, texts: list[str], seq: int, batch: int) -> Contender:
        features = [self.tokenizer(texts[i:i + batch], padding=True, truncation=True,
                                   max_length=seq, return_tensors="pt").to(self.device)
                    for i in range(0, len(texts), batch)]

        def run() -> None:
            self._pool_all(features)

        def vectors() -> np.ndarray:
            return np.concatenate([v.numpy() for v in self._pool_all(features)])

        return Contender(run, vectors)

    def _pool_all(self, features: list[Any]) -> list[Any]:
        with self.torch.inference_mode():
            pooled = []
            for f in features:
                states = self.model(**f, output_hidden_states=True).hidden_states[-2]
                mask = f["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled.append(((states * mask).sum(1) / mask.sum(1)).float().cpu())
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()
        return pooled


def raw_contender(engine: Engine, texts: list[str], batch: int) -> Contender:
    batches = [engine.tokenize(texts[i:i + batch]) for i in range(0, len(texts), batch)]

    def run() -> None:
        for tokens in batches:
            engine.embed(tokens)

    def vectors() -> np.ndarray:
        return np.concatenate([engine.embed(tokens) for tokens in batches])

    return Contender(run, vectors)


def device_bound_contender(engine: Engine, texts: list[str], batch: int,
                           device: str) -> Contender:
    """The engine's session through IOBinding, inputs and output in `device` memory.

    On `cuda` the inputs are copied to the GPU once, outside the timed loop, and the
    output is bound to a CUDA OrtValue (`bind_ortvalue_output`), so nothing crosses to
    the host while timed; `--device cpu` runs the same calls on CPU OrtValues.
    """
    import onnxruntime as ort

    kind, _, index = device.partition(":")
    device_id = int(index or 0)
    session = engine.runner.session
    output_name = session.get_outputs()[0].name
    bindings = []
    for i in range(0, len(texts), batch):
        tokens = engine.tokenize(texts[i:i + batch])
        arrays = {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask,
                  "token_type_ids": tokens.token_type_ids}
        binding = session.io_binding()
        for name in engine.runner.input_names:  # what the graph reads, as the worker feeds it
            array = np.ascontiguousarray(arrays[name])
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, kind,
                                                                               device_id))
        shape = [len(tokens.input_ids), engine.output_width]
        output = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, kind, device_id)
        binding.bind_ortvalue_output(output_name, output)
        bindings.append((binding, output))
    assert all(out.device_name().lower() == kind for _, out in bindings), "output not on device"

    def run() -> None:
        for binding, _ in bindings:
            binding.synchronize_inputs()
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()

    def vectors() -> np.ndarray:  # one more run, then the device outputs copied back
        run()
        return np.concatenate([output.numpy() for _, output in bindings])

    return Contender(run, vectors)


def server_contender(client: BertClient, texts: list[str], batch: int) -> Contender:
    def send_all() -> np.ndarray:  # one client, requests of `batch` texts sent back to back
        for i in range(0, len(texts), batch):
            client.encode(texts[i:i + batch], blocking=False)
        return np.asarray(client.fetch_all(sort=True, concat=True))

    def run() -> None:
        send_all()

    return Contender(run, send_all)


def worst_cosine(got: np.ndarray, want: np.ndarray) -> float:
    """The lowest cosine between a row of `got` and the same row of `want`."""
    assert got.shape == want.shape, (got.shape, want.shape)
    got, want = got.astype(np.float64), want.astype(np.float64)
    dots = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    return float(dots.min())


def latency(client: BertClient, count: int) -> tuple[float, float]:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        client.encode([f"single sentence number {i}"])
        samples.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def describe_machine(device: str) -> str:
    """GPU, driver and library versions, as the benchmark doc records them."""
    import onnxruntime
    import torch
    import transformers

    gpu = "no GPU"
    if device.startswith("cuda") and shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                 "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True).stdout.strip() or gpu
    return (f"{datetime.date.today()}, {gpu}, {platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__} "
            f"({', '.join(onnxruntime.get_available_providers())}), torch {torch.__version__}, "
            f"transformers {transformers.__version__}")


def print_rows(seq: int, batch: int, total: int, real_tokens: int,
               medians: dict[str, float]) -> None:
    """One line per contender: rates from the median times, and the ratio to transformers."""
    for name, median in medians.items():
        print(f"{seq:>4} {batch:>5} {name:24} {total / median:9.0f} "
              f"{real_tokens / median:11.0f} {medians['transformers'] / median:8.2f}x")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="BERT folder; default: random BERT-base")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a dry run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true",
                        help="--device cpu --quick --repeats 1: every contender on the CPU, "
                             "vectors checked, no GPU needed (what CI runs)")
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.quick, args.repeats = "cpu", True, 1
    return args


def load_engine(model: Path, cache: Path, seq: int, device: str) -> Engine:
    """The engine on the GPU graph (fp16, ORT's fusions) whatever `device` is: a dry run
    on the CPU runs the very graph the GPU would. On CUDA it refuses a CPU fallback."""
    options = EngineOptions(model_dir=model, graph_tmp_dir=cache, max_seq_len=seq,
                            device=device)
    engine = Engine.from_graph(prepare_engine_graph(replace(options, device="cuda:0")), options)
    if device.startswith("cuda") and engine.runner.providers[0] != "CUDAExecutionProvider":
        raise SystemExit(f"the session runs on {engine.runner.providers}: no GPU to measure")
    return engine


def ready_line(server: ServerProcess, on_gpu: bool) -> str:
    """The server's ready line (its graph's precision, its workers' devices)."""
    line = next(line for line in server.lines if line.startswith(READY_MARK)).strip()
    if on_gpu and "workers=cpu" in line:
        raise SystemExit(f"the server fell back to the CPU: {line}\n{server.output}")
    return line


def main() -> None:
    args = parse_args()
    work = scratch_dir("gpu")
    model = args.model or write_random_bert(work / "bert-base", **(
        {"layers": 2, "hidden": 128, "heads": 2, "inner": 512} if args.quick else {}))
    on_gpu = args.device.startswith("cuda")
    seqs, batches = ([32], [1, 8]) if args.quick else ([32, 128], [1, 32, 256])
    total = 16 if args.quick else 2048
    device_flags = ["-device_map", "0"] if on_gpu else ["-cpu"]
    print(describe_machine(args.device))
    print(f"model {model}, device {args.device}, {args.workers} server workers, "
          f"median of {args.repeats} interleaved repeats")
    # fp16 is the GPU's contender; torch's fp16 CPU kernels are slow and mean nothing there
    theirs = TransformersBert(model, args.device, "float16" if on_gpu else "float32")
    reference = TransformersBert(model, args.device, "float32")
    disagreements: list[str] = []
    for seq in seqs:
        engine = load_engine(model, work / "cache", seq, args.device)
        texts = make_texts(total, seq, seed=seq)
        real_tokens = engine.tokenize(texts).num_real_tokens
        want = reference.contender(texts, seq, 64).vectors()
        flags = [*device_flags, "-model_dir", str(model), "-num_worker", str(args.workers),
                 "-max_seq_len", str(seq)]
        with ServerProcess(flags, work / "cache", cpu=not on_gpu) as server, \
                BertClient(port=server.port, port_out=server.port_out, check_length=False,
                           timeout=600_000) as client:
            print(f"seq {seq}: graph {engine.graph.metadata.precision} on "
                  f"{engine.runner.providers[0]}; {ready_line(server, on_gpu)}")
            print(f"{'seq':>4} {'batch':>5} {'contender':24} {'sent/s':>9} {'tokens/s':>11} "
                  f"{'vs transformers':>9}")
            for batch in batches:
                contenders = {
                    "onnxruntime raw": raw_contender(engine, texts, batch),
                    "onnxruntime IOBinding": device_bound_contender(engine, texts, batch,
                                                                    args.device),
                    "bert-serving server": server_contender(client, texts, batch),
                    "transformers": theirs.contender(texts, seq, batch),
                }
                medians, _ = interleaved_medians(
                    {name: contender.run for name, contender in contenders.items()},
                    args.repeats)
                print_rows(seq, batch, total, real_tokens, medians)
                disagreements += check_vectors(seq, batch, contenders, want)
            p50, p99 = latency(client, 20 if args.quick else 500)
            print(f"seq {seq}: single-sentence latency through the server p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms")
    if disagreements:
        raise SystemExit(f"rows below cosine {MIN_COSINE} to transformers fp32: "
                         + "; ".join(disagreements))


def check_vectors(seq: int, batch: int, contenders: dict[str, Contender],
                  want: np.ndarray) -> list[str]:
    """Print each contender's worst row cosine to transformers fp32; return those too low.

    So no contender is fast by computing something else (a wrong graph, lost rows)."""
    cosines = {name: worst_cosine(contender.vectors(), want)
               for name, contender in contenders.items()}
    print(f"{seq:>4} {batch:>5} worst row cosine to transformers fp32: "
          + ", ".join(f"{name} {cosine:.6f}" for name, cosine in cosines.items()))
    return [f"seq {seq} batch {batch} {name} {cosine:.6f}"
            for name, cosine in cosines.items() if not cosine >= MIN_COSINE]


if __name__ == "__main__":
    main()
