"""Video sources (folder, CSV/JSONL manifest, tar shards), the pretraining and labelled-clip datasets, and loaders.

Robustness: a file that cannot be decoded is logged once per process, recorded in the sample's `skipped` list,
and replaced by another item chosen deterministically; the loader sums the skips of an epoch and logs the count
at its end. Determinism: every random choice of a sample comes from a generator seeded by (seed, epoch, index),
so a sample is the same whichever worker makes it and however many workers there are.
"""

from __future__ import annotations

import abc
import csv
import glob
import json
import logging
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tubelet.data import sampling, transforms
from tubelet.data.decode import Size, Source, VideoReader, frames_at, window_from
from tubelet.errors import TubeletError, VideoError
from tubelet.model.masking import make_mask, running_cell_mask

log = logging.getLogger("tubelet.data")

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ogv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".flv", ".wmv", ".3gp", ".gif",
})
LABEL_EXTENSIONS = (".cls", ".label", ".txt")  # a tar member key.cls beside key.mp4 holds key's label


@dataclass(frozen=True)
class VideoItem:
    """One video to read: a file, or a member of an uncompressed tar shard (bytes at offset..offset+size)."""

    path: str
    label: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    member: str | None = None
    offset: int = 0
    size: int = 0

    @property
    def name(self) -> str:
        """How messages refer to it: the path, or `shard.tar:member`."""
        return f"{self.path}:{self.member}" if self.member else self.path

    def source(self) -> Source:
        """A path for loose files; the member's bytes for tar shards (one read, no extraction)."""
        if self.member is None:
            return self.path
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(self.size)
        except OSError as e:
            raise VideoError(f"{self.name}: cannot read shard ({e.strerror or e})") from None
        if len(data) < self.size:
            raise VideoError(f"{self.name}: shard is truncated")
        return data


# --- listing --------------------------------------------------------------------------------------------------

