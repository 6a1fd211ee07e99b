"""How alike two catalog videos are, from the moments they share: the affinity interest clusters are found in.

Uploads of one interest are mostly excerpts and light re-edits of the same footage, so two of them often show the
same moments even when their pooled video vectors differ (other excerpt times, a crop, a grade, a caption bar, a
9:16 re-frame), and a barely trained encoder's pooled vector mixes the interest with the re-edit (benchmarks/
trends.py: k-means told the number of topics reaches ARI 0.56–0.63 on those vectors). Three channels compare two
videos item by item and keep their best-matching pair (set-to-set best match):

- `frames`: the catalog's frame fingerprints (fingerprint.py: model-free, robust to grades, captions and low
  resolution), taken as pairs of consecutive fingerprints (0.5 s apart, concatenated), so a match is two moments
  in a row, not one frame that happens to look alike; both orientations (a mirrored re-upload). Whole frames of
  two shapes cannot match: a portrait video (narrower than 3:4, as a 9:16 re-post is) is compared with a landscape
  one through the landscape one's whole-height 9:16 column views (COLUMNS positions across the frame), and those
  similarities are standardised apart (`columns` statistics: they run on another scale than whole frames').
  Before, only the crops channel's upper column views linked a re-post to its footage (benchmarks/trends.py, the
  sixteen seen streams: same-topic pairs overlapping ≥ 2 s of which one is re-framed, frames z median 1.10, lower
  quartile 0.43, against a median of 2.39 where neither is; with the columns 1.36 and 0.99).
- `crops`: the pairs of the frames' upper parts against the same parts of the crop views of the other video's
  stored thumbnails (the DCT fingerprint does not survive an 80 % crop, its crop views do; fingerprint.py
  `crop_views`), in both directions; for each video only against its CANDIDATES nearest by the other two channels
  and a seeded sample of SAMPLE others (the sample standardises the channel). Upper parts because a caption bar
  covers the lower third of every crop view: with whole views, the channel matched a topic's captioned uploads
  to each other and to other topics' captioned ones rather than to the topic (benchmarks/trends.py, the ten seen
  streams: same-topic pairs of which one is captioned, median z 0.48 vs 0.9–1.4 for the other re-edits; captioned
  pairs of different topics, 95th percentile 0.98 vs 0.28 overall; upper parts: 1.23 and 0.39).
- `segments`: the model's segment vectors in the clustering's space (space.py: centred, whitened with a floor fit
  for small catalogs; the catalog's own normalisation for search flattened the groups of a small catalog).
- `colours`: the colour histograms of the fingerprinted frames (fingerprint.py; Bhattacharyya coefficient). The
  three channels above are grey or the barely trained model's: the scenes of a clip with cuts share no moment and
  look unlike each other in grey, but often keep one palette, while two low-texture footages (a white text page, a
  screen recording) that look alike in grey and to the model differ in colour. Added as a fourth channel of equal
  weight (benchmarks/trends.py, demo checkpoint, the ten streams seen, offline on their catalogs: ARI 0.752–0.961,
  mean 0.850 → 0.827–0.973, mean 0.879; eight higher, two lower by 0.009 and 0.001). A colour grade (a gain,
  brightness and contrast per channel) moves a histogram far (same-topic pairs of which one is graded: median z 0.9,
  1.8–2.0 for the other re-edits), so each frame is also compared by the histogram of its pixels' per-channel
  ranks (fingerprint.ranked_histograms, which a grade that is monotone in each channel leaves nearly as it was),
  and a pair keeps the better of the two matches, like the mirrored view of the frames (the fourteen streams seen,
  offline: mean ARI 0.906 → 0.923, lowest 0.711 → 0.816; ranks alone 0.911, lowest 0.811).

Raw similarities mean different things for different videos (a static, low-texture shot resembles much), so each
channel is standardised per video: z = (s − median) / (1.4826·MAD) over the video's similarities to the others (for
crops: to its sample). A pair's z is the smaller of its two videos' (each must find the other unusual), and the
affinity is the weighted mean of the channels' z over those both videos have (crops count 0 outside the pairs
compared), weighted by WEIGHTS: the segments a quarter, the others 1. The barely trained demo encoder's segments find
look-alikes more than shared footage: two white screen recordings, a clay ad's title card and a montage's text page
match each other there as strongly as their own uploads do (benchmarks/trends.py, demo checkpoint, eleven streams
offline on their catalogs, mean over three crop samples: ARI 0.879 at weight 1, 0.899 at 0.25, 0.920 at 0 on one
sample; at 0.25, eight streams higher or level — seed 13 0.80 → 0.89 — and three lower by 0.01–0.02). They keep a
quarter weight rather than none: a trained encoder's segments carry what the others miss.
The look-alike channels — colours and the segments, which also match footage that only looks alike — count at most
LOOK_ALIKE past what the shared-footage channels (frames, crops: the better of the two) show for the pair. A white
title card and a white screen recording share a palette and, to a barely trained model, a look (benchmarks/trends.py,
seed 19: colours z 5–6, segments 3.6, frames 0.4–1.8 between the clay ad's title card and the screen recording), and
such pairs bridged two topics into one cluster. It is a trade: the scenes of a montage are held together by their
palette where their pictures share nothing, and the cap loosens that too (benchmarks/trends.py, nineteen streams
indexed offline with the demo checkpoint, mean over three crop samples: ARI 0.895 → 0.913; seed 6 0.807 → 0.938,
seed 7 0.689 → 0.825, seed 16 0.755 → 0.772, seed 13 0.892 → 0.912, none lower by more than 0.006; with the
random-init vit_tiny, seed 6 0.857 → 0.929 but seed 13 0.887 → 0.816, a montage joining the screen recording).
Capped at 0, 0.5, 2 or 3 the mean moved by 0.006 or less (one crop sample).
Distances for HDBSCAN are exp(−affinity / SCALE): any decreasing map gives the same hierarchy (the clusters chosen
from it barely moved between the maps tried). The pooled video vector as a fourth channel lowered the ARI on two
of the three benchmark streams it was tried on (it brings back the re-edit look the other channels are blind to).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

import numpy as np

from tubelet.catalog.fingerprint import (
    COLOURS,
    PATCH,
    crop_boxes,
    mirrored,
    part_views,
    ranked_histograms,
    split_readings,
)
from tubelet.catalog.fingerprint import DIM as FP_DIM
from tubelet.catalog.store import Catalog

CHANNELS = ("frames", "crops", "segments", "colours")
STATISTICS = (*CHANNELS, "columns")  # what a video's statistics are kept of: the channels, and the frames channel's
# portrait-to-column matches apart (their similarities run on another scale than whole frames')
VERSION = 5  # of what the channels compare, recorded by a clustering fitted on the affinity: one fitted on another
# is stale (its stored statistics are of other similarities). 1: colours without their ranks; 2: frames without
# the 9:16 columns; 3: the segments channel weighing as much as each other channel; 4: the look-alike channels
# uncapped (LOOK_ALIKE)
WEIGHTS = {"frames": 1.0, "crops": 1.0, "segments": 0.25, "colours": 1.0}  # of each channel in the mean: the
# segments a quarter (see the module's docstring)
LOOK_ALIKE = 1.0  # the look-alike channels (colours, segments) count at most this much z past the better of the
# shared-footage ones (frames, crops): see the module's docstring
MAX_PAIRS = 8  # fingerprint pairs kept per video (evenly spread): long videos stay as cheap as short ones
MAX_SEGMENTS = 8  # segment vectors kept per video (evenly spread)
CANDIDATES = 24  # videos each video's crop views are compared with, nearest by frames and segments
SAMPLE = 48  # and a seeded sample of others, whose similarities standardise the crops channel
SCALE = 4.0  # distance = exp(−affinity / SCALE)
MAD = 1.4826  # MAD of a normal distribution, in standard deviations
MIN_MAD = 0.02  # floor of a video's MAD (cosines; a catalog's are ~0.1–0.2): a few near-equal similarities do not
# turn a small difference into a huge z
CHUNK = 2048  # query items per matrix product
CELLS = CHUNK * 16_384  # at most this many similarities per matrix product (against many items, fewer query items)
UPPER = 0.6  # the upper part of a frame, above where caption bars and subtitles go
COLUMNS = 17  # positions of the 9:16 columns a landscape video's crop views and column views include (9: a
# re-frame up to 1/16 of the width off the nearest, and the columns of the frames channel matched less)


@dataclass
class Items:
    """Comparable items of some videos: vectors [M, D], and each item's video [M] (ascending: one block per video;
    a video may have none)."""

    vectors: np.ndarray
    owner: np.ndarray
    videos: int

    def of(self, video: int) -> np.ndarray:
        """The items of one video."""
        lo, hi = np.searchsorted(self.owner, [video, video + 1])
        return self.vectors[lo:hi]

    def subset(self, rows: np.ndarray) -> Items:
        """The items of videos `rows` (ascending indices), renumbered 0…len(rows) − 1."""
        new = np.full(self.videos, -1)
        new[rows] = np.arange(len(rows))
        keep = new[self.owner] >= 0
        return Items(self.vectors[keep], new[self.owner[keep]], len(rows))


class Crops:
    """Per video, views of its fingerprint pairs [V·P, 2·FP_DIM] (its crop views, or its 9:16 columns), each made
    on first use and kept: a video's crops are compared only with its CANDIDATES and SAMPLE, and its columns only
    with portrait videos, so a few query videos against a catalog need the views of only those (recommend.py), not
    of every catalog video."""

    def __init__(self, make: list[Callable[[], np.ndarray]]):
        self.make = make

    @classmethod
    def given(cls, views: list[np.ndarray]) -> Crops:
        """Crop views already made."""
        return cls([partial(np.asarray, v) for v in views])

    def __getitem__(self, video: int) -> np.ndarray:
        return self.make[video]()

    def __len__(self) -> int:
        return len(self.make)

    def subset(self, rows: np.ndarray) -> Crops:
        """The crop views of videos `rows` (made ones are shared, not made again)."""
        return Crops([self.make[i] for i in rows])

    def items(self) -> Items:
        """Every video's views as one set of items."""
        return _items([self[j] for j in range(len(self))])

    def made(self) -> int:
        """How many videos' views have been made on use so far (not counting those `given`)."""
        return sum(m.cache_info().currsize for m in self.make if hasattr(m, "cache_info"))


