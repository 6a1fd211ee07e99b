"""Embeddings of whole videos: sliding windows in seconds → model → L2-normalised segment vectors + a video vector.

A window [s, s + window_s) is sampled at `num_frames` evenly spaced instants (the frame on screen at
s + (j + ½)·window_s/T), so a 2 s window at 16 frames is 8 frames/s — the density VideoMAE was trained at
(16 frames every 4th frame at 30 fps). Windows are `tubelet.data.sliding_windows` over the span: every `stride_s`,
plus one aligned to the end, or one window over a span shorter than a window. The video vector is the normalised
mean of its segments.

Frames are the *content view* (`content_view`): the picture is cut to its content box (black bars and the blurred
fill of a 9:16 re-post cut away, as the fingerprints find it) and scaled to the model's height; a wider picture is
centre-cropped to a square (for a landscape video without bars, the classic test view), a narrower one — a portrait
re-frame — is centred on padding the encoder never sees: its tokens are hidden, as in pretraining. So a 9:16 re-frame
(a full-height column of a landscape video) is embedded at the original's scale, by the same tokens as the middle of
the original, instead of as a 1.8× zoom of its centre.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tubelet.atomic import atomic_open
from tubelet.catalog.fingerprint import (
    COLOURS,
    PATCH,
    Fingerprints,
    FrameSampler,
    content_box,
    fingerprint_file,
    grey,
    stored_rows,
)
from tubelet.catalog.fingerprint import DIM as FP_DIM
from tubelet.catalog.store import ModelInfo, VideoEntry, VideoRecord
from tubelet.config import IMAGENET_MEAN, PRESETS
from tubelet.data import VideoInfo, probe, read_frames_at, sliding_windows
from tubelet.data.sources import list_folder
from tubelet.data.transforms import center_crop_box, crop, normalize, resize
from tubelet.errors import TubeletError
from tubelet.export import EmbeddingGraph, OnnxRunner, cached_export
from tubelet.model.checkpoints import load_model
from tubelet.model.hub import download, is_hub_id, parse_hub_id
from tubelet.model.videomae import VideoMAE

POOLS = ("mean", "max")
ID_HEX = 12  # a video id is the first 12 hex digits of its content hash
SECONDS_RANGE = (0.1, 3600.0)  # window and stride: a tenth of a second (3 frames at 30 fps) to an hour
MAX_BATCH = 4096
VIEW = "content"  # the frames the encoder sees (content_view); part of the model identity


@dataclass(frozen=True)
class EmbedOptions:
    """How a video is cut into segments and how a segment becomes one vector."""

    window_s: float = 2.0
    stride_s: float = 1.0
    layer: int = -1  # encoder block whose output is pooled (-1: the last, normed)
    pool: str = "mean"  # over the tokens of a window: "mean" or "max"
    batch_size: int = 8  # windows per forward pass
    tokens: float = 1.0  # fraction of the tubes the encoder sees (model.masking.lattice_mask); 1 = all

    def __post_init__(self) -> None:
        lo, hi = SECONDS_RANGE
        for name, value in (("window", self.window_s), ("stride", self.stride_s)):
            if not lo <= value <= hi:  # NaN fails this too
                raise TubeletError(f"--{name} must be between {lo:g} and {hi:g} seconds, got {value}")
        if self.pool not in POOLS:
            raise TubeletError(f"unknown pooling {self.pool!r}; choose one of {', '.join(POOLS)}")
        if not 0 < self.batch_size <= MAX_BATCH:
            raise TubeletError(f"batch size must be between 1 and {MAX_BATCH}, got {self.batch_size}")
        if not 0.0 < self.tokens <= 1.0:
            raise TubeletError(f"token fraction must be in (0, 1], got {self.tokens}")


ENGINES = ("torch", "onnx", "ray")


@dataclass(frozen=True)
class Engine:
    """What runs the model: torch; ONNX Runtime on an exported graph with fp32 or int8 weights; or torch on a Ray
    cluster at `address` (None: a local one; batch embedding only, catalog.ray_engine).

    torch (here or on Ray) and onnx fp32 agree within 1e-4 (tests), so their vectors share an embedding space; int8
    vectors are within cosine 0.99 of fp32 only, so they are another space: a catalog refuses to mix them."""

    name: str = "torch"
    int8: bool = False
    address: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise TubeletError(f"unknown engine {self.name!r}; choose one of {', '.join(ENGINES)}")
        if self.int8 and self.name != "onnx":
            raise TubeletError("int8 weights need the onnx engine: add --engine onnx")
        if self.address is not None and self.name != "ray":
            raise TubeletError("--address is for --engine ray")

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "fp32"

    @property
    def model_engine(self) -> str:
        """What computes the vectors, as a catalog records it: onnx, or torch (also under Ray)."""
        return "onnx" if self.name == "onnx" else "torch"


@dataclass
class VideoEmbedding:
    """Everything `embed` learns about one file."""

    path: str
    content_hash: str
    size_bytes: int
    duration_s: float
    fps: float
    width: int
    height: int
    model_id: str
    starts: np.ndarray  # [S] seconds, in the file's time
    ends: np.ndarray  # [S]
    segments: np.ndarray  # [S, D] float32, unit norm
    vector: np.ndarray  # [D] float32, unit norm
    fp_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [F] seconds of the frame fingerprints
    fp_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # [F, FP_DIM]
    fp_alt: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # fingerprint.py `alt`
    fp_thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, PATCH, PATCH), np.uint8))  # and `thumbs`
    fp_whole: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # and `whole`
    fp_local: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # and `local`
    fp_colours: np.ndarray = field(default_factory=lambda: np.zeros((0, COLOURS), np.uint8))  # and `colours`

    @property
    def id(self) -> str:
        return self.content_hash[:ID_HEX]

    def to_entry(self, meta: dict[str, Any] | None = None) -> VideoEntry:
        rec = VideoRecord(id=self.id, path=self.path, content_hash=self.content_hash, duration_s=self.duration_s,
                          fps=self.fps, width=self.width, height=self.height, size_bytes=self.size_bytes,
                          num_segments=len(self.segments), added_at=datetime.now(UTC).isoformat(timespec="seconds"),
                          meta=dict(meta or {}))
        fp_times, fp_vectors = stored_rows(Fingerprints(self.fp_times, self.fp_vectors, (0, 0, 0, 0), self.fp_alt,
                                                        whole=self.fp_whole))
        return VideoEntry(rec, self.vector, self.starts, self.ends, self.segments, fp_times, fp_vectors, self.fp_thumbs,
                          self.fp_colours)


def model_identity(model: VideoMAE, layer: int, pool: str, tokens: float = 1.0, precision: str = "fp32") -> str:
    """sha256 over the config, every tensor (sorted by name), the layer/pooling, the view and, when not the defaults,
    the token fraction and the weights' precision (what changes the vectors beyond 1e-4): 16 hex digits."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(f"layer={layer};pool={pool};view={VIEW}".encode())
    if tokens != 1.0:
        h.update(f";tokens={tokens:g}".encode())
    if precision != "fp32":
        h.update(f";precision={precision}".encode())
    return h.hexdigest()[:16]


