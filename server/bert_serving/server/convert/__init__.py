"""Model conversion: checkpoints as users have them to a cached ONNX graph.

Only the converting process imports this package: the server's start and
`bert-serving-export` call `prepare.prepare_engine_graph`; workers, the CLI's
parsing and `--help` never load it (nor onnx). It imports the serving side's
`model.graph_contract`, never the other way round. The steps, each in its own module:

- `sources`: what kind of model folder the user gave (Google TF, Hugging Face, ONNX)
- `tf_bundle`, `hf_weights`, `torch_pickle`: read the weights, no TensorFlow or torch needed
- `bert_config`, `weights`: one validated config and one weight naming (Google's)
- `graph`: build the ONNX graph, pooling included; `heads` (classifiers and cross-encoders)
  and `sparse_head` (SPLADE) put other outputs on the same encoder
- `optimize`: ORT transformer fusions, fp16, int8
- `cache`: content-hashed, atomic, multi-process-safe graph cache
- `prepare`: the pipeline, from a model folder to a cached graph
"""
