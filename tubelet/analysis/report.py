"""Pre-publish analysis of one video: pacing, dead stretches and — against a catalog — repeated segments, how
distinctive it is and how original; as JSON for machines and an HTML page with pictures for people.

Parts that need embeddings (repeats, distinctiveness, originality) use the catalog's own model and are left out
(null in the JSON) without a catalog.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.analysis.pacing import Span, dead_stretches, detect_cuts, pacing, shots_between
from tubelet.analysis.signals import Signals, frame_signals
from tubelet.catalog.copies import best_runs, diagonal_runs, find_copies
from tubelet.catalog.search import Query, make_query, on_grid
from tubelet.catalog.store import Catalog

REPEAT_MIN_RUN = 2  # consecutive segments a repeat needs, as for copies


@dataclass
class Analysis:
    path: str
    duration_s: float
    fps: float
    frames: int
    cuts_s: list[float]
    shots: list[Span]
    pacing: dict[str, Any]
    dead: list[Span]
    repeats: list[dict[str, Any]] | None = None  # a later span that shows an earlier one again
    distinctiveness: dict[str, Any] | None = None
    originality: dict[str, Any] | None = None
    findings: list[str] = field(default_factory=list)  # the report's summary, one sentence each

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("shots", "dead")}
        return {**out, "shots": [s.to_dict() for s in self.shots], "dead": [s.to_dict() for s in self.dead]}


def repeats_within(query: Query, stride_s: float, window_s: float, threshold: float) -> list[dict[str, Any]]:
    """Spans of the video that show an earlier part of it again, starting after that part ends (segment similarity
    ≥ threshold along a diagonal of its own similarity matrix, as copies are found)."""
    grid = on_grid(query.starts, stride_s)
    starts, ends, vecs = query.starts[grid], query.ends[grid], query.vectors[grid]
    apart = int(np.ceil(window_s / stride_s - 1e-9))  # windows this many strides apart do not overlap
    found = [r for r in diagonal_runs(vecs @ vecs.T, threshold, REPEAT_MIN_RUN, min_offset=apart)
             if ends[r.last] <= starts[r.first + r.offset]]  # the repeat starts after the original ends (else: slow)
    found = best_runs(found)
    return sorted(({"start_s": float(starts[r.first + r.offset]), "end_s": float(ends[r.last + r.offset]),
                    "repeats_start_s": float(starts[r.first]), "repeats_end_s": float(ends[r.last]),
                    "score": r.score} for r in found),
                  key=lambda r: r["start_s"])


def distinctiveness(catalog: Catalog, query: Query, sample: int = 2000, seed: int = 0) -> dict[str, Any] | None:
    """How far the video's embedding is from its nearest catalog video, against how far catalog videos are from
    theirs: `percentile` = share of catalog videos that have a closer neighbour than this video has."""
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
    rows = np.random.default_rng(seed).permutation(len(ids))[:sample]
    own = vecs[rows] @ vecs.T
    own[np.arange(len(rows)), rows] = -np.inf  # not itself
    own_nearest = own.max(1)
    record = catalog.video(ids[nearest])
    return {"nearest_similarity": float(sims[nearest]), "nearest_id": record.id, "nearest_path": record.path,
            "percentile": float(np.mean(own_nearest > sims[nearest])),
            "catalog_median_nearest_similarity": float(np.median(own_nearest))}


def _findings(a: Analysis) -> list[str]:
    p, out = a.pacing, []
    if p["shots"] > 1:
        out.append(f"{p['shots']} shots, {p['cuts_per_min']:.1f} cuts a minute; shots last {p['median_shot_s']:.1f} s "
                   f"(median), from {p['shortest_shot_s']:.1f} to {p['longest_shot_s']:.1f} s.")
    else:
        out.append(f"One continuous shot of {a.duration_s:.1f} s (no hard cut found).")
    out += [f"{s['kind'].capitalize()} at {s['start_s']:.1f}–{s['end_s']:.1f} s: {s['detail']}."
            for s in p["irregular"]]
    out += [f"{s.kind.capitalize()} from {s.start_s:.1f} to {s.end_s:.1f} s ({s.duration_s:.1f} s): "
            f"{'consider cutting it' if s.duration_s >= 3 else 'a pause'}." for s in a.dead]
    out += [f"{r['start_s']:.1f}–{r['end_s']:.1f} s shows {r['repeats_start_s']:.1f}–{r['repeats_end_s']:.1f} s "
            f"again (similarity {r['score']:.3f})." for r in a.repeats or []]
    if a.distinctiveness:
        d = a.distinctiveness
        out.append(f"More distinctive than {100 * d['percentile']:.0f}% of catalog videos (nearest: "
                   f"{Path(d['nearest_path']).name}, similarity {d['nearest_similarity']:.3f}).")
    if a.originality:
        o = a.originality
        verdict = "FLAGGED as mostly copied" if o["flagged"] else "not flagged"
        out.append(f"Originality {o['originality']:.2f}: {o['copied_s']:.1f} s of {o['compared_s']:.1f} s "
                   f"({100 * o['share']:.0f}%) found in the catalog — {verdict}.")
    return out


def analyze(path: str | os.PathLike, catalog: Catalog | None = None, threshold: float | None = None,
            on_frame: Callable[[float], None] | None = None) -> tuple[Analysis, Signals]:
    """Analyse one video (against `catalog` when given) → (the analysis, the frame signals behind it)."""
    sig = frame_signals(path, on_frame=on_frame)
    cuts = detect_cuts(sig)
    shots = shots_between(cuts, sig.duration_s)
    a = Analysis(os.fspath(path), sig.duration_s, sig.fps, len(sig.times), [float(c) for c in cuts], shots,
                 pacing(shots), dead_stretches(sig))
    if catalog is not None:
        query = make_query(catalog, path)
        copies = find_copies(catalog, query, threshold)  # resolves the threshold (given, or calibrated)
        model = catalog.model
        a.repeats = repeats_within(query, model.stride_s, model.window_s, copies.threshold)
        a.distinctiveness = distinctiveness(catalog, query)
        a.originality = copies.to_dict()
    a.findings = _findings(a)
    return a, sig


# ---- the HTML report -------------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def timeline_figure(a: Analysis, sig: Signals, max_thumbs: int = 16) -> Any:
    """Thumbnails of the shots over a band chart (shots, dead stretches, repeats, copies) and the change and
    motion curves with the cuts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 5.4))
    grid = fig.add_gridspec(3, 1, height_ratios=[1.3, 1.1, 1.4], hspace=0.35)
    T = a.duration_s
    # thumbnails: each shot's middle frame (evenly chosen shots when there are many)
    ax = fig.add_subplot(grid[0])
    picks = [a.shots[i] for i in np.unique(np.linspace(0, len(a.shots) - 1, min(max_thumbs, len(a.shots))).astype(int))]
    thumbs = [sig.thumb_at((s.start_s + s.end_s) / 2) for s in picks]
    h = min(t.shape[0] for t in thumbs)
    strip = np.concatenate([np.pad(t[:h], ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in thumbs], axis=1)
    ax.imshow(strip)
    ax.set_xticks([(i + 0.5) * strip.shape[1] / len(picks) for i in range(len(picks))],
                  [f"{s.start_s:.1f} s" for s in picks], fontsize=7)
    ax.set_yticks([])
    ax.set_title(f"{Path(a.path).name}: {len(a.shots)} shot(s) in {T:.1f} s", fontsize=10)
    # bands
    ax = fig.add_subplot(grid[1])
    rows = [("shots", [(s.start_s, s.end_s, ("#4c78a8", "#9ecae9")[i % 2]) for i, s in enumerate(a.shots)]),
            ("dead", [(s.start_s, s.end_s, "#222222" if s.kind == "black" else "#aaaaaa") for s in a.dead]),
            ("repeats", [(r["start_s"], r["end_s"], "#f58518") for r in a.repeats or []]),
            ("copied", [(s["query_start_s"], s["query_end_s"], "#e45756")
                        for s in (a.originality or {}).get("spans", [])])]
    for y, (_, spans) in enumerate(rows):
        for s0, s1, colour in spans:
            ax.barh(len(rows) - 1 - y, s1 - s0, left=s0, height=0.7, color=colour)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlim(0, T)
    ax.tick_params(axis="x", labelsize=7)
    # signals
    ax = fig.add_subplot(grid[2], sharex=fig.axes[1])
    ax.plot(sig.times, sig.change, lw=0.8, color="#4c78a8", label="picture change (cuts)")
    ax.plot(sig.times, sig.motion(0.2), lw=0.8, color="#54a24b", label="motion")
    for c in a.cuts_s:
        ax.axvline(c, color="#e45756", lw=0.6, ls="--")
    ax.set_xlabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def shots_figure(a: Analysis) -> Any:
    """Shot lengths in order, irregular ones in orange, the median as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 2.4))
    odd = {(s["start_s"], s["end_s"]) for s in a.pacing["irregular"]}
    colours = ["#f58518" if (s.start_s, s.end_s) in odd else "#4c78a8" for s in a.shots]
    ax.bar(range(1, len(a.shots) + 1), [s.duration_s for s in a.shots], color=colours)
    ax.axhline(a.pacing["median_shot_s"], color="#555555", lw=0.8, ls="--", label="median")
    ax.set_xlabel("shot", fontsize=8)
    ax.set_ylabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return fig


def write_report(a: Analysis, sig: Signals, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """report.json and report.html (pictures inline) in out_dir, each written atomically → their paths."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = [timeline_figure(a, sig), shots_figure(a)]
    pictures = [_png(f) for f in figs]
    for f in figs:
        plt.close(f)
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{v:.2f}</td></tr>" if isinstance(v, float) else
                   f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in a.pacing.items() if k != "irregular")
    spans = "".join(f"<tr><td>{s['query_start_s']:.1f}–{s['query_end_s']:.1f}</td><td>{esc(Path(s['path']).name)}"
                    f"</td><td>{s['start_s']:.1f}–{s['end_s']:.1f}</td><td>{s['score']:.3f}</td></tr>"
                    for s in (a.originality or {}).get("spans", []))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tubelet analysis: {esc(Path(a.path).name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}} td,th{{padding:2px 10px;
text-align:left}} img{{max-width:100%}} .flag{{color:#c00;font-weight:bold}}</style></head><body>
<h1>{esc(Path(a.path).name)}</h1>
<p>{a.duration_s:.1f} s, {a.fps:.2f} frames/s, {a.frames} frames.</p>
<h2>Summary</h2><ul>{"".join(f"<li>{esc(x)}</li>" for x in a.findings)}</ul>
<h2>Timeline</h2><img alt="timeline" src="data:image/png;base64,{pictures[0]}">
<h2>Pacing</h2><img alt="shot lengths" src="data:image/png;base64,{pictures[1]}"><table>{rows}</table>
{"<h2>Copied spans</h2><table><tr><th>this video, s</th><th>source</th><th>source, s</th><th>similarity</th></tr>"
 + spans + "</table>" if spans else ""}
<p>Machine-readable: <code>report.json</code> beside this page.</p></body></html>
"""
    paths = out / "report.json", out / "report.html"
    for path, text in zip(paths, (json.dumps(a.to_dict(), indent=2) + "\n", page), strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return paths
