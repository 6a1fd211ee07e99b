"""The catalog on disk: Arrow fragments of whole videos, an atomically replaced manifest, a usearch HNSW index.

Layout of a catalog directory:
    catalog.json        manifest: format, the model that made every vector, the live fragments, the ANN index
    frag-<uuid>.arrow   Arrow IPC file, one row per video (metadata, video vector, its segments' times and vectors,
                        its frame fingerprints' times and vectors)
    norm-<uuid>.npz     how the catalog's spaces are normalised (centring + whitening, chance levels), fitted on its
                        own vectors at every commit (tubelet/catalog/normalise.py)
    ann-<uuid>.usearch  HNSW index over segment keys, memory-mapped when searched (present above the exact limit)

Atomicity: a write makes new files under fresh names, then replaces catalog.json (tubelet.atomic: temp file, fsync,
rename). A reader sees the old manifest or the new one, never a half-written video; files a killed writer left behind
are not in the manifest and are removed by the next writer. One writer at a time (an flock on .lock; a writer waits
for it up to `lock_timeout_s`). Creating a catalog is one such commit: the directory is a catalog once catalog.json
is in it, and a directory holding only what a killed creation left is taken as empty.

Readers never see a fragment vanish: opening maps every file the manifest names (memory maps stay valid after a
writer unlinks the file), and a reader that finds a named file already gone re-reads the manifest and maps the newer
one. Writers delete what their commit replaced right after it.
Why this layout and not LanceDB, FAISS or hnswlib: benchmarks/store_comparison.md and the README.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tubelet.atomic import atomic_open, atomic_write
from tubelet.catalog.fingerprint import COLOURS, PATCH
from tubelet.catalog.fingerprint import DIM as FP_DIM
from tubelet.catalog.normalise import Normalisation, fit_normalisation
from tubelet.catalog.rows import Frames, Segments
from tubelet.errors import TubeletError

FORMAT = "tubelet-catalog"
FORMAT_VERSION = 2  # 2: frame fingerprints and the normalisation
MANIFEST = "catalog.json"
EXACT_MAX_SEGMENTS = 100_000  # exact search up to here, HNSW above (benchmarks/store_comparison.md)
SCAN_MAX_SEGMENTS = 20_000  # above, the exact search scans block summaries first (Catalog.nearest)
BLOCK = 16  # consecutive segments of one video a block summary stands for
BLOCK_RECALL = 0.98  # blocks are used only when the segments they choose hold this share of a sample's 10 nearest
RECALL_SAMPLE = 64  # catalog segments that check it
MAX_FRAGMENTS = 32  # more than this many fragment files: merge them on the next write
HNSW = {"connectivity": 16, "expansion_add": 100, "expansion_search": 96}
LOCK = ".lock"
LOCK_TIMEOUT_S = 600.0  # a writer waits this long for another writer to finish before giving up
OPEN_RETRIES = 50  # manifests a reader tries when writers keep replacing the files it was about to map


@dataclass(frozen=True)
class ModelInfo:
    """The embedding space of a catalog: which model made the vectors, and how."""

    id: str  # sha256 of weights + config + layer/pool, 16 hex digits
    source: str  # preset name or checkpoint path it was loaded from
    dim: int
    layer: int = -1
    pool: str = "mean"
    window_s: float = 2.0
    stride_s: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)  # config overrides applied when loading
    tokens: float = 1.0  # fraction of the tubes the encoder saw
    engine: str = "torch"  # what ran the model: torch or onnx (fp32 vectors of both agree within 1e-4)
    precision: str = "fp32"  # of the weights: fp32 or int8 (onnx); part of the identity


@dataclass(frozen=True)
class VideoRecord:
    """One catalogued video (no vectors)."""

    id: str
    path: str
    content_hash: str
    duration_s: float
    fps: float
    width: int
    height: int
    size_bytes: int
    num_segments: int
    added_at: str
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VideoEntry:
    """A video ready to be added: its record plus vectors (L2-normalised float32)."""

    record: VideoRecord
    vector: np.ndarray  # [D]
    starts: np.ndarray  # [S] seconds
    ends: np.ndarray  # [S] seconds
    segments: np.ndarray  # [S, D]
    fp_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [F] seconds
    fp_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # [F, FP_DIM]
    fp_thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, PATCH, PATCH), np.uint8))  # fingerprint.py
    fp_colours: np.ndarray = field(default_factory=lambda: np.zeros((0, COLOURS), np.uint8))  # fingerprint.py


@dataclass
class Layout:
    """Where every video's row and segment keys are in the mapped fragments of one manifest state, built once:
    readers of a committed state (the server answers every request from one) then find a video's rows, a segment
    key's video and whether an id is catalogued by lookup instead of scanning every fragment."""

    rows: dict[str, tuple[str, int]]  # video id → (fragment file, row in it)
    names: dict[str, list[str]]  # fragment file → the video ids of its rows
    keys: np.ndarray  # [S] uint64 segment keys, ascending (fragments keep keys in order)
    owners: np.ndarray  # [S] object: the video id of each key
    blocks: Blocks | None = None  # of the segments the HNSW index does not cover, when first needed
    columns: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # see _column
    whole: dict[tuple[str, ...], Any] = field(default_factory=dict)  # _rows of every video, by columns
    normalised: np.ndarray | None = None  # every segment in the normalised space (normalised_segments)


