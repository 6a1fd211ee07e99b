"""Trends: clusters whose share of recent uploads rises (or falls) against the share they held before.

Uploads are counted per cluster in periods ending at `now` (the latest upload, or a time given). The *recent*
window is the last `window` of time; the *baseline* is everything before it. A cluster is rising when its recent
count is improbably high for its baseline share — a one-sided test at `alpha`, with at least `min_count` recent
uploads; fading is the mirror test. The baseline share is estimated from the cluster's b of the n older uploads, so
the null is the beta-binomial recent count ~ BetaBin(recent uploads, b + 1, n − b + clusters): a binomial of a
share drawn from its posterior (mean (b + 1) / (n + clusters + 1): smoothed by one upload, so a cluster unseen
before still has a small share, not zero). A binomial that took the estimate as exact fires on steady topics twice
as often as `alpha` (≈ 1.7 % at 1 %, Poisson uploads at a constant rate; the test's test). A trend's score is the
change of share, recent minus baseline (in [0, 1] for rising, its size for fading); its lift is the ratio of the two
shares, each smoothed by one upload. Rising trends are ranked by lift, not by score: a large steady interest's
upswing moves its share more than a new interest's first handful of uploads does, while the new one's share grows
from next to nothing (benchmarks/trends.py, seed 4, day 23: a steady clip's cluster of 17 ranked above a new
topic's group of 6 by score, below it by lift; on the eight seen streams no steady topic entered the top 3 either
way). Fading trends are ranked by score. `since` is when the rise (fall) began: the change point of a CUSUM — the
start of the stretch of periods up to now with the largest total excess (deficit) of uploads over what the
baseline share predicts.
Noise is not a trend.

New groups (below the cluster level). The first uploads of a new interest often land inside an older interest's
cluster (or in noise), whose share then barely moves. So, on a clustering fitted on the affinity, the recent
uploads are looked at on their own first: a *new group* is a set of at least `min_group` recent uploads that are
linked to one another (single linkage, scipy) more closely than any of them is to an older upload, and whose
closest older upload is clearly less alike (`MARGIN`) than a typical upload's nearest neighbour (the median over the
recent uploads).
Uploads of a steady interest have older uploads of their own close by; a new interest's have none. Each new group
is counted as a cluster of its own (numbered after the clustering's), taken out of the clusters it was in, and
tested like any other.

Rising parts. A cluster can hold several interests that look alike to the affinity (static, low-texture footage:
benchmarks/trends.py seed 9 put steady bottles, a steady montage's white page and an emerging screen recording in
one cluster), and rise on one of them while its largest interest is steady. So each rising cluster's videos are cut
in two (average linkage on their affinity); when one part rises and the cluster without it does not, the part is
reported in the cluster's place and is cut in turn (a cluster whose every part rises, or none, stays whole;
seed 9: {bottles, montage, screen} → {montage 19, screen 25} → {montage 12, screen 25}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError
from tubelet.insights.affinity import distance, features
from tubelet.insights.clusters import Clustering
from tubelet.insights.times import format_time, parse_time, parse_window

ALPHA = 0.01
MIN_COUNT = 3
MIN_GROUP = 4  # recent uploads a new group needs (benchmark streams default, held-out, seeds 3-5, every day: a
# prototype passed 10 groups of steady topics' uploads at 3, none at 4; this form, without MARGIN, 4 at 4)
MARGIN = 0.75  # how much less alike (in the affinity's per-video z units) a new group's nearest older upload must be
# than a typical upload's nearest neighbour: halfway between the closest steady sub-group (0.51 below) and the
# closest early new topic (1.08 below) on those streams
PERIODS_PER_WINDOW = 7  # a 7-day window is counted day by day
MAX_PERIODS = 100_000


@dataclass
class Trend:
    cluster: int
    direction: str  # "rising" | "fading"
    score: float
    since: float  # a time in the unit of the input times
    counts: list[int]  # uploads of this cluster per period, oldest first
    recent_share: float
    baseline_share: float
    p_value: float
    lift: float  # recent share / baseline share, both smoothed by one upload


@dataclass
class TrendReport:
    trends: list[Trend]  # rising (best first), then fading (strongest first)
    periods: list[float]  # start of each counted period
    period: float
    window: float
    now: float
    totals: list[int]  # uploads per period (all clusters and noise)
    shares: dict[int, list[float]]  # cluster → its share of each period's uploads


def find_trends(times: np.ndarray, labels: np.ndarray, window: float, period: float | None = None,
                now: float | None = None, alpha: float = ALPHA, min_count: int = MIN_COUNT) -> TrendReport:
    """Rising and fading clusters from upload times [N] and cluster labels [N] (−1 = noise). Videos after `now`
    are left out."""
    from scipy.stats import betabinom

    times, labels = np.asarray(times, np.float64), np.asarray(labels, np.int64)
    if len(times) != len(labels):
        raise TubeletError(f"{len(times)} upload times for {len(labels)} videos")
    if not window > 0:
        raise TubeletError(f"window must be positive, got {window}")
    period = window / PERIODS_PER_WINDOW if period is None else period
    if not period > 0:
        raise TubeletError(f"period must be positive, got {period}")
    if not len(times):
        raise TubeletError("no videos with an upload time")
    now = float(times.max()) if now is None else float(now)
    keep = times <= now
    if not keep.any():
        raise TubeletError(f"no upload at or before {now}")
    times, labels = times[keep], labels[keep]
    first = float(times.min())
    n_periods = max(1, int(np.ceil((now - first) / period + 1e-9)))
    if n_periods > MAX_PERIODS:
        raise TubeletError(f"a period of {period:g} cuts the {now - first:g} of uploads into {n_periods} periods; "
                           f"give a longer --period or --window (at most {MAX_PERIODS} periods)")
    starts = now - period * np.arange(n_periods, 0, -1)
    # period i covers (starts[i], starts[i] + period]; the first also takes anything at its start
    idx = np.clip(np.ceil(np.round((times - now) / period, 9)).astype(np.int64) + n_periods - 1, 0, n_periods - 1)
    count = int(labels.max()) + 1 if len(labels) else 0
    grid = np.zeros((count + 1, n_periods), np.int64)  # last row: noise
    np.add.at(grid, (np.where(labels >= 0, labels, count), idx), 1)
    totals = grid.sum(0)
    recent = times > now - window
    n_recent, n_before = int(recent.sum()), int((~recent).sum())
    r = np.bincount(labels[recent & (labels >= 0)], minlength=count)[:count]
    b = np.bincount(labels[~recent & (labels >= 0)], minlength=count)[:count]
    share_before = (b + 1) / (n_before + count + 1) if count else np.zeros(0)
    shape = (n_recent, b + 1, n_before + count - b)  # the beta-binomial of share_before's uncertainty
    p_rise = betabinom.sf(r - 1, *shape) if n_recent else np.ones(count)
    p_fade = betabinom.cdf(r, *shape) if n_recent else np.ones(count)
    share_recent = r / max(n_recent, 1)
    lift = (r + 1) / (n_recent + count + 1) / share_before if count else np.zeros(0)
    base = b / max(n_before, 1)
    shares = grid[:count] / np.maximum(totals, 1)
    trends = []
    for c in range(count):
        # since: the change point — the start of the stretch to the end with the largest total excess (deficit)
        # of uploads over what the earlier share predicts (CUSUM); ties go to the latest, shortest stretch
        excess = np.cumsum((grid[c] - share_before[c] * totals)[::-1])[::-1]
        if n_before and p_rise[c] < alpha and r[c] >= min_count and share_recent[c] > base[c]:
            k = n_periods - 1 - int(np.argmax(excess[::-1]))
            trends.append(Trend(c, "rising", float(share_recent[c] - base[c]), float(starts[k]), grid[c].tolist(),
                                float(share_recent[c]), float(base[c]), float(p_rise[c]), float(lift[c])))
        elif n_before and p_fade[c] < alpha and b[c] >= min_count and share_recent[c] < base[c]:
            k = n_periods - 1 - int(np.argmin(excess[::-1]))
            trends.append(Trend(c, "fading", float(base[c] - share_recent[c]), float(starts[k]), grid[c].tolist(),
                                float(share_recent[c]), float(base[c]), float(p_fade[c]), float(lift[c])))
    trends.sort(key=lambda t: (t.direction != "rising", -(t.lift if t.direction == "rising" else t.score), t.cluster))
    return TrendReport(trends, starts.tolist(), period, window, now, totals.tolist(),
                       {c: shares[c].tolist() for c in range(count)})


@dataclass
class NewGroup:
    cluster: int  # its number in the trend report (after the clustering's clusters)
    rows: np.ndarray  # its videos, as rows of the times given
    within: list[int]  # the clusters its videos were in (−1: noise)
    kind: str = "new"  # "new": recent uploads apart from every older one; "part": a rising cluster's rising part


def hierarchy(a: np.ndarray, method: str) -> np.ndarray:
    """scipy's linkage tree (`method`) of R videos from their affinities [R, R] to one another (each pair at the
    nearer of its two directions; own entries ignored)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    d = distance(a)
    d = np.minimum(d, d.T)
    np.fill_diagonal(d, 0.0)
    return linkage(squareform(d, checks=False), method)


