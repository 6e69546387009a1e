"""The config is declared once: flags, SHOW_CONFIG keys and banner rows come from its fields.

These pin what a flag change must keep: every flag's default is its field's default,
SHOW_CONFIG carries the original's keys (each once), the batch budget is decided once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bert_serving.server.config import (
    CPU_BATCH_TOKENS,
    GPU_BATCH_TOKENS,
    ServerConfig,
    batch_token_budget,
    parse_server_config,
    show_config,
)
from bert_serving.server.errors import ConfigError
from bert_serving.server.model.graph_contract import GraphMetadata, PreparedGraph
from bert_serving.server.model.pooling import PoolingSpec

FLAG_KEYS = {
    "model_dir", "tuned_model_dir", "ckpt_name", "config_name", "graph_tmp_dir", "max_seq_len",
    "cased_tokenization", "pooling_layer", "pooling_strategy", "mask_cls_sep", "normalize",
    "no_special_token", "no_position_embeddings", "dtype", "int8", "runtime",
    "show_tokens_to_client",
    "truncation", "port", "port_out", "http_port", "http_max_connect", "cors", "num_worker",
    "max_batch_size", "max_batch_tokens", "max_text_bytes", "allow_ip", "curve",
    "priority_batch_size", "cpu", "fp16", "prefetch_size", "verbose", "xla",
    "gpu_memory_fraction", "fixed_embed_length",
}
"""What SHOW_CONFIG says of the flags (the original sent its CLI arguments); no secrets."""
BANNER_ONLY = {"bind_ip", "http_max_body_bytes", "api_key", "max_request_texts",
               "max_queue_texts", "intra_op_threads", "job_timeout", "device_map",
               "embedding_ranges"}


@pytest.fixture(autouse=True)
def _no_server_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERT_SERVING_API_KEY", raising=False)
    monkeypatch.delenv("BERT_SERVING_INJECT_FAULT", raising=False)


def test_every_flag_defaults_to_its_fields_default() -> None:
    assert parse_server_config([]) == ServerConfig()


def test_show_config_has_the_flags_each_once_and_each_workers_device() -> None:
    config = parse_server_config(["-num_worker", "2", "-api_key", "s3cret", "-device_map", "1"])
    metadata = GraphMetadata(PoolingSpec(), 384, 6, 512, 384)
    graph = PreparedGraph(Path("/cache/g.onnx"), metadata, Path("/m/vocab.txt"), False)
    shown = show_config(config, ["cuda:1", "cuda:1"], graph)
    assert set(config.as_wire_dict()) == FLAG_KEYS
    assert set(shown) == FLAG_KEYS | {"device_map", "output_dim", "graph_path",
                                      "graph_precision", "inference_precision",
                                      "model_head", "id2label"}
    assert shown["model_head"] == "embedding" and shown["id2label"] == {}
    assert shown["device_map"] == ["cuda:1", "cuda:1"] and shown["num_worker"] == 2
    assert shown["pooling_strategy"] == 2 and shown["output_dim"] == 384
    assert "s3cret" not in str(shown)


def test_the_banner_shows_the_flags_and_the_settings_clients_do_not_get() -> None:
    config = parse_server_config(["-device_map", "0", "1", "-allow_ip", "10.0.0.0/8"])
    banner = config.as_banner_dict()
    assert set(banner) == FLAG_KEYS | BANNER_ONLY
    assert banner["device_map"] == [0, 1] and banner["allow_ip"] == ["10.0.0.0/8"]
    assert banner["pooling_strategy"] == "REDUCE_MEAN"


@pytest.mark.parametrize(("flags", "devices", "budget"), [
    ([], ["cpu", "cpu"], CPU_BATCH_TOKENS),
    ([], ["cuda:0", "cuda:1"], GPU_BATCH_TOKENS),
    (["-max_batch_tokens", "777"], ["cuda:0"], 777),
])
def test_the_batch_budget_is_decided_once_for_the_devices(
        flags: list[str], devices: list[str], budget: int) -> None:
    assert batch_token_budget(parse_server_config(flags), devices) == budget


def test_an_unresolved_batch_budget_is_not_guessed() -> None:
    with pytest.raises(ConfigError, match="not resolved"):
        _ = ServerConfig().batch_tokens


def test_how_short_max_seq_len_may_be_is_the_tokenizers_call() -> None:
    """Without special tokens a row of 1 is fine; the flag no longer refuses below 3."""
    config = parse_server_config(["-max_seq_len", "2", "-no_special_token"])
    assert config.engine.max_seq_len == 2
    with pytest.raises(SystemExit):
        parse_server_config(["-max_seq_len", "two"])


def test_the_api_key_comes_from_the_environment_when_the_flags_are_parsed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERT_SERVING_API_KEY", "from-env")
    assert parse_server_config([]).api_key == "from-env"
    assert parse_server_config(["-api_key", "from-flag"]).api_key == "from-flag"
