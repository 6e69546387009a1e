"""`bert-serving-start`; `terminate` is re-exported from `bert_serving.commands.terminate`."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from bert_serving.commands.terminate import main as terminate

from .config import ServerConfig, parse_server_config
from .errors import BertServingError
from .server import BertServer

__all__ = ["start", "terminate"]

log = logging.getLogger("bert_serving")


def _config_table(config: ServerConfig) -> str:
    """The start banner: every setting, by flag name, as a person reads them."""
    rows = config.as_banner_dict()
    width = max(len(k) for k in rows)
    return "\n".join(f"  {key:>{width}} = {value}" for key, value in rows.items())


def _ready_line(server: BertServer) -> str:
    config = server.config
    metadata = server.graph.metadata
    shape = "(N, max_seq_len, %d)" if server.served.token_level else "(N, %d)"
    dtype = "float16" if config.fp16 else "float32"
    http = f" http=:{config.http_port}" if config.http_port else ""
    model = config.engine.model_dir or "all-MiniLM-L6-v2 (embedded default)"
    return (
        f"bert-serving ready: requests tcp://{config.bind_ip}:{config.port} replies "
        f"tcp://{config.bind_ip}:{config.port_out}{http} model={model} "
        f"({server.running}) workers={','.join(server.devices)} "
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
    if server.is_ready():  # not when shutdown was asked for while the workers loaded
        print(_ready_line(server), flush=True)
    return server.serve_forever()
