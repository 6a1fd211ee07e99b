"""The one place that lists video sources for every command: folders, CSV/JSONL manifests, tar shards.

`list_sources(x)` → [Source] for a folder (recursive, by extension, symbolic-link loops listed once; a file in a
sub-folder is labelled by its top sub-folder), a manifest (`.csv`/`.tsv`/`.txt`/`.jsonl`), an uncompressed `.tar`
shard or a folder of them, a video file, a glob, or a list of these; sorted within each source.

A manifest lists one video per row: `path[,label][,start_s,end_s][,split]` without a header, any columns with a
header naming `path` (columns other than path/label/start_s/end_s/split are kept as string metadata), the official
VideoMAE `path label` lists (whitespace-separated), or JSON Lines with the same keys. Relative paths start from the
manifest's folder (or `root`). Times are checked here, once: finite, non-negative, start before end — a bad row is
a one-line TubeletError naming the file and the row.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.atomic import atomic_open
from tubelet.errors import TubeletError, VideoError

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ogv", ".ogg", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".flv", ".wmv", ".3gp", ".gif",
})
MANIFEST_EXTENSIONS = (".csv", ".tsv", ".txt", ".jsonl")
LABEL_EXTENSIONS = (".cls", ".label", ".txt")  # a tar member key.cls beside key.mp4 holds key's label
SPLITS = ("train", "val", "test")
COLUMNS = ("path", "label", "start_s", "end_s", "split")


@dataclass(frozen=True)
class Source:
    """One video to read: a file, or a member of an uncompressed tar shard (bytes at offset..offset+size), with
    its optional label, time span [start_s, end_s], split name and string metadata."""

    path: str
    label: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    split: str = ""
    meta: dict[str, str] = field(default_factory=dict, hash=False)
    member: str | None = None
    offset: int = 0
    size: int = 0

    @property
    def name(self) -> str:
        """How messages refer to it: the path, or `shard.tar:member`."""
        return f"{self.path}:{self.member}" if self.member else self.path

    def input(self) -> str | bytes:
        """What the decoder opens: the path of a loose file, the member's bytes for a shard (one read)."""
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


def is_video(path: str | os.PathLike) -> bool:
    """A name with one of the video extensions (not a hidden file)."""
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def list_sources(source: str | os.PathLike | Sequence[str | os.PathLike],
                 root: str | os.PathLike | None = None) -> list[Source]:
    """The videos of a folder, manifest, shard, video file, glob or list of these (see the module docstring);
    `root`: the folder relative manifest paths start from (default: the manifest's own folder)."""
    if isinstance(source, list | tuple):
        return [s for one in source for s in list_sources(one, root)]
    text = os.fspath(source)
    if any(c in text for c in "*?["):
        paths = sorted(glob.glob(text, recursive=True))
        if not paths:
            raise TubeletError(f"{text}: no files match")
        return [s for p in paths for s in _list_one(Path(p), root)]
    return _list_one(Path(text), root)


def _list_one(path: Path, root: str | os.PathLike | None) -> list[Source]:
    if not path.exists():
        raise TubeletError(f"{path}: no such file or folder")
    if path.is_dir():
        shards = sorted(path.glob("*.tar"))
        return [s for shard in shards for s in read_shard(shard)] if shards else list_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".tar":
        return read_shard(path)
    if suffix in MANIFEST_EXTENSIONS:
        return read_manifest(path, root)
    if suffix in VIDEO_EXTENSIONS:
        return [Source(str(path))]
    raise TubeletError(f"{path}: not a folder, manifest (.csv/.jsonl), shard (.tar) or video file")


