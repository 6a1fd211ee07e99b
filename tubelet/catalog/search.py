"""'More like this': rank catalog videos by how well a query's segments line up with theirs, and say where.

Score of a segment pair: cosine similarity in the catalog's normalised space (its segments centred and whitened,
see normalise.py), clamped to [0, 1]: 1 = the same content, about 0 = as alike as two unrelated catalog videos.
Candidates are found with raw cosines; only the scores use the normalised space, so that a barely trained model's
narrow cone (unrelated videos at raw cosine 0.97) does not read as a match.
Query and catalog segments come from the same window and stride, so a query that is an excerpt of a catalog
video matches it along one diagonal of the [query segments × video segments] similarity matrix (the windows on
the stride grid; the extra end-aligned tail window of each is left out of the alignment). A video's score
is the best mean similarity along a diagonal on which the shorter of the two is fully overlapped; that diagonal
gives the matched spans (temporal grounding: where in the long video the clip happens). The single best pair on it
is reported too. Candidates come from each query segment's nearest catalog segments (exact or HNSW, see store.py).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.catalog.embed import Embedder, EmbedOptions, Progress, embed_video, embedder_for
from tubelet.catalog.fingerprint import DIM as FP_DIM
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError


@dataclass(frozen=True)
class Match:
    """A query span and a catalog-video span that correspond, with their similarity in [0, 1]."""

    query_start_s: float
    query_end_s: float
    start_s: float
    end_s: float
    score: float


@dataclass(frozen=True)
class Hit:
    """One ranked video: its score, the aligned spans and the best single segment pair on that alignment."""

    rank: int
    id: str
    path: str
    duration_s: float
    score: float
    match: Match
    pair: Match

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Query:
    """Segment vectors of what is searched for, with their times in the query's own timeline."""

    label: str
    starts: np.ndarray  # [Q]
    ends: np.ndarray  # [Q]
    vectors: np.ndarray  # [Q, D]
    exclude: str | None = None  # a catalog id to leave out of the results (the query itself)
    fp_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [F] seconds of the frame fingerprints
    fp_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # [F, FP_DIM]
    fp_alt: np.ndarray = field(default_factory=lambda: np.zeros((0, FP_DIM), np.float32))  # the other reading of
    # its margins (fingerprint.py), when it has one

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.label, "start_s": float(self.starts[0]), "end_s": float(self.ends[-1]),
                "segments": len(self.starts)}


def make_query(catalog: Catalog, query: str | os.PathLike, start_s: float | None = None,
               end_s: float | None = None, engine: Any = None) -> Query:
    """A query from a video file (embedded with the catalog's model, run by `engine`: an embed.Engine, default the
    catalog's own) or from a catalog video id."""
    if Path(query).is_file():
        return file_query(catalog, query, start_s, end_s, embedder_for(catalog.model, engine))
    return id_query(catalog, str(query), start_s, end_s)


def file_query(catalog: Catalog, path: str | os.PathLike, start_s: float | None = None, end_s: float | None = None,
               embedder: Embedder | None = None, progress: Progress | None = None, label: str | None = None) -> Query:
    """A query from (a span of) a video file, embedded with the catalog's model (`embedder` when already loaded)."""
    model = catalog.model
    embedder = embedder or embedder_for(model)
    emb = embed_video(embedder, path, EmbedOptions(model.window_s, model.stride_s), start_s, end_s, progress=progress)
    return Query(label or str(path), emb.starts, emb.ends, emb.segments, None, emb.fp_times, emb.fp_vectors,
                 emb.fp_alt)


def id_query(catalog: Catalog, video_id: str, start_s: float | None = None, end_s: float | None = None) -> Query:
    """A query from (the segments within [start_s, end_s] of) a catalog video, which is left out of results."""
    if video_id not in catalog.ids():
        raise TubeletError(f"{video_id}: neither a video file nor a video id in catalog {catalog.root}")
    seg = catalog.segments([video_id])
    lo = -np.inf if start_s is None else float(start_s)
    hi = np.inf if end_s is None else float(end_s)
    if not lo < hi:  # NaN fails this too
        raise TubeletError(f"{video_id}: empty or invalid span {start_s}–{end_s} s")
    keep = (seg.starts >= lo - 1e-6) & (seg.ends <= hi + 1e-6)  # the segments inside the span
    if not keep.any():  # a span shorter than a window: the segment that overlaps it most
        overlap = np.minimum(seg.ends, hi) - np.maximum(seg.starts, lo)
        if not len(overlap) or overlap.max() <= 0:
            raise TubeletError(f"{video_id}: no segment of this video lies in {start_s}–{end_s} s")
        keep = np.arange(len(overlap)) == int(np.argmax(overlap))
    frames = catalog.frames([video_id])
    fkeep = (frames.times >= seg.starts[keep][0] - 1e-6) & (frames.times <= seg.ends[keep][-1] + 1e-6)
    return Query(video_id, seg.starts[keep], seg.ends[keep], seg.vectors[keep], video_id, frames.times[fkeep],
                 frames.vectors[fkeep])


