"""Where the whole server's time goes, sampled with py-spy while it serves the comparison load.

Starts `bert-serving-start -cpu -num_worker 1 -max_seq_len 128` (as
`benchmark_compare.py` does), attaches `py-spy record --subprocesses` to it, sends
the same 1,500 texts of 4-120 words a few times from BertClient, and prints how
the sampled time splits between processes, threads and the functions on top of
each stack. Native frames (`--native`) show what the onnxruntime call does
inside; without them, a worker's forward pass reads as `OnnxRunner.embed`.

py-spy needs ptrace rights on the server (root, or `kernel.yama.ptrace_scope=0`);
it is a profiling tool, not a dependency: `pip install py-spy`.

`--model DIR` profiles another BERT folder: a tiny random one
(`scripts/make_random_bert.py`) makes the forward pass nearly free, as a GPU
does, so what is left is the pipeline's own cost per text.

Usage: python scripts/profile_server.py [--texts 1500] [--requests 3] [--int8] [--native]
       [--model DIR]
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]
from benchmark_engine import make_texts  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from bert_serving.client import BertClient  # noqa: E402

_PROCESS = re.compile(r'process \d+:"(?P<cmd>[^"]*)";')  # its command line may hold ";"
_THREAD = re.compile(r"^thread \(0x[0-9A-F]+\)$", re.IGNORECASE)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
Stack = tuple[str, ...]
_RATE = 100  # samples per second and thread
_BOOTSTRAP_MODULES = {"threading", "spawn", "process", "<string>"}
_WAITING_CALLS = {"poll", "wait", "result", "recv", "recv_multipart", "get"}
_WAITING_FRAMES = {"garbage.GarbageCollectorThread.run",  # pyzmq's zero-copy bookkeeping
                   "thread._worker"}  # an executor thread waiting for work


def role_of(command: str) -> str:
    """`bert-serving-start ...` is the server; the spawn children are its workers."""
    if "multiprocessing" in command or "spawn_main" in command:
        return "worker process"
    return "server process"


def short_frame(frame: str) -> str:
    """`embed (bert_serving/server/model/runtime.py:80)` -> `runtime.embed`."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    module = Path(match["file"]).stem
    return f"{module}.{match['func']}"


def thread_name(stack: Stack) -> str:
    """Name a thread by its first frame under the interpreter's and multiprocessing's bootstrap."""
    for frame in stack:
        short = short_frame(frame)
        if short.split(".")[0] not in _BOOTSTRAP_MODULES:
            return short
    return "?"


def is_waiting(leaf: str) -> bool:
    """Blocked in a poll, queue or lock: py-spy's idle test misses waits inside C calls."""
    return leaf.rsplit(".", 1)[-1] in _WAITING_CALLS or leaf in _WAITING_FRAMES


def parse(raw: Path) -> list[tuple[str, Stack, int]]:
    """py-spy's raw (collapsed) format: `frame;frame;... count`, root first."""
    samples = []
    for line in raw.read_text().splitlines():
        frames_text, _, count = line.rpartition(" ")
        command = ""
        while match := _PROCESS.match(frames_text):  # the parent, then the child
            command, frames_text = match["cmd"], frames_text[match.end():]
        frames = frames_text.split(";")
        if frames and _THREAD.match(frames[0]):
            frames = frames[1:]
        samples.append((role_of(command), tuple(frames), int(count)))
    return samples


def report(samples: list[tuple[str, Stack, int]], wall_samples: float, per_thread: int) -> None:
    """Per thread: the share of wall time it worked, and the calls it worked in."""
    leaves: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    for role, stack, count in samples:
        leaf = short_frame(stack[-1]) if stack else "?"
        leaves[role, thread_name(stack)][leaf] += count
    print(f"{'process / thread':60} {'share of wall time':>18}")
    for (role, name), counter in sorted(leaves.items()):
        working = {leaf: n for leaf, n in counter.items() if not is_waiting(leaf)}
        waiting = sum(counter.values()) - sum(working.values())
        print(f"{role + ' / ' + name:60} {sum(working.values()) / wall_samples:17.1%}"
              f"  (waiting {waiting / wall_samples:.1%})")
        for leaf, count in collections.Counter(working).most_common(per_thread):
            print(f"    {leaf:56} {count / wall_samples:17.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--native", action="store_true", help="sample native frames too")
    parser.add_argument("--top", type=int, default=6, help="calls shown per thread")
    parser.add_argument("--model", type=Path, help="BERT folder; default: the embedded MiniLM")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    texts = make_texts(args.texts, seed=1)
    flags = ["-num_worker", "1", "-max_seq_len", "128", "-intra_op_threads", "2"]
    workdir = scratch_dir("profile")
    raw = workdir / "profile.txt"
    flags += ["-int8"] if args.int8 else []
    flags += ["-model_dir", str(args.model)] if args.model else []
    with ServerProcess(flags, workdir / "cache") as server:
        client = BertClient(port=server.port, port_out=server.port_out, check_length=False,
                            chunk_size=len(texts), timeout=600_000)
        client.encode(texts)  # warm-up, unsampled
        command = [py_spy, "record", "--subprocesses", "--nonblocking", "--format", "raw",
                   "--rate", str(_RATE), "--output", str(raw), "--pid", str(server.process.pid)]
        recorder = subprocess.Popen([*command, *(["--native"] if args.native else [])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches
        started = time.perf_counter()
        for _ in range(args.requests):
            client.encode(texts)
        elapsed = time.perf_counter() - started
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        _, errors = recorder.communicate(timeout=60)
        client.close()
    if not raw.exists():
        sys.exit(f"py-spy wrote no profile: {errors.decode(errors='replace')}")
    print(f"{args.requests} requests of {len(texts)} texts in {elapsed:.1f} s "
          f"({args.requests * len(texts) / elapsed:.1f} sentences/s), "
          f"{'int8' if args.int8 else 'fp32'}; raw profile: {raw}\n")
    report(parse(raw), wall_samples=elapsed * _RATE, per_thread=args.top)


if __name__ == "__main__":
    main()
