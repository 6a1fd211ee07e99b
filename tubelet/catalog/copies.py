"""Copy detection: which parts of a video repeat indexed videos, where they come from, and an originality score.

A query segment is *copied* from a catalog segment when their cosine similarity reaches the copy threshold. By
default the threshold is calibrated on the catalog itself: the 99th percentile, over a sample of catalog
segments, of each one's similarity to its nearest segment of a *different* video — a copy is closer to its
source than different indexed videos are to one another. This adapts to the model (a random-init encoder puts
unrelated clips at 0.95+, a trained one far lower); a catalog holding many duplicates of its own raises it, and
`threshold=` fixes it by hand.

A copied span is a run of ≥ `min_run` consecutive query segments matching consecutive segments of one catalog
video at a constant offset (a diagonal of the [query × video] similarity matrix): copies keep their order and
speed, chance look-alikes do not line up. The share of the query covered by such spans (of its part on the
window grid: all but an end tail shorter than one stride) is what it shares with the catalog;
originality = 1 − share, and a video sharing ≥ `flag_at` (70 %) is flagged.
Edits that change speed or mirror the picture are out of scope.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tubelet.catalog.search import Query, on_grid
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError

FLAG_AT = 0.7
DEFAULT_THRESHOLD = 0.95  # when the catalog holds fewer than two videos to calibrate on


@dataclass(frozen=True)
class CopiedSpan:
    """Query seconds [query_start_s, query_end_s) repeat [start_s, end_s) of catalog video `id`."""

    query_start_s: float
    query_end_s: float
    id: str
    path: str
    start_s: float
    end_s: float
    score: float  # mean similarity along the run
    segments: int


@dataclass
class CopyReport:
    query: str
    duration_s: float
    compared_s: float  # the part on the stride grid (all but an end tail shorter than one stride)
    threshold: float
    threshold_source: str  # "catalog" (calibrated), "default" or "given"
    copied_s: float
    share: float  # copied_s / compared_s, in [0, 1]
    flag_at: float
    spans: list[CopiedSpan] = field(default_factory=list)

    @property
    def originality(self) -> float:
        return 1.0 - self.share

    @property
    def flagged(self) -> bool:
        return self.share >= self.flag_at

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "spans"}, "originality": self.originality,
                "flagged": self.flagged, "spans": [asdict(s) for s in self.spans]}


def calibrate_threshold(catalog: Catalog, quantile: float = 0.99, sample: int = 2000, seed: int = 0) -> float | None:
    """The `quantile` of catalog segments' similarity to their nearest segment of another video (None with
    fewer than two videos)."""
    seg = catalog.segments()
    if len(seg.ids) < 2:
        return None
    rows = np.random.default_rng(seed).permutation(len(seg.keys))[:sample]
    keys, sims = catalog.nearest(seg.vectors[rows], 32)
    owners = catalog.videos_of_keys(keys)
    own = np.asarray(seg.ids, dtype=object)[seg.video[rows]]
    other = (owners != own[:, None]) & (owners != None)  # noqa: E711 (elementwise on an object array)
    found = other.any(1)
    if not found.any():
        return None
    best = sims[found, other[found].argmax(1)]  # sims are sorted: the first other-video column is the nearest
    return float(np.quantile(best, quantile))


def runs(hits: np.ndarray, min_run: int) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the runs of ≥ min_run consecutive True values in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], hits.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b - a >= min_run]


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def copy_threshold(catalog: Catalog, threshold: float | None = None) -> tuple[float, str]:
    """(threshold, where it comes from): the given one, else calibrated on the catalog, else the default."""
    if threshold is not None:
        if not -1 <= threshold <= 1:
            raise TubeletError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        return float(threshold), "given"
    calibrated = calibrate_threshold(catalog)
    return (calibrated, "catalog") if calibrated is not None else (DEFAULT_THRESHOLD, "default")


Run = tuple[int, int, int, float]  # first and last query index, offset (catalog index = query index + o), mean sim


def diagonal_runs(sim: np.ndarray, threshold: float, min_run: int, min_offset: int | None = None) -> list[Run]:
    """Every run of ≥ min_run consecutive entries ≥ threshold along every diagonal j = i + o of sim [Q, S]
    (only o ≥ min_offset when given)."""
    q, s = sim.shape
    found = []
    for o in range(-(q - 1) if min_offset is None else min_offset, s):
        i = np.arange(max(0, -o), min(q, s - o))
        d = sim[i, i + o]
        found += [(int(i[a]), int(i[b - 1]), o, float(d[a:b].mean())) for a, b in runs(d >= threshold, min_run)]
    return found


def best_runs(found: list[Run]) -> list[Run]:
    """The longest, then most similar, runs whose query ranges do not overlap: still or slow content also
    matches one stride off its true alignment."""
    kept: list[Run] = []
    for run in sorted(found, key=lambda r: (r[0] - r[1], -r[3])):
        if all(run[1] < k[0] or run[0] > k[1] for k in kept):
            kept.append(run)
    return kept


def find_copies(catalog: Catalog, query: Query, threshold: float | None = None, min_run: int = 2,
                flag_at: float = FLAG_AT, k: int = 32) -> CopyReport:
    """Copied spans of `query` with their sources, and the share of the query they cover."""
    if min_run < 1:
        raise TubeletError(f"min_run must be at least 1, got {min_run}")
    if not 0 < flag_at <= 1:
        raise TubeletError(f"flag_at must be in (0, 1], got {flag_at}")
    threshold, source = copy_threshold(catalog, threshold)
    stride = catalog.model.stride_s
    grid = on_grid(query.starts, stride)  # index offsets are time offsets on the stride grid
    q_starts, q_ends, q_vecs = query.starts[grid], query.ends[grid], query.vectors[grid]
    duration, compared = float(query.ends[-1] - query.starts[0]), float(q_ends[-1] - q_starts[0])
    min_run = min(min_run, len(q_starts))

    spans: list[CopiedSpan] = []
    if len(catalog):
        keys, sims = catalog.nearest(q_vecs, k)
        owners = catalog.videos_of_keys(keys)
        candidates = sorted({v for v in owners[sims >= threshold] if v is not None and v != query.exclude})
        seg = catalog.segments(candidates)
        records = {v.id: v for v in catalog.videos(candidates)}
        for j, vid in enumerate(seg.ids):
            rows = seg.video == j
            keep = on_grid(seg.starts[rows], stride)
            starts, ends, vecs = seg.starts[rows][keep], seg.ends[rows][keep], seg.vectors[rows][keep]
            sim = q_vecs @ vecs.T  # [Q, S]
            for a, b, o, score in best_runs(diagonal_runs(sim, threshold, min_run)):
                spans.append(CopiedSpan(float(q_starts[a]), float(q_ends[b]), vid, records[vid].path,
                                        float(starts[a + o]), float(ends[b + o]), score, b - a + 1))
    spans.sort(key=lambda s: (s.query_start_s, -s.score))
    copied = covered_seconds([(s.query_start_s, s.query_end_s) for s in spans])
    share = min(1.0, copied / compared) if compared > 0 else 0.0
    return CopyReport(query.label, duration, compared, float(threshold), source, copied, share, flag_at, spans)
