"""Pictures of insights, as PNG bytes: the cluster map with exemplar thumbnails, and cluster shares over time."""

from __future__ import annotations

import io
from collections.abc import Collection
from datetime import UTC, datetime

import numpy as np

from tubelet.data import probe, read_frames_at
from tubelet.errors import TubeletError
from tubelet.insights.clusters import Cluster
from tubelet.insights.trends import TrendReport

MAP_POINTS = 20_000  # points drawn on the map (a seeded sample above this)
TSNE_MAX = 3_000  # t-SNE lays out catalogs up to this size; PCA above


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _thumbnail(path: str, size: int = 64) -> np.ndarray | None:
    """The middle frame of a video, short side `size`, or None if it cannot be read."""
    try:
        frames, _ = read_frames_at(path, [probe(path).duration_s / 2], size=size)
    except (TubeletError, OSError):
        return None
    return frames[0].numpy()


def layout_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N, 2] positions: t-SNE on up to TSNE_MAX videos (neighbours stay neighbours), PCA above."""
    if len(vectors) < 4:
        return np.pad(vectors[:, :2], ((0, 0), (0, max(0, 2 - vectors.shape[1]))))
    if len(vectors) <= TSNE_MAX:
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(30.0, (len(vectors) - 1) / 3), init="pca", random_state=seed).fit_transform(
            vectors)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(vectors)


def cluster_map(vectors: np.ndarray, labels: np.ndarray, clusters: list[Cluster], paths: dict[str, str],
                ids: list[str] | None = None) -> bytes:
    """Every video as a dot coloured by cluster (noise grey), each cluster's first exemplar as a thumbnail."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    n = len(vectors)
    show = np.arange(n) if n <= MAP_POINTS else np.sort(np.random.default_rng(0).permutation(n)[:MAP_POINTS])
    xy = np.zeros((n, 2))
    xy[show] = layout_2d(vectors[show])
    row = {v: i for i, v in enumerate(ids)} if ids is not None else {}
    fig, ax = plt.subplots(figsize=(9, 7))
    noise = show[labels[show] < 0]
    ax.scatter(xy[noise, 0], xy[noise, 1], s=8, c="#bbbbbb", label=f"noise ({int((labels < 0).sum())})")
    cmap = plt.get_cmap("tab20")
    for c in clusters:
        rows = show[labels[show] == c.id]
        ax.scatter(xy[rows, 0], xy[rows, 1], s=14, color=cmap(c.id % 20), label=f"{c.id} ({c.size})")
        if c.exemplars and c.exemplars[0] in paths:
            thumb = _thumbnail(paths[c.exemplars[0]])
            at = row.get(c.exemplars[0])
            if thumb is not None:
                where = xy[at] if at is not None else xy[rows].mean(0)
                ax.add_artist(AnnotationBbox(OffsetImage(thumb, zoom=0.45), where, frameon=True,
                                             bboxprops={"edgecolor": cmap(c.id % 20), "linewidth": 2}))
    ax.set_title(f"{n} videos, {len(clusters)} clusters (thumbnail: each cluster's most typical video)")
    ax.set_xticks([])
    ax.set_yticks([])
    if len(clusters) <= 30:
        ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=7, title="cluster (videos)")
    return _png(fig)


def share_chart(report: TrendReport, iso: bool, new: Collection[int] = ()) -> bytes:
    """Stacked shares of each period's uploads by cluster (rising trends in colour, the rest grey); `new`: the
    numbers of new groups (trends.py), named so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(report.periods) + report.period / 2
    if iso:
        x = [datetime.fromtimestamp(t, UTC) for t in x]
    marked = {t.cluster: t for t in report.trends}
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(10, 5))
    bottom = np.zeros(len(report.periods))
    order = sorted(report.shares, key=lambda c: (c in marked, marked[c].direction == "rising" if c in marked else 0))
    for i, c in enumerate(order):
        share = np.asarray(report.shares[c])
        t = marked.get(c)
        colour = cmap(i % 10) if t else "#dddddd"
        label = f"{'new group' if c in new else 'cluster'} {c} ({t.direction})" if t else None
        ax.fill_between(x, bottom, bottom + share, step="mid", color=colour, label=label, linewidth=0.3,
                        edgecolor="white")
        bottom += share
    ax.axvspan(x[0] if len(x) == 1 else (datetime.fromtimestamp(report.now - report.window, UTC) if iso
                                          else report.now - report.window), x[-1], color="k", alpha=0.06)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of uploads (noise left out)")
    ax.set_title(f"cluster shares per period; shaded: the recent window; {len(report.trends)} trend(s)")
    if marked:
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)
