"""ONNX export of the embedding graph (dynamic batch), int8 quantisation, and an ONNX Runtime runner.

Export uses torch's TorchScript-based exporter (opset 17; the dynamo exporter needs onnxscript, which is not a
dependency). Int8 is ONNX Runtime's dynamic quantisation: weights of every MatMul stored as signed int8 per
output channel, activations quantised per batch at run time (no calibration set to choose). Weights use 7 bits
(reduce_range): on CPUs without VNNI (these, AVX2) the u8×s8 kernel saturates its 16-bit sums, which cost a tiny
random-init ViT 0.987 cosine on real clips; 7-bit weights give 0.9999. Every file is written atomically.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tubelet.atomic import atomic_write
from tubelet.errors import TubeletError
from tubelet.export.graph import EmbeddingGraph, example_input
from tubelet.model.videomae import VideoMAE

OPSET = 17


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise TubeletError("ONNX export and the onnx engine need the onnx extra: pip install 'tubelet[onnx]'") from None


def _export_fp32(graph: EmbeddingGraph, out: Path) -> None:
    video = example_input(graph.model)
    axes = {name: {0: "batch"} for name in ["video", *graph.outputs]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notices: the parity check below is the judge
        torch.onnx.export(graph, (video,), str(out), input_names=["video"], output_names=graph.outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def _quantize(src: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     op_types_to_quantize=["MatMul"])


def export_onnx(model: VideoMAE, out: str | os.PathLike, *, layer: int = -1, pool: str = "mean", tokens: float = 1.0,
                int8: bool = False) -> Path:
    """Write the embedding graph of `model` to `out` (.onnx, fp32 or int8), atomically; returns the path.

    The file's metadata says what it expects and computes: input layout and normalisation, geometry, layer,
    pooling, token fraction and precision."""
    _require_onnx()
    import onnx

    out = Path(out)
    graph = EmbeddingGraph(model, layer, pool, tokens)
    cfg = model.config
    meta = {"producer": "tubelet", "input": f"video [B, {cfg.in_chans}, {cfg.num_frames}, {cfg.image_size[0]}, "
            f"{cfg.image_size[1]}] float32, RGB in [0, 1] normalised by ImageNet mean/std",
            "outputs": ", ".join(graph.outputs), "layer": str(layer), "pool": pool, "tokens": f"{tokens:g}",
            "precision": "int8" if int8 else "fp32", "architecture": cfg.name}
    with tempfile.TemporaryDirectory(prefix="tubelet-onnx-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _export_fp32(graph, fp32)
        final = fp32
        if int8:
            final = Path(tmp) / "int8.onnx"
            _quantize(fp32, final)
        proto = onnx.load(str(final))
        onnx.helper.set_model_props(proto, meta)
        atomic_write(out, proto.SerializeToString())
    return out


def cache_dir() -> Path:
    """Where exported graphs are kept for the onnx engine: $TUBELET_CACHE/onnx, else ~/.cache/tubelet/onnx."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("TUBELET_CACHE") or xdg / "tubelet") / "onnx"


def cached_export(model: VideoMAE, key: str, *, layer: int = -1, pool: str = "mean", tokens: float = 1.0,
                  int8: bool = False) -> Path:
    """The exported graph of the embedding identified by `key` (weights, config, layer, pooling, tokens and
    precision: catalog.embed.model_identity), exported on first use."""
    path = cache_dir() / f"{key}.onnx"
    if not path.is_file():
        export_onnx(model, path, layer=layer, pool=pool, tokens=tokens, int8=int8)
    return path


class OnnxRunner:
    """An ONNX Runtime session over an exported embedding graph: clips → (embedding, logits?) as numpy."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        _require_onnx()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise TubeletError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, clips: Tensor | np.ndarray) -> dict[str, np.ndarray]:
        x = clips.numpy() if isinstance(clips, Tensor) else clips
        return dict(zip(self.outputs, self.session.run(None, {"video": np.ascontiguousarray(x, np.float32)}),
                        strict=True))


@dataclass
class Parity:
    """How an exported file agrees with torch on one batch: the largest absolute difference of the embeddings and
    the smallest cosine between them (and of the logits, for a classifier)."""

    max_abs_diff: float
    min_cosine: float
    logits_max_abs_diff: float | None = None


def check_parity(model: VideoMAE, path: str | os.PathLike, clips: Tensor, *, layer: int = -1, pool: str = "mean",
                 tokens: float = 1.0) -> Parity:
    """Run `clips` through torch and through the exported file and compare."""
    graph = EmbeddingGraph(model, layer, pool, tokens)
    with torch.inference_mode():
        ref = [t.numpy() for t in graph(clips)]
    got = OnnxRunner(path)(clips)
    emb = got["embedding"]
    cos = (emb * ref[0]).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref[0], axis=1))
    logits = float(np.abs(got["logits"] - ref[1]).max()) if graph.with_logits else None
    return Parity(float(np.abs(emb - ref[0]).max()), float(cos.min()), logits)