@dataclass
class Features:
    """What the affinity compares, for videos in a given order."""

    frames: Items  # fingerprint pairs [·, 2·FP_DIM]
    mirrored: Items  # the same pairs, left–right mirrored
    upper: Items  # fingerprint pairs of the part above UPPER of the height (what a caption bar leaves alone)
    upper_mirrored: Items
    crops: Crops  # per video, the upper parts of the crop views of its fingerprint pairs
    segments: Items  # segment vectors [·, D], as stored until mapped into a clustering's space (`in_space`)
    colours: Items  # colour histograms of frames [·, COLOURS] (unit: √shares)
    ranks: Items  # the same frames' histograms of per-channel ranks [·, COLOURS] (fingerprint.ranked_histograms)
    columns: Crops  # per video, the fingerprint pairs of its whole-height 9:16 columns (landscape videos; else none)
    portrait: np.ndarray  # [videos] bool: narrower than 3:4, as a 9:16 re-post is

    def __len__(self) -> int:
        return self.frames.videos

    def in_space(self, space: Callable[[np.ndarray], np.ndarray]) -> Features:
        """The same features with the segment vectors mapped by `space` (the clustering's, space.py)."""
        seg = self.segments
        return Features(self.frames, self.mirrored, self.upper, self.upper_mirrored, self.crops,
                        Items(space(seg.vectors), seg.owner, seg.videos), self.colours, self.ranks, self.columns,
                        self.portrait)

    def subset(self, rows: np.ndarray) -> Features:
        rows = np.asarray(rows)
        return Features(self.frames.subset(rows), self.mirrored.subset(rows), self.upper.subset(rows),
                        self.upper_mirrored.subset(rows), self.crops.subset(rows), self.segments.subset(rows),
                        self.colours.subset(rows), self.ranks.subset(rows), self.columns.subset(rows),
                        self.portrait[rows])