@dataclass
class Blocks:
    """Summaries of runs of up to BLOCK consecutive segments of one video (their mean, normalised): the first stage
    of an exact search over many segments. A segment's nearest neighbours lie in the blocks most like it (a video's
    consecutive windows overlap and resemble each other), so only those blocks' segments are compared exactly."""

    covered: int  # segment keys below this are in the HNSW index and not summarised
    recall: float  # share of a sample of catalog segments' 10 nearest that the blocks nearest each one hold
    vectors: np.ndarray  # [B, D]
    frag: np.ndarray  # [B] the fragment (index in the manifest) of each block
    lo: np.ndarray  # [B] its first row in that fragment
    hi: np.ndarray  # [B] the row after its last


def _schema(dim: int) -> pa.Schema:
    vec = pa.list_(pa.float32(), dim)
    return pa.schema([
        ("id", pa.string()), ("path", pa.string()), ("content_hash", pa.string()),
        ("duration_s", pa.float64()), ("fps", pa.float64()), ("width", pa.int32()), ("height", pa.int32()),
        ("size_bytes", pa.int64()), ("added_at", pa.string()), ("meta", pa.string()),
        ("vector", vec), ("seg_key", pa.list_(pa.uint64())), ("seg_start_s", pa.list_(pa.float64())),
        ("seg_end_s", pa.list_(pa.float64())), ("seg_vector", pa.list_(vec)),
        ("fp_time_s", pa.list_(pa.float64())), ("fp_vector", pa.list_(pa.list_(pa.float32(), FP_DIM))),
        ("fp_thumb", pa.list_(pa.list_(pa.uint8(), PATCH * PATCH))),  # absent from catalogs made before it
        ("fp_colour", pa.list_(pa.list_(pa.uint8(), COLOURS))),  # and this one
    ])