def diagonal_means(sim: np.ndarray, min_overlap: int) -> np.ndarray:
    """Mean of sim [Q, S] along each diagonal j = i + o, for o = -(Q-1) … S-1; NaN where fewer than
    `min_overlap` pairs lie on it."""
    q, s = sim.shape
    padded = np.full((q, s + 2 * (q - 1)), np.nan, sim.dtype)
    padded[:, q - 1:q - 1 + s] = sim
    st = padded.strides
    diag = np.lib.stride_tricks.as_strided(padded, shape=(q, s + q - 1), strides=(st[0] + st[1], st[1]))
    counts = (~np.isnan(diag)).sum(0)
    with np.errstate(invalid="ignore"):
        means = np.nansum(diag, 0) / counts
    return np.where(counts >= min_overlap, means, np.nan)


def on_grid(starts: np.ndarray, stride_s: float) -> np.ndarray:
    """Segments whose start is a whole number of strides after the first (drops the end-aligned tail window)."""
    k = (starts - starts[0]) / stride_s
    return np.abs(k - np.round(k)) < 1e-3


def align(query: Query, starts: np.ndarray, ends: np.ndarray, vectors: np.ndarray,
          stride_s: float) -> tuple[Match, Match]:
    """Best diagonal alignment of the query with one video's segments → (aligned spans, best pair on them).

    Only segments on the stride grid take part, so that index offsets are time offsets."""
    qk, sk = on_grid(query.starts, stride_s), on_grid(starts, stride_s)
    q_starts, q_ends = query.starts[qk], query.ends[qk]
    starts, ends = starts[sk], ends[sk]
    sim = np.clip(query.vectors[qk] @ vectors[sk].T, 0.0, 1.0)  # [Q, S]
    q, s = sim.shape
    means = diagonal_means(sim, min(q, s))
    o = int(np.nanargmax(means)) - (q - 1)  # catalog index = query index + o
    i = np.arange(max(0, -o), min(q, s - o))
    pair_i = i[int(np.argmax(sim[i, i + o]))]
    match = Match(float(q_starts[i[0]]), float(q_ends[i[-1]]), float(starts[i[0] + o]), float(ends[i[-1] + o]),
                  float(means[o + q - 1]))
    pair = Match(float(q_starts[pair_i]), float(q_ends[pair_i]), float(starts[pair_i + o]),
                 float(ends[pair_i + o]), float(sim[pair_i, pair_i + o]))
    return match, pair


def search(catalog: Catalog, query: Query, k: int = 10) -> list[Hit]:
    """The k catalog videos most like the query, best first."""
    if k <= 0:
        raise TubeletError(f"k must be positive, got {k}")
    if not len(catalog):
        return []
    keys, sims = catalog.nearest(query.vectors, max(100, 10 * k))
    owners = catalog.videos_of_keys(keys).ravel()
    best: dict[str, float] = {}
    for vid, sc in zip(owners, sims.ravel(), strict=True):
        if vid is not None and vid != query.exclude and sc > best.get(vid, -np.inf):
            best[vid] = float(sc)
    candidates = sorted(best, key=best.__getitem__, reverse=True)[:max(3 * k, 30)]
    seg = catalog.segments(candidates)
    records = {v.id: v for v in catalog.videos(candidates)}
    norm = catalog.normalisation()
    vectors = seg.vectors if norm is None else norm.transform(seg.vectors)
    query = query if norm is None else replace(query, vectors=norm.transform(query.vectors))
    scored = []
    for j, vid in enumerate(seg.ids):
        rows = seg.video == j
        match, pair = align(query, seg.starts[rows], seg.ends[rows], vectors[rows], catalog.model.stride_s)
        scored.append((match.score, vid, match, pair))
    scored.sort(key=lambda t: -t[0])
    return [Hit(rank=r + 1, id=vid, path=records[vid].path, duration_s=records[vid].duration_s, score=score,
                match=match, pair=pair) for r, (score, vid, match, pair) in enumerate(scored[:k])]