def list_videos(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[VideoItem]:
    """Items from a folder (recursive, by extension; a file in a subfolder is labelled by its top subfolder),
    a .csv/.tsv/.txt or .jsonl manifest (relative paths resolved against the manifest's folder), a .tar shard,
    a folder of shards, a glob, or a list of any of these. Sorted within each source, so order is stable."""
    if isinstance(source, list | tuple):
        return [item for s in source for item in list_videos(s)]
    text = os.fspath(source)
    if any(c in text for c in "*?["):
        paths = sorted(glob.glob(text, recursive=True))
        if not paths:
            raise TubeletError(f"{text}: no files match")
        return [item for p in paths for item in _list_one(Path(p))]
    return _list_one(Path(text))


def _list_one(path: Path) -> list[VideoItem]:
    if not path.exists():
        raise TubeletError(f"{path}: no such file or folder")
    if path.is_dir():
        shards = sorted(path.glob("*.tar"))
        if shards:
            return [item for shard in shards for item in _list_tar(shard)]
        return _list_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".tar":
        return _list_tar(path)
    if suffix == ".jsonl":
        return _list_jsonl(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _list_csv(path)
    if suffix in VIDEO_EXTENSIONS:
        return [VideoItem(str(path))]
    raise TubeletError(f"{path}: not a folder, manifest (.csv/.jsonl), shard (.tar) or video file")


def _list_folder(root: Path) -> list[VideoItem]:
    items = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        label = rel.parts[0] if rel.parts else None
        for f in sorted(filenames):
            if Path(f).suffix.lower() in VIDEO_EXTENSIONS and not f.startswith("."):
                items.append(VideoItem(str(Path(dirpath) / f), label))
    if not items:
        raise TubeletError(f"{root}: no video files (extensions {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return items


def _float_or_none(x: Any, where: str) -> float | None:
    if x is None or (isinstance(x, str) and not x.strip()):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TubeletError(f"{where}: {x!r} is not a time in seconds") from None


def _item(base: Path, path: str, label: Any, start: Any, end: Any, where: str) -> VideoItem:
    if not path:
        raise TubeletError(f"{where}: empty path")
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = base / p
    start_s, end_s = _float_or_none(start, where), _float_or_none(end, where)
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise TubeletError(f"{where}: end_s {end_s} is not after start_s {start_s}")
    label_s = None if label is None or str(label).strip() == "" else str(label).strip()
    return VideoItem(str(p), label_s, start_s, end_s)


def _is_number(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def _list_csv(path: Path) -> list[VideoItem]:
    """Rows path[,label][,start_s,end_s], optional header naming those columns; lines without a comma are
    `path label` split on the last whitespace (the official VideoMAE list format)."""
    base, items = path.parent, []
    with open(path, newline="", encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = None
    if rows and "path" in [c.strip().lower() for c in rows[0]]:
        header = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    for n, row in enumerate(rows, start=2 if header else 1):
        where = f"{path}:{n}"
        row = [c.strip() for c in row]
        if header:
            d = dict(zip(header, row, strict=False))
            items.append(_item(base, d.get("path", ""), d.get("label"), d.get("start_s"), d.get("end_s"), where))
        elif len(row) == 1:
            parts = row[0].rsplit(None, 1)
            label = parts[1] if len(parts) == 2 and _is_number(parts[1]) else None
            items.append(_item(base, parts[0] if label else row[0], label, None, None, where))
        elif len(row) == 2:
            items.append(_item(base, row[0], row[1], None, None, where))
        elif len(row) == 3 and _is_number(row[1]) and _is_number(row[2]):
            items.append(_item(base, row[0], None, row[1], row[2], where))
        elif len(row) == 4:
            items.append(_item(base, *row, where))
        else:
            raise TubeletError(f"{where}: expected path[,label][,start_s,end_s], got {len(row)} columns")
    if not items:
        raise TubeletError(f"{path}: empty manifest")
    return items


def _list_jsonl(path: Path) -> list[VideoItem]:
    base, items = path.parent, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise TubeletError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(d, dict) or "path" not in d:
                raise TubeletError(f"{where}: expected an object with a 'path'")
            items.append(_item(base, str(d["path"]), d.get("label"), d.get("start_s"), d.get("end_s"), where))
    if not items:
        raise TubeletError(f"{path}: empty manifest")
    return items


def _list_tar(path: Path) -> list[VideoItem]:
    """WebDataset-style shard: members key.<video ext> with optional key.cls/.label/.txt (label) and key.json
    ({label, start_s, end_s}). Compressed tars are refused: members could not be read by offset."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            meta: dict[str, dict[str, Any]] = {}
            videos = []
            for m in members:
                key, ext = os.path.splitext(m.name)
                ext = ext.lower()
                if ext in VIDEO_EXTENSIONS:
                    videos.append((key, m))
                elif ext in LABEL_EXTENSIONS or ext == ".json":
                    raw = tar.extractfile(m).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                    meta.setdefault(key, {}).update(_tar_meta(raw, ext, f"{path}:{m.name}"))
    except tarfile.ReadError as e:
        raise TubeletError(f"{path}: not an uncompressed tar shard ({e})") from None
    items = []
    for key, m in videos:
        d = meta.get(key, {})
        label = d.get("label")
        items.append(VideoItem(str(path), None if label is None else str(label), _float_or_none(d.get("start_s"), key),
                               _float_or_none(d.get("end_s"), key), m.name, m.offset_data, m.size))
    return items


def _tar_meta(raw: str, ext: str, where: str) -> dict[str, Any]:
    if ext != ".json":
        return {"label": raw.strip()}
    try:
        d = json.loads(raw)
    except json.JSONDecodeError as e:
        raise TubeletError(f"{where}: not JSON ({e.msg})") from None
    return {k: d[k] for k in ("label", "start_s", "end_s") if k in d} if isinstance(d, dict) else {}


def write_shards(items: Sequence[VideoItem], out_dir: str | os.PathLike, per_shard: int = 1000,
                 prefix: str = "shard") -> list[Path]:
    """Pack loose video files into uncompressed tar shards (key.<ext> + key.json with label/start_s/end_s)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for s in range(0, len(items), per_shard):
        path = out / f"{prefix}-{s // per_shard:06d}.tar"
        tmp = path.with_suffix(".tar.tmp")
        with tarfile.open(tmp, mode="w") as tar:
            for k, item in enumerate(items[s:s + per_shard], start=s):
                key = f"{k:09d}"
                tar.add(item.path, arcname=key + Path(item.path).suffix.lower())
                meta = {"label": item.label, "start_s": item.start_s, "end_s": item.end_s, "source": item.path}
                data = json.dumps(meta).encode()
                info = tarfile.TarInfo(key + ".json")
                info.size = len(data)
                tar.addfile(info, _BytesReader(data))
        os.replace(tmp, path)
        shards.append(path)
    return shards


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return chunk


# --- datasets -------------------------------------------------------------------------------------------------

def sample_generator(seed: int, epoch: int, index: int, attempt: int = 0, purpose: int = 0) -> torch.Generator:
    """A generator fixed by (seed, epoch, index, attempt, purpose), independent of worker and process."""
    state = np.random.SeedSequence([seed, epoch, index, attempt, purpose]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


_LOGGED: set[str] = set()


def _log_skip(message: str) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        log.warning("skipping %s", message)


class _VideoDataset(Dataset, abc.ABC):
    """Shared machinery: items, epoch, per-sample generators, bad-file skipping."""

    def __init__(self, items: Sequence[VideoItem] | str | os.PathLike, num_frames: int, stride: int,
                 seed: int, threads: int) -> None:
        self.items = list_videos(items) if isinstance(items, str | os.PathLike) else list(items)
        if not self.items:
            raise TubeletError("the dataset has no videos")
        if num_frames <= 0 or stride <= 0:
            raise TubeletError(f"num_frames and stride must be positive, got {num_frames} and {stride}")
        self.num_frames, self.stride, self.seed, self.threads = num_frames, stride, seed, threads
        self.epoch = 0
        self._bad: dict[str, str] = {}  # name -> reason, per process

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _key(self, key: int | tuple[int, int]) -> tuple[int, int]:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return index % len(self), epoch

    def _robust(self, index: int, epoch: int) -> tuple[int, dict[str, Any], list[str]]:
        """(item index used, _make's result, skipped messages): item `index`, or deterministic replacements."""
        skipped: list[str] = []
        order: list[int] | None = None
        for attempt in range(len(self)):
            if attempt == 0:
                i = index
            else:
                if order is None:  # a fixed random order of the other items for this (seed, epoch, index)
                    perm = torch.randperm(len(self), generator=sample_generator(self.seed, epoch, index, purpose=1))
                    order = [int(j) for j in perm if int(j) != index]
                i = order[attempt - 1]
            item = self.items[i]
            if item.name in self._bad:
                skipped.append(f"{item.name}: {self._bad[item.name]}")
                continue
            try:
                return i, self._make(item, sample_generator(self.seed, epoch, i, attempt)), skipped
            except Exception as e:  # noqa: BLE001 — any failure on one file must not end the epoch
                message = str(e) if isinstance(e, VideoError) else f"{item.name}: {type(e).__name__}: {e}"
                reason = message.removeprefix(f"{item.name}: ")
                self._bad[item.name] = reason
                _log_skip(message)
                skipped.append(message)
        raise VideoError(f"no video in the dataset could be decoded ({len(self)} tried; first: {skipped[0]})")

    @abc.abstractmethod
    def _make(self, item: VideoItem, generator: torch.Generator) -> dict[str, Any]:
        """The sample's tensors from one item (raises on a bad file)."""

    def _window(self, reader: VideoReader, item: VideoItem, generator: torch.Generator | None,
                size: Size) -> torch.Tensor:
        """One clip [T, H, W, 3]: a random window inside the item's [start_s, end_s] (centred when generator
        is None)."""
        lo, hi = self._bounds(reader, item)
        window_s = sampling.window_seconds(self.num_frames, self.stride, reader.fps)
        offset = (sampling.random_start(hi - lo, window_s, generator) if generator is not None
                  else sampling.center_start(hi - lo, window_s))
        return window_from(reader, lo + offset, self.num_frames, self.stride, size)[0]

    @staticmethod
    def _bounds(reader: VideoReader, item: VideoItem) -> tuple[float, float]:
        lo = item.start_s or 0.0
        hi = item.end_s if item.end_s is not None else reader.duration_s
        return lo, max(lo, hi)


class PretrainDataset(_VideoDataset):
    """VideoMAE pretraining samples: one random window per item, `repeats` augmented views of it, and masks.

    ds[i] (or ds[(i, epoch)]) → {"video": float32 [R, 3, T, S, S] normalised, "mask": bool [R, N] (True =
    hidden from the encoder), "decoder_mask": bool [R, N] (only when decoder_mask_ratio > 0; running cell,
    True = dropped by the decoder), "index": item used, "skipped": ["path: reason", …]}.
    Frames are scaled during decoding to a short side of `short_side` (default image_size·320/224, the usual
    Kinetics preprocessing) before the multi-scale crop.
    """

    def __init__(self, items: Sequence[VideoItem] | str | os.PathLike, num_frames: int = 16, stride: int = 4,
                 image_size: int = 224, tubelet_size: int = 2, patch_size: int = 16, mask_type: str = "tube",
                 mask_ratio: float = 0.9, decoder_mask_ratio: float = 0.0, repeats: int = 1, seed: int = 0,
                 short_side: int | None = None, flip: bool = True, threads: int = 1) -> None:
        super().__init__(items, num_frames, stride, seed, threads)
        if num_frames % tubelet_size or image_size % patch_size:
            raise TubeletError(f"num_frames={num_frames} / image_size={image_size} must be multiples of "
                               f"tubelet_size={tubelet_size} / patch_size={patch_size}")
        if repeats <= 0:
            raise TubeletError(f"repeats must be positive, got {repeats}")
        self.grid = (num_frames // tubelet_size, image_size // patch_size, image_size // patch_size)
        make_mask(mask_type, self.grid, mask_ratio)  # validates kind and ratio now, not in a worker
        if decoder_mask_ratio > 0:
            running_cell_mask(self.grid, decoder_mask_ratio)
        self.image_size, self.repeats, self.flip = image_size, repeats, flip
        self.mask_type, self.mask_ratio, self.decoder_mask_ratio = mask_type, mask_ratio, decoder_mask_ratio
        self.short_side = short_side or round(image_size * 320 / 224)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = self._key(key)
        used, sample, skipped = self._robust(index, epoch)
        return {**sample, "index": used, "skipped": skipped}

    def _make(self, item: VideoItem, generator: torch.Generator) -> dict[str, Any]:
        with VideoReader(item.source(), self.threads, name=item.name) as reader:
            clip = self._window(reader, item, generator, self.short_side)  # [T, H, W, 3] uint8
        views = [transforms.pretrain_view(clip, self.image_size, generator, self.flip) for _ in range(self.repeats)]
        out = {"video": torch.stack(views),  # [R, 3, T, S, S]
               "mask": make_mask(self.mask_type, self.grid, self.mask_ratio, self.repeats, generator)}
        if self.decoder_mask_ratio > 0:
            out["decoder_mask"] = running_cell_mask(self.grid, self.decoder_mask_ratio, self.repeats, generator)
        return out


class ClipDataset(_VideoDataset):
    """Labelled clips for fine-tuning (train=True) and evaluation (train=False).

    train: one random window, `repeats` views (random resized crop + optional flip; turn flip off when
    left/right carries the label). test: `num_clips` windows spread uniformly over the item × `num_crops`
    (1 centre or 3 along the long side) views, short side resized to image_size.
    ds[i] → {"video": float32 [V, 3, T, S, S], "label": int64 [V], "index": int64 [V], "skipped": [...]}.
    `classes`: label names in class-index order (default: sorted labels of the items).
    """

    def __init__(self, items: Sequence[VideoItem] | str | os.PathLike, classes: Sequence[str] | None = None,
                 num_frames: int = 16, stride: int = 4, image_size: int = 224, train: bool = True,
                 num_clips: int = 1, num_crops: int = 1, repeats: int = 1, flip: bool = True,
                 scale: tuple[float, float] = (0.08, 1.0), short_side: int | None = None, seed: int = 0,
                 threads: int = 1) -> None:
        super().__init__(items, num_frames, stride, seed, threads)
        unlabelled = [it.name for it in self.items if it.label is None]
        if unlabelled:
            raise TubeletError(f"{len(unlabelled)} item(s) have no label, e.g. {unlabelled[0]}")
        self.classes = list(classes) if classes is not None else sorted({it.label for it in self.items})  # type: ignore
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({it.label for it in self.items} - set(self.class_index))  # type: ignore[arg-type]
        if unknown:
            raise TubeletError(f"label(s) not among the classes: {', '.join(unknown[:5])}")
        if num_crops not in (1, 3) or num_clips <= 0 or repeats <= 0:
            raise TubeletError("num_crops must be 1 or 3; num_clips and repeats positive")
        self.image_size, self.train, self.num_clips, self.num_crops = image_size, train, num_clips, num_crops
        self.repeats, self.flip, self.scale = repeats, flip, scale
        self.short_side = short_side or (round(image_size * 320 / 224) if train else image_size)

    @property
    def views(self) -> int:
        return self.repeats if self.train else self.num_clips * self.num_crops

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = self._key(key)
        used, sample, skipped = self._robust(index, epoch)
        label = self.class_index[self.items[used].label]  # type: ignore[index]
        v = sample["video"].shape[0]
        return {**sample, "label": torch.full((v,), label, dtype=torch.int64),
                "index": torch.full((v,), used, dtype=torch.int64), "skipped": skipped}

    def _make(self, item: VideoItem, generator: torch.Generator) -> dict[str, Any]:
        with VideoReader(item.source(), self.threads, name=item.name) as reader:
            if self.train:
                clip = self._window(reader, item, generator, self.short_side)
                views = [transforms.train_view(clip, self.image_size, generator, self.flip, self.scale)
                         for _ in range(self.repeats)]
            else:
                lo, hi = self._bounds(reader, item)
                window_s = sampling.window_seconds(self.num_frames, self.stride, reader.fps)
                views = []
                for start in sampling.uniform_starts(hi - lo, window_s, self.num_clips):
                    clip = window_from(reader, lo + start, self.num_frames, self.stride, self.short_side)[0]
                    views += transforms.test_views(clip, self.image_size, self.num_crops)
        return {"video": torch.stack(views)}


class SegmentDataset(ClipDataset):
    """ClipDataset with TSN/SSv2 sampling: num_frames frames, one per equal segment of the item (random within
    the segment when training, the middle when testing), instead of a dense window."""

    def _make(self, item: VideoItem, generator: torch.Generator) -> dict[str, Any]:
        with VideoReader(item.source(), self.threads, name=item.name) as reader:
            lo, hi = self._bounds(reader, item)
            times = sampling.segment_times(hi - lo, self.num_frames, generator if self.train else None, lo)
            clip, _ = frames_at(reader, times, self.short_side)
        if self.train:
            views = [transforms.train_view(clip, self.image_size, generator, self.flip, self.scale)
                     for _ in range(self.repeats)]
        else:
            views = transforms.test_views(clip, self.image_size, self.num_crops)
        return {"video": torch.stack(views)}


# --- loader ---------------------------------------------------------------------------------------------------

class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch): shuffled by (seed, epoch) like DistributedSampler, this rank's share only,
    starting at `start_batch` without touching the batches before it."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, drop_last: bool = True) -> None:
        if batch_size <= 0 or not 0 <= rank < world_size:
            raise TubeletError(f"bad loader setting: batch_size={batch_size}, rank={rank}, world_size={world_size}")
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch, self.start_batch = 0, 0

    def indices(self) -> list[int]:
        """This rank's item indices for the epoch (DistributedSampler's shuffle, padding and striding)."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(self.n))
        if self.drop_last:
            order = order[:self.n - self.n % self.world_size]
        else:
            pad = -self.n % self.world_size
            order += (order * (pad // max(1, self.n) + 1))[:pad]
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        per_rank = (self.n // self.world_size) if self.drop_last else -(-self.n // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        idx = self.indices()
        for b in range(self.start_batch, len(self)):
            yield [(i, self.epoch) for i in idx[b * self.batch_size:(b + 1) * self.batch_size]]


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate views: video [B·V, …], masks [B·V, N], label/index [B·V]; skipped lists joined."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key == "skipped":
            out[key] = [m for v in values for m in v]
        elif key == "index" and not torch.is_tensor(values[0]):
            reps = [s["video"].shape[0] for s in samples]
            out[key] = torch.repeat_interleave(torch.tensor(values, dtype=torch.int64), torch.tensor(reps))
        else:
            out[key] = torch.cat(values)
    return out


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding and transforms run one per worker; threads would fight over cores


class Loader:
    """Batches of a dataset for one rank. Iterate for one epoch; each full pass moves on to the next epoch;
    set_epoch(e, start_batch) jumps (exact resume). `skipped` lists the files skipped in the current epoch."""

    def __init__(self, dataset: Dataset, sampler: EpochBatchSampler, loader: DataLoader) -> None:
        self.dataset, self.sampler, self.loader = dataset, sampler, loader
        self.skipped: list[str] = []

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if not 0 <= start_batch <= len(self):
            raise TubeletError(f"start_batch {start_batch} outside the epoch's {len(self)} batches")
        self.sampler.epoch, self.sampler.start_batch = epoch, start_batch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.skipped = []
        for batch in self.loader:
            self.skipped.extend(batch["skipped"])
            yield batch
        if self.skipped:
            log.warning("epoch %d: skipped %d undecodable file(s) (%d distinct)", self.epoch, len(self.skipped),
                        len(set(self.skipped)))
        self.set_epoch(self.epoch + 1)


def make_loader(dataset: Dataset, batch_size: int, workers: int = 2, seed: int = 0, epoch: int = 0,
                start_batch: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                drop_last: bool = True, prefetch: int = 2) -> Loader:
    """A Loader over `dataset` with persistent worker processes, prefetching and (with CUDA) pinned memory."""
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, rank, world_size, shuffle, drop_last)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        prefetch_factor=prefetch if workers > 0 else None, worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
    out = Loader(dataset, sampler, loader)
    out.set_epoch(epoch, start_batch)
    return out
