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
from tubelet.catalog.fingerprint import split_readings
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
    if video_id not in catalog:
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
    block = np.arange(len(fkeep)) // max(1, split_readings(frames.times))  # the first reading, then the others
    return Query(video_id, seg.starts[keep], seg.ends[keep], seg.vectors[keep], video_id,
                 frames.times[fkeep & (block == 0)], frames.vectors[fkeep & (block == 0)],
                 frames.vectors[fkeep & (block == 1)])  # the second stored reading as the query's other one


def diagonal_means(sim: np.ndarray, min_overlap: int | np.ndarray) -> np.ndarray:
    """Mean of sim [..., Q, S] along each diagonal j = i + o, for o = -(Q-1) … S-1 → [..., S+Q-1]; NaN where
    fewer than `min_overlap` (one per leading index, or one for all) non-NaN pairs lie on it."""
    *lead, q, s = sim.shape
    padded = np.full((*lead, q, s + 2 * (q - 1)), np.nan, sim.dtype)
    padded[..., q - 1:q - 1 + s] = sim
    st = padded.strides
    diag = np.lib.stride_tricks.as_strided(padded, shape=(*lead, q, s + q - 1),
                                           strides=(*st[:-2], st[-2] + st[-1], st[-1]))
    counts = (~np.isnan(diag)).sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.nansum(diag, -2) / counts
    return np.where(counts >= np.asarray(min_overlap)[..., None], means, np.nan)


def on_grid(starts: np.ndarray, stride_s: float, first: np.ndarray | None = None) -> np.ndarray:
    """Segments whose start is a whole number of strides after the first (drops the end-aligned tail window);
    `first`: the first start of each row's own video, when rows of several videos are checked at once."""
    k = (starts - (starts[0] if first is None else first)) / stride_s
    return np.abs(k - np.round(k)) < 1e-3


BATCH_VALUES = 4_000_000  # similarity values [videos, Q, S] aligned in one batch


def align(query: Query, starts: np.ndarray, ends: np.ndarray, vectors: np.ndarray,
          stride_s: float) -> tuple[Match, Match]:
    """Best diagonal alignment of the query with one video's segments → (aligned spans, best pair on them)."""
    return align_videos(query, starts, ends, vectors, np.zeros(len(starts), int), stride_s)[0]


def align_videos(query: Query, starts: np.ndarray, ends: np.ndarray, vectors: np.ndarray, video: np.ndarray,
                 stride_s: float) -> list[tuple[Match, Match]]:
    """`align` for several videos at once: rows of video j (`video == j`, rows grouped by video, j = 0 … n-1) →
    [(aligned spans, best pair)] per video, in batches of at most BATCH_VALUES similarities.

    Only segments on the stride grid take part, so that index offsets are time offsets."""
    qk = on_grid(query.starts, stride_s)
    q_starts, q_ends = query.starts[qk], query.ends[qk]
    first = np.r_[0, np.flatnonzero(np.diff(video)) + 1]  # each video's first row
    rows = np.flatnonzero(on_grid(starts, stride_s, starts[first][video]))
    owner = video[rows]
    lengths = np.bincount(owner, minlength=len(first))
    pos = np.arange(len(rows)) - np.searchsorted(owner, owner)  # position of each row in its video's grid
    sim_all = np.clip(query.vectors[qk] @ vectors[rows].T, 0.0, 1.0)  # [Q, R]
    q = len(q_starts)
    out: list[tuple[Match, Match]] = []
    lo = 0
    while lo < len(first):
        hi = lo + 1  # widen the batch while it stays within BATCH_VALUES (a long video goes alone)
        while hi < len(first) and (hi + 1 - lo) * q * (lengths[lo:hi + 1].max() + 2 * q) <= BATCH_VALUES:
            hi += 1
        width = int(lengths[lo:hi].max())
        index = np.full((hi - lo, width), -1)
        mine = (owner >= lo) & (owner < hi)
        index[owner[mine] - lo, pos[mine]] = np.flatnonzero(mine)
        sim = np.where(index[:, None, :] >= 0, sim_all[:, index].transpose(1, 0, 2), np.nan)  # [n, Q, S]
        means = diagonal_means(sim, np.minimum(q, lengths[lo:hi]))
        best = np.argmax(np.nan_to_num(means, nan=-np.inf), axis=1)  # each video's best diagonal
        offset = best - (q - 1)  # catalog index = query index + offset
        n = np.arange(hi - lo)
        col = np.arange(q)[None] + offset[:, None]  # [n, Q]
        on = (col >= 0) & (col < lengths[lo:hi, None])
        diag = np.where(on, sim[n[:, None], np.arange(q)[None], np.clip(col, 0, width - 1)], -np.inf)
        pair = np.argmax(diag, axis=1)
        first_i, last_i = on.argmax(1), q - 1 - on[:, ::-1].argmax(1)
        for j, o in enumerate(offset.tolist()):
            r = rows[index[j]]  # this video's grid rows
            a, b, p = int(first_i[j]), int(last_i[j]), int(pair[j])
            out.append((Match(float(q_starts[a]), float(q_ends[b]), float(starts[r[a + o]]), float(ends[r[b + o]]),
                              float(means[j, best[j]])),
                        Match(float(q_starts[p]), float(q_ends[p]), float(starts[r[p + o]]), float(ends[r[p + o]]),
                              float(diag[j, p]))))
        lo = hi
    return out


def search(catalog: Catalog, query: Query, k: int = 10) -> list[Hit]:
    """The k catalog videos most like the query, best first."""
    if k <= 0:
        raise TubeletError(f"k must be positive, got {k}")
    if not len(catalog):
        return []
    keys, sims = catalog.nearest(query.vectors, max(100, 10 * k))
    order = np.argsort(-sims, axis=None, kind="stable")
    owners = dict.fromkeys(catalog.videos_of_keys(keys.ravel()[order]))  # each video once, at its best segment
    owners.pop(None, None)
    owners.pop(query.exclude, None)
    candidates = list(owners)[:max(3 * k, 30)]
    seg = catalog.segments(candidates)
    norm = catalog.normalisation()
    vectors = catalog.normalised(seg)
    query = query if norm is None else replace(query, vectors=norm.transform(query.vectors))
    aligned = align_videos(query, seg.starts, seg.ends, vectors, seg.video, catalog.model.stride_s)
    scored = [(match.score, vid, match, pair) for vid, (match, pair) in zip(seg.ids, aligned, strict=True)]
    scored.sort(key=lambda t: -t[0])
    records = {v.id: v for v in catalog.videos([vid for _, vid, _, _ in scored[:k]])}
    return [Hit(rank=r + 1, id=vid, path=records[vid].path, duration_s=records[vid].duration_s, score=score,
                match=match, pair=pair) for r, (score, vid, match, pair) in enumerate(scored[:k])]
