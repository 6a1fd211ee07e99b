"""Copy detection: which parts of a video repeat indexed videos, where they come from, and an originality score.

Evidence comes from two channels. The frame fingerprints (fingerprint.py) need no training, so they hold for a
random-init encoder as for official weights; they are matched in both orientations (a mirrored copy matches the
mirrored query). The model's segment embeddings, centred and whitened on the catalog (normalise.py), add their
evidence to sources the fingerprints saw, never alone, and only at query times where the fingerprints lined up
with that source (measured: alone they add chance alignments; a weak model read the footage beside a 3 s insert as
its source and grew the insert's span over the whole query, flagging a partial copy). Each query item fetches its
K nearest catalog items; a pair counts when its similarity exceeds the item's chance level c — the larger of the
catalog's (what the nearest item of *another* catalog video exceeds in 1 % of cases) and the item's best similarity
to its BG_RANK-th most similar video (flat or generic frames resemble everything) — weighted by how far:
w = (sim − c) / (1 − c).
A crop or zoom to 80 % defeats the fingerprints (their frequencies move), so for each source the fingerprints saw,
however weakly, and for the NOMINATE videos the query's fingerprints resemble most on average (a strong crop of a
source lines up with it nowhere above chance, yet resembles it more than any other video: 0.68–0.83 against ≤ 0.61
for the next), the query is also compared with the crop views of the source's stored thumbnails (a GRID×GRID
lattice of 80 % crops, fingerprint.py), against their own chance level (normalise.py): the `crops` channel. Unlike
the model's, it can find a source the fingerprints never lined up with, but only among those few videos.

A copy keeps the order of its source but may play at another speed, so matched pairs (query t, source t) lie on a
line t_src = slope·t_query + offset with slope in [SLOPE_MIN, SLOPE_MAX] (0.75–1.5× speed changes, with room).
For each candidate video and orientation, a Hough vote over (slope, offset) finds the best line; the pairs within
one item spacing of it are its inliers, and lines are taken out one after the other (a compilation can take
several pieces of one source). Inliers closer than MAX_GAP_S in query time form a copied span, followed outward
along its line while the query still matches the source there (`follow`), located in query and source time; its
evidence is the summed weight of its found frames in seconds, E (none unless one item weighs PEAK_MIN, or
CROP_PEAK_MIN for crop views: a run of barely-above-chance frames is what two still look-alike scenes give), and its
score 1 − 2^(−E / E_HALF): 0.5 = E_HALF seconds of perfectly matching frames on one alignment, 0.9 ≈ 3.3·E_HALF. A
(query, catalog video) pair scores like the evidence of all its spans together, so one threshold works across the
catalog.

Spans scoring `min_score` or more count as copied. The share of the query they cover is what it shares with the
catalog; originality = 1 − share, and a video sharing ≥ `flag_at` (70 %) is flagged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tubelet.catalog.fingerprint import FPS, crop_views, mirrored
from tubelet.catalog.normalise import Normalisation
from tubelet.catalog.search import Query
from tubelet.catalog.store import Catalog, VideoRecord
from tubelet.errors import TubeletError

FLAG_AT = 0.7
MIN_SCORE = 0.5  # a span with less evidence is not reported as copied
DEFAULT_THRESHOLD = 0.95  # segment copy threshold when the catalog holds fewer than two videos to calibrate on
BG_RANK = 3  # a query item's own chance level: its best similarity to the 3rd most similar video (so a source
# indexed twice over does not hide itself)
K = 64  # nearest catalog fingerprints per query fingerprint
SLOPE_MIN, SLOPE_MAX = 0.65, 1.6  # source seconds per query second
SLOPES = np.geomspace(SLOPE_MIN, SLOPE_MAX, 37)  # 2.5 % apart: ≤ 0.2 s drift over a 15 s span
MAX_GAP_S = 3.0  # inliers further apart in query time start a new span
MAX_LINES = 4  # alignments taken per (query, video, orientation)
SPEED_PRIOR = 0.05  # line weight × exp(−SPEED_PRIOR·|ln slope|)
E_HALF = 1.0  # seconds of full-weight evidence that score 0.5
PEAK_MIN = 0.35  # a piece counts as evidence only if one of its items has at least this weight: static look-alikes
# (two still indoor scenes) line up frame after frame at weights of 0.2-0.3 and summed to a copy; the weakest true
# copy in the benchmark's seeds 2-5 peaks at 0.63
NOMINATE = 2  # videos, besides those the fingerprints saw, whose crop views a query is compared with
CROP_PEAK_MIN = 0.6  # the same for crop views, which give each query frame GRID² tries at a still source: a dashcam
# road reached 0.48 against a plaza's views, while every strong crop the crop views alone found peaked at ≥ 0.85


@dataclass(frozen=True)
class CopiedSpan:
    """Query seconds [query_start_s, query_end_s) repeat [start_s, end_s) of catalog video `id`."""

    query_start_s: float
    query_end_s: float
    id: str
    path: str
    start_s: float
    end_s: float
    score: float  # in [0, 1]: 1 − 2^(−evidence / E_HALF)
    segments: int  # matching fingerprints along the span
    speed: float = 1.0  # source seconds per query second
    mirrored: bool = False
    evidence_s: float = 0.0


@dataclass(frozen=True)
class SourceScore:
    """How strongly the query copies one catalog video (all its spans together), in [0, 1]."""

    id: str
    path: str
    score: float
    copied_s: float


@dataclass
class CopyReport:
    query: str
    duration_s: float
    compared_s: float  # the part of the query that was fingerprinted
    threshold: float  # segment similarity of a copy (raw cosine; `analyze` finds repeats with it)
    threshold_source: str  # "catalog" (calibrated), "default" or "given"
    copied_s: float
    share: float  # copied_s / compared_s, in [0, 1]
    flag_at: float
    spans: list[CopiedSpan] = field(default_factory=list)
    sources: list[SourceScore] = field(default_factory=list)  # every catalog video with evidence, best first
    frame_chance: float = 1.0
    min_score: float = MIN_SCORE

    @property
    def originality(self) -> float:
        return 1.0 - self.share

    @property
    def flagged(self) -> bool:
        return self.share >= self.flag_at

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k not in ("spans", "sources")},
                "originality": self.originality, "flagged": self.flagged, "spans": [asdict(s) for s in self.spans],
                "sources": [asdict(s) for s in self.sources]}


@dataclass(frozen=True)
class Run:
    """Query indices first…last matching catalog indices first+offset…last+offset, with their mean similarity."""

    first: int
    last: int
    offset: int
    score: float


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


def diagonal_runs(sim: np.ndarray, threshold: float, min_run: int, min_offset: int | None = None) -> list[Run]:
    """Every run of ≥ min_run consecutive entries ≥ threshold along every diagonal j = i + o of sim [Q, S]
    (only o ≥ min_offset when given)."""
    q, s = sim.shape
    found = []
    for o in range(-(q - 1) if min_offset is None else min_offset, s):
        i = np.arange(max(0, -o), min(q, s - o))
        d = sim[i, i + o]
        found += [Run(int(i[a]), int(i[b - 1]), o, float(d[a:b].mean())) for a, b in runs(d >= threshold, min_run)]
    return found


def best_runs(found: list[Run]) -> list[Run]:
    """The longest, then most similar, runs whose query ranges do not overlap: still or slow content also
    matches one stride off its true alignment."""
    kept: list[Run] = []
    for run in sorted(found, key=lambda r: (r.first - r.last, -r.score)):
        if all(run.last < k.first or run.first > k.last for k in kept):
            kept.append(run)
    return kept


def copy_threshold(catalog: Catalog, threshold: float | None = None) -> tuple[float, str]:
    """(segment threshold, where it comes from): the given one, else calibrated on the catalog, else the default."""
    if threshold is not None:
        if not -1 <= threshold <= 1:
            raise TubeletError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        return float(threshold), "given"
    norm = catalog.normalisation()
    return (norm.raw_segment_chance, "catalog") if norm is not None else (DEFAULT_THRESHOLD, "default")


def score_of(evidence_s: float | np.ndarray) -> float | np.ndarray:
    """Evidence in seconds of full-weight matching → a score in [0, 1)."""
    return 1.0 - np.exp2(-np.asarray(evidence_s) / E_HALF)


@dataclass
class Pairs:
    """Matched (query fingerprint, catalog fingerprint) pairs of one catalog video in one orientation."""

    query_t: np.ndarray
    source_t: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Line:
    """An alignment t_src = slope·t_query + offset and its inliers (one per query fingerprint)."""

    slope: float
    offset: float
    query_t: np.ndarray
    weight: np.ndarray


def hough_line(p: Pairs, spacing: float) -> Line | None:
    """The best alignment of the pairs: for each slope, a Hough vote over offsets (bins of two spacings, two
    staggered grids; each query instant counted once per bin) proposes an offset, refined to the median offset of
    each query instant's best pair near it; the slope whose line gathers the most weight within half a spacing
    wins (times a mild prior for 1×, as a still shot fits many slopes). Its inliers are the best pair of each
    query instant on it."""
    if len(np.unique(p.query_t)) < 2:
        return None
    qkey = np.floor(p.query_t / spacing).astype(np.int64)  # query instants lie half a spacing off the grid
    best: tuple[float, float, float] = (0.0, 1.0, 0.0)
    for slope in SLOPES:
        off = p.source_t - slope * p.query_t
        centre, votes = 0.0, 0.0
        for shift in (0.0, 0.5):
            bins = np.floor(off / (2 * spacing) + shift).astype(np.int64)
            ub, inv = np.unique(bins, return_inverse=True)
            top = _best_per_instant(inv, qkey, p.weight)
            v = np.bincount(inv[top], weights=p.weight[top], minlength=len(ub))
            j = int(np.argmax(v))
            if v[j] > votes:
                votes, centre = float(v[j]), float((ub[j] - shift + 0.5) * 2 * spacing)
        near = np.flatnonzero(np.abs(off - centre) <= 2 * spacing)
        if not len(near):
            continue
        offset = float(np.median(off[near][_best_per_instant(np.zeros(len(near), np.int64), qkey[near],
                                                              p.weight[near])]))
        on = np.flatnonzero(np.abs(off - offset) <= spacing / 2)
        fine = p.weight[on][_best_per_instant(np.zeros(len(on), np.int64), qkey[on], p.weight[on])].sum()
        fine *= np.exp(-SPEED_PRIOR * abs(np.log(slope)))
        if fine > best[0]:
            best = (float(fine), float(slope), offset)
    _, slope, offset = best
    if best[0] <= 0:
        return None
    inl = np.flatnonzero(np.abs(p.source_t - slope * p.query_t - offset) <= spacing)
    top = inl[_best_per_instant(np.zeros(len(inl), np.int64), qkey[inl], p.weight[inl])]
    order = np.argsort(p.query_t[top], kind="stable")
    return Line(slope, offset, p.query_t[top][order], p.weight[top][order])


def _best_per_instant(group: np.ndarray, instant: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Indices of the heaviest entry of each (group, query instant)."""
    order = np.lexsort((-weight, instant, group))
    first = np.ones(len(order), bool)
    first[1:] = (group[order][1:] != group[order][:-1]) | (instant[order][1:] != instant[order][:-1])
    return order[first]


