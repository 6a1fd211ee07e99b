"""Fill a catalog or an embeddings file from many video files: skip what is done, report failures, go on."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.catalog.embed import (
    Embedder,
    EmbeddingsFile,
    EmbedOptions,
    Engine,
    Outcome,
    check_same_space,
    embed_files,
    embedder_for,
    expand_paths,
    load_embedder,
    read_parquet,
    write_parquet,
)
from tubelet.catalog.ray_engine import ray_embed_files
from tubelet.catalog.search import make_query, search
from tubelet.catalog.store import Catalog, ModelInfo, VideoEntry
from tubelet.data.sources import MANIFEST_EXTENSIONS, read_manifest
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


def outcomes(embedder: Embedder, files: Sequence[Path], opts: EmbedOptions, done: set[str],
             engine: Engine | None = None) -> Iterator[Outcome]:
    """Embed the files in this process, or on a Ray cluster for engine "ray" (at its address; None: a local one)."""
    if engine is not None and engine.name == "ray":
        return ray_embed_files(embedder, files, opts, done, engine.address)
    return embed_files(embedder, files, opts, done)


FLAGS = {"window_s": "--window", "stride_s": "--stride", "layer": "--layer", "pool": "--pool", "tokens": "--tokens"}


def _check_same_segmenting(have: ModelInfo, given: dict[str, Any], where: str) -> None:
    """Settings given for an existing catalog or file must be the ones it was made with (else refused, not
    silently replaced by its own)."""
    differ = [k for k, v in given.items() if v != getattr(have, k)]
    if differ:
        made = " ".join(f"{FLAGS[k]} {getattr(have, k)}" for k in FLAGS)
        raise TubeletError(f"{where}: made with {made}; give the same {', '.join(FLAGS[k] for k in differ)} "
                           f"(or leave it out) to add to it")


def _given(opts: EmbedOptions | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """The segmenting settings asked for: `given` when the caller knows which flags were typed, else opts' own."""
    if given is not None:
        return given
    return {} if opts is None else {"window_s": opts.window_s, "stride_s": opts.stride_s}


def _videos(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, dict[str, Any]]]:
    """(file, metadata) of each video: files and folders as given (no metadata), manifests (.csv/.jsonl…) through
    `data.sources`, whose columns other than path become metadata (a label too). Manifest rows are whole videos."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for p in map(Path, paths):
        if not (p.is_file() and p.suffix.lower() in MANIFEST_EXTENSIONS):
            out += [(f, {}) for f in expand_paths([p])]
            continue
        for src in read_manifest(p):
            if src.start_s is not None or src.end_s is not None or src.member is not None:
                raise TubeletError(f"{p}: {src.name}: the catalog indexes whole video files; drop start_s/end_s")
            out.append((Path(src.path), {**src.meta, **({"label": src.label} if src.label else {})}))
    return list({f: (f, m) for f, m in out}.values())


def add_to_catalog(catalog_dir: str | os.PathLike, paths: Sequence[str | os.PathLike], model: str | None = None,
                   opts: EmbedOptions | None = None, overrides: dict[str, Any] | None = None,
                   meta: dict[str, Any] | None = None, batch_videos: int = 8,
                   on_outcome: OnOutcome | None = None, on_files: Callable[[int], None] | None = None,
                   given: dict[str, Any] | None = None, engine: Engine | None = None) -> Report:
    """`tubelet index add`: embed the files and add them, `batch_videos` per atomic commit (or every 30 s).

    `paths` are files, folders or manifests (.csv/.jsonl: a `path` column, other columns become metadata); `meta`
    is added to every video's metadata (over a manifest's values).

    A new catalog takes the model and options given; an existing one keeps its own, and refuses another model,
    other settings in `given` (the segmenting flags typed; default: opts' window and stride) or vectors that differ
    beyond 1e-4 (int8, another token fraction). `engine` runs the model (default torch, or for an existing catalog
    the one it was made with).
    """
    if batch_videos <= 0:
        raise TubeletError(f"videos per commit must be positive, got {batch_videos}")
    sources = _videos(paths)
    files = [f for f, _ in sources]
    file_meta = {str(f): m for f, m in sources}
    if Catalog.exists(catalog_dir):
        cat = Catalog.open(catalog_dir)
        _check_same_segmenting(cat.model, _given(opts, given), str(catalog_dir))
        have = cat.model
        opts = EmbedOptions(have.window_s, have.stride_s, have.layer, have.pool,
                            opts.batch_size if opts else EmbedOptions().batch_size, have.tokens)
        if model is None:
            embedder = embedder_for(cat.model, engine)
        else:
            embedder = load_embedder(model, opts.layer, opts.pool, opts.tokens, engine, **(overrides or {}))
            check_same_space(cat.model, embedder, str(catalog_dir))
    else:
        if model is None:
            raise TubeletError(f"{catalog_dir}: no catalog here yet; give --model to create one")
        opts = opts or EmbedOptions()
        embedder = load_embedder(model, opts.layer, opts.pool, opts.tokens, engine, **(overrides or {}))
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

    for o in outcomes(embedder, files, opts, done, engine):
        report.note(o)
        if o.embedding is not None:
            pending.append(o.embedding.to_entry({**file_meta.get(str(o.path), {}), **(meta or {})}))
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
                  on_outcome: OnOutcome | None = None, on_files: Callable[[int], None] | None = None,
                  given: dict[str, Any] | None = None, engine: Engine | None = None) -> Report:
    """`tubelet embed`: embeddings of the files into one parquet; files already in it (same model) are skipped."""
    out = Path(out)
    if out.is_dir():
        raise TubeletError(f"{out}: is a directory; --out takes a .parquet file path (created, or extended)")
    asked = _given(opts, given)
    opts = opts or EmbedOptions()
    embedder = load_embedder(model, opts.layer, opts.pool, opts.tokens, engine, **(overrides or {}))
    info = embedder.info(opts)
    data = EmbeddingsFile(info)
    if out.exists():
        data = read_parquet(out)
        check_same_space(data.model, embedder, str(out))
        _check_same_segmenting(data.model, asked, str(out))
    files = expand_paths(paths)
    if on_files:
        on_files(len(files))
    report = Report()
    done = {v.content_hash for v in data.videos}
    last, dirty = time.monotonic(), False
    for o in outcomes(embedder, files, opts, done, engine):
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
