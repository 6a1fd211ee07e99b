"""Cold start: from a handful of liked videos, the catalog videos most worth showing next.

The liked videos (catalog ids, or files embedded with the catalog's model) are compared with every catalog video
by the same nearness the clusters were found in, and placed in those clusters. On a clustering fitted on the
videos' affinity (clusters.py: catalogs up to `affinity_max` videos) that is the affinity (affinity.py: the moments
two videos share, standardised per video); on one fitted on video vectors (larger catalogs), the cosine in the
clustering's space. A candidate's score is a weighted mean of two parts in [0, 1]: its nearness to the nearest
liked video (1 / (1 + the clustering's distance) for the affinity, (1 + cosine) / 2 for vectors), and the share of
the liked videos that fall in its cluster (0 for noise), so that videos of the clusters the user liked are
favoured and a liked video that fits no cluster still pulls in its nearest neighbours. Liked videos are never
returned.

The weights: on vectors, half and half (a pooled vector's nearness says little, the clusters more). The affinity
says more than the clusters built from it: where a cluster joins two interests (a topic whose uploads the segment
vectors find alike another's), half and half returned the other interest's videos first (benchmarks/trends.py,
demo checkpoint, default stream: a liked claymation ad → 7 of 10 from a bottles topic; P@10 0.922, and 1.000 on
held-out, seed 3 and random init). Nearness alone: 0.989 on all four (the best cluster members lose one place
each to a near neighbour elsewhere); 0.9 nearness + 0.1 share: 0.967 / 1.000 / 1.000 / 0.989.

Cost: the catalog's features are read for every query, but a catalog video's crop views (the dearest part) are made
only when a liked video compares crops with it (affinity.py `Crops`): at most CANDIDATES + SAMPLE per liked video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.catalog.embed import EmbedOptions, VideoEmbedding, embed_video, embedder_for, file_sha256
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError
from tubelet.insights.affinity import Source, affinity, distance, features, features_of
from tubelet.insights.clusters import Clustering


@dataclass(frozen=True)
class Recommendation:
    id: str
    path: str
    score: float
    cluster: int  # −1: noise

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def liked_videos(catalog: Catalog, liked: Sequence[str]) -> list[str | VideoEmbedding]:
    """Each liked item (a catalog id or a file) as its catalog id, or as its embedding when the file is not in the
    catalog (embedded with the catalog's model)."""
    if not liked:
        raise TubeletError("give at least one liked video (a catalog id or a file)")
    known = catalog.ids()
    by_hash = {v.content_hash: v.id for v in catalog.videos()} if any(Path(x).is_file() for x in liked) else {}
    out: list[str | VideoEmbedding] = []
    for item in liked:
        if item in known:
            out.append(item)
        elif Path(item).is_file():
            digest = file_sha256(item)
            if digest in by_hash:  # the file is in the catalog already
                out.append(by_hash[digest])
                continue
            m = catalog.model
            out.append(embed_video(embedder_for(m), item, EmbedOptions(m.window_s, m.stride_s), content_hash=digest))
        else:
            raise TubeletError(f"{item}: neither a video file nor a video id in catalog {catalog.root}")
    return out


NEARNESS = {"affinity": 0.9, "vectors": 0.5}  # weight of nearness in the score, by what the clustering was fitted on


def scores(near: np.ndarray, labels: np.ndarray, liked_labels: np.ndarray, nearness: float = NEARNESS["vectors"],
           ) -> np.ndarray:
    """Score in [0, 1] of each candidate, given its nearness in [0, 1] to the nearest liked video [N] and its
    cluster [N], for liked videos in clusters [L]: `nearness` × nearness + the rest × the share of liked videos in
    its cluster."""
    count = int(max(labels.max(initial=-1), liked_labels.max(initial=-1))) + 1
    share = np.bincount(liked_labels[liked_labels >= 0], minlength=count) / max(len(liked_labels), 1)
    return nearness * near + (1 - nearness) * np.where(labels >= 0, share[np.maximum(labels, 0)], 0.0)


def _by_vectors(clustering: Clustering, vectors: np.ndarray, labels: np.ndarray, row: dict[str, int],
                liked: list[str | VideoEmbedding]) -> tuple[np.ndarray, np.ndarray]:
    """(nearness [N] of the catalog videos to the nearest liked one, the liked ones' clusters [L]) by cosine in the
    clustering's space."""
    z = clustering.space(vectors)
    z_liked = clustering.space(np.stack([vectors[row[x]] if isinstance(x, str) else x.vector for x in liked]))
    placed = clustering.place(z_liked)
    liked_labels = np.array([labels[row[x]] if isinstance(x, str) else p for x, p in zip(liked, placed, strict=True)])
    return (1 + (z @ z_liked.T).max(1)) / 2, liked_labels


def _by_affinity(clustering: Clustering, catalog: Catalog, ids: list[str], labels: np.ndarray, row: dict[str, int],
                 liked: list[str | VideoEmbedding]) -> tuple[np.ndarray, np.ndarray]:
    """(nearness [N] of the catalog videos to the nearest liked one, the liked ones' clusters [L]) by the affinity
    the clusters were fitted on."""
    ref, fit_rows = clustering.reference(features(catalog, ids), ids)
    seed = clustering.params.seed
    mine = np.array(sorted({row[x] for x in liked if isinstance(x, str)}), np.int64)
    files = [x for x in liked if not isinstance(x, str)]
    a = np.full((len(mine) + len(files), len(ids)), -np.inf)
    if len(mine):
        a[:len(mine)] = affinity(ref.features.subset(mine), ref, seed, own=mine)[0]
    if files:
        q = features_of([Source(*_stored(x), x.width, x.height, x.segments, x.fp_colours if len(x.fp_colours) else None)
                         for x in files])
        a[len(mine):] = affinity(q.in_space(clustering.space), ref, seed)[0]
    fitted = np.flatnonzero(fit_rows >= 0)
    placed = clustering.nearest_cluster(a[len(mine):, fitted], fit_rows[fitted])
    liked_labels = np.concatenate([labels[mine], placed])
    return 1 / (1 + distance(a.max(0))), liked_labels


def _stored(e: VideoEmbedding) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A file's fingerprint rows as a catalog stores them, with their times, and its thumbnails."""
    entry = e.to_entry()
    return entry.fp_times, entry.fp_vectors, entry.fp_thumbs if len(entry.fp_thumbs) else None


def recommend(catalog: Catalog, clustering: Clustering, liked: Sequence[str], k: int = 10) -> list[Recommendation]:
    """The k catalog videos most worth showing after `liked`, best first."""
    if k <= 0:
        raise TubeletError(f"k must be positive, got {k}")
    videos = liked_videos(catalog, liked)
    ids, vectors = catalog.video_vectors()
    label = clustering.label_of()
    labels = np.array([label.get(v, -1) for v in ids], np.int64)  # a liked catalog video keeps its label
    row = {v: i for i, v in enumerate(ids)}
    by = "affinity" if clustering.by_affinity(len(ids)) else "vectors"
    if by == "affinity":
        near, liked_labels = _by_affinity(clustering, catalog, ids, labels, row, videos)
    else:
        near, liked_labels = _by_vectors(clustering, vectors, labels, row, videos)
    score = scores(near, labels, liked_labels, NEARNESS[by])
    score[[row[x] for x in videos if isinstance(x, str)]] = -np.inf
    order = [i for i in np.argsort(-score, kind="stable")[:k] if np.isfinite(score[i])]
    records = {v.id: v for v in catalog.videos([ids[i] for i in order])}
    return [Recommendation(ids[i], records[ids[i]].path, float(score[i]), int(labels[i])) for i in order]
