"""AccessPolicy and -allow_ip parsing alone; the sockets are in tests/integration/test_access.py."""

from __future__ import annotations

import pytest
import zmq

from bert_serving.server.access import AccessPolicy, parse_allow_ip
from bert_serving.server.config import parse_server_config
from bert_serving.server.errors import ConfigError


def test_allow_ip_takes_cidrs_and_bare_addresses() -> None:
    policy = AccessPolicy(allow=parse_allow_ip("10.0.0.0/8, 127.0.0.1,::1"))
    assert [str(n) for n in policy.allow] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    assert policy.admits("10.20.30.40") and policy.admits("127.0.0.1")
    assert policy.admits("::ffff:10.1.2.3")  # IPv4-mapped, as a dual-stack socket reports it
    assert not policy.admits("127.0.0.2") and not policy.admits("11.0.0.1")
    assert not policy.admits("not an address")


def test_a_bad_allow_ip_names_the_item() -> None:
    with pytest.raises(ConfigError, match="'10.0.0/33' is not an IP address or CIDR"):
        parse_allow_ip("127.0.0.1,10.0.0/33")
    with pytest.raises(SystemExit):
        parse_server_config(["-allow_ip", "nonsense"])


def test_no_policy_admits_everyone_but_termination_only_from_loopback() -> None:
    open_policy = AccessPolicy()
    assert open_policy.admits("192.0.2.1") and not open_policy.enabled
    assert open_policy.may_terminate("127.0.0.1") and open_policy.may_terminate("::1")
    assert not open_policy.may_terminate("192.0.2.1") and not open_policy.may_terminate(None)
    # With a policy, ZAP already refused everyone else: whoever got through may stop it.
    assert AccessPolicy(allow=parse_allow_ip("10.0.0.0/8")).may_terminate("10.0.0.1")


def test_curve_public_key_follows_from_the_secret() -> None:
    public, secret = zmq.curve_keypair()
    assert AccessPolicy(curve_secret_key=secret).curve_public_key == public


def test_the_default_binds_loopback_only() -> None:
    assert parse_server_config([]).bind_ip == "127.0.0.1"
