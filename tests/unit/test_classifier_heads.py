"""The classifier head's pure parts: reading the head, its graph, scores, request shapes, refusals.

The graph is checked against transformers' AutoModelForSequenceClassification
(tests/reference.py) within 1e-4 on every head layout (BERT's pooler -> classifier,
XLM-R's dense -> tanh -> out_proj, ELECTRA's with GELU, DistilBERT's pre_classifier ->
ReLU -> classifier); the whole server is exercised in
tests/integration/test_classifier_server.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from make_random_classifier import CLASSIFIER_KINDS, LABELS, write_random_classifier
from make_random_family import write_random_family
from reference import ClassifierReference

from bert_serving.client._input import check_inputs
from bert_serving.client._scores import predictions, ranked, scores
from bert_serving.proto.inputs import Dual, Ids
from bert_serving.server.convert.cache import GraphCache
from bert_serving.server.convert.heads import (
    check_classifier_pooling,
    head_matmuls,
    read_classifier_head,
)
from bert_serving.server.convert.prepare import ConversionOptions, prepare_graph
from bert_serving.server.convert.sources import detect_model_source
from bert_serving.server.errors import ConfigError, UnsupportedModelError
from bert_serving.server.http.classifier_schemas import PredictRequest
from bert_serving.server.http.errors import GatewayError
from bert_serving.server.http.heads import require_head
from bert_serving.server.http.preparation import ServedModel
from bert_serving.server.model.graph_contract import GraphMetadata
from bert_serving.server.model.head import ModelHead
from bert_serving.server.model.pooling import PoolingSpec, PoolingStrategy

TOLERANCE = 1e-4
TEXTS = ["hello world ||| the quick brown fox", "Short text.",
         "A man is playing a guitar on the street corner ||| le chat dort"]


@pytest.fixture(scope="module", params=CLASSIFIER_KINDS)
def classifier_dir(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind = str(request.param)
    return write_random_classifier(kind, tmp_path_factory.mktemp(f"classifier-{kind}"))


def features_for(folder: Path, texts: list[str]) -> dict[str, np.ndarray]:
    return ClassifierReference(folder).features(texts, None)


# -- conversion -------------------------------------------------------------------------------


def test_classifier_graph_outputs_transformers_logits(classifier_dir: Path,
                                                      graph_cache: Path) -> None:
    graph = prepare_graph(detect_model_source(classifier_dir), ConversionOptions(),
                          GraphCache(graph_cache))
    labels = json.loads((classifier_dir / "config.json").read_text())["id2label"]
    assert graph.metadata.head is ModelHead.CLASSIFIER
    assert graph.metadata.labels == tuple(labels[str(i)] for i in range(len(labels)))
    assert graph.metadata.output_width == len(labels)
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    got = session.run(None, features_for(classifier_dir, TEXTS))[0]
    np.testing.assert_allclose(got, ClassifierReference(classifier_dir).logits(TEXTS),
                               atol=TOLERANCE, rtol=0)


def test_int8_keeps_the_classifier_head_in_fp32(classifier_dir: Path, graph_cache: Path) -> None:
    """-int8 quantizes the encoder's MatMuls and leaves the head's two Linear layers fp32:
    their error lands on the logits directly (heads.head_matmuls)."""
    cache = GraphCache(graph_cache)
    source = detect_model_source(classifier_dir)
    fp32 = prepare_graph(source, ConversionOptions(), cache)
    int8 = prepare_graph(source, ConversionOptions(precision="int8"), cache)
    head = head_matmuls(onnx.load(str(fp32.path)))
    assert len(head) == 2, head
    ops = {node.name: node.op_type for node in onnx.load(str(int8.path)).graph.node}
    assert all(ops[name] == "MatMul" for name in head), {name: ops.get(name) for name in head}
    assert sum(op == "MatMulNBits" for op in ops.values()) >= 12  # 2 layers x 6, and more
    features = features_for(classifier_dir, TEXTS)
    logits = [ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
              .run(None, features)[0] for graph in (fp32, int8)]
    # measured <= 0.9% of the largest logit over the four families (1.2% with the head int8)
    assert np.abs(logits[1] - logits[0]).max() <= 0.015 * np.abs(logits[0]).max()


def test_an_exported_classifier_keeps_its_labels_and_refuses_pooling(
        classifier_dir: Path, graph_cache: Path, tmp_path: Path) -> None:
    """A server started from the .onnx alone knows the labels, and the pooling rule holds."""
    graph = prepare_graph(detect_model_source(classifier_dir), ConversionOptions(),
                          GraphCache(graph_cache))
    shutil.copy(graph.path, tmp_path / "model.onnx")
    for name in ("vocab.txt", "tokenizer.json"):
        if (classifier_dir / name).is_file():
            shutil.copy(classifier_dir / name, tmp_path / name)
    source = detect_model_source(tmp_path)
    ready = prepare_graph(source, ConversionOptions(), GraphCache(graph_cache))
    assert ready.metadata.labels == graph.metadata.labels
    with pytest.raises(ConfigError, match="-pooling_strategy REDUCE_MAX"):
        prepare_graph(source, ConversionOptions(pooling=PoolingSpec(
            strategy=PoolingStrategy.REDUCE_MAX)), GraphCache(graph_cache))


def test_labels_that_disagree_with_the_weights_are_refused(tmp_path: Path,
                                                           graph_cache: Path) -> None:
    folder = write_random_classifier("bert", tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "no", "1": "yes"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="3 logits but config.json names 2 labels"):
        prepare_graph(detect_model_source(folder), ConversionOptions(), GraphCache(graph_cache))


def test_read_classifier_head(tmp_path: Path) -> None:
    path = tmp_path / "config.json"

    def head_of(config: dict[str, object]) -> object:
        path.write_text(json.dumps(config))
        return read_classifier_head(path)

    assert head_of({"architectures": ["BertModel"]}) is None
    assert head_of({}) is None
    head = head_of({"architectures": ["XLMRobertaForSequenceClassification"],
                    "id2label": {"1": "b", "0": "a"}})
    assert head is not None and head.layout == "roberta" and head.labels == ("a", "b")
    unnamed = head_of({"architectures": ["BertForSequenceClassification"], "num_labels": 3})
    assert unnamed is not None and unnamed.labels == ("LABEL_0", "LABEL_1", "LABEL_2")
    with pytest.raises(UnsupportedModelError, match="not 0 to 1"):
        head_of({"architectures": ["BertForSequenceClassification"],
                 "id2label": {"0": "a", "2": "b"}})


def test_pooling_flags_on_a_classifier_are_named() -> None:
    check_classifier_pooling(PoolingSpec())
    with pytest.raises(ConfigError, match=r"^-pooling_layer -1, -mask_cls_sep: pooling flags"):
        check_classifier_pooling(PoolingSpec(layers=(-1,), mask_cls_sep=True))


def test_labels_survive_the_graph_props() -> None:
    metadata = GraphMetadata(PoolingSpec(), 32, 2, 256, 2, head=ModelHead.CLASSIFIER,
                             labels=("négatif", "a,b"))
    assert GraphMetadata.from_props(metadata.as_props()) == metadata
    props = metadata.as_props()
    del props["bert_serving.labels"]  # graphs made before labels were recorded
    restored = GraphMetadata.from_props(props)
    assert restored is not None and restored.labels == ()


# -- scores, as the client computes them --------------------------------------------------------


def test_scores_are_sigmoid_softmax_or_raw() -> None:
    one = np.array([[0.0], [2.0]], np.float32)
    np.testing.assert_allclose(scores(one, raw_scores=False)[:, 0], [0.5, 1 / (1 + np.exp(-2))])
    many = np.array([[1.0, 2.0, 3.0]], np.float32)
    soft = scores(many, raw_scores=False)
    np.testing.assert_allclose(soft, np.exp([[1, 2, 3]]) / np.exp([1, 2, 3]).sum())
    np.testing.assert_array_equal(scores(many, raw_scores=True), many)


def test_ranked_is_best_first_and_ties_keep_order() -> None:
    logits = np.array([[0.1], [3.0], [0.1], [-1.0]], np.float32)
    assert [rank.index for rank in ranked(logits, raw_scores=True)] == [1, 0, 2, 3]


def test_predictions_sort_labels_by_score() -> None:
    rows = predictions(np.array([[0.0, 5.0, 1.0]]), ("a", "b", "c"), raw_scores=False)
    assert [p.label for p in rows[0]] == ["b", "c", "a"]
    assert abs(sum(p.score for p in rows[0]) - 1.0) < 1e-9


def test_pairs_carry_any_text_and_refuse_what_is_not_one() -> None:
    check_inputs([Dual("q", "a ||| b"), Dual("  q ", ""), "x ||| y", Ids((1, 2))])
    with pytest.raises(TypeError, match=r"inputs\[1\].second is an int"):
        check_inputs([Dual("q", "t"), Dual("q", 3)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"inputs\[0\].ids\[1\] is -1"):
        check_inputs([Ids((1, -1))])


# -- the routes' pure parts ---------------------------------------------------------------------


def test_predict_inputs_follow_tei_shapes() -> None:
    def items(inputs: object) -> list[list[str]]:
        return PredictRequest.model_validate({"inputs": inputs}).items

    assert items("hi") == [["hi"]]
    assert items(["a", "b"]) == [["a", "b"]]
    assert items([["a"], ["b", "c"]]) == [["a"], ["b", "c"]]
    assert not PredictRequest.model_validate({"inputs": ["a", "b"]}).is_batch
    assert PredictRequest.model_validate({"inputs": [["a"]]}).is_batch
    for bad, named in ((["a", "b", "c"], "inputs: has 3 texts"),
                       ([["a"], []], r"inputs\[1\]: has 0 texts"), ([], "cannot be empty")):
        with pytest.raises(GatewayError, match=named):
            items(bad)


def test_require_head_names_the_loaded_kind() -> None:
    model = ServedModel(name="tiny", head=ModelHead.CLASSIFIER, labels=LABELS["bert"])
    require_head(model, ModelHead.CLASSIFIER)
    with pytest.raises(GatewayError) as caught:
        require_head(model, ModelHead.EMBEDDING)
    problem = caught.value.problem
    assert problem.status == 400 and problem.kind == "WrongModelKind"
    assert "needs an embedding model" in problem.message
    assert "serves a sequence-classification model" in problem.message
    assert "/predict" in problem.message


def test_a_cross_encoder_with_sentence_transformers_modules_gets_one_logits_graph(
        tmp_path: Path) -> None:
    """A folder that is a classifier and also has modules.json: the start asks for a native
    view (it cannot know the head yet), the converter builds the logits graph without one,
    under the same cache entry as a start without -http_port, and no note claims a pooling."""
    from bert_serving.server.config import parse_server_config
    from bert_serving.server.http.served_model import native_embedding_notes
    from bert_serving.server.model.pooling import NativeView
    from bert_serving.server.model.served_graph import ServedGraph

    folder = write_random_classifier("bert", tmp_path / "cross-encoder")
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_cls_token": True}))
    config = parse_server_config(["-model_dir", str(folder), "-http_port", "1"])
    view = config.engine.native_view
    assert isinstance(view, NativeView)
    cache, source = GraphCache(tmp_path / "cache"), detect_model_source(folder)
    with_view = prepare_graph(source, ConversionOptions(native=view), cache)
    without = prepare_graph(source, ConversionOptions(), cache)
    assert with_view.path == without.path and not without.converted_now
    assert (with_view.metadata.head, with_view.metadata.native) == (ModelHead.CLASSIFIER, None)
    served = ServedGraph.of(with_view.metadata, normalize=config.engine.normalize,
                            native=config.native_embedding)
    assert native_embedding_notes(config, served) == []


def test_a_classification_head_of_another_family_is_refused_by_name(
        tmp_path: Path, graph_cache: Path) -> None:
    """Served as an embedder, it would answer vectors to a user who asked for scores."""
    folder = write_random_family("qwen3", tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["Qwen3ForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match=r"Qwen3ForSequenceClassification is a "
                       r"classification head this server does not build .*MPNetFor"):
        prepare_graph(detect_model_source(folder), ConversionOptions(), GraphCache(graph_cache))
