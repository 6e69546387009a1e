"""Who may talk to the ZeroMQ ports: an IP allow-list and optional CURVE keys, via ZAP.

ZeroMQ asks a ZAP handler (RFC 27) about every new connection before a single
message of it is read. Ours admits a connection when its source address is in
`-allow_ip` (CIDRs; no list: every address) and, with `-curve_secret_key`, the
client completed a CURVE handshake with our key. A refused peer is dropped by
libzmq: its messages never reach the ventilator and it receives nothing from
the sink. The unmodified 1.10.0 client needs nothing for the allow-list; CURVE
needs our client (`BertClient(curve_server_key=...)`).

Only the public sockets carry the `bert-serving` ZAP domain; the internal
sockets (workers, on 127.0.0.1) are let through without a check.

Usage::

    policy = AccessPolicy(allow=parse_allow_ip("10.0.0.0/8,127.0.0.1"))
    authenticator = start_authenticator(context, policy)   # before binding
    policy.secure_server_socket(socket)
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from .errors import ConfigError

__all__ = [
    "ZAP_DOMAIN",
    "AccessPolicy",
    "IpNetwork",
    "load_curve_secret_key",
    "parse_allow_ip",
    "peer_address",
    "start_authenticator",
]

log = logging.getLogger(__name__)
ZAP_DOMAIN = "bert-serving"
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow_ip(text: str) -> tuple[IpNetwork, ...]:
    """`10.0.0.0/8,127.0.0.1` -> networks (a bare address is a /32 or /128)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"-allow_ip: {item!r} is not an IP address or CIDR "
                              "(e.g. 10.0.0.0/8,127.0.0.1)") from None
    return tuple(networks)


def load_curve_secret_key(path: Path) -> bytes:
    """The Z85 secret key from a file of zmq.auth.create_certificates (`*.key_secret`)."""
    try:
        _public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"-curve_secret_key {path}: cannot read a CURVE secret key ({error}); "
                          "make one with zmq.auth.create_certificates(DIR, NAME)") from None
    if secret is None:
        raise ConfigError(f"-curve_secret_key {path} holds a public key only: pass the "
                          "`.key_secret` file")
    return secret


def _admitted(address: str, networks: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


@dataclass(frozen=True)
class AccessPolicy:
    """-allow_ip and -curve_secret_key, and what follows from them."""

    allow: tuple[IpNetwork, ...] = ()
    curve_secret_key: bytes | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.allow) or self.curve_secret_key is not None

    @property
    def curve_public_key(self) -> bytes | None:
        if self.curve_secret_key is None:
            return None
        return zmq.curve_public(self.curve_secret_key)

    def admits(self, address: str) -> bool:
        """Whether a connection from `address` passes the allow-list."""
        return not self.allow or _admitted(address, self.allow)

    def may_terminate(self, peer: str | None) -> bool:
        """TERMINATION: from an admitted address or over CURVE; with neither, loopback only."""
        if self.enabled:
            return True  # ZAP let this peer in: it is admitted, and keyed under CURVE
        return peer is not None and _admitted(peer, (ipaddress.ip_network("127.0.0.0/8"),
                                                     ipaddress.ip_network("::1/128")))

    def secure_server_socket(self, socket: zmq.Socket[Any]) -> None:
        """Put a public socket under ZAP (and CURVE); call before bind."""
        if not self.enabled:
            return
        socket.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
        if self.curve_secret_key is not None:
            socket.setsockopt(zmq.CURVE_SERVER, 1)
            socket.setsockopt(zmq.CURVE_SECRETKEY, self.curve_secret_key)


class _PolicyAuthenticator(ThreadAuthenticator):
    """pyzmq's ZAP thread with CIDR matching in front of its own mechanism checks."""

    def __init__(self, context: zmq.Context[Any], policy: AccessPolicy) -> None:
        super().__init__(context, log=log.getChild("zap"))
        self.policy = policy

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        if len(msg) >= 6 and msg[2].decode("utf-8", "replace") == ZAP_DOMAIN:
            address = msg[3].decode("ascii", "replace")
            if not self.policy.admits(address):
                log.warning("connection from %s refused: not in -allow_ip", address)
                self._send_zap_reply(msg[1], b"400", b"Address not allowed")
                return
        await super().handle_zap_message(msg)


def start_authenticator(context: zmq.Context[Any],
                        policy: AccessPolicy) -> ThreadAuthenticator | None:
    """The ZAP handler for `context`, running, or None when nothing is restricted."""
    if not policy.enabled:
        return None
    if policy.curve_secret_key is not None and not zmq.has("curve"):
        raise ConfigError("-curve_secret_key: this libzmq was built without CURVE support")
    authenticator = _PolicyAuthenticator(context, policy)
    authenticator.start()
    if policy.curve_secret_key is not None:
        # Any client key: knowing the server's public key is what admits a client.
        authenticator.configure_curve(domain=ZAP_DOMAIN, location=zmq.auth.CURVE_ALLOW_ANY)
    return authenticator


def peer_address(frame: zmq.Frame) -> str | None:
    """The source IP of a message's connection (libzmq's Peer-Address), if known."""
    try:
        return str(frame.get("Peer-Address"))
    except zmq.ZMQError:
        return None