def new_groups(near: np.ndarray, recent: np.ndarray, min_size: int = MIN_GROUP) -> list[np.ndarray]:
    """Groups of recent videos nearer one another than any of them is to an older video, from the affinity [R, N]
    (higher = nearer, affinity.py) of the R recent videos — rows `recent` of N — to all N (own entries ignored):
    each a set of rows of N (module docstring)."""
    r = len(recent)
    old = np.ones(near.shape[1], bool)
    old[recent] = False
    if r < min_size or not old.any():
        return []
    near = np.array(near, np.float64)
    near[np.arange(r), recent] = -np.inf
    escape = near[:, old].max(1)  # each recent video's affinity to its nearest older one
    typical = float(np.median(near.max(1)))  # a recent video's to its nearest one
    tree = hierarchy(near[:, recent], "single")
    members = [[i] for i in range(r)]
    fits = []
    for a, b, height, _ in tree:
        m = members[int(a)] + members[int(b)]
        members.append(m)
        out_link = escape[m].max()
        fits.append(len(m) >= min_size and out_link < typical - MARGIN and height < distance(out_link))
    out, taken = [], np.zeros(r, bool)
    for k in range(len(tree) - 1, -1, -1):  # the largest first: a node comes after every node below it
        m = members[r + k]
        if fits[k] and not taken[m].any():
            taken[m] = True
            out.append(recent[np.sort(m)])
    return out


