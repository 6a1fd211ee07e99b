"""Interest clusters of a catalog's videos: HDBSCAN on the videos' affinity (the moments they share), stored with
the catalog, and extended to later videos without a refit.

Fit. A catalog of up to `affinity_max` videos is clustered by scikit-learn's HDBSCAN on precomputed distances from
`affinity.py` (best-matching fingerprint pairs, crop views and segments, each standardised per video): a cluster is
a dense group of at least `min_size` videos, and videos in no dense group are noise — never forced into the
nearest cluster. HDBSCAN runs once more on its noise alone (`dense_groups`): a topic whose uploads link only weakly
(a clip with scene cuts) drops out of a denser topic's branch as noise, and shows its own groups once those are
out. Larger catalogs take the cheaper path: HDBSCAN (the same two passes) on the video vectors mapped into
`space.Space`, fitted on a seeded sample of `fit_max` and the rest placed as below (a topic needs about min_size /
fit_max of the catalog to be found), which keeps 100 000 videos under a minute. Either way the space is fitted
too: exemplars, the map and cold start use it.

Assign (no refit). A video that arrived after the fit joins the cluster of its nearest fitted, clustered video if
it lies no further from it than the longest link inside that cluster (the largest distance from a member to its
nearest fellow member: what HDBSCAN itself accepted as "connected"); otherwise it is noise. Distances are the
fit's: the affinity to the fitted videos still in the catalog, standardised with their stored statistics, or the
space's. The stored clustering gains the assignments; the fit is kept as it was until an explicit refit.

Stored as `<catalog>/insights/clusters.npz` (no pickles), written atomically, with the model identity and the
catalog generation and video count it was fitted on.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.atomic import atomic_write
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError
from tubelet.insights.affinity import STATISTICS, VERSION, Features, Reference, affinity, distance, features
from tubelet.insights.space import Space, fit_space

STORE = Path("insights") / "clusters.npz"
EXEMPLARS = 3  # most typical videos reported per cluster
FIT_MAX = 5_000  # videos HDBSCAN is fitted on (a seeded sample above this); the rest are placed
AFFINITY_MAX = 2_000  # catalogs up to this many videos are clustered on their affinity, larger on video vectors


@dataclass(frozen=True)
class ClusterParams:
    """How clusters are found: HDBSCAN's smallest cluster and its density estimate's neighbourhood.

    min_size 7: a handful of uploads that share a re-edit (a caption bar, a colour grade) is a sub-group of an
    interest, not an interest; at 5, HDBSCAN kept such groups apart (default and held-out benchmark streams, demo
    checkpoint: ARI 0.367/0.524 at 5, 0.591/0.736 at 7); 7 is also as many as an emerging topic uploads in about
    three days at the benchmark's burst rate, so a new interest still forms within the 4 days trends are given."""

    min_size: int = 7
    min_samples: int = 2
    fit_max: int = FIT_MAX
    affinity_max: int = AFFINITY_MAX
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_size < 2:
            raise TubeletError(f"a cluster needs at least 2 videos, got min size {self.min_size}")
        if self.min_samples < 1:
            raise TubeletError(f"min samples must be at least 1, got {self.min_samples}")


@dataclass
class Cluster:
    id: int
    size: int
    exemplars: list[str]
    members: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "exemplars": self.exemplars, "members": self.members}


