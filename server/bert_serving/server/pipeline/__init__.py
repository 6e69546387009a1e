"""The request's way through the server: ventilator -> scheduler -> workers -> sink.

See docs/architecture.md for which module owns which step.
"""
