"""What `bert-serving-start` says about its own flags before it opens anything."""

from __future__ import annotations

import pytest

from bert_serving.server.cli import _config_table
from bert_serving.server.config import parse_server_config


@pytest.mark.parametrize(("flags", "message"), [
    (["-port", "7000", "-port_out", "7000"], "-port and -port_out are both 7000"),
    (["-port_out", "7001", "-http_port", "7001"], "-port_out and -http_port are both 7001"),
    (["-port", "7002", "-http_port", "7002"], "-port and -http_port are both 7002"),
])
def test_one_port_for_two_sockets_is_a_usage_error(
        flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_server_config(flags)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_banner_shows_every_setting_by_name() -> None:
    config = parse_server_config(["-bind_ip", "127.0.0.1", "-pooling_strategy", "REDUCE_MAX",
                                  "-api_key", "s3cret", "-intra_op_threads", "3"])
    banner = dict(line.strip().split(" = ", 1) for line in _config_table(config).splitlines())
    assert banner["pooling_strategy"] == "REDUCE_MAX"  # not its wire integer
    assert banner["bind_ip"] == "127.0.0.1"
    assert banner["intra_op_threads"] == "3"
    assert banner["max_request_texts"] == "100000" and banner["job_timeout"] == "600.0"
    assert banner["api_key"] == "(set)" and "s3cret" not in _config_table(config)
