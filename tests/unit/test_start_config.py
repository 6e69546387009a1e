"""What `bert-serving-start` says about its own flags before it opens anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bert_serving.server.cli import _config_table
from bert_serving.server.config import parse_server_config
from bert_serving.server.errors import ConfigError


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


def test_embedding_ranges_are_loaded_and_checked_once_at_start(tmp_path: Path) -> None:
    """The array reaches the config (which the gateway and the sink take it from); a file
    that is not [2, dim] stops the start, naming the flag."""
    ranges = np.stack([np.full(4, -0.5), np.full(4, 0.5)])
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, ranges)
    np.save(bad, ranges[0])
    assert parse_server_config([]).loaded_ranges is None
    loaded = parse_server_config(["-embedding_ranges", str(good)]).loaded_ranges
    assert loaded is not None and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, ranges)
    with pytest.raises(ConfigError, match=r"-embedding_ranges: .*bad.npy: holds an array of "
                                          r"shape \[4\]"):
        parse_server_config(["-embedding_ranges", str(bad)])
