"""The whole server against the ONNX peers a user would pick on CPU, side by side, one run.

Contenders, all on the same texts (4-120 words, cut to fit 128 WordPiece tokens so
that nobody truncates), all 6 layers, last-layer masked mean, 2 threads each:

- ours: the whole server fp32 and `-int8` (`-cpu -num_worker 1 -max_seq_len 128
  -pooling_layer -1`), one request of every text from BertClient; our HTTP
  `/v1/embeddings`, requests of 32 from 8 concurrent clients; the raw onnxruntime
  session on our fp32 and int8 graphs, on the server's batches (the engine's floor);
  the whole server on OpenVINO (`-runtime openvino`: bfloat16 where the CPU has
  AVX512_BF16 or AMX, else f32) and its raw runner;
- peers, in their own venv (made by this script; never bert-serving's dependencies):
  sentence-transformers on torch and with `backend="onnx"` (fp32, and optimum's dynamic
  int8 export), infinity-emb's optimum engine in process (fp32, int8) and its HTTP
  `/embeddings` (requests of 32, 8 concurrent clients), fastembed.

Rounds are interleaved; medians and our ratios to the best peer of each kind are
printed, with each contender's worst-row cosine to transformers (torch CPU, fp32),
and the raw session's achieved GFLOP/s per core next to this CPU's peak.

Usage: python scripts/benchmark_peers.py [--texts 1500] [--rounds 4] [--peers-venv DIR]
       [--kinds fp32 int8 HTTP]

`--kinds HTTP` runs only the HTTP pair (with our whole server fp32, for the gateway's
share): about 10 minutes on 2 cores (4 rounds) instead of 30. `--kinds openvino` alone
needs no peers: OpenVINO against our onnxruntime fp32, server and raw (a few minutes).
The header names the CPU and its flags (AVX2, AVX-512, VNNI, AVX512_BF16, AMX).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from benchmark_compare import cosine_rows, raw_session_runner, server_runner  # noqa: E402
from benchmark_engine import make_texts, server_batches  # noqa: E402
from reference import TransformersReference  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from server_process import ServerProcess, free_port  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.proto.inputs import PAIR_SEPARATOR  # noqa: E402
from bert_serving.server.convert.optimize import INT8_ACCURACY_LEVEL  # noqa: E402
from bert_serving.server.model.cpu_features import (  # noqa: E402
    cpu_flags,
    cpu_model_name,
    describe_cpu_flags,
    has_bf16,
)
from bert_serving.server.model.default_model import default_model_dir  # noqa: E402
from bert_serving.server.model.engine import Engine, EngineOptions, build_tokenizer  # noqa: E402
from bert_serving.server.model.pooling import PoolingSpec  # noqa: E402

MAX_SEQ_LEN = 128
THREADS = 2
HTTP_BATCH = 32
HTTP_CLIENTS = 8
ALONE_TEXTS = 24
PEER_PINS = [
    "sentence-transformers[onnx]==5.7.*", "transformers==4.57.*", "optimum-onnx==0.1.*",
    "optimum==2.1.*", "infinity-emb[server,optimum]==0.0.78", "fastembed",
    "torch==2.13.0",
]
Runner = Callable[[], np.ndarray]


def ensure_peers_venv(venv: Path) -> Path:
    """The peers' venv, made on first use; the same onnxruntime as ours, so the engine is equal."""
    python = venv / "bin" / "python"
    if not python.exists():
        import onnxruntime

        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PINS,
                        f"onnxruntime=={onnxruntime.__version__}"], check=True)
    return python


def peer_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(THREADS),
            "TOKENIZERS_PARALLELISM": "true", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}


