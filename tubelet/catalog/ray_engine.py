"""Batch embedding on a Ray cluster (`--engine ray`), with Ray Data: the file list → each file decoded into its
windows on CPU workers (a generator: a long video never sits in memory whole) → windows embedded in batches by a
pool of model actors (one GPU each when the cluster has GPUs) → vectors streamed back to the driver, which puts
each file's windows back together and yields the same Outcomes as the local path, so catalogs and parquet files
are written exactly as `embed_files` would. Ray Data's streaming executor holds at most `memory_mb` of decoded
windows in the object store: when the model is the slow stage, decoding waits (backpressure).

Decoding and batching use the local path's own functions (`span_windows`, `window_frames`, `clips_of`), so the
vectors are the local ones (up to float rounding from batch composition).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.catalog.embed import (
    Embedder,
    EmbedOptions,
    Outcome,
    clips_of,
    file_sha256,
    load_embedder,
    span_windows,
    video_embedding,
    window_frames,
)
from tubelet.data import VideoInfo, probe
from tubelet.errors import TubeletError


def decode_file(row: dict[str, Any], opts: EmbedOptions, num_frames: int, size: int, patch: int,
                done: frozenset[str]) -> Iterator[dict[str, Any]]:
    """One file → rows of up to `opts.batch_size` windows each (uint8 frames), or one row saying it was skipped
    (content already done) or failed (with the reason)."""
    path = row["path"]
    base = {"path": path, "content_hash": "", "status": "", "error": "", "info": "", "windows": 0, "first": 0,
            "starts": [], "ends": [], "frames": np.zeros((0, num_frames, size, size, 3), np.uint8),
            "columns": size // patch}
    try:
        digest = file_sha256(path)
        if digest in done:
            yield {**base, "content_hash": digest, "status": "skipped"}
            return
        info = probe(path)
        if not info.has_video or info.duration_s <= 0:
            raise TubeletError(f"{path}: no video stream with a duration")
        windows = span_windows(opts, 0.0, info.duration_s)
        for lo in range(0, len(windows), opts.batch_size):
            chunk = windows[lo:lo + opts.batch_size]
            frames, columns = window_frames(path, chunk, num_frames, size, patch)
            yield {**base, "content_hash": digest, "status": "window", "info": json.dumps(info.to_dict()),
                   "windows": len(windows), "first": lo, "starts": [w[0] for w in chunk], "ends": [w[1] for w in chunk],
                   "frames": frames.numpy(), "columns": columns}
    except (TubeletError, OSError) as e:
        reason = str(e) if isinstance(e, TubeletError) else f"{path}: {e.strerror or e}"
        yield {**base, "status": "failed", "error": reason}


class EmbedActor:
    """A model replica. Batches are one row: a chunk of one file's windows in, their unit vectors out."""

    def __init__(self, source: str, layer: int, pool: str, overrides: dict[str, Any], model_id: str,
                 tokens: float = 1.0) -> None:
        import torch

        self.embedder = load_embedder(source, layer, pool, tokens, **overrides)
        if self.embedder.id != model_id:
            raise TubeletError(f"{source}: on this Ray worker the model is {self.embedder.id}, not {model_id}")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.embedder.model.to(self.device)
        self.dim = self.embedder.model.config.embed_dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        (frames,), (columns,) = batch.pop("frames"), batch.pop("columns")
        vectors = self.embedder(clips_of(torch.from_numpy(np.asarray(frames))).to(self.device), int(columns)) \
            if len(frames) else np.zeros((0, self.dim), np.float32)
        return {**batch, "vectors": vectors[None]}


def _init_ray(address: str | None) -> Any:
    """Ray connected to `address` ("auto": the running cluster) or a local one; the module itself."""
    import ray
    import ray.data  # noqa: F401 (ray.data below)

    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                     include_dashboard=False, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise TubeletError(f"Ray: cannot {'connect to ' + address if address else 'start a local cluster'} "
                               f"({e})") from None
    return ray


def ray_embed_files(embedder: Embedder, files: Sequence[Path], opts: EmbedOptions, done: set[str] = frozenset(),
                    address: str | None = None, actors: int | None = None, memory_mb: int = 1024,
                    ) -> Iterator[Outcome]:
    """Embed files on Ray; yields one Outcome per file as its last window comes back (files in any order)."""
    ray = _init_ray(address)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(
        object_store_memory=memory_mb * 2**20)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    pool = actors or max(1, gpus)
    ds = ray.data.from_items([{"path": str(p)} for p in files], override_num_blocks=max(1, len(files)))
    ds = ds.flat_map(decode_file, num_cpus=1, fn_kwargs={
        "opts": opts, "num_frames": embedder.num_frames, "size": embedder.size, "patch": embedder.patch,
        "done": frozenset(done)})
    actors_pool = ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=2)
    ds = ds.map_batches(EmbedActor, batch_size=1, compute=actors_pool, num_gpus=1 if gpus else 0,
                        num_cpus=0 if gpus else 1, batch_format="numpy", fn_constructor_kwargs={
                            "source": embedder.source, "layer": embedder.layer, "pool": embedder.pool,
                            "overrides": embedder.overrides, "model_id": embedder.id,
                            "tokens": embedder.tokens})
    parts: dict[str, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for row in ds.iter_rows():
        path = Path(row["path"])
        if row["status"] == "skipped":
            yield Outcome(path, skipped=True, content_hash=row["content_hash"])
        elif row["status"] == "failed":
            yield Outcome(path, error=row["error"])
        else:
            got = parts.setdefault(row["path"], {})
            got[int(row["first"])] = (np.asarray(row["starts"]), np.asarray(row["ends"]),
                                      np.asarray(row["vectors"], np.float32))
            if sum(len(s) for s, _, _ in got.values()) == row["windows"]:
                del parts[row["path"]]
                starts, ends, vecs = (np.concatenate(x) for x in zip(*(got[k] for k in sorted(got)), strict=True))
                info = VideoInfo(**json.loads(row["info"]))
                yield Outcome(path, video_embedding(path, info, row["content_hash"], embedder.id, starts, ends, vecs),
                              content_hash=row["content_hash"])