def list_folder(top: Path) -> list[Source]:
    """Video files under `top`, sorted; folders reached twice through symbolic links are listed once."""
    seen: set[tuple[int, int]] = set()
    out = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        rel = Path(dirpath).relative_to(top)
        label = rel.parts[0] if rel.parts else None
        out += [Source(str(Path(dirpath) / f), label) for f in sorted(filenames) if is_video(f)]
    if not out:
        raise TubeletError(f"{top}: no video files (extensions {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return out


# ---- manifests ------------------------------------------------------------------------------------

def read_manifest(path: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Source]:
    """The rows of a CSV/TSV/TXT or JSONL manifest as Sources (relative paths from `root` or the manifest)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TubeletError(f"{path}: cannot read manifest ({getattr(e, 'strerror', None) or e})") from None
    base = Path(root) if root is not None and Path(root).is_dir() else path.parent
    rows = _jsonl_rows(text, path) if path.suffix.lower() == ".jsonl" else _delimited_rows(text, path)
    out = [_source(base, d, f"{path}:{line}") for line, d in rows]
    if not out:
        raise TubeletError(f"{path}: manifest lists no videos")
    return out


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        rows.append((n, _json_object(line, f"{path}:{n}", "a JSON object with a 'path'")))
    return rows


def _delimited_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV/TSV (with or without a header) or of an official `path label` list."""
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    table = [(n, [c.strip() for c in next(csv.reader(io.StringIO(ln), delimiter=delimiter))]) for n, ln in lines]
    header = [c.lower() for c in table[0][1]]
    if "path" in header:
        return [(n, dict(zip(header, cells, strict=False))) for n, cells in table[1:]]
    return [(n, _positional(cells, f"{path}:{n}")) for n, cells in table]


def _positional(cells: list[str], where: str) -> dict[str, Any]:
    """path[,label][,start_s,end_s][,split] by column count; one column may be `path label` (official lists)."""
    if len(cells) == 1:
        parts = cells[0].rsplit(None, 1)
        return {"path": parts[0], "label": parts[1]} if len(parts) == 2 and not is_video(parts[1]) \
            else {"path": cells[0]}
    if len(cells) == 2:
        return {"path": cells[0], "label": cells[1]}
    if len(cells) == 3 and _is_number(cells[1]) and _is_number(cells[2]):
        return {"path": cells[0], "start_s": cells[1], "end_s": cells[2]}
    if len(cells) in (4, 5):
        return dict(zip(COLUMNS, cells, strict=False))
    raise TubeletError(f"{where}: expected path[,label][,start_s,end_s][,split], got {len(cells)} columns")


def _is_number(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def _seconds(value: Any, key: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise TubeletError(f"{where}: {key} {value!r} is not a number of seconds") from None
    if not math.isfinite(t) or t < 0:
        raise TubeletError(f"{where}: {key} {value!r} must be a finite, non-negative number of seconds")
    return t


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _source(base: Path, d: dict[str, Any], where: str, **shard: Any) -> Source:
    """A Source from one row's columns: checked times and split, other columns as metadata."""
    path = str(d.get("path") or "").strip()
    if not path and not shard:
        raise TubeletError(f"{where}: empty path")
    start_s, end_s = _seconds(d.get("start_s"), "start_s", where), _seconds(d.get("end_s"), "end_s", where)
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise TubeletError(f"{where}: end_s {end_s} is not after start_s {start_s}")
    split = str(d.get("split") or "").strip().lower()
    if split and split not in SPLITS:
        raise TubeletError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    label = d.get("label")
    label = None if label is None or str(label).strip() == "" else _text(label).strip()
    meta = {str(k): _text(v) for k, v in d.items() if k not in COLUMNS and v is not None}
    if shard:
        return Source(str(base), label, start_s, end_s, split, meta, **shard)
    p = Path(path).expanduser()
    return Source(str(p if p.is_absolute() else base / p), label, start_s, end_s, split, meta)


# ---- tar shards -----------------------------------------------------------------------------------

def read_shard(path: Path) -> list[Source]:
    """WebDataset-style shard: members key.<video ext> with optional key.cls/.label/.txt (label) and key.json
    (label, start_s, end_s, split, metadata). Compressed tars are refused: members could not be read by offset."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            rows: dict[str, dict[str, Any]] = {}
            videos = []
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                key, ext = os.path.splitext(m.name)
                if is_video(m.name):
                    videos.append((key, m))
                elif ext.lower() in LABEL_EXTENSIONS or ext.lower() == ".json":
                    raw = tar.extractfile(m).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                    rows.setdefault(key, {}).update(_shard_row(raw, ext.lower(), f"{path}:{m.name}"))
    except tarfile.ReadError as e:
        raise TubeletError(f"{path}: not an uncompressed tar shard ({e})") from None
    return [_source(path, rows.get(key, {}), f"{path}:{m.name}", member=m.name, offset=m.offset_data, size=m.size)
            for key, m in videos]


def _shard_row(raw: str, ext: str, where: str) -> dict[str, Any]:
    if ext != ".json":
        return {"label": raw.strip()}
    return {k: v for k, v in _json_object(raw, where, "a JSON object").items() if k != "path"}


def _json_object(text: str, where: str, expected: str) -> dict[str, Any]:
    """One JSON object (a manifest line, a shard's metadata), or a one-line error naming `where`."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise TubeletError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise TubeletError(f"{where}: expected {expected}")
    return d


def write_shards(sources: Sequence[Source], out_dir: str | os.PathLike, per_shard: int = 1000,
                 prefix: str = "shard") -> list[Path]:
    """Pack loose video files into uncompressed tar shards (key.<ext> + key.json with label, times, split,
    metadata and the original path as `source`), each written atomically."""
    out = Path(out_dir)
    shards = []
    for s in range(0, len(sources), per_shard):
        path = out / f"{prefix}-{s // per_shard:06d}.tar"
        with atomic_open(path, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
            for k, src in enumerate(sources[s:s + per_shard], start=s):
                key = f"{k:09d}"
                tar.add(src.path, arcname=key + Path(src.path).suffix.lower())
                row = {**src.meta, "label": src.label, "start_s": src.start_s, "end_s": src.end_s,
                       "split": src.split, "source": src.path}
                data = json.dumps(row).encode()
                info = tarfile.TarInfo(key + ".json")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        shards.append(path)
    return shards


__all__ = ["LABEL_EXTENSIONS", "SPLITS", "Source", "VIDEO_EXTENSIONS", "is_video", "list_folder", "list_sources",
           "read_manifest", "read_shard", "write_shards"]