def lines_of(p: Pairs, spacing: float, min_evidence: float) -> list[Line]:
    """Alignments taken out one after the other while one still carries `min_evidence` seconds."""
    found = []
    for _ in range(MAX_LINES):
        line = hough_line(p, spacing)
        if line is None or line.weight.sum() * spacing < min_evidence:
            break
        found.append(line)
        rest = ~np.isin(p.query_t, line.query_t)
        p = Pairs(p.query_t[rest], p.source_t[rest], p.weight[rest])
    return found


@dataclass
class Matches:
    """One query view's matched pairs (query row, catalog row, weight), and for each query row its own chance level
    and its best similarity to each catalog video [Q, V] (columns in the order videos come in the rows)."""

    qi: np.ndarray
    ci: np.ndarray
    weight: np.ndarray
    chance: np.ndarray  # [Q] best similarity to the BG_RANK-th most similar video (−1 with fewer videos)
    per_video: np.ndarray


def match_pairs(queries: list[np.ndarray], vectors: np.ndarray, video: np.ndarray, chance: float, k: int = K,
                ) -> list[Matches]:
    """For each query view [Q, D]: the pairs of its k nearest catalog rows that stand out.

    A pair stands out by how far its similarity exceeds the query item's own chance level c: the larger of the
    catalog's `chance` and the item's best similarity to the BG_RANK-th most similar catalog video (what an
    unrelated video reaches for this very item: flat or generic frames resemble everything); weight =
    (sim − c) / (1 − c)."""
    out = []
    k = min(k, len(vectors))
    blocks = np.flatnonzero(np.diff(video, prepend=-1))  # rows come grouped by video
    for view in queries:
        sim = view @ vectors.T  # [Q, N]
        per_video = np.maximum.reduceat(sim, blocks, axis=1) if len(blocks) else sim[:, :0]
        own = np.full(len(sim), -1.0, np.float32)
        if per_video.shape[1] >= BG_RANK:
            own = -np.partition(-per_video, BG_RANK - 1, axis=1)[:, BG_RANK - 1]
        c = np.maximum(own, chance)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else np.tile(np.arange(k), (len(sim), 1))
        s = np.take_along_axis(sim, top, 1)
        qi, col = np.nonzero(s > c[:, None])
        out.append(Matches(qi, top[qi, col], (s[qi, col] - c[qi]) / (1 - c[qi]), own, per_video))
    return out


