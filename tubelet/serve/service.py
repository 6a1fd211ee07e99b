"""What the server does with its catalog, as JSON-ready dicts: consistent read snapshots, the model loaded once,
search, originality, analysis, thumbnails, and the single writer. Responses name videos by id and file name,
never by a path on the server's disk."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tubelet.analysis import analyze, to_json, write_report
from tubelet.anomaly import NormalModel, score_source
from tubelet.anomaly.timeline import draw_timeline
from tubelet.atomic import atomic_write
from tubelet.catalog.copies import copy_threshold, find_copies
from tubelet.catalog.embed import Embedder, EmbedOptions, embed_video, embedder_for
from tubelet.catalog.search import Hit, Query, file_query, id_query, search
from tubelet.catalog.store import MANIFEST, Catalog, VideoRecord
from tubelet.data import read_frames_at
from tubelet.errors import TubeletError
from tubelet.insights import recommend
from tubelet.insights.clusters import current
from tubelet.insights.trends import catalog_trends
from tubelet.serve.jobs import Job
from tubelet.serve.uploads import Upload, UploadError

THUMB_HEIGHTS = (48, 480)


class NotFound(TubeletError):
    """A video id or job id the server does not know."""


def video_name(rec: VideoRecord) -> str:
    """How a video is shown: the file name it was uploaded or indexed under."""
    return str(rec.meta.get("filename") or Path(rec.path).name)


def public_video(rec: VideoRecord) -> dict[str, Any]:
    """A catalogued video as the API shows it (its name, not its path on the server)."""
    d = rec.to_dict()
    del d["path"]
    return {**d, "name": video_name(rec), "thumbnail": f"/api/videos/{rec.id}/thumbnail"}


@dataclass
class Snapshot:
    """One committed state of the catalog, every fragment mapped: later commits cannot change what it reads."""

    catalog: Catalog
    stamp: tuple[int, int, int]  # (inode, mtime_ns, size) of the manifest it was read from
    records: dict[str, VideoRecord]
    _threshold: tuple[float, str] | None = None
    _clustering: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, video_id: str) -> VideoRecord:
        rec = self.records.get(video_id)
        if rec is None:
            raise NotFound(f"no video with id {video_id!r} in the catalog")
        return rec

    def threshold(self) -> tuple[float, str]:
        """The calibrated copy threshold of this state (computed once)."""
        with self._lock:
            if self._threshold is None:
                self._threshold = copy_threshold(self.catalog)
            return self._threshold

    def clustering(self, write_lock: threading.Lock) -> Any:
        """The catalog's interest clusters (tubelet.insights), brought up to date once for this state; fitting
        or assigning new videos saves the clustering into the catalog directory, so it runs as the writer."""
        with self._lock:
            if self._clustering is None:
                with write_lock:
                    self._clustering = current(self.catalog)[0]
            return self._clustering


def _stamp(root: Path) -> tuple[int, int, int]:
    st = (root / MANIFEST).stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


class Service:
    """The catalog behind the server: read snapshots, the embedder, and one writer at a time."""

    def __init__(self, root: Path, media: Path, anomaly: Path | None = None) -> None:
        self.root, self.media = root, media
        self.normal = None
        if anomaly is not None:  # the operator's normal model of a camera (`tubelet anomaly fit`), loaded once
            self.normal = NormalModel.load(anomaly)
        self._snapshot: Snapshot | None = None
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self.write_lock = threading.Lock()  # one writer in this process; the catalog's flock covers others
        self.snapshot()  # fail at start-up, not on the first request, when the catalog is unreadable

    # ---- reading ------------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The latest committed catalog state (re-read only when the manifest was replaced)."""
        with self._lock:
            stamp = _stamp(self.root)  # read before opening: a commit in between only means one more re-read
            if self._snapshot is not None and self._snapshot.stamp == stamp:
                return self._snapshot
            cat = Catalog.open(self.root)  # retries itself when a writer commits while it maps the fragments
            cat.warm()  # builds the search tables now, not on a request
            self._snapshot = Snapshot(cat, stamp, {v.id: v for v in cat.videos()})
            return self._snapshot

    def embedder(self) -> Embedder:
        """The catalog's model, loaded once (and checked to be the one that made the vectors)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = embedder_for(self._snapshot.catalog.model if self._snapshot else
                                              Catalog.open(self.root).model)
            return self._embedder

    def stats(self) -> dict[str, Any]:
        snap = self.snapshot()
        st = snap.catalog.stats()
        model = dict(st["model"])
        if Path(model["source"]).is_absolute():  # a checkpoint on the server: its name only (Hub ids stay whole)
            model["source"] = Path(model["source"]).name
        return {**{k: v for k, v in st.items() if k not in ("catalog", "model")}, "name": self.root.name,
                "model": model}

    def videos(self, offset: int, limit: int, sort: str, text: str) -> dict[str, Any]:
        snap = self.snapshot()
        recs = list(snap.records.values())
        if text:
            recs = [r for r in recs if text.lower() in video_name(r).lower() or r.id.startswith(text.lower())]
        key = {"added": lambda r: r.added_at, "name": lambda r: video_name(r).lower(),
               "duration": lambda r: -r.duration_s}[sort]
        recs.sort(key=key)
        return {"total": len(recs), "offset": offset, "limit": limit,
                "videos": [public_video(r) for r in recs[offset:offset + limit]]}

    def video(self, video_id: str) -> dict[str, Any]:
        return public_video(self.snapshot().record(video_id))

    def segments(self, video_id: str, vectors: bool) -> dict[str, Any]:
        snap = self.snapshot()
        snap.record(video_id)
        seg = snap.catalog.segments([video_id])
        out: dict[str, Any] = {"id": video_id, "segments": [{"start_s": float(a), "end_s": float(b)}
                                                           for a, b in zip(seg.starts, seg.ends, strict=True)]}
        if vectors:
            out["vectors"] = np.round(seg.vectors, 6).tolist()
        return out

    def thumbnail(self, video_id: str, t: float | None, height: int) -> bytes:
        rec = self.snapshot().record(video_id)
        if not Path(rec.path).is_file():
            raise NotFound(f"{video_name(rec)}: the video file is no longer on the server")
        at = rec.duration_s / 2 if t is None else min(max(0.0, t), max(0.0, rec.duration_s - 1e-3))
        return _jpeg(rec.path, round(at, 1), height, rec.content_hash)

    # ---- queries ------------------------------------------------------------------------------------------
    def _hits(self, snap: Snapshot, hits: list[Hit]) -> list[dict[str, Any]]:
        out = []
        for h in hits:
            d = h.to_dict()
            del d["path"]
            rec = snap.records[h.id]
            out.append({**d, "name": video_name(rec),
                        "thumbnail": f"/api/videos/{h.id}/thumbnail?t={h.match.start_s:.1f}"})
        return out

    def similar(self, video_id: str, k: int, start_s: float | None, end_s: float | None) -> dict[str, Any]:
        snap = self.snapshot()
        snap.record(video_id)
        q = id_query(snap.catalog, video_id, start_s, end_s)
        return {**q.to_dict(), "results": self._hits(snap, search(snap.catalog, q, k))}

    def _upload_query(self, snap: Snapshot, up: Upload, job: Job, start_s: float | None,
                      end_s: float | None) -> Query:
        return file_query(snap.catalog, up.path, start_s, end_s, self.embedder(),
                          lambda f: job.report("embedding", f), label=up.name)

    def search_upload(self, up: Upload, job: Job, k: int, start_s: float | None, end_s: float | None,
                      ) -> dict[str, Any]:
        snap = self.snapshot()
        q = self._upload_query(snap, up, job, start_s, end_s)
        job.report("searching", 0.0)
        return {**q.to_dict(), "results": self._hits(snap, search(snap.catalog, q, k))}

    def _copies(self, snap: Snapshot, q: Query, threshold: float | None, min_run: int,
                flag_at: float) -> dict[str, Any]:
        given, source = (threshold, "given") if threshold is not None else snap.threshold()
        report = find_copies(snap.catalog, q, given, min_run, flag_at)
        report.threshold_source = source
        out = report.to_dict()
        return {**out, "spans": [self._public_span(snap, s) for s in out["spans"]]}

    @staticmethod
    def _public_span(snap: Snapshot, span: dict[str, Any]) -> dict[str, Any]:
        """A copied span with its source named (not its path) and a thumbnail of the source where it starts."""
        rec = snap.records[span["id"]]
        out = {k: v for k, v in span.items() if k != "path"}
        return {**out, "name": video_name(rec), "thumbnail": f"/api/videos/{rec.id}/thumbnail?t={span['start_s']:.1f}"}

    def originality_of(self, video_id: str, threshold: float | None, min_run: int, flag_at: float,
                       ) -> dict[str, Any]:
        snap = self.snapshot()
        snap.record(video_id)
        return self._copies(snap, id_query(snap.catalog, video_id), threshold, min_run, flag_at)

    def originality_upload(self, up: Upload, job: Job, threshold: float | None, min_run: int, flag_at: float,
                           ) -> dict[str, Any]:
        snap = self.snapshot()
        q = self._upload_query(snap, up, job, None, None)
        job.report("matching", 0.0)
        return self._copies(snap, q, threshold, min_run, flag_at)

    def analyze_upload(self, up: Upload, job: Job, threshold: float | None, with_catalog: bool,
                       out_dir: Path) -> dict[str, Any]:
        """The pre-publish analysis of an upload (against the catalog unless told not to, or it is empty):
        JSON for the result, report.html kept as the job's file; server paths in both become file names."""
        snap = self.snapshot()
        cat = snap.catalog if with_catalog and len(snap.catalog) else None
        given, source = (threshold, "given") if threshold is not None or cat is None else snap.threshold()
        duration = max(up.info.duration_s, 1e-3)
        analysis, sig = analyze(up.path, cat, given, on_frame=lambda t: job.report("decoding", t / duration),
                                on_catalog_video=lambda i, n: job.report("pacing of catalog videos", i / max(n, 1)))
        analysis.path = up.name
        ids = set()
        if analysis.originality:
            analysis.originality.threshold_source, analysis.originality.query = source, up.name
            ids |= {s.id for s in analysis.originality.spans}
        if analysis.distinctiveness:
            ids.add(analysis.distinctiveness.nearest_id)

        def hide(text: str) -> str:
            for vid in ids:
                text = text.replace(snap.records[vid].path, video_name(snap.records[vid]))
            return up.scrub(text)

        job.report("writing the report", 0.0)
        _, html_path = write_report(analysis, sig, out_dir)
        atomic_write(html_path, hide(html_path.read_text()))
        job.files["report"] = str(html_path)
        out = json.loads(hide(json.dumps(to_json(analysis))))
        if out.get("originality"):
            out["originality"]["spans"] = [self._public_span(snap, s) for s in out["originality"]["spans"]]
        if out.get("distinctiveness"):
            d = out["distinctiveness"]
            d["nearest_name"] = d.pop("nearest_path")
        return out

    # ---- insights ---------------------------------------------------------------------------------------------
    def _named(self, snap: Snapshot, ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": v, "name": video_name(snap.records[v]), "thumbnail": f"/api/videos/{v}/thumbnail"}
                for v in ids if v in snap.records]

    def clusters(self) -> dict[str, Any]:
        snap = self.snapshot()
        clustering = snap.clustering(self.write_lock)
        _, vectors = snap.catalog.video_vectors()
        found, noise = clustering.clusters(clustering.space(vectors))
        info = {k: v for k, v in clustering.info.items() if k != "model_source"}
        return {"clusters": [{**c.to_dict(), "exemplars": self._named(snap, c.exemplars)} for c in found],
                "noise": noise, "fitted": info}

    def recommend(self, liked: list[str], k: int) -> dict[str, Any]:
        snap = self.snapshot()
        for v in liked:
            snap.record(v)
        found = recommend(snap.catalog, snap.clustering(self.write_lock), liked, k)
        return {"liked": liked, "results": [{**{k: v for k, v in r.to_dict().items() if k != "path"},
                                             "name": video_name(snap.records[r.id]),
                                             "thumbnail": f"/api/videos/{r.id}/thumbnail"} for r in found]}

    def trends(self, time_field: str, window: str, period: str | None, now: str | None) -> dict[str, Any]:
        snap = self.snapshot()
        return catalog_trends(snap.catalog, snap.clustering(self.write_lock), time_field, window, period, now)[2]

    def anomaly_upload(self, up: Upload, job: Job, threshold: float | None, out_dir: Path) -> dict[str, Any]:
        """Unusual events in an upload against the server's normal model, with a timeline picture."""
        if self.normal is None:
            raise NotFound("this server has no anomaly model: start it with --anomaly MODEL_DIR")
        thr = self.normal.config.threshold if threshold is None else threshold
        duration = max(up.info.duration_s, 1e-3)
        result = score_source(self.normal, up.path, threshold=thr,
                              on_segment=lambda seg: job.report("scoring", seg.end_s / duration))
        job.report("drawing the timeline", 0.0)
        job.files["timeline"] = str(draw_timeline(result, thr, out_dir / "timeline.png"))
        return {**result.to_dict(), "path": up.name, "threshold": thr, "detectors": result.detectors}

    # ---- writing ------------------------------------------------------------------------------------------
    def add_upload(self, up: Upload, job: Job, meta: dict[str, Any]) -> dict[str, Any]:
        """Embed the upload, keep the file in the media folder, and add it to the catalog in one commit."""
        snap = self.snapshot()
        model = snap.catalog.model
        emb = embed_video(self.embedder(), up.path, EmbedOptions(model.window_s, model.stride_s),
                          progress=lambda f: job.report("embedding", f))
        if emb.id in snap.records:
            return {"added": [], "skipped": [{"id": emb.id, "name": video_name(snap.records[emb.id])}]}
        self.media.mkdir(parents=True, exist_ok=True)
        kept = self.media / f"{emb.id}{up.path.suffix}"
        job.report("adding", 0.0)
        with self.write_lock:
            shutil.copyfile(up.path, kept)
            emb.path = str(kept)
            try:
                added = Catalog.open(self.root).add([emb.to_entry({**meta, "filename": up.name})], emb.model_id)
            except BaseException:
                kept.unlink(missing_ok=True)
                raise
        if not added:  # another writer added the same content meanwhile
            kept.unlink(missing_ok=True)
            return {"added": [], "skipped": [{"id": emb.id, "name": up.name}]}
        return {"added": [{"id": emb.id, "name": up.name}], "skipped": []}

    def remove(self, video_id: str) -> dict[str, Any]:
        rec = self.snapshot().record(video_id)
        with self.write_lock:
            removed = Catalog.open(self.root).remove([video_id])
        if not removed:
            raise NotFound(f"no video with id {video_id!r} in the catalog")
        path = Path(rec.path)
        if path.parent.resolve() == self.media.resolve():  # a file the server itself keeps
            path.unlink(missing_ok=True)
        return {"removed": removed}


@lru_cache(maxsize=1024)
def _jpeg(path: str, t: float, height: int, content_hash: str) -> bytes:
    """A JPEG of the frame on screen at t, `height` pixels high (cached by content, time and size)."""
    if not THUMB_HEIGHTS[0] <= height <= THUMB_HEIGHTS[1]:
        raise UploadError(f"thumbnail height must be in {THUMB_HEIGHTS[0]}–{THUMB_HEIGHTS[1]} pixels, got {height}")
    frames, _ = read_frames_at(path, [t], size=height)
    buf = io.BytesIO()
    Image.fromarray(frames[0].numpy()).save(buf, format="JPEG", quality=82)
    return buf.getvalue()


def remove_tree(path: str | os.PathLike) -> None:
    shutil.rmtree(path, ignore_errors=True)
