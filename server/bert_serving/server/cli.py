"""Command-line entry points: `bert-serving-start` and `bert-serving-terminate`."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from types import FrameType

import zmq

from bert_serving.proto import Command, encode_request

from .config import ServerConfig, parse_server_config
from .errors import BertServingError
from .server import BertServer

__all__ = ["start", "terminate"]

log = logging.getLogger("bert_serving")


def _config_table(config: ServerConfig) -> str:
    rows = config.as_wire_dict()
    width = max(len(k) for k in rows)
    return "\n".join(f"  {key:>{width}} = {value}" for key, value in rows.items())


def _ready_line(server: BertServer) -> str:
    config = server.config
    metadata = server.graph.metadata
    shape = "(N, max_seq_len, %d)" if metadata.pooling.strategy.name == "NONE" else "(N, %d)"
    dtype = "float16" if config.fp16 else "float32"
    http = f" http=:{config.http_port}" if config.http_port else ""
    model = config.engine.model_dir or "all-MiniLM-L6-v2 (embedded default)"
    return (
        f"bert-serving ready: requests tcp://{config.bind_ip}:{config.port} replies "
        f"tcp://{config.bind_ip}:{config.port_out}{http} model={model} "
        f"({metadata.precision}) workers={','.join(server.devices)} "
        f"output={shape % metadata.output_width} {dtype}"
    )


def _install_signal_handlers(server: BertServer) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        server.request_shutdown()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def start(argv: Sequence[str] | None = None) -> int:
    """`bert-serving-start`: serve until SIGINT, SIGTERM or `bert-serving-terminate`."""
    try:
        config = parse_server_config(argv)
    except BertServingError as error:  # a flag the model folder cannot honour (MODEL, ...)
        print(f"bert-serving-start: {error}", file=sys.stderr, flush=True)
        return 1
    logging.basicConfig(level=logging.DEBUG if config.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print("bert-serving configuration:\n" + _config_table(config), flush=True)
    server = BertServer(config)
    _install_signal_handlers(server)
    try:
        server.start()
    except BertServingError as error:
        print(f"bert-serving-start: {error}", file=sys.stderr, flush=True)
        server.stop()
        return 1
    print(_ready_line(server), flush=True)
    server.serve_forever()
    return 0


def _port_open(ip: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((ip, port)) == 0


def terminate(argv: Sequence[str] | None = None) -> int:
    """`bert-serving-terminate`: ask a server to shut down and wait until it has."""
    parser = argparse.ArgumentParser(prog="bert-serving-terminate",
                                     description="Shut down a running bert-serving server.")
    parser.add_argument("-ip", "--ip", default="localhost", help="server address")
    parser.add_argument("-port", "--port", "-port_in", type=int, default=5555,
                        help="the server's request port")
    parser.add_argument("-timeout", "--timeout", type=int, default=5000,
                        help="milliseconds to wait for the server to stop")
    args = parser.parse_args(argv)
    if not _port_open(args.ip, args.port):
        print(f"no server is listening on {args.ip}:{args.port}", file=sys.stderr)
        return 1
    context = zmq.Context()
    sender = context.socket(zmq.PUSH)
    sender.setsockopt(zmq.LINGER, args.timeout)
    sender.connect(f"tcp://{args.ip}:{args.port}")
    sender.send_multipart(encode_request(b"0", 0, Command.TERMINATION))
    sender.close()
    context.term()
    deadline = time.monotonic() + args.timeout / 1000
    while time.monotonic() < deadline:
        if not _port_open(args.ip, args.port):
            print(f"server at {args.ip}:{args.port} stopped")
            return 0
        time.sleep(0.1)
    print(f"server at {args.ip}:{args.port} did not stop within {args.timeout} ms",
          file=sys.stderr)
    return 1