def follow(first: int, last: int, line: Line, query_t: np.ndarray, sim: np.ndarray, times: np.ndarray,
           floor: np.ndarray, spacing: float) -> tuple[int, int]:
    """Query rows first…last of a copied piece, grown outward row by row while the query still matches the source
    where the line puts it.

    Found pairs must beat the catalog's chance level, the best a frame reaches anywhere in another video; once the
    line is known, a frame is compared with one place of one video, so less similarity can tell (a copy at 0.75×
    samples its source between fingerprints, and its fast-moving frames fall just under the catalog's level). A
    row's similarity there (its best to a source item within one spacing of slope·t + offset) is taken as the
    copy's when it lies nearer the piece's own (the median over first…last) than the row's `floor` (what it
    reaches without copying: its chance level, its best similarity to every other catalog video)."""
    near = np.abs(times[None, :] - (line.slope * query_t[:, None] + line.offset)) <= spacing  # [Q, S]
    here = np.where(near, sim, -np.inf).max(1, initial=-np.inf)
    ok = here > (floor + np.median(here[first:last + 1])) / 2
    step = 1.5 * spacing  # consecutive query rows (fingerprints can be missing where a frame was not decoded)
    while first > 0 and ok[first - 1] and query_t[first] - query_t[first - 1] <= step:
        first -= 1
    while last < len(query_t) - 1 and ok[last + 1] and query_t[last + 1] - query_t[last] <= step:
        last += 1
    return first, last