def prepare_peer_model(python: Path, work: Path) -> Path:
    """A copy of the MiniLM with optimum's ONNX export (fp32 and int8) at its root."""
    folder = work / "peer-model"
    shutil.copytree(default_model_dir(), folder)
    subprocess.run([str(python), str(ROOT / "scripts" / "peer_worker.py"), "export", "--model",
                    str(folder), "--out", str(folder), "--int8"], check=True, env=peer_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return folder


class PeerProcess:
    """One peer library in its own process (peer_worker.py), run on command."""

    def __init__(self, python: Path, contender: str, model: Path, texts_path: Path,
                 int8: bool, log: Path) -> None:
        self.out = texts_path.with_name(f"{contender}{'-int8' if int8 else ''}.npy")
        args = [str(python), str(ROOT / "scripts" / "peer_worker.py"), contender, "--model",
                str(model), "--texts", str(texts_path), "--out", str(self.out),
                "--threads", str(THREADS), *(["--int8"] if int8 else [])]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log.open("a"), text=True, env=peer_env())
        self._wait_for("ready")

    def _wait_for(self, word: str) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip() == word:
                return
        raise RuntimeError(f"{self.process.args[2]} exited before {word!r}; see its log")

    def __call__(self) -> np.ndarray:
        return self._command("run")

    def alone(self, count: int) -> np.ndarray:
        """The first `count` texts' vectors, each text in a call of its own."""
        return self._command(f"alone {count}")

    def _command(self, command: str) -> np.ndarray:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n")
        self.process.stdin.flush()
        self._wait_for("done")
        return np.load(self.out)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@contextmanager
def infinity_http(python: Path, model: Path, log: Path) -> Iterator[str]:
    """infinity's HTTP server on the fp32 ONNX graph (`--model-id .` in the model folder)."""
    import httpx

    port = free_port()
    args = [str(python.parent / "infinity_emb"), "v2", "--model-id", ".", "--engine",
            "optimum", "--device", "cpu", "--pooling-method", "mean", "--batch-size",
            str(HTTP_BATCH), "--onnx-do-not-prefer-quantized", "--no-model-warmup",
            "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(args, cwd=model, env=peer_env(), stdout=log.open("a"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:  # wait for the condition: /health answers
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"infinity did not start; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        process.kill()
        process.wait()


def http_runner(url: str, texts: list[str], model: str) -> Runner:
    """Requests of 32 texts from 8 concurrent clients; vectors back in text order."""
    import httpx

    chunks = [texts[i:i + HTTP_BATCH] for i in range(0, len(texts), HTTP_BATCH)]
    client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=HTTP_CLIENTS))

    def post(chunk: list[str]) -> list[list[float]]:
        reply = client.post(url, json={"model": model, "input": chunk})
        reply.raise_for_status()
        return [row["embedding"] for row in reply.json()["data"]]

    def run() -> np.ndarray:
        with ThreadPoolExecutor(HTTP_CLIENTS) as pool:
            return np.array([row for rows in pool.map(post, chunks) for row in rows], np.float32)

    return run