def split_new_groups(times: np.ndarray, labels: np.ndarray, window: float, now: float, first: int,
                     near_of: Callable[[np.ndarray], np.ndarray], min_size: int = MIN_GROUP,
                     ) -> tuple[np.ndarray, list[NewGroup]]:
    """Labels [N] with each new group of the recent window (new_groups) as a cluster of its own, numbered from
    `first`, and the groups; `near_of(rows)` gives the affinity [R, N] of videos `rows` to all N."""
    seen = np.flatnonzero(times <= now)
    recent = np.flatnonzero(times[seen] > now - window)
    if len(recent) < min_size or len(recent) == len(seen):
        return labels, []
    near = near_of(seen[recent])[:, seen]
    labels = labels.copy()
    groups = []
    for k, rows in enumerate(new_groups(near, recent, min_size)):
        rows = seen[rows]
        groups.append(NewGroup(first + k, rows, sorted(set(labels[rows].tolist()))))
        labels[rows] = first + k
    return labels, groups


def trends_with_groups(times: np.ndarray, labels: np.ndarray, window: float, period: float | None, now: float | None,
                       first: int, near_of: Callable[[np.ndarray], np.ndarray],
                       ) -> tuple[TrendReport, np.ndarray, list[NewGroup]]:
    """find_trends with the recent window's new groups split off first (split_new_groups, numbered from `first`),
    then the rising parts of rising clusters (split_rising_parts) → (the report, the labels it counted, the groups
    and parts)."""
    until = float(np.max(times)) if now is None else now
    labels, groups = split_new_groups(times, labels, window, until, first, near_of)
    report = find_trends(times, labels, window, period, now)
    labels, parts = split_rising_parts(times, labels, report, first + len(groups), near_of,
                                       partial(find_trends, times, window=window, period=period, now=now))
    if parts:
        report = find_trends(times, labels, window, period, now)
    return report, labels, groups + parts