@dataclass
class Channel:
    """One kind of evidence: query items (times, one or more views) against catalog items of the same kind."""

    name: str  # "frames" (fingerprints), "crops" (crop views of a few sources) or "segments" (the model, whitened)
    spacing: float  # seconds between consecutive items
    chance: float
    query_t: np.ndarray
    views: list[np.ndarray]  # [Q, D] each; odd views (when there) are the mirror image of the one before
    ids: list[str]
    video: np.ndarray
    times: np.ndarray
    vectors: np.ndarray
    floor: float = -1.0  # the least of every row's floor (`follow`): crops compare a query with the views of the
    # few sources only (seen or nominated), so what a row reaches in other videos' views is their chance level
    peak: float = PEAK_MIN  # the weight one item of a piece must reach for the piece to count


def normalisation_of(catalog: Catalog) -> Normalisation:
    """The catalog's normalisation, or while it holds one video (nothing to measure chance against) the stand-in
    with fixed chance levels, so a copy of that one video is still found."""
    return catalog.normalisation() or Normalisation.alone(catalog.model.dim, DEFAULT_THRESHOLD)


def channels_of(catalog: Catalog, query: Query, names: tuple[str, ...]) -> list[Channel]:
    """The evidence channels of a query against the catalog, the query video itself left out."""
    if not len(catalog):
        return []
    norm = normalisation_of(catalog)
    out = []
    if "frames" in names and len(query.fp_times):
        f = catalog.frames()
        readings = [np.asarray(v, np.float32) for v in (query.fp_vectors, query.fp_alt, query.fp_local) if len(v)]
        out.append(Channel("frames", 1.0 / FPS, norm.frame_chance, query.fp_times,
                           [w for v in readings for w in (v, mirrored(v))], f.ids, f.video,
                           f.times, f.vectors))
    if "segments" in names:
        s = catalog.segments()
        out.append(Channel("segments", catalog.model.stride_s, norm.segment_chance, (query.starts + query.ends) / 2,
                           [norm.transform(query.vectors)], s.ids, s.video, (s.starts + s.ends) / 2,
                           s.vectors if (v := catalog.normalised_segments()) is None else v))
    for c in out:
        if query.exclude in c.ids:
            keep = c.video != c.ids.index(query.exclude)
            c.video, c.times, c.vectors = c.video[keep], c.times[keep], c.vectors[keep]
    return out


