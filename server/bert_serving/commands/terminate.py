"""`bert-serving-terminate`: ask a server to shut down and wait until it has.

A client of the control protocol only (pyzmq and `bert_serving.proto`), so it
works on a client-only install, as the original's did.

Usage::

    bert-serving-terminate -port 5555
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence

import zmq

from bert_serving.proto import Command, encode_request

from .environment import installed_version

__all__ = ["build_parser", "main", "port_open"]


def port_open(ip: str, port: int) -> bool:
    """True when something accepts TCP connections there: the instant 'is a server up?'."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((ip, port)) == 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bert-serving-terminate",
                                     description="Shut down a running bert-serving server.")
    parser.add_argument("-ip", "--ip", default="localhost", help="server address")
    parser.add_argument("-port", "--port", "-port_in", type=int, default=5555,
                        help="the server's request port")
    parser.add_argument("-timeout", "--timeout", type=int, default=5000,
                        help="milliseconds to wait for the server to stop")
    parser.add_argument("-curve_server_key", "--curve_server_key", default=None,
                        help="the server's CURVE public key (Z85), for a -curve_secret_key server")
    parser.add_argument("-version", "--version", action="version",
                        version=f"bert-serving {installed_version()}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not port_open(args.ip, args.port):
        print(f"bert-serving-terminate: no server is listening on {args.ip}:{args.port}",
              file=sys.stderr)
        return 1
    context = zmq.Context()
    sender = context.socket(zmq.PUSH)
    sender.setsockopt(zmq.LINGER, args.timeout)
    if args.curve_server_key:
        public, secret = zmq.curve_keypair()
        sender.setsockopt(zmq.CURVE_SERVERKEY, args.curve_server_key.encode("ascii"))
        sender.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sender.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sender.connect(f"tcp://{args.ip}:{args.port}")
    sender.send_multipart(encode_request(b"0", 0, Command.TERMINATION))
    sender.close()
    context.term()
    deadline = time.monotonic() + args.timeout / 1000
    while time.monotonic() < deadline:
        if not port_open(args.ip, args.port):
            print(f"server at {args.ip}:{args.port} stopped")
            return 0
        time.sleep(0.1)  # polling the port: the server sends no goodbye to wait on
    print(f"bert-serving-terminate: server at {args.ip}:{args.port} did not stop within "
          f"{args.timeout} ms", file=sys.stderr)
    return 1
