"""Cold start: from a handful of liked videos, the catalog videos most worth showing next.

The liked videos (catalog ids, or files embedded with the catalog's model) are placed in the clustering's space
and clusters. A candidate's score is the mean of two parts in [0, 1]: its similarity to the nearest liked video
((1 + cosine) / 2 in the whitened space), and the share of the liked videos that fall in its cluster (0 for noise),
so that videos of the clusters the user liked come first, ordered by how close they are to what was liked, and
a liked video that fits no cluster still pulls in its nearest neighbours. Liked videos are never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.catalog.embed import EmbedOptions, embed_video, embedder_for, file_sha256
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError
from tubelet.insights.clusters import Clustering


@dataclass(frozen=True)
class Recommendation:
    id: str
    path: str
    score: float
    cluster: int  # −1: noise

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def liked_vectors(catalog: Catalog, liked: Sequence[str]) -> tuple[np.ndarray, set[str]]:
    """Video vectors [L, D] of the liked items (ids or files) and the catalog ids among them."""
    if not liked:
        raise TubeletError("give at least one liked video (a catalog id or a file)")
    ids, vectors = catalog.video_vectors()
    row = {v: i for i, v in enumerate(ids)}
    by_hash = {v.content_hash: v.id for v in catalog.videos()} if any(Path(x).is_file() for x in liked) else {}
    out, known = [], set()
    for item in liked:
        if item in row:
            out.append(vectors[row[item]])
            known.add(item)
        elif Path(item).is_file():
            digest = file_sha256(item)
            if digest in by_hash:  # the file is in the catalog already
                out.append(vectors[row[by_hash[digest]]])
                known.add(by_hash[digest])
                continue
            m = catalog.model
            out.append(embed_video(embedder_for(m), item, EmbedOptions(m.window_s, m.stride_s),
                                   content_hash=digest).vector)
        else:
            raise TubeletError(f"{item}: neither a video file nor a video id in catalog {catalog.root}")
    return np.stack(out), known


def scores(z: np.ndarray, labels: np.ndarray, z_liked: np.ndarray, liked_labels: np.ndarray) -> np.ndarray:
    """Score in [0, 1] of each candidate (unit vectors z [N, D], clusters [N]) for liked unit vectors [L, D] with
    their clusters [L]: half nearness to the nearest liked video, half the share of liked videos in its cluster."""
    count = int(max(labels.max(initial=-1), liked_labels.max(initial=-1))) + 1
    weight = np.bincount(liked_labels[liked_labels >= 0], minlength=count) / max(len(liked_labels), 1)
    near = (1 + (z @ z_liked.T).max(1)) / 2
    return 0.5 * near + 0.5 * np.where(labels >= 0, weight[np.maximum(labels, 0)], 0.0)


def recommend(catalog: Catalog, clustering: Clustering, liked: Sequence[str], k: int = 10) -> list[Recommendation]:
    """The k catalog videos most worth showing after `liked`, best first."""
    if k <= 0:
        raise TubeletError(f"k must be positive, got {k}")
    liked_vecs, liked_ids = liked_vectors(catalog, liked)
    z_liked = clustering.space(liked_vecs)
    ids, vectors = catalog.video_vectors()
    label = clustering.label_of()
    labels = np.array([label.get(v, -1) for v in ids], np.int64)
    row = {v: i for i, v in enumerate(ids)}
    liked_labels = clustering.place(z_liked)  # a liked catalog video keeps the label it has (fitted or placed)
    liked_labels = np.array([labels[row[x]] if x in row else lab for x, lab in zip(liked, liked_labels, strict=True)])
    score = scores(clustering.space(vectors), labels, z_liked, liked_labels)
    score[[row[v] for v in liked_ids]] = -np.inf
    order = [i for i in np.argsort(-score, kind="stable")[:k] if np.isfinite(score[i])]
    records = {v.id: v for v in catalog.videos([ids[i] for i in order])}
    return [Recommendation(ids[i], records[ids[i]].path, float(score[i]), int(labels[i])) for i in order]
