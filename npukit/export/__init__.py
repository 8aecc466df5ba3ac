"""Exports of npukit's quantised graph to other runtimes' formats."""
from .qdq import export_qdq, to_qdq_onnx

__all__ = ["export_qdq", "to_qdq_onnx"]