def _spread(count: int, most: int) -> np.ndarray:
    """At most `most` indices of 0…count − 1, evenly spread."""
    return np.unique(np.linspace(0, count - 1, most).round().astype(int)) if count > most else np.arange(count)


def _pairs(x: np.ndarray) -> np.ndarray:
    """Consecutive rows [F, D] → unit pairs [F − 1, 2D] (one row repeated when there is only one)."""
    x = np.concatenate([x, x]) if len(x) == 1 else x
    return np.concatenate([x[:-1], x[1:]], axis=1) / np.sqrt(2.0)


def _mirrored_pairs(p: np.ndarray) -> np.ndarray:
    return mirrored(p.reshape(*p.shape[:-1], 2, FP_DIM)).reshape(p.shape)


def _columns(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Boxes in a thumbnail of the 9:16 columns a portrait re-post of a landscape video could keep (COLUMNS
    positions across the frame); none for a video not wider than 4:3."""
    if width < 4 / 3 * height:
        return []
    w = max(2, round(PATCH * (9 / 16) * height / width))
    return [(0, PATCH, x, x + w) for x in np.linspace(0, PATCH - w, COLUMNS).round().astype(int)]


@dataclass
class Source:
    """What the affinity reads of one video: its stored fingerprint rows (fingerprint.stored_rows) with their
    times, its fingerprint thumbnails (None: none stored), its frame size, its segment vectors [S, D] and its
    frames' colour histograms (None: none stored)."""

    fp_times: np.ndarray
    fp_vectors: np.ndarray
    thumbs: np.ndarray | None
    width: int
    height: int
    segments: np.ndarray
    colours: np.ndarray | None = None


def features(catalog: Catalog, ids: list[str]) -> Features:
    """The affinity's items of the catalog videos `ids`, in that order."""
    fr, seg = catalog.frames(ids), catalog.segments(ids)
    thumbs, colours = catalog.thumbs(ids), catalog.colours(ids)
    shape = {v.id: (v.width, v.height) for v in catalog.videos(ids)}
    frow = {v: i for i, v in enumerate(fr.ids)}
    srow = {v: i for i, v in enumerate(seg.ids)}
    sources = []
    for vid in ids:
        at = np.flatnonzero(fr.video == frow[vid]) if vid in frow else np.zeros(0, int)
        s = np.flatnonzero(seg.video == srow[vid]) if vid in srow else np.zeros(0, int)
        sources.append(Source(fr.times[at], fr.vectors[at], thumbs.get(vid), *shape[vid], seg.vectors[s],
                              colours.get(vid)))
    return features_of(sources)


def features_of(sources: list[Source]) -> Features:
    """The affinity's items of some videos (catalog ones, or files embedded for a query), in that order."""
    pairs, kept, shown, crops, columns, segs, palettes, ranks = [], [], [], [], [], [], [], []
    none = np.zeros((0, 2 * FP_DIM), np.float32)
    for src in sources:
        first = np.asarray(src.fp_vectors[:split_readings(src.fp_times)], np.float32) if len(src.fp_times) else \
            np.zeros((0, FP_DIM), np.float32)
        keep = _spread(max(len(first) - 1, 1), MAX_PAIRS) if len(first) else np.zeros(0, int)
        pairs.append(_pairs(first)[keep] if len(first) else none)
        t = src.thumbs
        if t is not None and len(first):
            t = t[:len(first)]
            crops.append(cache(partial(_crop_views, t, _columns(src.width, src.height), keep)))
            columns.append(cache(partial(_column_views, t, _columns(src.width, src.height), keep)))
            kept.append(keep)
            shown.append(t)
        else:
            crops.append(partial(np.asarray, none))
            columns.append(partial(np.asarray, none))
            kept.append(None)
        segs.append(np.asarray(src.segments[_spread(len(src.segments), MAX_SEGMENTS)], np.float32))
        c = np.zeros((0, COLOURS)) if src.colours is None else np.asarray(src.colours, np.float32)
        c = c[_spread(len(c), MAX_SEGMENTS)]
        palettes.append(c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-6))
        ranks.append(ranked_histograms(c))
    # the upper parts of all videos' thumbnails in one pass (one DCT over all, not one per video)
    tops = iter(np.split(part_views(np.concatenate(shown), [(0, round(UPPER * PATCH), 0, PATCH)])[0],
                         np.cumsum([len(t) for t in shown])[:-1]) if shown else [])
    upper = [none if keep is None else _pairs(next(tops))[keep] for keep in kept]
    return Features(_items(pairs), _items([_mirrored_pairs(p) for p in pairs]), _items(upper),
                    _items([_mirrored_pairs(p) for p in upper]), Crops(crops), _items(segs), _items(palettes),
                    _items(ranks), Crops(columns), np.array([4 * s.width < 3 * s.height for s in sources], bool))