def _flat_vectors(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A list<fixed_size_list<float32>> or fixed_size_list column → [rows, dim] float32 (zero-copy when it can:
    a one-chunk column is used as it is, since combine_chunks copies even a single chunk)."""
    if isinstance(col, pa.ChunkedArray):
        arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    else:
        arr = col
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        arr = arr.flatten()
    return arr.to_numpy(zero_copy_only=False).reshape(-1, dim)


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


def _malformed(path: Path, what: str) -> TubeletError:
    return TubeletError(f"{path}: malformed catalog manifest: {what}")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _natural(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _need(path: Path, obj: dict[str, Any], key: str, ok: Any, what: str, where: str = "") -> None:
    """One manifest field: present, not null, and `ok(value)`; else a one-line error naming it."""
    name = f"{where}{key}"
    if key not in obj:
        raise _malformed(path, f"{name} is missing")
    if obj[key] is None:
        raise _malformed(path, f"{name} is null")
    if not ok(obj[key]):
        raise _malformed(path, f"{name} must be {what}, not {json.dumps(obj[key])[:40]}")


def _check_model(model: ModelInfo, where: str) -> None:
    """The numbers a catalog's model settings hold are used by every search: finite and positive, or refused."""
    for key in ("window_s", "stride_s"):
        value = getattr(model, key)
        if not (_finite(value) and value > 0):
            raise TubeletError(f"{where}: {key} must be a finite positive number of seconds, not {value}")
    if not (_natural(model.dim) and model.dim > 0):
        raise TubeletError(f"{where}: vector size must be a positive integer, not {model.dim}")


def _check_manifest(path: Path, m: Any) -> dict[str, Any]:
    """Every field a reader relies on, with its type and range; a one-line error naming the first bad one."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise TubeletError(f"{path}: not a tubelet catalog manifest")
    if m.get("version") != FORMAT_VERSION:
        raise TubeletError(f"{path}: catalog format version {m.get('version')} is not supported")
    _need(path, m, "model", lambda v: isinstance(v, dict), "an object")
    _need(path, m, "generation", _natural, "a non-negative integer")
    _need(path, m, "next_key", _natural, "a non-negative integer")
    _need(path, m, "fragments", lambda v: isinstance(v, list), "a list")
    if "ann" not in m:
        raise _malformed(path, "ann is missing")
    model = m["model"]
    for key in ("id", "source", "pool"):
        _need(path, model, key, lambda v: isinstance(v, str), "a string", "model.")
    _need(path, model, "dim", lambda v: _natural(v) and v > 0, "a positive integer", "model.")
    _need(path, model, "layer", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", "model.")
    for key in ("window_s", "stride_s"):
        _need(path, model, key, lambda v: _finite(v) and v > 0, "a finite positive number", "model.")
    _need(path, model, "overrides", lambda v: isinstance(v, dict), "an object", "model.")
    files = [*m["fragments"], *([m["ann"]] if m["ann"] is not None else [])]
    for i, frag in enumerate(files):
        where = f"fragments[{i}]." if i < len(m["fragments"]) else "ann."
        if not isinstance(frag, dict):
            raise _malformed(path, f"{where[:-1]} must be an object")
        prefix = "ann-" if where == "ann." else "frag-"
        _need(path, frag, "file", lambda v, p=prefix: isinstance(v, str) and v.startswith(p) and "/" not in v
              and "\\" not in v, f"a {prefix}* file name in the catalog directory", where)
        for key in ("count", "below_key") if where == "ann." else ("videos", "segments"):
            _need(path, frag, key, _natural, "a non-negative integer", where)
    norm = m.get("norm")
    if norm is not None:
        if not isinstance(norm, dict):
            raise _malformed(path, "norm must be an object")
        _need(path, norm, "file", lambda v: isinstance(v, str) and v.startswith("norm-") and "/" not in v
              and "\\" not in v, "a norm-* file name in the catalog directory", "norm.")
        _need(path, norm, "videos", _natural, "a non-negative integer", "norm.")
    return m


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise TubeletError(f"{root}: not a tubelet catalog (no {MANIFEST}); create one with `tubelet index add`")
    try:
        manifest = json.loads(path.read_text(), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise TubeletError(f"{path}: unreadable catalog manifest ({e})") from None
    return _check_manifest(path, manifest)


def _map_table(path: Path) -> pa.Table:
    """A fragment, memory-mapped (FileNotFoundError passes through: the caller may retry on a newer manifest)."""
    try:
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowInvalid) as e:
        raise TubeletError(f"{path}: unreadable catalog fragment ({e})") from None


def _map_files(root: Path, manifest: dict[str, Any]
               ) -> tuple[dict[str, pa.Table], Any, tuple[str, Normalisation] | None]:
    """Every fragment and the HNSW index a manifest names, memory-mapped, and its normalisation, read: all a reader
    needs is held before a writer may delete it."""
    tables = {f["file"]: _map_table(root / f["file"]) for f in manifest["fragments"]}
    ann = None
    if manifest["ann"]:
        from usearch.index import Index

        path = root / manifest["ann"]["file"]
        if not path.is_file():
            raise FileNotFoundError(2, "No such file or directory", str(path))
        try:
            ann = Index.restore(str(path), view=True)
        except (RuntimeError, ValueError, OSError) as e:
            raise TubeletError(f"{path}: unreadable catalog index ({e})") from None
        if ann is None:
            raise TubeletError(f"{path}: unreadable catalog index (not a usearch index)")
    norm = manifest.get("norm")
    return tables, ann, (norm["file"], Normalisation.load(root / norm["file"])) if norm else None


def _chosen_rows(blocks: Blocks, q: np.ndarray, k: int) -> dict[int, np.ndarray] | None:
    """Rows (per fragment index) of the blocks nearest any query: the ⌈4·k / BLOCK⌉ blocks (at least 8) most like
    each query; None when that is more than half the rows (an exact scan is as cheap) or fewer than k."""
    size = blocks.hi - blocks.lo
    sim = q @ blocks.vectors.T  # [Q, B]
    m = min(len(size), max(8, -(-4 * k // BLOCK)))
    top = np.argpartition(-sim, m - 1, axis=1)[:, :m] if m < len(size) else np.tile(np.arange(m), (len(q), 1))
    chosen = np.unique(top)
    if not k <= size[chosen].sum() <= size.sum() // 2:
        return None
    out = {}
    for f in np.unique(blocks.frag[chosen]):
        mine = chosen[blocks.frag[chosen] == f]
        out[int(f)] = _ranges(blocks.lo[mine], size[mine])
    return out


def _top(keys: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar of each row's candidates, best first."""
    order = np.argsort(-sims, axis=1)[:, :k]
    return np.take_along_axis(keys, order, 1), np.take_along_axis(sims, order, 1)


def _ranges(lo: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The indices lo[0] … lo[0]+n[0]-1, lo[1] … lo[1]+n[1]-1, … in one array."""
    return np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())


def _left_by_creation(name: str) -> bool:
    """Files a killed `Catalog.create` (or a killed first commit) can leave: its lock and temp files."""
    return name == LOCK or (name.startswith(".") and name.endswith(".tmp"))



class Catalog:
    """A persistent, embedded catalog of videos and their segment embeddings. Open with `Catalog.open`."""

    lock_timeout_s: float = LOCK_TIMEOUT_S

    def __init__(self, root: Path, manifest: dict[str, Any], tables: dict[str, pa.Table] | None = None,
                 ann: Any = None, norm: tuple[str, Normalisation] | None = None) -> None:
        self.root = root
        self._manifest = manifest
        self._tables: dict[str, pa.Table] = dict(tables or {})
        self._ann = ann  # the manifest's HNSW index, memory-mapped (None: none, or not mapped yet)
        self._layout: Layout | None = None  # of this manifest, built when first needed
        self._model: tuple[dict[str, Any], ModelInfo] | None = None
        self._norm = norm  # (file, normalisation) of the manifest, read when it was opened

    # ---- opening -------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, model: ModelInfo) -> Catalog:
        """A new, empty catalog in `root` (which must hold nothing, or only what a killed creation left)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise TubeletError(f"{root}: exists and is not a directory; choose a new catalog directory")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TubeletError(f"{root}: cannot create the catalog directory ({e.strerror or e})") from None
        _check_model(model, str(root))
        cat = cls(root, {})
        with cat._locked():
            if (root / MANIFEST).exists():
                raise TubeletError(f"{root}: a catalog already exists here")
            others = sorted(p.name for p in root.iterdir() if not _left_by_creation(p.name))
            if others:
                raise TubeletError(f"{root}: exists and is not an empty directory (it holds {others[0]}); choose a "
                                   f"new catalog directory")
            for p in root.iterdir():
                if p.name != LOCK:
                    p.unlink(missing_ok=True)
            cat._commit({"format": FORMAT, "version": FORMAT_VERSION, "model": asdict(model), "generation": 0,
                         "next_key": 0, "fragments": [], "ann": None, "norm": None})
        return cat

    @classmethod
    def open(cls, root: str | os.PathLike) -> Catalog:
        """An existing catalog, every file of its current manifest mapped; TubeletError if `root` is not one."""
        root = Path(root)
        path = root / MANIFEST
        manifest = _read_manifest(root)
        for _ in range(OPEN_RETRIES):
            try:
                return cls(root, manifest, *_map_files(root, manifest))
            except FileNotFoundError as e:
                newer = _read_manifest(root)
                if newer["generation"] == manifest["generation"]:
                    raise TubeletError(f"{e.filename}: catalog fragment named by {path} is missing") from None
                manifest = newer  # a writer committed and removed what we were about to map: take its manifest
        raise TubeletError(f"{root}: writers replaced the catalog {OPEN_RETRIES} times while it was being opened")

    @staticmethod
    def exists(root: str | os.PathLike) -> bool:
        return (Path(root) / MANIFEST).is_file()

    @property
    def model(self) -> ModelInfo:
        m = self._manifest["model"]
        if self._model is None or self._model[0] is not m:
            known = {f.name for f in dataclasses.fields(ModelInfo)}
            self._model = (m, ModelInfo(**{k: v for k, v in m.items() if k in known}))
        return self._model[1]

    # ---- reading -------------------------------------------------------------------------------
    def _table(self, name: str) -> pa.Table:
        if name not in self._tables:
            self._tables[name] = _map_table(self.root / name)
        return self._tables[name]

    def _fragments(self) -> Iterator[pa.Table]:
        for frag in self._manifest["fragments"]:
            yield self._table(frag["file"])

    def __len__(self) -> int:
        return sum(f["videos"] for f in self._manifest["fragments"])

    @property
    def num_segments(self) -> int:
        return sum(f["segments"] for f in self._manifest["fragments"])

    def layout(self) -> Layout:
        """Where each video's rows and segment keys are (built on first use, kept until this object writes)."""
        if self._layout is None:
            rows: dict[str, tuple[str, int]] = {}
            names: dict[str, list[str]] = {}
            ks, vs = [np.zeros(0, np.uint64)], [np.zeros(0, object)]
            for frag in self._manifest["fragments"]:
                t = self._table(frag["file"])
                ids = names[frag["file"]] = t["id"].to_pylist()
                rows.update((v, (frag["file"], i)) for i, v in enumerate(ids))
                ks.append(_flat_vectors(t["seg_key"], 1)[:, 0])
                vs.append(np.repeat(np.asarray(ids, dtype=object), pc.list_value_length(t["seg_key"]).to_numpy()))
            self._layout = Layout(rows, names, np.concatenate(ks), np.concatenate(vs))
        return self._layout

    def _selected(self, ids: Sequence[str] | None, columns: list[str]) -> Iterator[pa.Table]:
        """`columns` of the given videos (all videos when None), fragment by fragment in catalog order."""
        if ids is None:
            for t in self._fragments():
                yield t.select(columns)
            return
        wanted: dict[str, set[int]] = {}
        for v in ids:
            if (at := self.layout().rows.get(v)) is not None:
                wanted.setdefault(at[0], set()).add(at[1])
        for frag in self._manifest["fragments"]:
            if frag["file"] in wanted:
                yield self._table(frag["file"]).select(columns).take(sorted(wanted[frag["file"]]))

    def videos(self, ids: Sequence[str] | None = None) -> list[VideoRecord]:
        """The given videos (all when None), in the order they were added."""
        out = []
        names = ["id", "path", "content_hash", "duration_s", "fps", "width", "height", "size_bytes", "added_at",
                 "meta"]
        for t in self._selected(ids, [*names, "seg_key"]):
            rows = t.select(names).to_pylist()
            counts = pc.list_value_length(t["seg_key"]).to_pylist()
            for row, n in zip(rows, counts, strict=True):
                out.append(VideoRecord(**{**row, "meta": json.loads(row["meta"]), "num_segments": n}))
        return out

    def ids(self) -> set[str]:
        return set(self.layout().rows)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.layout().rows

    def video(self, video_id: str) -> VideoRecord:
        for v in self.videos([video_id]):
            return v
        raise TubeletError(f"{self.root}: no video with id {video_id!r} in the catalog")

    def _column(self, file: str, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(row offsets [R+1], values [N, width]) of one fragment's per-row list column, memory-mapped; kept for
        this manifest state."""
        cache = self.layout().columns
        if (file, name) not in cache:
            col = self._table(file)[name]
            arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            offsets = arr.offsets.to_numpy()
            cache[file, name] = (offsets - offsets[0], _flat_vectors(arr, width))
        return cache[file, name]

    def _rows(self, ids: Sequence[str] | None, columns: dict[str, int]) -> tuple[list[str], np.ndarray,
                                                                                 dict[str, np.ndarray]] | None:
        """(video ids, row → video index, {column: [rows, width] values}) of the per-row list `columns` (name →
        width) of the given videos (all when None, as memory maps where one fragment holds them); None when there
        are none. The columns have the same number of rows per video."""
        lay = self.layout()
        if ids is None and tuple(columns) in lay.whole:
            return lay.whole[tuple(columns)]
        wanted: dict[str, set[int]] = {}
        for v in ids or ():
            if (at := lay.rows.get(v)) is not None:
                wanted.setdefault(at[0], set()).add(at[1])
        names: list[str] = []
        video, cols = [], {c: [] for c in columns}
        for frag in self._manifest["fragments"]:
            file = frag["file"]
            if ids is not None and file not in wanted:
                continue
            offsets = self._column(file, next(iter(columns)), 1)[0]
            if ids is None:
                picked, counts, at = lay.names[file], np.diff(offsets), None
            else:
                rows = np.asarray(sorted(wanted[file]))
                picked, counts = [lay.names[file][r] for r in rows], offsets[rows + 1] - offsets[rows]
                at = _ranges(offsets[rows], counts)
            if not picked:
                continue
            video.append(np.repeat(np.arange(len(names), len(names) + len(picked)), counts))
            names += picked
            for c, width in columns.items():
                values = self._column(file, c, width)[1]
                cols[c].append(values if at is None else values[at])
        if not names:
            return None
        got = names, np.concatenate(video), {c: v[0] if len(v) == 1 else np.concatenate(v) for c, v in cols.items()}
        if ids is None:  # kept for this state (read-only, as the memory maps are)
            for a in (got[1], *got[2].values()):
                a.flags.writeable = False
            lay.whole[tuple(columns)] = got
        return got

    def segments(self, ids: Sequence[str] | None = None) -> Segments:
        """Segment rows of the given videos (all when None), vectors memory-mapped where possible."""
        dim = self.model.dim
        got = self._rows(ids, {"seg_key": 1, "seg_start_s": 1, "seg_end_s": 1, "seg_vector": dim})
        if got is None:
            none = np.zeros(0)
            return Segments([], none.astype(int), none.astype(np.uint64), none, none, np.zeros((0, dim), np.float32))
        names, video, c = got
        return Segments(names, video, c["seg_key"][:, 0], c["seg_start_s"][:, 0], c["seg_end_s"][:, 0],
                        c["seg_vector"])

    def frames(self, ids: Sequence[str] | None = None) -> Frames:
        """Fingerprint rows of the given videos (all when None)."""
        got = self._rows(ids, {"fp_time_s": 1, "fp_vector": FP_DIM})
        if got is None:
            return Frames([], np.zeros(0, int), np.zeros(0), np.zeros((0, FP_DIM), np.float32))
        names, video, c = got
        return Frames(names, video, c["fp_time_s"][:, 0], c["fp_vector"])

    def thumbs(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Each given video's fingerprint thumbnails [F, PATCH, PATCH] (fingerprint.py), where it has them."""
        return {v: t.reshape(-1, PATCH, PATCH) for v, t in self._per_frame(ids, "fp_thumb", PATCH * PATCH).items()}

    def colours(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Each given video's fingerprint colour histograms [F, COLOURS] (fingerprint.py), where it has them."""
        return self._per_frame(ids, "fp_colour", COLOURS)

    def _per_frame(self, ids: Sequence[str], column: str, width: int) -> dict[str, np.ndarray]:
        """Each given video's rows [F, width] of a per-frame column, where it has any (a column added after a
        fragment was written is absent from it)."""
        lay = self.layout()
        out = {}
        for v in ids:
            if (at := lay.rows.get(v)) is None or column not in self._table(at[0]).column_names:
                continue
            offsets, values = self._column(at[0], column, width)
            if offsets[at[1] + 1] > offsets[at[1]]:
                out[v] = values[offsets[at[1]]:offsets[at[1] + 1]]
        return out

    def refit_normalisation(self) -> Normalisation | None:
        """The normalisation of what this catalog holds now, fitted afresh (what a commit stores)."""
        frames = self.frames()
        return fit_normalisation(self.segments(), frames, self.thumbs(frames.ids))

    def normalised_segments(self) -> np.ndarray | None:
        """Every segment's vector (in `segments()` order) in the normalised space, computed once for this state;
        None when the catalog is empty."""
        norm = self.normalisation()
        if norm is None:
            return None
        lay = self.layout()
        if lay.normalised is None:
            lay.normalised = norm.transform(self.segments().vectors)
            lay.normalised.flags.writeable = False
        return lay.normalised

    def normalised(self, seg: Segments) -> np.ndarray:
        """The vectors of some segments in the normalised space (as they are when the catalog is empty): rows of
        `normalised_segments()` when this state has it already (`warm`), else transformed now."""
        norm = self.normalisation()
        if norm is None:
            return seg.vectors
        if self._layout is None or self._layout.normalised is None:
            return norm.transform(seg.vectors)
        return self._layout.normalised[np.searchsorted(self._layout.keys, seg.keys)]  # keys ascend in that order

    def normalisation(self) -> Normalisation | None:
        """How this catalog's spaces are normalised (fitted on its contents at the last commit); None when empty."""
        norm = self._manifest.get("norm")
        if norm is None:
            return None
        if self._norm is None or self._norm[0] != norm["file"]:
            self._norm = (norm["file"], Normalisation.load(self.root / norm["file"]))
        return self._norm[1]

    def video_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every video's id and its video vector [V, D] (the normalised mean of its segments), catalog order."""
        ids, vecs = [], []
        for t in self._fragments():
            ids += t["id"].to_pylist()
            vecs.append(_flat_vectors(t["vector"], self.model.dim))
        return ids, np.concatenate(vecs) if vecs else np.zeros((0, self.model.dim), np.float32)

    def stats(self) -> dict[str, Any]:
        files = [self.root / f["file"] for f in self._manifest["fragments"]]
        ann = self._manifest["ann"]
        if ann:
            files.append(self.root / ann["file"])
        files.append(self.root / MANIFEST)
        vids = self.videos()
        return {"catalog": str(self.root), "videos": len(vids), "segments": self.num_segments,
                "duration_s": float(sum(v.duration_s for v in vids)), "model": asdict(self.model),
                "search": "hnsw" if ann else "blocks" if self._usable_blocks() else "exact",
                "indexed_segments": ann["count"] if ann else 0,
                "fragments": len(self._manifest["fragments"]), "generation": self._manifest["generation"],
                "disk_bytes": sum(f.stat().st_size for f in files if f.exists())}

    # ---- nearest neighbours ----------------------------------------------------------------------
    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Segment keys [Q, k] and cosine similarities [Q, k] of the k nearest catalog segments per query.

        Exact (one matmul per fragment) while the catalog is under EXACT_MAX_SEGMENTS segments; above, the HNSW
        index answers for the segments it covers and the rest (added since it was built) are searched exactly.
        A catalog warmed for many searches (`warm`: the server) with more than SCAN_MAX_SEGMENTS segments to scan
        compares the queries with block summaries first and then exactly with the segments of the blocks nearest
        each query (`_chosen_rows`), when the summaries pass their check on the catalog's own segments.
        """
        q = np.ascontiguousarray(queries, np.float32)
        ann = self._manifest["ann"]
        covered = ann["below_key"] if ann else 0
        keys, sims = [np.zeros((len(q), 0), np.uint64)], [np.zeros((len(q), 0), np.float32)]
        if ann:
            if self._ann is None:  # an index this object's own write just made
                self._ann = _map_files(self.root, {"fragments": [], "ann": ann})[1]
            index = self._ann
            index.expansion_search = max(HNSW["expansion_search"], 2 * k)
            m = index.search(q, k)
            found = np.arange(k)[None] < np.asarray(m.counts).reshape(-1, 1)  # rows past a query's count are filler
            keys.append(m.keys.reshape(len(q), k).astype(np.uint64))
            sim = np.full((len(q), k), -np.inf, np.float32)
            sim[found] = 1 - m.distances.reshape(len(q), k)[found]  # usearch "ip" distance = 1 - dot
            sims.append(sim)
        blocks = self._usable_blocks()
        found = self._scan(q, k, covered, None if blocks is None else _chosen_rows(blocks, q, k))
        return _top(np.concatenate([*keys, found[0]], 1), np.concatenate([*sims, found[1]], 1), k)

    def _usable_blocks(self) -> Blocks | None:
        """This state's block summaries, when it was warmed with them and they passed their check."""
        ann = self._manifest["ann"]
        covered = ann["below_key"] if ann else 0
        b = self._layout.blocks if self._layout is not None else None
        if b is None or b.covered != covered or b.recall < BLOCK_RECALL:
            return None
        return b if self.num_segments - covered > SCAN_MAX_SEGMENTS else None

    def _scan(self, q: np.ndarray, k: int, covered: int, chosen: dict[int, np.ndarray] | None,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Exact k nearest [Q, ≤k] keys and similarities among the segments with keys from `covered` on (only the
        `chosen` rows of each fragment, by fragment index, when given)."""
        keys, sims = [np.zeros((len(q), 0), np.uint64)], [np.zeros((len(q), 0), np.float32)]
        for f, frag in enumerate(self._manifest["fragments"]):
            seg_keys = self._column(frag["file"], "seg_key", 1)[1][:, 0]
            rows = np.flatnonzero(seg_keys >= covered) if chosen is None else chosen.get(f, np.zeros(0, int))
            if not len(rows):
                continue
            vecs = self._column(frag["file"], "seg_vector", self.model.dim)[1]
            if len(rows) < len(seg_keys):
                vecs, seg_keys = vecs[rows], seg_keys[rows]
            part_k, part_s = [], []
            for lo in range(0, len(q), 256):  # bounded [256, S_frag] similarity blocks
                s = q[lo:lo + 256] @ vecs.T
                top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
                part_k.append(seg_keys[top])
                part_s.append(np.take_along_axis(s, top, 1))
            keys.append(np.concatenate(part_k))
            sims.append(np.concatenate(part_s))
        return _top(np.concatenate(keys, 1), np.concatenate(sims, 1), k)

    def _blocks(self, covered: int) -> Blocks:
        """The block summaries of the segments with keys from `covered` on (built once per manifest state)."""
        layout = self.layout()
        if layout.blocks is None or layout.blocks.covered != covered:
            vecs, frags, los, his = [np.zeros((0, self.model.dim), np.float32)], [], [], []
            for f, t in enumerate(self._fragments()):
                counts = pc.list_value_length(t["seg_key"]).to_numpy()
                seg_keys = _flat_vectors(t["seg_key"], 1)[:, 0]
                pos = np.arange(len(seg_keys)) - np.repeat(np.cumsum(counts) - counts, counts)  # row within video
                first = int(np.searchsorted(seg_keys, covered))  # keys ascend within a fragment
                lo = np.union1d(np.flatnonzero(pos % BLOCK == 0), [first])
                lo = lo[(lo >= first) & (lo < len(seg_keys))]
                if not len(lo):
                    continue
                sums = np.add.reduceat(_flat_vectors(t["seg_vector"], self.model.dim), lo, axis=0)
                vecs.append(sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12))
                frags.append(np.full(len(lo), f))
                los.append(lo)
                his.append(np.r_[lo[1:], len(seg_keys)])
            frag, lo, hi = (np.concatenate([np.zeros(0, int), *a]) for a in (frags, los, his))
            layout.blocks = Blocks(covered, 0.0, np.concatenate(vecs), frag, lo, hi)
            layout.blocks.recall = self._block_recall(layout.blocks)
        return layout.blocks

    def _block_recall(self, blocks: Blocks) -> float:
        """Share of the 10 nearest segments of RECALL_SAMPLE catalog segments (one from each of a random choice of
        blocks) that lie in the blocks `_chosen_rows` picks for each alone: a catalog whose consecutive segments
        do not resemble each other (no temporal coherence) fails it and is searched exactly."""
        if not len(blocks.lo):
            return 0.0
        rng = np.random.default_rng(0)
        files = [f["file"] for f in self._manifest["fragments"]]
        pick = rng.permutation(len(blocks.lo))[:RECALL_SAMPLE]
        rows = blocks.lo[pick] + rng.integers(0, (blocks.hi - blocks.lo)[pick])
        q = np.stack([self._column(files[f], "seg_vector", self.model.dim)[1][r]
                      for f, r in zip(blocks.frag[pick], rows, strict=True)])
        want = self._scan(q, 10, blocks.covered, None)[0]
        found = []
        for i in range(len(q)):
            chosen = _chosen_rows(blocks, q[i:i + 1], 100)  # as search asks (max(100, 10·k))
            if chosen is None:  # searched exactly anyway
                found.append(1.0)
                continue
            have = np.concatenate([self._column(files[f], "seg_key", 1)[1][r, 0] for f, r in chosen.items()])
            found.append(float(np.isin(want[i], have).mean()))
        return float(np.mean(found))

    def warm(self) -> None:
        """Build now what searches and copy detection of this state reuse (the row lookup, the block summaries
        and their check, the normalised segments), so that a server's requests do not pay for them. A one-shot
        search does not: it scans exactly."""
        ann = self._manifest["ann"]
        covered = ann["below_key"] if ann else 0
        if self.num_segments - covered > SCAN_MAX_SEGMENTS:
            self._blocks(covered)
        self.normalised_segments()

    def videos_of_keys(self, keys: np.ndarray) -> np.ndarray:
        """The video id of each segment key (None where the key is gone), same shape as `keys`."""
        all_keys, owners = self.layout().keys, self.layout().owners
        out = np.full(keys.shape, None, dtype=object)
        if len(all_keys):
            pos = np.clip(np.searchsorted(all_keys, keys), 0, len(all_keys) - 1)
            found = all_keys[pos] == keys
            out[found] = owners[pos[found]]
        return out

    # ---- writing -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the catalog's writer lock, waiting up to `lock_timeout_s` for another writer to finish."""
        path = self.root / LOCK
        if path.is_dir():
            raise TubeletError(f"{path}: is a directory, but the catalog's writer lock must be a file: remove it")
        try:
            lock = open(path, "a+")
        except OSError as e:
            raise TubeletError(f"{path}: cannot open the catalog's writer lock ({e.strerror or e})") from None
        with lock:
            deadline, pause = time.monotonic() + self.lock_timeout_s, 0.01
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TubeletError(f"{self.root}: another process kept writing to this catalog for "
                                           f"{self.lock_timeout_s:g} s; try again when it is done") from None
                    time.sleep(pause)
                    pause = min(2 * pause, 0.5)
            yield

    @contextmanager
    def _writing(self) -> Iterator[dict[str, Any]]:
        """Exclusive write: re-read the manifest under the lock, yield a copy to change, commit it."""
        with self._locked():
            fresh = Catalog.open(self.root)
            committed = fresh._manifest
            self._manifest, self._tables, self._ann, self._layout = committed, fresh._tables, fresh._ann, None
            self._collect_garbage()
            manifest = json.loads(json.dumps(committed))
            try:
                yield manifest
                manifest["generation"] += 1
                self._commit(manifest)
            except BaseException:
                self._manifest = committed
                raise
            finally:
                self._layout = None
            self._collect_garbage()

    def _commit(self, manifest: dict[str, Any]) -> None:
        try:
            text = json.dumps(manifest, indent=1, allow_nan=False)
        except ValueError:
            raise TubeletError(f"{self.root}: refusing to store a non-finite number in the catalog") from None
        atomic_write(self.root / MANIFEST, text)
        if (manifest.get("ann") or {}).get("file") != (self._manifest.get("ann") or {}).get("file"):
            self._ann = None
        self._manifest = manifest

    def _collect_garbage(self) -> None:
        """Remove files no manifest refers to (left by a killed writer, or replaced by the last commit); readers
        that mapped them keep their maps."""
        live = {f["file"] for f in self._manifest["fragments"]} | {MANIFEST, LOCK}
        for part in ("ann", "norm"):
            if self._manifest.get(part):
                live.add(self._manifest[part]["file"])
        for p in self.root.iterdir():
            if p.name not in live and (p.name.startswith((".", "frag-", "ann-", "norm-"))):
                self._tables.pop(p.name, None)
                p.unlink(missing_ok=True)

    def _write_fragment(self, table: pa.Table) -> dict[str, Any]:
        name = f"frag-{uuid.uuid4().hex}.arrow"
        with atomic_open(self.root / name, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
            writer.write_table(table)
        counts = pc.list_value_length(table["seg_key"]).to_numpy()
        return {"file": name, "videos": table.num_rows, "segments": int(counts.sum())}

    def add(self, entries: Sequence[VideoEntry], model_id: str) -> list[str]:
        """Add whole videos in one atomic commit; ids already present are left alone. Returns the ids added."""
        if model_id != self.model.id:
            raise TubeletError(f"{self.root}: the catalog holds vectors of model {self.model.id} "
                               f"({self.model.source}); these are from model {model_id}: use another catalog")
        with self._writing() as manifest:
            have = self.ids()
            new, seen = [], set()
            for e in entries:
                if e.record.id not in have and e.record.id not in seen:
                    new.append(e)
                    seen.add(e.record.id)
            if not new:
                return []
            next_key = manifest["next_key"]
            columns: dict[str, list[Any]] = {name: [] for name in _schema(self.model.dim).names}
            for e in new:
                if e.segments.shape[1:] != (self.model.dim,):
                    raise TubeletError(f"{e.record.path}: vectors of size {e.segments.shape[1:]}, "
                                       f"the catalog holds {self.model.dim}")
                numbers = (e.vector, e.segments, e.starts, e.ends, [e.record.duration_s, e.record.fps])
                if not all(np.isfinite(np.asarray(x, np.float64)).all() for x in numbers):
                    raise TubeletError(f"{e.record.path}: non-finite vectors or times; not added")
                rec = e.record.to_dict()
                for name in ("id", "path", "content_hash", "duration_s", "fps", "width", "height", "size_bytes",
                             "added_at"):
                    columns[name].append(rec[name])
                try:
                    columns["meta"].append(json.dumps(rec["meta"], allow_nan=False))
                except ValueError:
                    raise TubeletError(f"{e.record.path}: metadata holds a non-finite number: "
                                       f"{rec['meta']}") from None
                columns["vector"].append(e.vector.astype(np.float32))
                columns["seg_key"].append(np.arange(next_key, next_key + len(e.segments), dtype=np.uint64))
                columns["seg_start_s"].append(np.asarray(e.starts, np.float64))
                columns["seg_end_s"].append(np.asarray(e.ends, np.float64))
                columns["seg_vector"].append(list(np.asarray(e.segments, np.float32)))
                columns["fp_time_s"].append(np.asarray(e.fp_times, np.float64))
                columns["fp_vector"].append(list(np.asarray(e.fp_vectors, np.float32).reshape(-1, FP_DIM)))
                columns["fp_thumb"].append(list(np.asarray(e.fp_thumbs, np.uint8).reshape(-1, PATCH * PATCH)))
                columns["fp_colour"].append(list(np.asarray(e.fp_colours, np.uint8).reshape(-1, COLOURS)))
                next_key += len(e.segments)
            manifest["fragments"].append(self._write_fragment(pa.table(columns, schema=_schema(self.model.dim))))
            manifest["next_key"] = next_key
            self._maintain(manifest)
            return [e.record.id for e in new]

    def remove(self, ids: Sequence[str]) -> list[str]:
        """Remove videos by id in one atomic commit. Returns the ids that were there."""
        with self._writing() as manifest:
            gone: list[str] = []
            gone_keys: list[np.ndarray] = []
            fragments = []
            for frag in manifest["fragments"]:
                t = self._table(frag["file"])
                hit = pc.is_in(t["id"], pa.array(list(ids), pa.string()))
                if not pc.any(hit).as_py():
                    fragments.append(frag)
                    continue
                gone += t.filter(hit)["id"].to_pylist()
                gone_keys.append(_flat_vectors(t.filter(hit)["seg_key"], 1)[:, 0])
                kept = t.filter(pc.invert(hit))
                if kept.num_rows:
                    fragments.append(self._write_fragment(kept))
            manifest["fragments"] = fragments
            if manifest["ann"] and gone:
                manifest["ann"] = self._update_ann(manifest["ann"], remove=np.concatenate(gone_keys))
            self._maintain(manifest)
            return gone

    # ---- upkeep: merge small fragments, keep the HNSW index in step ------------------------------
    def _maintain(self, manifest: dict[str, Any]) -> None:
        frags = manifest["fragments"]
        while len(frags) > MAX_FRAGMENTS:  # merge the adjacent pair with the fewest segments (keys stay in order)
            i = int(np.argmin([a["segments"] + b["segments"] for a, b in zip(frags, frags[1:], strict=False)]))
            merged = pa.concat_tables([self._table(frags[i]["file"]), self._table(frags[i + 1]["file"])],
                                      promote_options="default")  # a fragment from before fp_thumb or fp_colour: empty
            # there
            frags[i:i + 2] = [self._write_fragment(merged.combine_chunks())]
        self._manifest = manifest
        self._layout = None
        norm = self.refit_normalisation()
        if norm is None:
            manifest["norm"] = None
        else:
            name = f"norm-{uuid.uuid4().hex}.npz"
            norm.save(self.root / name)
            manifest["norm"] = {"file": name, "videos": norm.videos}
        total = sum(f["segments"] for f in manifest["fragments"])
        ann = manifest["ann"]
        if total <= EXACT_MAX_SEGMENTS:
            manifest["ann"] = None
        elif ann is None or total - ann["count"] > 0.1 * ann["count"]:
            manifest["ann"] = self._update_ann(ann)

    def _update_ann(self, old: dict[str, Any] | None, remove: np.ndarray | None = None) -> dict[str, Any]:
        """The HNSW index with the segments added since `old` was built (all when None) and without the keys in
        `remove`, saved under a new name; the old file stays valid until the manifest stops naming it."""
        from usearch.index import Index

        if old is None:
            index = Index(ndim=self.model.dim, metric="ip", dtype="f32", **HNSW)
            below, count = 0, 0
        else:
            index = Index.restore(str(self.root / old["file"]))
            below, count = old["below_key"], old["count"]
        if remove is not None and len(remove):
            index.remove(remove[remove < below].astype(np.uint64))
            count -= int((remove < below).sum())
        if remove is None:
            for t in self._fragments():
                keys = _flat_vectors(t["seg_key"], 1)[:, 0]
                new = keys >= below
                if new.any():
                    vecs = _flat_vectors(t["seg_vector"], self.model.dim)
                    index.add(keys[new], np.ascontiguousarray(vecs[new]), threads=0)
                    count += int(new.sum())
                    below = max(below, int(keys.max()) + 1)
        name = f"ann-{uuid.uuid4().hex}.usearch"
        atomic_write(self.root / name, bytes(index.save()))
        return {"file": name, "count": count, "below_key": below}