@dataclass
class Clustering:
    """Labels of every catalog video (−1 = noise) and what is needed to place new ones without a refit."""

    ids: np.ndarray  # [N] str, catalog videos known to this clustering
    labels: np.ndarray  # [N] int, −1 = noise
    fitted: np.ndarray  # [N] bool: part of the fit (else assigned later)
    space: Space
    anchors: np.ndarray  # [F, D] space vectors of the fitted, clustered videos (what new videos are placed by)
    anchor_labels: np.ndarray  # [F]
    links: np.ndarray  # [C] longest link inside each cluster (distance in the space)
    params: ClusterParams
    info: dict[str, Any] = field(default_factory=dict)  # model id, catalog generation/videos, time of the fit
    # fitted on the affinity (else empty): the fitted videos, their labels, their per-channel statistics
    # [F, STATISTICS, 2], and each cluster's longest link in affinity distance [C]
    fit_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, str))
    fit_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fit_stats: np.ndarray = field(default_factory=lambda: np.zeros((0, len(STATISTICS), 2), np.float32))
    affinity_links: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def on_affinity(self) -> bool:
        return len(self.fit_ids) > 0

    def by_affinity(self, videos: int) -> bool:
        """Whether a catalog of `videos` videos is compared on the affinity: fitted so, and still no larger than
        `affinity_max` (past it, on the video vectors)."""
        return self.on_affinity and videos <= self.params.affinity_max

    @property
    def num_clusters(self) -> int:
        return len(self.links)

    def label_of(self) -> dict[str, int]:
        return dict(zip(self.ids.tolist(), self.labels.tolist(), strict=True))

    def clusters(self, vectors: np.ndarray) -> tuple[list[Cluster], list[str]]:
        """(clusters with their exemplars: the members nearest their cluster's mean direction; noise ids), given the
        space vectors [N, D] of `ids`."""
        out = []
        for c in range(self.num_clusters):
            rows = np.flatnonzero(self.labels == c)
            if not len(rows):
                continue
            centre = vectors[rows].mean(0)
            typical = rows[np.argsort(-(vectors[rows] @ centre), kind="stable")[:EXEMPLARS]]
            out.append(Cluster(c, len(rows), self.ids[typical].tolist(), self.ids[rows].tolist()))
        return out, self.ids[self.labels < 0].tolist()

    # ---- placing videos that came after the fit ------------------------------------------------------------
    def place(self, vectors: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Labels of space vectors [M, D]: the cluster of the nearest anchor if within that cluster's longest
        link, else −1."""
        out = np.full(len(vectors), -1, np.int64)
        if not len(self.anchors):
            return out
        for lo in range(0, len(vectors), chunk):
            sim = vectors[lo:lo + chunk] @ self.anchors.T
            best = sim.argmax(1)
            dist = np.sqrt(np.maximum(0.0, 2 - 2 * sim[np.arange(len(best)), best]))
            lab = self.anchor_labels[best]
            out[lo:lo + chunk] = np.where(dist <= self.links[lab] + 1e-6, lab, -1)
        return out

    def place_by_affinity(self, new: Features, fitted: Features, present: np.ndarray) -> np.ndarray:
        """Labels of new videos from their affinity to the fitted videos still in the catalog (`present`: their
        rows in fit_ids, `fitted`: their features)."""
        if not len(present):
            return np.full(len(new), -1, np.int64)
        ref = Reference(fitted.in_space(self.space), self.fit_stats[present])
        return self.nearest_cluster(affinity(new.in_space(self.space), ref, self.params.seed)[0], present)

    def reference(self, feats: Features, ids: list[str]) -> tuple[Reference, np.ndarray]:
        """Videos `ids` (features `feats`, same order) as what new videos are compared with, and the rows in fit_ids
        of those fitted [P] (−1 for the others, [N]): statistics stored by the fit, measured against the fitted ones
        present for videos placed after it."""
        fit_row = {v: i for i, v in enumerate(self.fit_ids.tolist())}
        rows = np.array([fit_row.get(v, -1) for v in ids], np.int64)
        feats = feats.in_space(self.space)
        stats = np.zeros((len(ids), *self.fit_stats.shape[1:]), np.float32)
        was = np.flatnonzero(rows >= 0)
        stats[was] = self.fit_stats[rows[was]]
        later = np.flatnonzero(rows < 0)
        if len(later) and len(was):
            stats[later] = affinity(feats.subset(later), Reference(feats.subset(was), stats[was]),
                                    self.params.seed)[1]
        return Reference(feats, stats), rows

    def near(self, feats: Features, ids: list[str], rows: np.ndarray) -> np.ndarray:
        """Affinity [R, N] of the videos `rows` of `ids` (features `feats`, same order) to all of them (own: +inf),
        standardised as the fit was."""
        ref, _ = self.reference(feats, ids)
        return affinity(ref.features.subset(rows), ref, self.params.seed, own=np.asarray(rows))[0]

    def nearest_cluster(self, a: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Labels of videos from their affinities [M, P] to the fitted videos `present` (rows in fit_ids): the
        cluster of the nearest clustered one if within that cluster's longest link, else −1."""
        out = np.full(len(a), -1, np.int64)
        if not len(present):
            return out
        d = distance(a)
        lab = self.fit_labels[present]
        d[:, lab < 0] = np.inf
        best = d.argmin(1)
        near = lab[best]
        ok = (near >= 0) & (d[np.arange(len(best)), best] <= self.affinity_links[np.maximum(near, 0)] + 1e-9)
        out[ok] = near[ok]
        return out


def _longest_links(dist: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """[count] for each cluster, the largest distance [N, N] from a member to its nearest fellow member."""
    links = np.zeros(count, np.float64)
    for c in range(count):
        rows = np.flatnonzero(labels == c)
        d = dist[np.ix_(rows, rows)].astype(np.float64)
        np.fill_diagonal(d, np.inf)
        links[c] = float(d.min(1).max()) if len(rows) > 1 else 0.0
    return links


def _space_distance(z: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(0.0, 2 - 2 * (z @ z.T)))


def min_videos(params: ClusterParams) -> int:
    """The fewest videos that can hold two clusters."""
    return 2 * params.min_size


def dense_groups(hdb: Any, x: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Labels [N] (−1 = noise) from `hdb` (scikit-learn's HDBSCAN) on points [N, D] or, when its metric is
    "precomputed", on distances [N, N]; then its noise once more on its own, new clusters numbered after the first.

    A topic whose uploads link to one another only weakly (a clip with scene cuts: its excerpts show different
    scenes, joined only by the few that span a cut) meets a denser topic's branch of the hierarchy before its own
    groups reach `min_size`, and they drop out of that branch as noise. Without the clusters found, the noise's own
    density structure shows (benchmarks/trends.py, demo checkpoint, the eight seen streams: a cut-heavy topic's
    noise formed its own clusters on four of them; ARI 0.795–0.961 → 0.811–0.961, none lower)."""
    labels = np.asarray(hdb.fit_predict(x), np.int64)
    rest = np.flatnonzero(labels < 0)
    if len(rest) >= min_videos(params):
        sub = hdb.fit_predict(x[np.ix_(rest, rest)] if hdb.metric == "precomputed" else x[rest])
        labels[rest[sub >= 0]] = labels.max() + 1 + sub[sub >= 0]
    return labels


def fit(ids: list[str], vectors: np.ndarray, params: ClusterParams = ClusterParams(),
        info: dict[str, Any] | None = None, where: str = "catalog", feats: Features | None = None) -> Clustering:
    """A fresh clustering of the videos `ids` with video vectors [N, D]: on their affinity when their features
    (affinity.py, same order) are given and they are at most `affinity_max`, else on the vectors."""
    from sklearn.cluster import HDBSCAN

    n = len(ids)
    if n < min_videos(params):
        raise TubeletError(f"{where}: holds {n} video{'s' if n != 1 else ''}; clustering needs at least "
                           f"{min_videos(params)} (two clusters of --min-size {params.min_size}); add more videos")
    space = fit_space(vectors, seed=params.seed)
    z = space(vectors)
    on_affinity = feats is not None and n <= params.affinity_max
    fitted = np.zeros(n, bool)
    fitted[np.sort(np.random.default_rng(params.seed).permutation(n)[:n if on_affinity else params.fit_max])] = True
    hdb = HDBSCAN(min_cluster_size=params.min_size, min_samples=min(params.min_samples, params.min_size),
                  metric="precomputed" if on_affinity else "euclidean", algorithm="brute", copy=True)
    labels = np.full(n, -1, np.int64)
    extra: dict[str, np.ndarray] = {}
    if on_affinity:
        a, stats = affinity(feats.in_space(space), seed=params.seed)
        dist = distance(a)
        np.fill_diagonal(dist, 0.0)
        labels[:] = dense_groups(hdb, dist, params)
        extra = {"fit_ids": np.asarray(ids, dtype=str), "fit_labels": labels.copy(), "fit_stats": stats,
                 "affinity_links": _longest_links(dist, labels, int(labels.max()) + 1)}
    else:
        # brute force: the space has as many dimensions as the encoder's width, where tree searches degrade to
        # slower-than-brute (5000 videos × 192 dims: 19 s brute vs 120 s kd-tree, loaded)
        labels[fitted] = dense_groups(hdb, z[fitted], params)
    count = int(labels.max()) + 1
    anchor = fitted & (labels >= 0)
    out = Clustering(np.asarray(ids, dtype=str), labels, fitted, space, z[anchor], labels[anchor],
                     _longest_links(_space_distance(z[anchor]), labels[anchor], count), params,
                     {**(info or {}), "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                      "fitted_videos": int(fitted.sum()), "fitted_on": "affinity" if on_affinity else "vectors",
                      **({"affinity_version": VERSION} if on_affinity else {})},
                     **extra)
    if not fitted.all():
        labels[~fitted] = out.place(z[~fitted])
    return out


def fit_catalog(catalog: Catalog, params: ClusterParams = ClusterParams()) -> Clustering:
    """Fit on every video of the catalog, recording the model and the catalog state."""
    ids, vectors = catalog.video_vectors()
    st = catalog.stats()
    info = {"model_id": catalog.model.id, "model_source": catalog.model.source, "generation": st["generation"],
            "videos": st["videos"]}
    return fit(ids, vectors, params, info, str(catalog.root),
               features(catalog, ids) if len(ids) <= params.affinity_max else None)


def update(clustering: Clustering, ids: list[str], vectors: np.ndarray, catalog: Catalog | None = None,
           ) -> tuple[Clustering, int]:
    """The clustering over the catalog's current videos (`ids`, video vectors [N, D] in the same order): videos
    gone are dropped, new ones placed without refitting (by affinity when it was fitted so, `catalog` is given to
    read the videos' features from and the catalog is still small enough for it; else by their vectors). Returns
    it and how many were placed."""
    known = {v: i for i, v in enumerate(clustering.ids.tolist())}
    rows = np.array([known.get(v, -1) for v in ids], np.int64)
    new = rows < 0
    labels = np.where(new, -1, clustering.labels[np.maximum(rows, 0)])
    if new.any() and catalog is not None and clustering.by_affinity(len(ids)):
        current_ids = set(ids)
        present = np.array([i for i, v in enumerate(clustering.fit_ids.tolist()) if v in current_ids], np.int64)
        new_ids = [v for v, n in zip(ids, new, strict=True) if n]
        both = features(catalog, [*clustering.fit_ids[present].tolist(), *new_ids])
        labels[new] = clustering.place_by_affinity(both.subset(np.arange(len(present), len(both))),
                                                   both.subset(np.arange(len(present))), present)
    elif new.any():
        labels[new] = clustering.place(clustering.space(vectors[new]))
    fitted = ~new & clustering.fitted[np.maximum(rows, 0)]
    out = dataclasses.replace(clustering, ids=np.asarray(ids, dtype=str), labels=labels, fitted=fitted,
                              info=dict(clustering.info))
    return out, int(new.sum())


# ---- storage ------------------------------------------------------------------------------------------------
def save(clustering: Clustering, catalog: Catalog) -> Path:
    """Write the clustering into the catalog directory (atomically)."""
    buf = io.BytesIO()
    meta = {"params": asdict(clustering.params), "info": clustering.info}
    np.savez(buf, ids=clustering.ids.astype(str), labels=clustering.labels, fitted=clustering.fitted,
             mean=clustering.space.mean, projection=clustering.space.projection, anchors=clustering.anchors,
             anchor_labels=clustering.anchor_labels, links=clustering.links, fit_ids=clustering.fit_ids.astype(str),
             fit_labels=clustering.fit_labels, fit_stats=clustering.fit_stats,
             affinity_links=clustering.affinity_links, meta=np.array(json.dumps(meta)))
    return atomic_write(catalog.root / STORE, buf.getvalue())


def load(catalog: Catalog) -> Clustering | None:
    """The stored clustering, or None when there is none, or it was fitted on another model's vectors or on an
    affinity of other channels or of another VERSION of them (a refit follows)."""
    path = catalog.root / STORE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out = Clustering(z["ids"].astype(str), z["labels"].astype(np.int64), z["fitted"].astype(bool),
                             Space(z["mean"], z["projection"]), z["anchors"], z["anchor_labels"].astype(np.int64),
                             z["links"], ClusterParams(**meta["params"]), meta["info"])
            if "fit_ids" in z.files:  # fitted on the affinity (absent from clusterings fitted on vectors before)
                out.fit_ids, out.fit_labels = z["fit_ids"].astype(str), z["fit_labels"].astype(np.int64)
                out.fit_stats, out.affinity_links = z["fit_stats"], z["affinity_links"]
                if out.fit_stats.shape[1] != len(STATISTICS) or out.info.get("affinity_version", 1) != VERSION:
                    return None  # fitted on an affinity of other channels or of another version of them: stale
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise TubeletError(f"{path}: unreadable stored clustering ({e}); refit with `tubelet clusters --refit`") \
            from None
    return out if out.info.get("model_id") == catalog.model.id else None


def current(catalog: Catalog, refit: bool = False, params: ClusterParams | None = None) -> tuple[Clustering, str]:
    """The catalog's clustering brought up to date, and what was done ("fitted", "assigned N", "up to date"):
    fitted when there is none yet, when asked to, or when new parameters are given; otherwise the stored one with
    new videos assigned and removed ones dropped. Saved when it changed."""
    stored = None if refit else load(catalog)
    if stored is not None and params is not None and params != stored.params:
        stored = None
    if stored is None:
        out = fit_catalog(catalog, params or ClusterParams())
        save(out, catalog)
        return out, "fitted"
    ids, vectors = catalog.video_vectors()
    out, added = update(stored, ids, vectors, catalog)
    changed = added or len(out.ids) != len(stored.ids)
    if changed:
        save(out, catalog)
    return out, f"assigned {added} new video{'s' if added != 1 else ''}" if added else "up to date"
