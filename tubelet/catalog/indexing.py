"""Fill a catalog or an embeddings file from many video files: skip what is done, report failures, go on."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.catalog.embed import (
    EmbeddingsFile,
    EmbedOptions,
    Outcome,
    embed_files,
    embedder_for,
    expand_paths,
    load_embedder,
    read_parquet,
    write_parquet,
)
from tubelet.catalog.store import Catalog, VideoEntry
from tubelet.errors import TubeletError

COMMIT_EVERY_S = 30.0  # a batch is written at least this often, so a killed run loses little

OnOutcome = Callable[[Outcome], None]


@dataclass
class Report:
    """What a batch run did, file by file."""

    added: list[dict[str, str]] = field(default_factory=list)  # {"id", "path"}
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"id", "path"}: same content already there
    failed: list[dict[str, str]] = field(default_factory=list)  # {"path", "error"}

    def note(self, o: Outcome) -> None:
        if o.error:
            self.failed.append({"path": str(o.path), "error": o.error})
        elif o.skipped:
            self.skipped.append({"id": o.content_hash[:12], "path": str(o.path)})

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "skipped": self.skipped, "failed": self.failed}


MANIFESTS = (".csv", ".jsonl")


def list_sources(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, dict[str, Any]]]:
    """(file, metadata) for each video named by `paths`: files and folders (no metadata) and manifests."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for p in map(Path, paths):
        if p.suffix.lower() in MANIFESTS and p.is_file():
            out += read_manifest(p)
        else:
            out += [(f, {}) for f in expand_paths([p])]
    return list({f: (f, m) for f, m in out}.values())