def _crop_views(thumbs: np.ndarray, columns: list[tuple[int, int, int, int]], keep: np.ndarray) -> np.ndarray:
    """The fingerprint pairs `keep` of the upper parts of a video's crop views and 9:16 columns [V·len(keep),
    2·FP_DIM]: the part above UPPER of what a crop (a THUMB window on the GRID lattice) or a 9:16 re-frame keeps."""
    boxes = crop_boxes() + columns
    views = part_views(thumbs, [(t, t + round(UPPER * (b - t)), x0, x1) for t, b, x0, x1 in boxes])  # [V, F, DIM]
    return np.concatenate([_pairs(v)[keep] for v in views])


def _column_views(thumbs: np.ndarray, columns: list[tuple[int, int, int, int]], keep: np.ndarray) -> np.ndarray:
    """The fingerprint pairs `keep` of a video's whole-height 9:16 columns [len(columns)·len(keep), 2·FP_DIM]."""
    return np.concatenate([_pairs(v)[keep] for v in part_views(thumbs, columns)]) if columns else \
        np.zeros((0, 2 * FP_DIM), np.float32)


def _items(per_video: list[np.ndarray]) -> Items:
    owner = np.repeat(np.arange(len(per_video)), [len(v) for v in per_video])
    return Items(np.concatenate(per_video).astype(np.float32), owner, len(per_video))


