"""`tubelet clusters`, `tubelet recommend` and `tubelet trends`: insights over a catalog's embeddings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tubelet.cli import app

CATALOG = typer.Option(..., "--catalog", help="Catalog directory.")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
REFIT = typer.Option(False, "--refit", help="Cluster the catalog afresh (otherwise videos added since the stored "
                                            "clustering are assigned to its clusters, or left as noise).")
MIN_SIZE = typer.Option(None, "--min-size", help="Fewest videos a cluster holds (default 7; a new value refits).")


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _clustering(catalog: Path, refit: bool, min_size: int | None) -> tuple[Any, Any, str]:
    import dataclasses

    from tubelet.catalog.store import Catalog
    from tubelet.insights.clusters import ClusterParams, current, load

    cat = Catalog.open(catalog)
    params = None
    if min_size is not None:
        stored = None if refit else load(cat)
        base = stored.params if stored else ClusterParams()
        params = dataclasses.replace(base, min_size=min_size, min_samples=min(base.min_samples, min_size))
    clustering, done = current(cat, refit, params)
    typer.echo(f"clusters: {done} ({clustering.num_clusters} clusters, fitted {clustering.info['fitted_at']} on "
               f"{clustering.info['fitted_videos']} videos)", err=True)
    return cat, clustering, done


@app.command()
def clusters(
    catalog: Path = CATALOG,
    refit: bool = REFIT,
    min_size: int = MIN_SIZE,
    out: Path = typer.Option(None, "--out", help="Folder for clusters.json and the map clusters.png."),
    as_json: bool = JSON,
) -> None:
    """Interest clusters of the catalog's videos: size, most typical videos, members; noise apart."""
    from tubelet.atomic import atomic_write
    from tubelet.insights.pictures import cluster_map

    cat, clustering, _ = _clustering(catalog, refit, min_size)
    _, vectors = cat.video_vectors()
    z = clustering.space(vectors)
    found, noise = clustering.clusters(z)
    data = {"catalog": str(catalog), "clusters": [c.to_dict() for c in found], "noise": noise,
            "fitted": clustering.info}
    if out is not None:
        atomic_write(out / "clusters.json", json.dumps(data, indent=2))
        paths = {v.id: v.path for v in cat.videos()}
        atomic_write(out / "clusters.png", cluster_map(z, clustering.labels, found, paths,
                                                                clustering.ids.tolist()))
        typer.echo(f"wrote {out / 'clusters.json'} and {out / 'clusters.png'}", err=True)
    if as_json:
        _echo_json(data)
        return
    paths = {v.id: v.path for v in cat.videos()}
    for c in found:
        typer.echo(f"cluster {c.id}: {c.size} videos, e.g. " + ", ".join(Path(paths[e]).name for e in c.exemplars))
    typer.echo(f"noise: {len(noise)} videos fit no cluster")


@app.command()
def recommend(
    catalog: Path = CATALOG,
    liked: list[str] = typer.Option(..., "--liked", help="A liked video: catalog id or file (repeat the option)."),
    k: int = typer.Option(10, "-k", "--top", help="Videos to return."),
    as_json: bool = JSON,
) -> None:
    """Cold start: the k videos most worth showing after a few liked ones (never the liked ones)."""
    from tubelet.insights.recommend import recommend as run

    cat, clustering, _ = _clustering(catalog, False, None)
    found = run(cat, clustering, liked, k)
    if as_json:
        _echo_json({"catalog": str(catalog), "liked": liked, "results": [r.to_dict() for r in found]})
        return
    for i, r in enumerate(found, 1):
        where = f"cluster {r.cluster}" if r.cluster >= 0 else "noise"
        typer.echo(f"{i:>3}. {r.score:.3f}  {Path(r.path).name} ({r.id}, {where})")


@app.command()
def trends(
    catalog: Path = CATALOG,
    time_field: str = typer.Option("uploaded_at", "--time-field", help="Metadata field with the upload time "
                                                                       "(ISO-8601 or a number)."),
    window: str = typer.Option("7d", "--window", help="Recent span compared with what came before: 7d, 12h, 30m, "
                                                      "2w, or a bare number in the times' own unit (numbers with "
                                                      "a unit suffix are read as seconds, e.g. Unix time)."),
    period: str = typer.Option(None, "--period", help="Counting period (default: a seventh of the window)."),
    now: str = typer.Option(None, "--now", help="Trends as of this time (default: the latest upload)."),
    refit: bool = REFIT,
    out: Path = typer.Option(None, "--out", help="Folder for trends.json and the chart trends.png."),
    as_json: bool = JSON,
) -> None:
    """Clusters whose share of recent uploads is rising (ranked, with when it began) or fading."""
    from tubelet.atomic import atomic_write
    from tubelet.insights.pictures import share_chart
    from tubelet.insights.times import format_time
    from tubelet.insights.trends import catalog_trends

    cat, clustering, _ = _clustering(catalog, refit, None)
    report, iso_times, data = catalog_trends(cat, clustering, time_field, window, period, now)
    data = {"catalog": str(catalog), **data}
    fmt = lambda t: format_time(t, iso_times)  # noqa: E731
    if out is not None:
        atomic_write(out / "trends.json", json.dumps(data, indent=2))
        atomic_write(out / "trends.png", share_chart(report, iso_times,
                                                     {t["cluster"] for t in data["trends"] if "members" in t}))
        typer.echo(f"wrote {out / 'trends.json'} and {out / 'trends.png'}", err=True)
    if as_json:
        _echo_json(data)
        return
    if not report.trends:
        typer.echo(f"no rising or fading cluster in the last {window}")
    for rank, (t, d) in enumerate(zip(report.trends, data["trends"], strict=True), 1):
        what = f"cluster {t.cluster}" if "members" not in d else (
            f"{'new group' if d['kind'] == 'new' else 'rising part'} {t.cluster} ({len(d['members'])} videos, from "
            f"{', '.join('noise' if c < 0 else f'cluster {c}' for c in d['within'])})")
        typer.echo(f"{rank:>3}. {what} {t.direction} since {fmt(t.since)}: share {t.baseline_share:.0%}"
                   f" → {t.recent_share:.0%} (score {t.score:.3f}, p {t.p_value:.1e})")