class Embedder:
    """A model in eval mode that turns clips into unit vectors, with the identity of its embedding space."""

    def __init__(self, model: VideoMAE, source: str, overrides: dict[str, Any], layer: int = -1,
                 pool: str = "mean", tokens: float = 1.0, engine: Engine | None = None) -> None:
        if not -model.config.depth <= layer < model.config.depth:
            raise TubeletError(f"layer {layer} is out of range for a {model.config.depth}-block encoder")
        if pool not in POOLS:
            raise TubeletError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}")
        h, w = model.config.image_size
        if h != w:
            raise TubeletError(f"embedding takes a square centre crop; this model's image_size is {h}x{w}")
        self.model = model.eval()
        self.source, self.overrides, self.layer, self.pool, self.tokens = source, dict(overrides), layer, pool, tokens
        self.engine = engine or Engine()
        self.graph = EmbeddingGraph(model, layer, pool, tokens)
        self.id = model_identity(model, layer, pool, tokens, self.engine.precision)
        self.runner = None
        if self.engine.name == "onnx":
            self.runner = OnnxRunner(cached_export(model, self.id, layer=layer, pool=pool, tokens=tokens,
                                                   int8=self.engine.int8))

    @property
    def num_frames(self) -> int:
        return self.model.config.num_frames

    @property
    def size(self) -> int:
        """Side of the square centre crop the model sees."""
        return self.model.config.image_size[0]

    def info(self, opts: EmbedOptions) -> ModelInfo:
        return ModelInfo(id=self.id, source=self.source, dim=self.model.config.embed_dim, layer=self.layer,
                         pool=self.pool, window_s=opts.window_s, stride_s=opts.stride_s, overrides=self.overrides,
                         tokens=self.tokens, engine=self.engine.model_engine, precision=self.engine.precision)

    @property
    def patch(self) -> int:
        return self.model.config.patch_size

    @torch.inference_mode()
    def __call__(self, clips: torch.Tensor, columns: int | None = None) -> np.ndarray:
        """clips [B, 3, T, H, W] normalised float → [B, D] float32 unit vectors, from the middle `columns` token
        columns only when given (content_view's narrow pictures; those run on the torch graph whatever the engine,
        which the exported one matches within 1e-4 at fp32)."""
        t, h, w = self.model.config.grid
        if columns is not None and columns < w:
            keep = torch.zeros(t, h, w, dtype=torch.bool, device=clips.device)
            keep[..., (w - columns) // 2:(w - columns) // 2 + columns] = True
            return self.graph(clips, ~keep.reshape(-1))[0].cpu().numpy()
        if self.runner is not None:
            return self.runner(clips)["embedding"]
        return self.graph(clips)[0].cpu().numpy()


def load_embedder(source: str | os.PathLike, layer: int = -1, pool: str = "mean", tokens: float = 1.0,
                  engine: Engine | None = None, **overrides: Any) -> Embedder:
    """An Embedder for a preset (random init, seeded so a preset name is one fixed model), a checkpoint or a Hub
    model id (recorded with the commit it resolved to)."""
    src = str(source)
    if src in PRESETS and not Path(src).exists():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = load_model(src, **overrides)
    elif is_hub_id(src):
        folder, commit = download(src)  # recorded at its commit, so the catalog reloads these very weights
        src = f"{parse_hub_id(src)[0]}@{commit}"
        model = load_model(folder, **overrides)
    else:
        src = str(Path(src).resolve())
        model = load_model(src, **overrides)
    return Embedder(model, src, overrides, layer, pool, tokens, engine)


def check_same_space(have: ModelInfo, embedder: Embedder, where: str) -> None:
    """TubeletError unless `embedder` makes vectors of the space `have` describes (same identity)."""
    if embedder.id == have.id:
        return
    asked = embedder.info(EmbedOptions())
    if asked.precision != have.precision or asked.tokens != have.tokens:
        raise TubeletError(f"{where}: holds {have.precision} vectors from {have.tokens:g} of the tokens; "
                           f"{asked.precision} from {asked.tokens:g} differ beyond the 1e-4 tolerance (int8 and "
                           f"token subsets keep cosine ≥ 0.99 only): use the same, or another catalog")
    raise TubeletError(f"{where}: holds vectors of model {have.id} ({have.source}); {embedder.source} is model "
                       f"{embedder.id}: use another catalog")


def embedder_for(info: ModelInfo, engine: Engine | None = None) -> Embedder:
    """The Embedder a catalog or embeddings file was made with, run by `engine` (default: the one it was made
    with); TubeletError if the model changed since or the engine's precision makes other vectors."""
    if engine is not None and engine.precision != info.precision:
        raise TubeletError(f"{info.source}: the vectors are {info.precision}; {engine.precision} queries differ "
                           f"beyond the 1e-4 tolerance: {'add' if info.precision == 'int8' else 'leave out'} --int8")
    engine = engine or Engine(info.engine, info.precision == "int8")
    emb = load_embedder(info.source, info.layer, info.pool, info.tokens, engine, **info.overrides)
    if emb.id != info.id:
        raise TubeletError(f"{info.source}: this model is now {emb.id}, but the vectors were made by {info.id} "
                           "(the weights changed, or an older tubelet embedded other frames): embed them again "
                           "into a new catalog")
    return emb


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, and the video files under each directory (as `data.sources` lists them); TubeletError if
    missing."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [Path(s.path) for s in list_folder(p)]
        elif p.is_file():
            out.append(p)
        else:
            raise TubeletError(f"{p}: no such file or directory")
    return list(dict.fromkeys(out))


def _window_times(windows: Sequence[tuple[float, float]], t: int) -> np.ndarray:
    """[W, T] sampling instants: the centres of T equal slices of each window."""
    starts = np.array([w[0] for w in windows])[:, None]
    lengths = np.array([w[1] - w[0] for w in windows])[:, None]
    return starts + (np.arange(t)[None] + 0.5) * lengths / t


def span_windows(opts: EmbedOptions, start_s: float, end_s: float) -> list[tuple[float, float]]:
    """The sliding windows over [start_s, end_s] of a file, in the file's time."""
    return [(start_s + a, start_s + b) for a, b in sliding_windows(end_s - start_s, opts.window_s, opts.stride_s)]


def content_view(frames: torch.Tensor, size: int, patch: int) -> tuple[torch.Tensor, int]:
    """uint8 frames [N, H, W, 3] of one stretch of video → ([N, size, size, 3], token columns holding the picture).

    The frames are cut to their content box (fingerprint.content_box: bars and blurred fill) and scaled to `size`
    high. A picture at least as wide is centre-cropped to the square (all size // patch columns are picture); a
    narrower one is scaled to whole patch columns (at most half a patch off its aspect) and centred on the mean
    colour, the columns outside it to be hidden from the encoder."""
    top, bottom, left, right = content_box(grey(frames.numpy()))
    frames = frames[:, top:bottom, left:right]
    h, w = frames.shape[1:3]
    width = max(1, round(w * size / h))
    if width >= size:
        return crop(resize(frames, (size, width)), center_crop_box(size, width, size)), size // patch
    columns = min(size // patch, max(1, round(width / patch)))
    out = torch.empty(len(frames), size, size, 3, dtype=torch.uint8)
    out[:] = torch.tensor([round(255 * m) for m in IMAGENET_MEAN], dtype=torch.uint8)
    lo = (size // patch - columns) // 2 * patch
    out[:, :, lo:lo + columns * patch] = resize(frames, (size, columns * patch))
    return out, columns


def window_frames(path: str | os.PathLike, windows: Sequence[tuple[float, float]], num_frames: int,
                  size: int, patch: int, frames_to: FrameSampler | None = None) -> tuple[torch.Tensor, int]:
    """(uint8 [W, T, size, size, 3], token columns holding the picture): each window's frames at its sampling
    instants (each distinct instant decoded once), in the content view (one box for the whole batch) before
    normalisation. Every decoded frame, whole, is also offered to `frames_to` (the fingerprints, without a second
    decode)."""
    times = _window_times(windows, num_frames)
    uniq, inverse = np.unique(np.round(times, 6), return_inverse=True)
    frames, _ = read_frames_at(path, uniq.tolist(), size=size)  # [U, H, W, 3] uint8, short side = size
    if frames_to is not None:
        for t, frame in zip(uniq, frames.numpy(), strict=True):
            frames_to.offer(float(t), frame)
    frames, columns = content_view(frames, size, patch)
    return frames[torch.as_tensor(inverse.reshape(times.shape))], columns


def clips_of(frames: torch.Tensor) -> torch.Tensor:
    """uint8 windows [B, T, H, W, 3] → the model's input [B, 3, T, H, W] (ImageNet-normalised float32)."""
    return torch.stack([normalize(f) for f in frames])


Progress = Callable[[float], None]  # the fraction done, in [0, 1]


def embed_span(embedder: Embedder, path: str | os.PathLike, opts: EmbedOptions, start_s: float, end_s: float,
               progress: Progress | None = None, frames_to: FrameSampler | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts [S], ends [S], vectors [S, D]) of the sliding windows over [start_s, end_s] of one file (decoded
    frames offered to `frames_to`)."""
    windows = span_windows(opts, start_s, end_s)
    vecs = []
    for lo in range(0, len(windows), opts.batch_size):
        chunk = windows[lo:lo + opts.batch_size]
        frames, columns = window_frames(path, chunk, embedder.num_frames, embedder.size, embedder.patch, frames_to)
        vecs.append(embedder(clips_of(frames), columns))
        if progress:
            progress((lo + len(chunk)) / len(windows))
    return np.array([w[0] for w in windows]), np.array([w[1] for w in windows]), np.concatenate(vecs)


def embed_video(embedder: Embedder, path: str | os.PathLike, opts: EmbedOptions | None = None,
                start_s: float | None = None, end_s: float | None = None,
                content_hash: str | None = None, progress: Progress | None = None) -> VideoEmbedding:
    """Embed a whole file (or [start_s, end_s] of it): segment vectors over sliding windows and a video vector."""
    opts = opts or EmbedOptions()
    info = probe(path)
    if not info.has_video or not 0 < info.duration_s < math.inf:
        raise TubeletError(f"{path}: no video stream with a duration")
    a = 0.0 if start_s is None else float(start_s)
    b = info.duration_s if end_s is None else min(float(end_s), info.duration_s)
    if not 0 <= a < b:  # NaN fails this too
        raise TubeletError(f"{path}: empty or invalid span {a:.2f}–{b:.2f} s (video is {info.duration_s:.2f} s)")
    sampler = FrameSampler(a, b)
    starts, ends, segs = embed_span(embedder, path, opts, a, b, progress, sampler)
    return video_embedding(path, info, content_hash or file_sha256(path), embedder.id, starts, ends, segs,
                           sampler.fingerprints())


def video_embedding(path: str | os.PathLike, info: VideoInfo, content_hash: str, model_id: str, starts: np.ndarray,
                    ends: np.ndarray, segs: np.ndarray, fingerprints: Fingerprints | None = None) -> VideoEmbedding:
    """A file's embedding from its probe info and segment vectors (the video vector is their normalised mean) and
    its frame fingerprints (decoded for them when not given)."""
    fp = fingerprints if fingerprints is not None else fingerprint_file(path, float(starts[0]), float(ends[-1]))
    mean = segs.mean(0)
    return VideoEmbedding(path=str(Path(path).resolve()), content_hash=content_hash,
                          size_bytes=os.path.getsize(path), duration_s=float(info.duration_s), fps=float(info.fps),
                          width=int(info.width), height=int(info.height), model_id=model_id, starts=starts,
                          ends=ends, segments=segs, vector=(mean / np.linalg.norm(mean)).astype(np.float32),
                          fp_times=fp.times, fp_vectors=fp.vectors, fp_alt=fp.alt, fp_thumbs=fp.thumbs,
                          fp_whole=fp.whole, fp_local=fp.local, fp_colours=fp.colours)


@dataclass
class Outcome:
    """What happened to one file of a batch: embedded, skipped (already done) or failed (with the reason)."""

    path: Path
    embedding: VideoEmbedding | None = None
    skipped: bool = False
    error: str | None = None
    content_hash: str = ""


def embed_files(embedder: Embedder, files: Sequence[Path], opts: EmbedOptions, done: set[str] = frozenset(),
                ) -> Iterator[Outcome]:
    """Embed files one by one; files whose content hash is in `done` are skipped, failures reported, not raised."""
    for path in files:
        try:
            digest = file_sha256(path)
            if digest in done:
                yield Outcome(path, skipped=True, content_hash=digest)
                continue
            yield Outcome(path, embed_video(embedder, path, opts, content_hash=digest), content_hash=digest)
        except (TubeletError, OSError) as e:
            msg = str(e) if isinstance(e, TubeletError) else f"{path}: {e.strerror or e}"
            yield Outcome(path, error=msg)


# ---- parquet files of embeddings (`tubelet embed`) ------------------------------------------------
@dataclass
class EmbeddingsFile:
    """The contents of an embeddings parquet: the model and one VideoEmbedding per file."""

    model: ModelInfo
    videos: list[VideoEmbedding] = field(default_factory=list)


def write_parquet(path: str | os.PathLike, data: EmbeddingsFile) -> None:
    """Long format, one row per segment plus one `kind="video"` row per file; model info in the schema metadata.
    Written atomically (tubelet.atomic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list[Any]] = {k: [] for k in ("path", "content_hash", "model_id", "kind", "segment",
                                                 "start_s", "end_s", "duration_s", "fps", "width", "height",
                                                 "size_bytes", "embedding")}
    for v in data.videos:
        kinds = ["video"] + ["segment"] * len(v.segments)
        spans = [(0.0, v.duration_s)] + list(zip(v.starts.tolist(), v.ends.tolist(), strict=True))
        for i, (kind, (s, e), vec) in enumerate(zip(kinds, spans, [v.vector, *v.segments], strict=True)):
            for key, value in (("path", v.path), ("content_hash", v.content_hash), ("model_id", v.model_id),
                               ("kind", kind), ("segment", i - 1), ("start_s", s), ("end_s", e),
                               ("duration_s", v.duration_s), ("fps", v.fps), ("width", v.width),
                               ("height", v.height), ("size_bytes", v.size_bytes), ("embedding", vec)):
                rows[key].append(value)
    dim = data.model.dim
    emb = pa.FixedSizeListArray.from_arrays(
        pa.array(np.asarray(rows.pop("embedding"), np.float32).reshape(-1)), dim) if rows["path"] else \
        pa.array([], pa.list_(pa.float32(), dim))
    table = pa.table({**rows, "embedding": emb})
    table = table.replace_schema_metadata({"tubelet": json.dumps({"model": asdict(data.model)})})
    with atomic_open(path, "wb") as f:
        pq.write_table(table, f)


def read_parquet(path: str | os.PathLike) -> EmbeddingsFile:
    """Read a file written by `write_parquet`; TubeletError if it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        stamp = (table.schema.metadata or {}).get(b"tubelet")
        if stamp is None:
            raise ValueError("no tubelet model stamp in its metadata")
        model = ModelInfo(**json.loads(stamp)["model"])
    except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as e:
        raise TubeletError(f"{path}: not a tubelet embeddings file ({e})") from None
    cols = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names if name != "embedding"}
    vecs = table["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, model.dim)
    out = EmbeddingsFile(model)
    for digest in dict.fromkeys(cols["content_hash"]):
        rows = np.flatnonzero(cols["content_hash"] == digest)
        seg = rows[cols["kind"][rows] == "segment"]
        top = rows[cols["kind"][rows] == "video"][0]
        out.videos.append(VideoEmbedding(
            path=str(cols["path"][top]), content_hash=str(digest), size_bytes=int(cols["size_bytes"][top]),
            duration_s=float(cols["duration_s"][top]), fps=float(cols["fps"][top]), width=int(cols["width"][top]),
            height=int(cols["height"][top]), model_id=str(cols["model_id"][top]), starts=cols["start_s"][seg],
            ends=cols["end_s"][seg], segments=vecs[seg], vector=vecs[top]))
    return out