def split_rising_parts(times: np.ndarray, labels: np.ndarray, report: TrendReport, first: int,
                       near_of: Callable[[np.ndarray], np.ndarray], trends_of: Callable[[np.ndarray], TrendReport],
                       min_size: int = MIN_GROUP) -> tuple[np.ndarray, list[NewGroup]]:
    """Labels [N] with the rising part of each rising cluster numbered below `first` (the clustering's and the new
    groups) as a cluster of its own, numbered from `first`, and the parts. A cluster's videos are cut in two
    (average linkage on their affinity); a part is split off when it rises (`trends_of(labels)`) and the cluster
    without it does not, and is then cut in turn (module docstring)."""
    from scipy.cluster.hierarchy import fcluster

    seen = times <= report.now
    parts = []
    todo = [t.cluster for t in report.trends if t.direction == "rising" and t.cluster < first]
    while todo:
        c = todo.pop(0)
        rows = np.flatnonzero(seen & (labels == c))
        if len(rows) < 2 * min_size:
            continue
        half = fcluster(hierarchy(near_of(rows)[:, rows], "average"), 2, "maxclust")
        for side in (1, 2):
            part = rows[half == side]
            if min(len(part), len(rows) - len(part)) < min_size:
                break
            trial = labels.copy()
            trial[part] = first + len(parts)
            rising = {u.cluster for u in trends_of(trial).trends if u.direction == "rising"}
            if first + len(parts) in rising and c not in rising:
                labels = trial
                parts.append(NewGroup(first + len(parts), part, [c], "part"))
                todo.append(parts[-1].cluster)
                break
    return labels, parts


def catalog_trends(cat: Catalog, clustering: Clustering, time_field: str = "uploaded_at", window: str = "7d",
                   period: str | None = None, now: str | None = None) -> tuple[TrendReport, bool, dict[str, Any]]:
    """Trends of a catalog's clusters over its videos' `time_field` metadata → (the report, whether the times are
    ISO-8601, the JSON document of `tubelet trends`). On a clustering compared on the affinity, new groups of the
    recent window are split off first (split_new_groups), then the rising parts of rising clusters
    (split_rising_parts); a trend of either lists its `members`, the clusters they were `within` and its `kind`."""
    label = clustering.label_of()
    ids, times, labels, iso = [], [], [], set()
    for v in cat.videos():
        if time_field not in v.meta:
            continue
        t, is_iso = parse_time(v.meta[time_field], f"{v.path}: {time_field}")
        ids.append(v.id)
        times.append(t)
        labels.append(label.get(v.id, -1))
        iso.add(is_iso)
    if not times:
        raise TubeletError(f"{cat.root}: no video has a `{time_field}` in its metadata; add videos with a manifest "
                           f"or --meta {time_field}=…")
    if len(iso) > 1:
        raise TubeletError(f"{cat.root}: `{time_field}` mixes ISO-8601 times and numbers")
    iso_times = iso.pop()
    length, _ = parse_window(window)
    step = parse_window(period)[0] if period else None
    at = parse_time(now, "--now")[0] if now is not None else None
    times, labels, groups = np.asarray(times, np.float64), np.asarray(labels, np.int64), []
    if clustering.by_affinity(len(cat.ids())):
        report, labels, groups = trends_with_groups(times, labels, length, step, at, clustering.num_clusters,
                                                    partial(clustering.near, features(cat, ids), ids))
    else:
        report = find_trends(times, labels, length, step, at)
    extra = {g.cluster: {"members": [ids[i] for i in g.rows], "within": g.within, "kind": g.kind} for g in groups}
    fmt = lambda t: format_time(t, iso_times)  # noqa: E731
    data = {"time_field": time_field, "window": window, "now": fmt(report.now),
            "periods": [fmt(t) for t in report.periods], "totals": report.totals,
            "trends": [{"cluster": t.cluster, "score": t.score, "since": fmt(t.since), "counts": t.counts,
                        "direction": t.direction, "recent_share": t.recent_share,
                        "baseline_share": t.baseline_share, "p_value": t.p_value, "lift": t.lift,
                        **extra.get(t.cluster, {})}
                       for t in report.trends]}
    return report, iso_times, data