def crop_channel(catalog: Catalog, frames: Channel, seen: list[str]) -> Channel | None:
    """The crop views of the catalog videos `seen` (those with thumbnails), to compare the query's fingerprint views
    with; None when none has them or the catalog has no crop chance level."""
    norm = normalisation_of(catalog)
    if norm.crop_chance >= 1.0:
        return None
    thumbs = catalog.thumbs(seen)
    if not thumbs:
        return None
    ids, video, times, vectors = [], [], [], []
    for j, vid in enumerate(thumbs):
        t = catalog.frames([vid]).times
        views = crop_views(thumbs[vid])  # [GRID², F, DIM]
        ids.append(vid)
        video.append(np.full(views.shape[0] * views.shape[1], j))
        times.append(np.tile(t[:views.shape[1]], views.shape[0]))
        vectors.append(views.reshape(-1, views.shape[-1]))
    return Channel("crops", frames.spacing, norm.crop_chance, frames.query_t, frames.views, ids,
                   np.concatenate(video), np.concatenate(times), np.concatenate(vectors), norm.crop_chance,
                   CROP_PEAK_MIN)


def _column_videos(video: np.ndarray) -> np.ndarray:
    """The video of each `Matches.per_video` column (rows come grouped by video)."""
    return video[np.flatnonzero(np.diff(video, prepend=-1))]


def _nominated(frames: Channel, resemblance: list[np.ndarray]) -> list[str]:
    """The NOMINATE videos the query's fingerprints resemble most (`resemblance`: per view, the mean over query
    items of the best similarity to each video; the best view counts)."""
    if not resemblance:
        return []
    top = np.argsort(-np.max(resemblance, 0), kind="stable")[:NOMINATE]
    return [frames.ids[j] for j in _column_videos(frames.video)[top]]


def _then_crops(found: list[Channel], catalog: Catalog, seen: dict[str, list[np.ndarray]],
                resemblance: list[np.ndarray], crops: bool) -> Iterator[Channel]:
    """The channels in order, with the crop views of the sources the fingerprints saw and of the NOMINATE videos
    they resemble most right after the fingerprints (built once those have been matched, from what they found)."""
    for ch in found:
        yield ch
        if ch.name == "frames" and crops:
            extra = crop_channel(catalog, ch, sorted(set(seen) | set(_nominated(ch, resemblance))))
            if extra is not None:
                yield extra


CHANNELS = ("frames", "crops", "segments")  # benchmarks/copy_detection.py measures them alone and together


