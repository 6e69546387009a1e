"""Model conversion: checkpoints as users have them to a cached ONNX graph.

Serving imports only `load_or_convert` from here; nothing in this package runs
per request. The steps, each in its own module:

- `sources`: what kind of model folder the user gave (Google TF, Hugging Face, ONNX)
- `tf_bundle`, `hf_weights`, `torch_pickle`: read the weights, no TensorFlow or torch needed
- `bert_config`, `weights`: one validated config and one weight naming (Google's)
- `graph`: build the ONNX graph, pooling included
- `optimize`: ORT transformer fusions, fp16, int8
- `cache`: content-hashed, atomic, multi-process-safe graph cache
- `export_cli`: `bert-serving-export`, the ahead-of-time conversion
"""