def read_manifest(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Rows of a CSV (header) or JSON-lines manifest: `path` (relative to the manifest) and any other columns."""
    import csv
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TubeletError(f"{path}: unreadable manifest ({e})") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TubeletError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    out = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("path"):
            raise TubeletError(f"{path}: row {n} has no `path`")
        meta = {k: v for k, v in row.items() if k != "path" and v not in (None, "")}
        out.append((path.parent / str(row["path"]), meta))
    return out


def _check_same_segmenting(have: EmbedOptions, asked: EmbedOptions | None, where: str) -> None:
    if asked is not None and (asked.window_s, asked.stride_s) != (have.window_s, have.stride_s):
        raise TubeletError(f"{where}: made with --window {have.window_s} --stride {have.stride_s}; "
                           f"use the same (or leave them out) to add to it")


def add_to_catalog(catalog_dir: str | os.PathLike, paths: Sequence[str | os.PathLike], model: str | None = None,
                   opts: EmbedOptions | None = None, overrides: dict[str, Any] | None = None,
                   meta: dict[str, Any] | None = None, batch_videos: int = 8,
                   on_outcome: OnOutcome | None = None, on_files: Callable[[int], None] | None = None) -> Report:
    """`tubelet index add`: embed the files and add them, `batch_videos` per atomic commit (or every 30 s).

    `paths` are files, folders or manifests (.csv/.jsonl: a `path` column and metadata columns); `meta` is added
    to every video's metadata (over a manifest's values).

    A new catalog takes the model and options given; an existing one keeps its own, and refuses another model.
    """
    if batch_videos <= 0:
        raise TubeletError(f"videos per commit must be positive, got {batch_videos}")
    sources = list_sources(paths)
    files = [f for f, _ in sources]
    file_meta = {f: m for f, m in sources}
    if Catalog.exists(catalog_dir):
        cat = Catalog.open(catalog_dir)
        have = EmbedOptions(cat.model.window_s, cat.model.stride_s, cat.model.layer, cat.model.pool)
        _check_same_segmenting(have, opts, str(catalog_dir))
        opts = EmbedOptions(have.window_s, have.stride_s, have.layer, have.pool,
                            opts.batch_size if opts else have.batch_size)
        if model is None:
            embedder = embedder_for(cat.model)
        else:
            embedder = load_embedder(model, opts.layer, opts.pool, **(overrides or {}))
            if embedder.id != cat.model.id:
                raise TubeletError(f"{catalog_dir}: the catalog holds vectors of model {cat.model.id} "
                                   f"({cat.model.source}); {model} is model {embedder.id}: use another catalog")
    else:
        if model is None:
            raise TubeletError(f"{catalog_dir}: no catalog here yet; give --model to create one")
        opts = opts or EmbedOptions()
        embedder = load_embedder(model, opts.layer, opts.pool, **(overrides or {}))
        cat = Catalog.create(catalog_dir, embedder.info(opts))
    if on_files:
        on_files(len(files))
    report = Report()
    done = {v.content_hash for v in cat.videos()}
    pending: list[VideoEntry] = []
    last = time.monotonic()

    def commit() -> None:
        nonlocal last
        for vid in cat.add(pending, embedder.id):
            report.added.append({"id": vid, "path": next(e.record.path for e in pending if e.record.id == vid)})
        pending.clear()
        last = time.monotonic()

    for o in embed_files(embedder, files, opts, done):
        report.note(o)
        if o.embedding is not None:
            pending.append(o.embedding.to_entry({**file_meta.get(o.path, {}), **(meta or {})}))
            done.add(o.content_hash)
        if len(pending) >= batch_videos or (pending and time.monotonic() - last > COMMIT_EVERY_S):
            commit()
        if on_outcome:
            on_outcome(o)
    if pending:
        commit()
    return report


def embed_to_file(out: str | os.PathLike, paths: Sequence[str | os.PathLike], model: str,
                  opts: EmbedOptions | None = None, overrides: dict[str, Any] | None = None,
                  on_outcome: OnOutcome | None = None, on_files: Callable[[int], None] | None = None) -> Report:
    """`tubelet embed`: embeddings of the files into one parquet; files already in it (same model) are skipped."""
    opts = opts or EmbedOptions()
    embedder = load_embedder(model, opts.layer, opts.pool, **(overrides or {}))
    info = embedder.info(opts)
    out = Path(out)
    data = EmbeddingsFile(info)
    if out.exists():
        data = read_parquet(out)
        if data.model.id != embedder.id:
            raise TubeletError(f"{out}: holds embeddings of model {data.model.id} ({data.model.source}); "
                               f"{model} is model {embedder.id}: write to another file")
        _check_same_segmenting(EmbedOptions(data.model.window_s, data.model.stride_s), opts, str(out))
    files = expand_paths(paths)
    if on_files:
        on_files(len(files))
    report = Report()
    done = {v.content_hash for v in data.videos}
    last, dirty = time.monotonic(), False
    for o in embed_files(embedder, files, opts, done):
        report.note(o)
        if o.embedding is not None:
            data.videos.append(o.embedding)
            done.add(o.content_hash)
            report.added.append({"id": o.embedding.id, "path": o.embedding.path})
            dirty = True
        if dirty and time.monotonic() - last > COMMIT_EVERY_S:
            write_parquet(out, data)
            last, dirty = time.monotonic(), False
        if on_outcome:
            on_outcome(o)
    if dirty or not out.exists():
        write_parquet(out, data)
    return report


def demo_catalog(model: str | os.PathLike, clips: str | os.PathLike, out: str | os.PathLike,
                 say: Callable[[str], None] = print) -> dict[str, Any]:
    """The demo's search act: index `clips` with `model` into OUT/catalog, then search it with 4 s from the middle
    of its longest clip, which should come back first, matched at that place."""
    from tubelet.catalog.search import make_query, search

    root = Path(out) / "catalog"
    shutil.rmtree(root, ignore_errors=True)
    say(f"indexing the bundled clips into {root} …")
    report = add_to_catalog(root, [clips], str(model))
    cat = Catalog.open(root)
    longest = max(cat.videos(), key=lambda v: v.duration_s)
    start = round(longest.duration_s / 2 - 2, 1)
    hits = search(cat, make_query(cat, longest.path, start, start + 4), k=3)
    say(f"search: {Path(longest.path).name} {start:.1f}–{start + 4:.1f} s → most alike:")
    for h in hits:
        say(f"  {h.rank}. {Path(h.path).name} {h.match.start_s:.1f}–{h.match.end_s:.1f} s  score {h.score:.3f}")
    say(f"try:            tubelet search {longest.path} --start {start} --end {start + 4} --catalog {root}")
    return {"catalog": str(root), "videos": len(report.added), "query": longest.path, "start_s": start,
            "end_s": start + 4, "results": [h.to_dict() for h in hits]}
