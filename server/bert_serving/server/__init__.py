"""The bert-serving server: BERT checkpoints to pooled sentence embeddings on onnxruntime.

The engine (`bert_serving.server.model.engine.Engine`) is the public entry point for
turning texts into vectors in-process; the ZeroMQ pipeline serves it over the wire.
"""

__version__ = "0.1.0"
