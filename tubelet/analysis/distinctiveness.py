"""How distinctive a video is against a catalog: as a whole, and segment by segment over time.

*Crowding* of a segment = the mean similarity of its `k` nearest catalog segments from other videos: how many
close look-alikes it has. It is ranked against the catalog's own segments (a sample, each against the other
videos): `percentile` = share of catalog segments less crowded. A stretch at 0.95 looks like the catalog's most
crowded region (generic); one at 0.1 stands out. The video as a whole: its mean crowding against the catalog
videos' mean crowding, and (as before) its embedding's nearest catalog video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tubelet.catalog.search import Query, on_grid
from tubelet.catalog.store import Catalog

K = 5  # neighbours that make a neighbourhood
FETCH = 64  # nearest segments fetched to find K of other videos


@dataclass(frozen=True)
class SegmentCrowding:
    start_s: float
    end_s: float
    crowding: float  # mean similarity of its K nearest catalog segments of other videos
    percentile: float  # share of catalog segments less crowded (1 = the most crowded: generic)


@dataclass
class Distinctiveness:
    nearest_similarity: float  # of the video's mean embedding to its nearest catalog video's
    nearest_id: str
    nearest_path: str
    percentile: float  # share of catalog videos whose own nearest neighbour is closer (1 = most distinctive)
    catalog_median_nearest_similarity: float
    crowding: float = 0.0  # mean over the segments
    crowding_percentile: float = 0.5  # share of catalog videos with a lower mean crowding
    segments: list[SegmentCrowding] = field(default_factory=list)


def _crowding(catalog: Catalog, vectors: np.ndarray, owners: list[str | None]) -> np.ndarray:
    """[N] mean similarity of each vector's K nearest catalog segments not of its owner video."""
    keys, sims = catalog.nearest(vectors, min(FETCH, catalog.num_segments))
    videos = catalog.videos_of_keys(keys)
    other = (videos != np.asarray(owners, dtype=object)[:, None]) & (videos != None)  # noqa: E711
    out = np.zeros(len(vectors))
    for i in range(len(vectors)):
        found = sims[i][other[i]][:K]  # sims come sorted, nearest first
        out[i] = found.mean() if len(found) else 0.0
    return out


def distinctiveness(catalog: Catalog, query: Query, sample: int = 2000, seed: int = 0) -> Distinctiveness | None:
    """None with fewer than two catalog videos besides the query."""
    ids, vecs = catalog.video_vectors()
    keep = [i for i, v in enumerate(ids) if v != query.exclude]
    if len(keep) < 2:
        return None
    ids, vecs = [ids[i] for i in keep], vecs[keep]
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    v = query.vectors.mean(0)
    v = v / np.linalg.norm(v)
    sims = vecs @ v
    nearest = int(np.argmax(sims))
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(ids))[:sample]
    own = vecs[rows] @ vecs.T
    own[np.arange(len(rows)), rows] = -np.inf  # not itself
    own_nearest = own.max(1)
    record = catalog.video(ids[nearest])
    d = Distinctiveness(float(sims[nearest]), record.id, record.path, float(np.mean(own_nearest > sims[nearest])),
                        float(np.median(own_nearest)))
    # over time: the query's segments against a sample of the catalog's own
    seg = catalog.segments(ids)
    pick = rng.permutation(len(seg.vectors))[:sample]
    seg_owner = [seg.ids[j] for j in seg.video[pick]]
    base = _crowding(catalog, seg.vectors[pick], seg_owner)
    grid = on_grid(query.starts, catalog.model.stride_s)
    mine = _crowding(catalog, query.vectors[grid], [query.exclude] * len(query.starts[grid]))
    d.segments = [SegmentCrowding(float(a), float(b), float(c), float(np.mean(base < c)))
                  for a, b, c in zip(query.starts[grid], query.ends[grid], mine, strict=True)]
    per_video = [base[np.asarray(seg_owner, dtype=object) == vid].mean() for vid in set(seg_owner)]
    d.crowding = float(mine.mean())
    d.crowding_percentile = float(np.mean(np.asarray(per_video) < d.crowding))
    return d