def fitting_texts(engine: Engine, count: int) -> list[str]:
    """Mixed single texts, each cut by words to at most MAX_SEQ_LEN tokens: nobody truncates.

    Measured untruncated: the engine's own tokenizer counts after its truncation, so it
    never reports more than MAX_SEQ_LEN. The held-out pool's ``|||`` is dropped: we would
    make a pair of it (truncated ``longest_first``, which transformers 5's Rust-backed
    ``BertTokenizer`` splits differently from Google's on ties) where the peers embed it
    as text, so nobody would be computing the same thing.
    """
    untruncated = build_tokenizer(engine.graph, EngineOptions(max_seq_len=None))
    texts = []
    for text in make_texts(count, seed=1):
        words = [word for word in text.split() if word != PAIR_SEPARATOR]
        while untruncated.lengths([" ".join(words)])[0] > MAX_SEQ_LEN:
            words = words[: len(words) * 9 // 10]
        texts.append(" ".join(words))
    return texts


def encoder_gflop(engine: Engine, shapes: list[tuple[int, int]]) -> float:
    """The encoder's arithmetic on batches of (rows, seq) tokens, 2 FLOP per multiply-add.

    Per token and layer: the linear layers' 12 h^2 multiply-adds (Q, K, V and the
    attention output, 4 h^2; the FFN's two 4h-wide layers, 8 h^2), i.e. 2 x params;
    plus attention's seq-dependent 2 seq h (Q.K^T, then weights x V). Embedding
    lookups, LayerNorm, softmax, GELU and pooling are left out (elementwise, < 2%).
    """
    meta = engine.graph.metadata
    hidden, layers = meta.hidden_size, meta.num_hidden_layers
    flop = sum(rows * seq * (2 * 12 * hidden * hidden + 2 * 2 * seq * hidden)
               for rows, seq in shapes)
    return layers * flop / 1e9


def work_gflop(engine: Engine, texts: list[str]) -> tuple[float, float]:
    """(on the server's padded batches: what the session computes, on real lengths: the work)."""
    padded = [tokens.input_ids.shape for _, tokens in server_batches(engine, texts)]
    real = [(1, length) for length in engine.tokenizer.lengths(texts)]
    return encoder_gflop(engine, padded), encoder_gflop(engine, real)  # type: ignore[arg-type]


def cpu_peaks() -> tuple[float, float, float, str]:
    """This CPU's per-core peaks (fp32 FMA GFLOP/s, int8 GOP/s, bf16 GFLOP/s) from its flags
    and clock.

    Two 256-bit (or 512-bit) FMA units per core, 2 FLOP per FMA lane. int8: VNNI's
    vpdpbusd does 4 multiply-adds per 32-bit lane, 4x fp32; without VNNI the int8
    kernels need vpmaddubsw + vpmaddwd (2 per 16-bit lane, then a widening step), 2x.
    bf16: AVX512_BF16's vdpbf16ps does 2 per 32-bit lane, 2x fp32 (AMX's tiles, far more,
    are not modelled: on AMX the line is against the AVX512_BF16 peak); none: fp32's.
    """
    flags = cpu_flags()
    info = Path("/proc/cpuinfo").read_text()
    mhz = float(next(line for line in info.splitlines() if "MHz" in line).split(":")[1])
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fp32 = 2 * 2 * lanes * mhz / 1e3
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    int8 = fp32 * (4 if vnni else 2)
    bf16 = fp32 * (2 if has_bf16(flags) else 1)
    label = (f"{mhz:.0f} MHz, {'AVX-512' if lanes == 16 else 'AVX2'}, "
             f"{'VNNI' if vnni else 'no VNNI: no int8 dot-product instruction'}")
    return fp32, int8, bf16, label


def print_metal(medians: dict[str, float], engine: Engine, texts: list[str]) -> None:
    """Achieved GFLOP/s per core against the cores' peak; what the server adds on top."""
    padded, real = work_gflop(engine, texts)
    fp32_peak, int8_peak, bf16_peak, label = cpu_peaks()
    print(f"encoder work: {real:.0f} GFLOP on real lengths, {padded:.0f} on the server's "
          f"padded batches ({100 * (padded / real - 1):.1f}% padding)")
    print(f"peak per core ({label}): fp32 FMA {fp32_peak:.0f} GFLOP/s, int8 {int8_peak:.0f} "
          f"GOP/s, bf16 {bf16_peak:.0f} GFLOP/s")
    # our int8 multiplies in int8 only at accuracy_level 4; at 1 its arithmetic is fp32
    int8_arithmetic = INT8_ACCURACY_LEVEL == 4
    rows = [("raw onnxruntime fp32", "bert-serving fp32 (server)", fp32_peak, "fp32 FMA"),
            ("raw onnxruntime int8", "bert-serving int8 (server)",
             int8_peak if int8_arithmetic else fp32_peak,
             "int8" if int8_arithmetic else "fp32 FMA"),
            (OPENVINO_RAW, OPENVINO_SERVER, bf16_peak if has_bf16(cpu_flags()) else fp32_peak,
             "bf16" if has_bf16(cpu_flags()) else "fp32 FMA")]
    for raw_name, server_name, peak, kind in rows:
        if raw_name not in medians:
            continue
        raw, server = medians[raw_name], medians[server_name]
        rate = padded / raw / THREADS
        unit = "GOP/s" if kind == "int8" else "GFLOP/s"
        print(f"{raw_name}: {rate:.1f} {unit} per core = {100 * rate / peak:.0f}% "
              f"of the {kind} peak; whole server "
              f"{real / server / THREADS:.1f} useful per core, the pipeline's share of its "
              f"time {100 * (1 - raw / server):+.1f}%")


def reference_vectors(texts: list[str]) -> np.ndarray:
    reference = TransformersReference(default_model_dir())
    parts = [reference.encode(texts[i:i + 64], layers=(-1,), max_seq_len=MAX_SEQ_LEN)
             for i in range(0, len(texts), 64)]
    return np.concatenate(parts)


def print_table(medians: dict[str, float], outputs: dict[str, np.ndarray],
                expected: np.ndarray, count: int, tokens: int) -> None:
    print(f"{'contender':40} {'sent/s':>8} {'tokens/s':>9} {'cos to transformers':>20}")
    for name, median in medians.items():
        cosine = cosine_rows(outputs[name], expected)
        print(f"{name:40} {count / median:8.1f} {tokens / median:9.0f} "
              f"{cosine.min():9.4f} min {cosine.mean():.4f} mean")


OPENVINO_SERVER = "bert-serving openvino (server)"
OPENVINO_RAW = "raw openvino"
KINDS = {"fp32": ("bert-serving fp32 (server)", "peer fp32"),
         "int8": ("bert-serving int8 (server)", "peer int8"),
         "HTTP": ("bert-serving HTTP /v1/embeddings", "peer HTTP"),
         "openvino": (OPENVINO_SERVER, "peer")}
"""Each kind of comparison: our contender, and the tag of the peers it is held against
(OpenVINO's: every peer in the run, their int8 included)."""


def print_ratios(medians: dict[str, float], kinds: list[str]) -> None:
    """Our rate over the best peer of each kind (median seconds: lower is faster)."""
    for kind in kinds:
        ours, peer_tag = KINDS[kind]
        peers = {n: t for n, t in medians.items() if n.startswith(peer_tag)}
        if kind == "openvino":
            fp32 = medians["bert-serving fp32 (server)"] / medians[ours]
            raw = medians["raw onnxruntime fp32"] / medians[OPENVINO_RAW]
            print(f"openvino: ours {fp32:.2f}x our onnxruntime fp32 server "
                  f"(raw runners: {raw:.2f}x)")
        if not peers:
            continue
        best = min(peers, key=peers.__getitem__)
        ratio = peers[best] / medians[ours]
        print(f"{kind}: ours {ratio:.2f}x the best peer ({best.split(': ')[1]})")
    if "HTTP" in kinds:
        share = medians["bert-serving fp32 (server)"] / medians[KINDS["HTTP"][0]]
        print(f"our HTTP runs at {share:.2f} of our whole server's rate")


def batch_dependence(alone: dict[str, Runner], outputs: dict[str, np.ndarray]) -> list[str]:
    """Each int8 contender's first ALONE_TEXTS vectors, each text sent alone, against the
    same rows from the timed runs (where they shared batches with the other texts)."""
    lines = [f"int8, a text alone vs inside the batch, worst cosine of the first {ALONE_TEXTS} "
             "texts (1.0: a text's vector is its own):"]
    for name, run in alone.items():
        cosine = cosine_rows(run(), outputs[name][:ALONE_TEXTS])
        lines.append(f"  {name:38} {cosine.min():.6f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--peers-venv", type=Path, default=ROOT / ".cache" / "peers-venv")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS),
                        help="the comparisons to run (default: all)")
    args = parser.parse_args()
    kinds = [kind for kind in KINDS if kind in args.kinds]
    with_peers = kinds != ["openvino"]
    python = ensure_peers_venv(args.peers_venv.resolve()) if with_peers else Path()
    work = scratch_dir("peers")
    log = Path(tempfile.gettempdir()) / "bert-serving-peers.log"  # kept: errors point to it
    log.write_text("")  # this run's alone
    options = dict(graph_tmp_dir=work / "graphs", max_seq_len=MAX_SEQ_LEN,
                   pooling=PoolingSpec(layers=(-1,)), intra_op_threads=THREADS)
    fp32 = Engine.load(EngineOptions(**options))  # type: ignore[arg-type]
    texts = fitting_texts(fp32, args.texts)
    tokens = fp32.tokenize(texts).num_real_tokens
    texts_path = work / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    peer_model = prepare_peer_model(python, work) if with_peers else work
    flags = ["-num_worker", "1", "-max_seq_len", str(MAX_SEQ_LEN), "-pooling_layer", "-1",
             "-intra_op_threads", str(THREADS)]
    with ExitStack() as stack:

        def peer(name: str, int8: bool = False) -> PeerProcess:
            process = PeerProcess(python, name, peer_model, texts_path, int8, log)
            stack.callback(process.close)
            return process

        ours_fp32 = stack.enter_context(ServerProcess(flags, work / "graphs", http=True))
        contenders: dict[str, Runner] = {
            "bert-serving fp32 (server)": server_runner(ours_fp32, texts)}
        alone: dict[str, Runner] = {}
        if "fp32" in kinds:
            contenders = {
                "raw onnxruntime fp32": raw_session_runner(fp32, texts), **contenders,
                "peer fp32: sentence-transformers torch": peer("sentence-transformers-torch"),
                "peer fp32: sentence-transformers onnx": peer("sentence-transformers-onnx"),
                "peer fp32: infinity optimum": peer("infinity-optimum"),
                "peer fp32: fastembed": peer("fastembed")}
        if "int8" in kinds:
            int8 = Engine.load(EngineOptions(**options, dtype="int8"))  # type: ignore[arg-type]
            ours_int8 = stack.enter_context(ServerProcess([*flags, "-int8"], work / "graphs"))
            st_int8 = peer("sentence-transformers-onnx", True)
            infinity_int8 = peer("infinity-optimum", True)
            contenders.update({
                "raw onnxruntime int8": raw_session_runner(int8, texts),
                "bert-serving int8 (server)": server_runner(ours_int8, texts),
                "peer int8: sentence-transformers onnx": st_int8,
                "peer int8: infinity optimum": infinity_int8})
            alone = {
                "bert-serving int8 (server)": lambda: np.concatenate(
                    [server_runner(ours_int8, [text])() for text in texts[:ALONE_TEXTS]]),
                "peer int8: sentence-transformers onnx": lambda: st_int8.alone(ALONE_TEXTS),
                "peer int8: infinity optimum": lambda: infinity_int8.alone(ALONE_TEXTS)}
        if "openvino" in kinds:
            openvino = Engine.load(EngineOptions(**options, runtime="openvino"))
            ours_openvino = stack.enter_context(ServerProcess([*flags, "-runtime", "openvino"],
                                                              work / "graphs"))
            contenders.update({
                "raw onnxruntime fp32": raw_session_runner(fp32, texts),
                OPENVINO_RAW: raw_session_runner(openvino, texts, own_runner=True),
                OPENVINO_SERVER: server_runner(ours_openvino, texts)})
            precision = f"openvino {openvino.runner.precision}"
        if "HTTP" in kinds:
            infinity_url = stack.enter_context(infinity_http(python, peer_model, log))
            contenders.update({
                "bert-serving HTTP /v1/embeddings": http_runner(
                    f"{ours_fp32.http_url}/v1/embeddings", texts, "bert"),
                "peer HTTP: infinity /embeddings": http_runner(f"{infinity_url}/embeddings",
                                                               texts, ".")})
        medians, outputs = interleaved_medians(contenders, args.rounds)
        dependence = batch_dependence(alone, outputs) if alone else []
    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} cores visible; "
          f"{describe_cpu_flags(cpu_flags())}")
    if "openvino" in kinds:
        print(f"openvino ran: {precision} (-runtime openvino, -dtype auto)")
    print(f"{len(texts)} texts (4-120 words, <= {MAX_SEQ_LEN} tokens), {tokens} real tokens, "
          f"{THREADS} threads each, last-layer mean, median of {args.rounds} interleaved rounds")
    print_table(medians, outputs, reference_vectors(texts), len(texts), tokens)
    print_ratios(medians, kinds)
    if dependence:
        print("\n".join(dependence))
    print_metal(medians, fp32, texts)


if __name__ == "__main__":
    main()
