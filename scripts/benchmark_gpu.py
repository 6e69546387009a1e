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
interleaved; medians are printed. `--device cpu --quick` dry-runs every path on a
CPU machine (fp32, small sizes) so the script is known to work before GPU time is spent;
its timings mean little, since the contenders in this process (onnxruntime's and torch's
thread pools) share the few cores with the server's processes.

Usage: python scripts/benchmark_gpu.py [--model DIR] [--device cuda|cpu] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from make_random_bert import make_vocab, write_random_bert  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.client import BertClient  # noqa: E402
from bert_serving.server.engine import Engine, EngineOptions  # noqa: E402

Runner = Callable[[], None]


def make_texts(count: int, seq: int, seed: int) -> list[str]:
    """Texts long enough to fill `seq` tokens (the tokenizer truncates the rest)."""
    words = [w for w in make_vocab(2000)[200:] if not w.startswith("##") and len(w) == 3]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=seq)) for _ in range(count)]


def transformers_runner(model_dir: Path, device: str, texts: list[str], seq: int,
                        batch: int) -> Runner:
    import torch
    from transformers import BertModel, BertTokenizerFast

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model = BertModel.from_pretrained(str(model_dir), dtype=dtype).to(device).eval()
    tokenizer = BertTokenizerFast(str(model_dir / "vocab.txt"))
    features = [tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=seq,
                          return_tensors="pt").to(device) for i in range(0, len(texts), batch)]

    def run() -> None:
        with torch.inference_mode():
            for f in features:
                states = model(**f, output_hidden_states=True).hidden_states[-2]
                mask = f["attention_mask"].unsqueeze(-1).to(states.dtype)
                ((states * mask).sum(1) / mask.sum(1)).float().cpu()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return run


def raw_runner(engine: Engine, texts: list[str], batch: int) -> Runner:
    batches = [engine.tokenize(texts[i:i + batch]) for i in range(0, len(texts), batch)]

    def run() -> None:
        for tokens in batches:
            engine.embed(tokens)

    return run


def device_bound_runner(engine: Engine, texts: list[str], batch: int, device: str) -> Runner:
    """The engine's session through IOBinding, inputs and output in `device` memory.

    On `cuda` the inputs are copied to the GPU once, outside the timed loop, and the
    output is bound to a CUDA OrtValue (`bind_ortvalue_output`), so nothing crosses to
    the host while timed; `--device cpu` runs the same calls on CPU OrtValues.
    """
    import onnxruntime as ort

    from bert_serving.server.graph_contract import INPUT_NAMES, OUTPUT_NAME

    kind, _, index = device.partition(":")
    device_id = int(index or 0)
    session = engine.runner.session
    bindings = []
    for i in range(0, len(texts), batch):
        tokens = engine.tokenize(texts[i:i + batch])
        feeds = dict(zip(INPUT_NAMES, (tokens.input_ids, tokens.attention_mask,
                                       tokens.token_type_ids), strict=True))
        binding = session.io_binding()
        for name, array in feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), kind, device_id)
            binding.bind_ortvalue_input(name, value)
        shape = [len(tokens.input_ids), engine.output_width]
        output = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, kind, device_id)
        binding.bind_ortvalue_output(OUTPUT_NAME, output)
        bindings.append((binding, output))
    assert all(out.device_name().lower() == kind for _, out in bindings), "output not on device"

    def run() -> None:
        for binding, _ in bindings:
            binding.synchronize_inputs()
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()

    return run


def server_runner(client: BertClient, texts: list[str], batch: int) -> Runner:
    def run() -> None:  # one client, requests of `batch` texts sent back to back
        for i in range(0, len(texts), batch):
            client.encode(texts[i:i + batch], blocking=False)
        client.fetch_all()

    return run


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="BERT folder; default: random BERT-base")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a dry run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bert-serving-gpu-"))
    model = args.model or write_random_bert(work / "bert-base", **(
        {"layers": 2, "hidden": 128, "heads": 2, "inner": 512} if args.quick else {}))
    on_gpu = args.device.startswith("cuda")
    seqs, batches = ([32], [1, 8]) if args.quick else ([32, 128], [1, 32, 256])
    total = 64 if args.quick else 2048
    device_flags = ["-device_map", "0"] if on_gpu else ["-cpu"]
    print(describe_machine(args.device))
    print(f"model {model}, device {args.device}, {args.workers} server workers, "
          f"median of {args.repeats} interleaved repeats")
    print(f"{'seq':>4} {'batch':>5} {'contender':24} {'sent/s':>9} {'tokens/s':>11} "
          f"{'vs transformers':>9}")
    for seq in seqs:
        options = EngineOptions(model_dir=model, graph_tmp_dir=work / "cache", max_seq_len=seq,
                                device="cuda:0" if on_gpu else "cpu")
        engine = Engine.load(options)
        texts = make_texts(total, seq, seed=seq)
        real_tokens = engine.tokenize(texts).num_real_tokens
        flags = [*device_flags, "-num_worker", str(args.workers), "-max_seq_len", str(seq)]
        with ServerProcess(flags, work / "cache", cpu=not on_gpu) as server, \
                BertClient(port=server.port, port_out=server.port_out, check_length=False,
                           timeout=600_000) as client:
            for batch in batches:
                contenders = {
                    "onnxruntime raw": raw_runner(engine, texts, batch),
                    "onnxruntime IOBinding": device_bound_runner(engine, texts, batch,
                                                                 options.device),
                    "bert-serving server": server_runner(client, texts, batch),
                    "transformers": transformers_runner(model, args.device, texts, seq, batch),
                }
                medians, _ = interleaved_medians(contenders, args.repeats)
                print_rows(seq, batch, total, real_tokens, medians)
            p50, p99 = latency(client, 50 if args.quick else 500)
            print(f"seq {seq}: single-sentence latency through the server p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
