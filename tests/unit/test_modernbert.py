"""ModernBERT's config as the hub writes it, and what its graph refuses.

Its parity with transformers (every pooling strategy, pairs, truncation, the GPU
fusions, prefixed checkpoints) is tested with the other families in test_families.py;
here: the two spellings of its layout (hub config.json files say
`global_attn_every_n_layers` and `global_rope_theta`/`local_rope_theta`, transformers 5
saves `layer_types` and `rope_parameters`) are read as transformers reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from make_random_family import write_random_family

from bert_serving.server.convert.bert_config import read_bert_config
from bert_serving.server.errors import UnsupportedModelError
from bert_serving.server.model.engine import Engine, EngineOptions


@pytest.fixture(scope="module")
def modernbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_family("modernbert", tmp_path_factory.mktemp("modernbert"))


def _hub_style(raw: dict[str, object], every: int, global_theta: float,
               local_theta: float) -> dict[str, object]:
    hub = {key: value for key, value in raw.items()
           if key not in ("layer_types", "rope_parameters")}
    hub.update(global_attn_every_n_layers=every, global_rope_theta=global_theta,
               local_rope_theta=local_theta)
    return hub


@pytest.mark.parametrize(("every", "global_theta", "local_theta"),
                         [(3, 160_000.0, 10_000.0), (2, 80_000.0, 5_000.0)])
def test_hub_config_keys_are_read_as_transformers_reads_them(
    modernbert_dir: Path, tmp_path: Path, every: int, global_theta: float, local_theta: float
) -> None:
    from transformers import AutoConfig

    raw = json.loads((modernbert_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(_hub_style(raw, every, global_theta,
                                                                local_theta)))
    ours = read_bert_config(tmp_path / "config.json")
    theirs = AutoConfig.from_pretrained(str(tmp_path))
    assert ours.local_layers == tuple(i for i, kind in enumerate(theirs.layer_types)
                                      if kind == "sliding_attention")
    assert ours.global_rope_theta == theirs.rope_parameters["full_attention"]["rope_theta"]
    assert ours.local_rope_theta == theirs.rope_parameters["sliding_attention"]["rope_theta"]
    assert ours.local_attention // 2 == theirs.sliding_window
    assert (ours.global_rope_theta, ours.local_rope_theta) == (global_theta, local_theta)


def test_saved_layout_is_read_from_layer_types_and_rope_parameters(modernbert_dir: Path) -> None:
    config = read_bert_config(modernbert_dir / "config.json")
    assert config.family == "modernbert" and config.type_vocab_size == 0
    assert config.local_layers == (1, 2)  # of 4: global, local, local, global
    assert (config.global_rope_theta, config.local_rope_theta) == (160_000.0, 10_000.0)
    assert config.local_attention == 8


def test_scaled_rotary_is_refused(modernbert_dir: Path, tmp_path: Path) -> None:
    raw = json.loads((modernbert_dir / "config.json").read_text())
    raw["rope_parameters"]["full_attention"] = {"rope_type": "yarn", "rope_theta": 1e4,
                                                "factor": 4.0}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(UnsupportedModelError, match="rope_type 'yarn' is not supported"):
        read_bert_config(tmp_path / "config.json")


def test_no_position_embeddings_is_refused(modernbert_dir: Path, tmp_path: Path) -> None:
    options = EngineOptions(model_dir=modernbert_dir, graph_tmp_dir=tmp_path,
                            no_position_embeddings=True)
    with pytest.raises(UnsupportedModelError, match="-no_position_embeddings does not apply"):
        Engine.load(options)