def find_copies(catalog: Catalog, query: Query, threshold: float | None = None, min_run: int = 2,
                flag_at: float = FLAG_AT, min_score: float = MIN_SCORE,
                channels: tuple[str, ...] = CHANNELS) -> CopyReport:
    """Copied spans of `query` with their sources, each source's score, and the share of the query covered."""
    if min_run < 1:
        raise TubeletError(f"min_run must be at least 1, got {min_run}")
    if not 0 < flag_at <= 1:
        raise TubeletError(f"flag_at must be in (0, 1], got {flag_at}")
    if not 0 <= min_score < 1:
        raise TubeletError(f"min_score must be in [0, 1), got {min_score}")
    threshold, source = copy_threshold(catalog, threshold)
    duration = float(query.ends[-1] - query.starts[0])
    compared = float(len(query.fp_times) / FPS) if len(query.fp_times) else duration
    report = CopyReport(query.label, duration, compared, float(threshold), source, 0.0, 0.0, flag_at,
                        frame_chance=normalisation_of(catalog).frame_chance, min_score=min_score)
    min_evidence = -E_HALF * np.log2(1 - min_score) if min_score > 0 else 0.0
    records: dict[str, VideoRecord] = {}  # of the videos with evidence, read as they turn up
    spans: list[CopiedSpan] = []
    evidence: dict[tuple[str, str], float] = {}  # (channel, video id) → seconds
    seen: dict[str, list[np.ndarray]] = {}  # video → query times where the fingerprints (frames, crops) lined up
    # with it at all: the crop views are compared with these videos, the model's segments only at these times
    resemblance: list[np.ndarray] = []  # per fingerprint view: its mean best similarity to each video (`_nominated`)
    found = channels_of(catalog, query, channels)
    for ch in _then_crops(found, catalog, seen, resemblance, "crops" in channels):
        column = _column_videos(ch.video)
        for view, m in enumerate(match_pairs(ch.views, ch.vectors, ch.video, ch.chance)):
            if ch.name == "frames":
                resemblance.append(m.per_video.mean(0))
            for j in np.unique(ch.video[m.ci]):
                mine = ch.video[m.ci] == j
                vid = ch.ids[j]
                if ch.name == "segments" and found[0].name == "frames" and vid not in seen:
                    continue  # the model's evidence adds to a source the fingerprints saw, never stands alone
                if vid not in records:
                    records[vid] = catalog.video(vid)
                rec = records[vid]
                rows = ch.video == j
                sim = ch.views[view] @ ch.vectors[rows].T  # [Q, items of this video]
                if ch.name == "segments" and vid in seen:  # and only where they saw it: segments of unrelated
                    # footage beside a short insert can resemble the source to a weak model, and grow its span
                    blind = (np.abs(ch.query_t[:, None] - np.concatenate(seen[vid])[None]) > 1 / FPS).all(1)
                    mine &= ~blind[m.qi]
                    sim[blind] = -np.inf
                floor = np.maximum(np.maximum(m.chance, ch.floor), m.per_video[:, column != j].max(1, initial=-1.0))
                for line in lines_of(Pairs(ch.query_t[m.qi[mine]], ch.times[m.ci[mine]], m.weight[mine]),
                                     ch.spacing, min_evidence / 4):
                    for a, b in _pieces(line.query_t, MAX_GAP_S):
                        if b - a < min_run:
                            continue
                        if ch.name != "segments":
                            seen.setdefault(vid, []).append(line.query_t[a:b])
                        if line.weight[a:b].max() < ch.peak:
                            continue
                        e = float(line.weight[a:b].sum() * ch.spacing)
                        evidence[ch.name, vid] = evidence.get((ch.name, vid), 0.0) + e
                        if e < min_evidence:
                            continue
                        first, last = follow(*np.searchsorted(ch.query_t, line.query_t[[a, b - 1]]), line, ch.query_t,
                                             sim, ch.times[rows], floor, ch.spacing)
                        q0 = float(ch.query_t[first] - ch.spacing / 2)
                        q1 = float(ch.query_t[last] + ch.spacing / 2)
                        s0, s1 = (float(np.clip(line.slope * t + line.offset, 0, rec.duration_s)) for t in (q0, q1))
                        spans.append(CopiedSpan(q0, q1, vid, rec.path, s0, s1, float(score_of(e)), b - a,
                                                float(line.slope), bool(view % 2), e))
    spans = sorted(_distinct(spans), key=lambda s: (s.query_start_s, -s.score))
    best: dict[str, float] = {}
    for (_, vid), e in evidence.items():
        best[vid] = max(best.get(vid, 0.0), e)
    report.spans = spans
    report.sources = sorted((SourceScore(v, records[v].path, float(score_of(e)), covered_seconds(
        [(s.query_start_s, s.query_end_s) for s in spans if s.id == v])) for v, e in best.items()),
        key=lambda s: -s.score)
    report.copied_s = covered_seconds([(s.query_start_s, s.query_end_s) for s in spans])
    report.share = min(1.0, report.copied_s / compared) if compared > 0 else 0.0
    return report


def _distinct(spans: list[CopiedSpan]) -> list[CopiedSpan]:
    """The spans, best first, less those that mostly repeat a better one of the same source (the same copy seen
    by both channels)."""
    kept: list[CopiedSpan] = []
    for s in sorted(spans, key=lambda s: -s.score):
        length = s.query_end_s - s.query_start_s
        if all(k.id != s.id or min(k.query_end_s, s.query_end_s) - max(k.query_start_s, s.query_start_s)
               < 0.5 * length for k in kept):
            kept.append(s)
    return kept


def _pieces(t: np.ndarray, max_gap: float) -> list[tuple[int, int]]:
    """[a, b) index ranges of sorted times split where consecutive ones are more than max_gap apart."""
    cuts = np.flatnonzero(np.diff(t) > max_gap) + 1
    edges = [0, *cuts.tolist(), len(t)]
    return list(zip(edges[:-1], edges[1:], strict=True))
