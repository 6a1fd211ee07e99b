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
            from tubelet.catalog.embed import EmbedOptions, embed_video, embedder_for, file_sha256

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


def recommend(catalog: Catalog, clustering: Clustering, liked: Sequence[str], k: int = 10) -> list[Recommendation]:
    """The k catalog videos most worth showing after `liked`, best first."""
    if k <= 0:
        raise TubeletError(f"k must be positive, got {k}")
    liked_vecs, liked_ids = liked_vectors(catalog, liked)
    z_liked = clustering.space(liked_vecs)
    label = clustering.label_of()
    ids, vectors = catalog.video_vectors()
    z = clustering.space(vectors)
    own = [label.get(v, -1) for v in ids]
    labels_liked = clustering.place(z_liked)
    row = {v: i for i, v in enumerate(ids)}
    for j, item in enumerate(liked):  # a liked catalog video keeps the label it has (fitted or placed)
        if item in row:
            labels_liked[j] = own[row[item]]
    weight = np.zeros(clustering.num_clusters + 1)
    for c in labels_liked[labels_liked >= 0]:
        weight[c] += 1 / len(labels_liked)
    sim = (1 + (z @ z_liked.T).max(1)) / 2
    cl = np.array(own, np.int64)
    score = 0.5 * sim + 0.5 * np.where(cl >= 0, weight[np.maximum(cl, 0)], 0.0)
    score[[row[v] for v in liked_ids]] = -np.inf
    order = np.argsort(-score, kind="stable")[:k]
    records = {v.id: v for v in catalog.videos([ids[i] for i in order])}
    return [Recommendation(ids[i], records[ids[i]].path, float(score[i]), int(cl[i])) for i in order
            if np.isfinite(score[i])]
