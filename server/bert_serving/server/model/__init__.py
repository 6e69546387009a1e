"""What runs a converted graph and what feeds it: tokenizers, pooling, the engine.

Nothing here imports onnx or the conversion code (see docs/architecture.md).
"""