def best_match(q: Items, c: Items, also: Items | None = None) -> np.ndarray:
    """[Q videos, C videos] best similarity of an item of one to an item of the other (the better of q and its
    other view `also`); NaN where either has no items."""
    out = np.full((q.videos, c.videos), np.nan, np.float32)
    if not len(q.owner) or not len(c.owner):
        return out
    cstart = np.flatnonzero(np.diff(c.owner, prepend=-1))
    cvid = c.owner[cstart]
    views = [q] if also is None else [q, also]
    step = max(1, min(CHUNK, CELLS // len(c.owner)))
    for lo in range(0, len(q.owner), step):
        best = None
        for v in views:
            sim = np.maximum.reduceat(v.vectors[lo:lo + step] @ c.vectors.T, cstart, axis=1)
            best = sim if best is None else np.maximum(best, sim)
        owner = q.owner[lo:lo + step]
        rstart = np.flatnonzero(np.diff(owner, prepend=-1))
        rows = np.maximum.reduceat(best, rstart, axis=0)
        rvid = owner[rstart]
        cur = out[np.ix_(rvid, cvid)]
        out[np.ix_(rvid, cvid)] = np.fmax(cur, rows)  # a video split across chunks
    return out


def standardise(raw: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """z-scores of raw similarities [Q, C] by per-row (median, MAD) stats [Q, 2]; 0 where raw is NaN."""
    z = (raw - stats[:, :1]) / (MAD * np.maximum(stats[:, 1:], MIN_MAD))
    return np.nan_to_num(z, nan=0.0)


def row_stats(raw: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
    """Per-row (median, MAD) [Q, 2] of similarities [Q, C] (NaN ignored; `own` [Q] the column of each row's own
    video, left out, or −1)."""
    r = np.array(raw, np.float64)
    if own is not None:
        ok = own >= 0
        r[np.flatnonzero(ok), own[ok]] = np.nan
    some = ~np.isnan(r).all(1)  # a video without the channel's items (a catalog from before it) has no stats
    med, mad = np.zeros(len(r)), np.zeros(len(r))
    med[some] = np.nanmedian(r[some], 1)
    mad[some] = np.nanmedian(np.abs(r[some] - med[some, None]), 1)
    return np.stack([med, mad], 1).astype(np.float32)


@dataclass
class Reference:
    """The videos others are compared with (the fitted ones): their features and stats [N, STATISTICS, 2]."""

    features: Features
    stats: np.ndarray


def affinity(q: Features, ref: Reference | None = None, seed: int = 0, own: np.ndarray | None = None,
             ) -> tuple[np.ndarray, np.ndarray]:
    """(affinity [Q, R] of videos q to the reference videos — to each other when `ref` is None —, q's stats
    [Q, STATISTICS, 2]); +inf between a video and itself. With `ref`, `own` [Q] is the reference column of each q video
    that is itself a reference video, or −1 (None: none is): it is left out of that video's statistics."""
    within = ref is None
    r = q if within else ref.features
    own = np.arange(len(q)) if within else own
    whole = best_match(q.frames, r.frames, q.mirrored)
    raw = {"frames": np.fmax(whole, best_match(q.upper, r.upper, q.upper_mirrored)),
           "segments": best_match(q.segments, r.segments),
           "colours": np.fmax(best_match(q.colours, r.colours), best_match(q.ranks, r.ranks))}
    if within:
        raw = {k: np.fmax(v, v.T) for k, v in raw.items()}
    raw["columns"] = _column_match(q, r, within)
    stats = np.zeros((len(q), len(STATISTICS), 2), np.float32)
    z = {}
    for k in ("frames", "segments", "colours", "columns"):
        c = STATISTICS.index(k)
        stats[:, c] = row_stats(raw[k], own)
        z[k] = np.minimum(standardise(raw[k], stats[:, c]),
                          standardise(raw[k].T, (stats if within else ref.stats)[:, c]).T)
    # a portrait video and a landscape one: whole frames cannot match, the landscape one's 9:16 columns can
    z["frames"] = np.where(np.isnan(raw["columns"]), z["frames"], z.pop("columns"))
    near = (z["frames"] + z["segments"]) / 2
    crops, c = np.full_like(near, np.nan), CHANNELS.index("crops")
    rng = np.random.default_rng(seed)
    for i in range(len(q)):
        order = np.argsort(-near[i], kind="stable")
        if own is not None:
            order = order[order != own[i]]
        sample = np.sort(rng.permutation(order)[:SAMPLE])
        cols = np.union1d(order[:CANDIDATES], sample)
        crops[i, cols] = _crop_match(q, i, r, cols)
        stats[i, c] = row_stats(crops[i:i + 1, sample])[0]
    zc = standardise(crops, stats[:, c])
    other = (stats if within else ref.stats)[:, c]
    zc_t = standardise(crops.T, other).T
    z["crops"] = np.where(np.isnan(crops), 0.0, np.minimum(zc, zc_t))
    pictures = ~np.isnan(raw["frames"])  # both videos have fingerprints (and so thumbnails): frames and crops count
    present = {"frames": pictures, "crops": pictures, "segments": ~np.isnan(raw["segments"]),
               "colours": ~np.isnan(raw["colours"])}
    shared = np.maximum(z["frames"], z["crops"])  # what the two pictures show alike, moment for moment
    for k in ("colours", "segments"):
        z[k] = np.where(pictures, np.minimum(z[k], shared + LOOK_ALIKE), z[k])
    weight = sum(WEIGHTS[k] * present[k] for k in CHANNELS)
    out = sum(WEIGHTS[k] * z[k] for k in CHANNELS) / np.where(weight > 0, weight, 1)
    if within:
        out = np.maximum(out, out.T)  # crops were compared from either side
    if own is not None:
        ok = own >= 0
        out[np.flatnonzero(ok), own[ok]] = np.inf  # a video is itself: distance 0
    return out, stats


def _column_match(q: Features, r: Features, within: bool) -> np.ndarray:
    """[Q, R] best similarity between a portrait video's fingerprint pairs (both orientations) and a landscape
    one's 9:16 column views, either way round; NaN for other pairs (both landscape, both portrait, nothing stored)."""
    out = np.full((len(q), len(r)), np.nan, np.float32)
    mine = np.flatnonzero(q.portrait)
    if len(mine):
        out[mine] = best_match(q.frames.subset(mine), r.columns.items(), q.mirrored.subset(mine))
    if within:
        return np.fmax(out, out.T)
    theirs = np.flatnonzero(r.portrait)
    if len(theirs):
        out[:, theirs] = np.fmax(out[:, theirs], best_match(r.frames.subset(theirs), q.columns.items(),
                                                            r.mirrored.subset(theirs)).T)
    return out


def _crop_match(q: Features, i: int, r: Features, cols: np.ndarray) -> np.ndarray:
    """[len(cols)] best similarity between video i's upper fingerprint pairs (both orientations) and the crop views
    of reference videos `cols`, and between theirs and i's crop views; NaN where there is nothing to compare."""
    out = np.full(len(cols), np.nan, np.float32)
    mine = np.concatenate([q.upper.of(i), q.upper_mirrored.of(i)])
    if not len(mine):
        return out
    for n, j in enumerate(cols):
        best = []
        if len(r.crops[j]):
            best.append(float((mine @ r.crops[j].T).max()))
        theirs = np.concatenate([r.upper.of(j), r.upper_mirrored.of(j)])
        if len(q.crops[i]) and len(theirs):
            best.append(float((theirs @ q.crops[i].T).max()))
        if best:
            out[n] = max(best)
    return out


def distance(a: np.ndarray) -> np.ndarray:
    """HDBSCAN's distance for affinities (higher = more alike)."""
    return np.exp(-np.asarray(a, np.float64) / SCALE)
