"""Deployment: the encoder as used for embedding, exported to ONNX (fp32 or int8) and run by ONNX Runtime.

Imports only tubelet.model (and onnx/onnxruntime, an optional extra): the catalog's embedder uses it as its onnx
engine, and `tubelet export` writes files with it.
"""

from tubelet.export.graph import EmbeddingGraph, example_input
from tubelet.export.onnx import OnnxRunner, Parity, cached_export, check_parity, export_onnx

__all__ = ["EmbeddingGraph", "OnnxRunner", "Parity", "cached_export", "check_parity", "example_input", "export_onnx"]
