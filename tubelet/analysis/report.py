"""Pre-publish analysis of one video: shots and transitions, pacing, dead stretches, the opening and — against a
catalog — repeated segments, distinctiveness over time, originality and pacing against the catalog's videos; a fix
list first; as JSON for machines and an HTML page with pictures for people.

Results travel as dataclasses; `to_json` turns them into plain JSON at the edge. Parts that need embeddings
(repeats, distinctiveness, originality) or the catalog (its pacing) are null without a catalog.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.analysis.catalog_pace import Pace, PaceVersusCatalog, catalog_paces, pace_of, versus_catalog
from tubelet.analysis.distinctiveness import Distinctiveness, distinctiveness
from tubelet.analysis.fixes import Fix, fix_list
from tubelet.analysis.pacing import Pacing, Span, dead_stretches, pacing, shots_between
from tubelet.analysis.repeats import Repeat, repeats_within
from tubelet.analysis.signals import Signals, frame_signals
from tubelet.analysis.transitions import ShotDetector, Transition, detector
from tubelet.atomic import atomic_write
from tubelet.catalog.copies import CopyReport, find_copies
from tubelet.catalog.search import make_query
from tubelet.catalog.store import Catalog


@dataclass
class Analysis:
    path: str
    duration_s: float
    fps: float
    frames: int
    cuts_s: list[float]  # hard cuts only (gradual transitions are in `transitions`)
    shots: list[Span]
    pacing: Pacing
    dead: list[Span]
    transitions: list[Transition] = field(default_factory=list)
    shot_detector: str = "fast"
    opening: Pace | None = None
    repeats: list[Repeat] | None = None  # a later span that shows an earlier one again
    distinctiveness: Distinctiveness | None = None
    originality: CopyReport | None = None
    pacing_vs_catalog: PaceVersusCatalog | None = None
    fixes: list[Fix] = field(default_factory=list)  # what to change, most important first
    findings: list[str] = field(default_factory=list)  # the report's summary, one sentence each


def to_json(x: Any) -> Any:
    """Results → plain JSON values (the edge): dataclasses become objects, spans gain duration_s."""
    if isinstance(x, CopyReport):
        return x.to_dict()
    if is_dataclass(x):
        out = {f.name: to_json(getattr(x, f.name)) for f in fields(x)}
        return {**out, "duration_s": x.duration_s} if isinstance(x, Span) else out
    if isinstance(x, list | tuple):
        return [to_json(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _findings(a: Analysis) -> list[str]:
    p, out = a.pacing, []
    if p.shots > 1:
        out.append(f"{p.shots} shots, {p.cuts_per_min:.1f} changes of shot a minute; shots last "
                   f"{p.median_shot_s:.1f} s (median), from {p.shortest_shot_s:.1f} to {p.longest_shot_s:.1f} s.")
    else:
        out.append(f"One continuous shot of {a.duration_s:.1f} s (no transition found).")
    gradual = [t for t in a.transitions if t.kind != "cut"]
    if gradual:
        kinds = sorted({t.kind for t in gradual})
        out.append(f"{len(a.cuts_s)} hard cut(s) and {len(gradual)} gradual transition(s): "
                   + ", ".join(f"{sum(t.kind == k for t in gradual)} {k}" for k in kinds) + ".")
    out += [f"{s.kind.capitalize()} at {s.start_s:.1f}–{s.end_s:.1f} s: {s.detail}." for s in p.irregular]
    out += [f"{s.kind.capitalize()} from {s.start_s:.1f} to {s.end_s:.1f} s ({s.duration_s:.1f} s): "
            f"{'consider cutting it' if s.duration_s >= 3 else 'a pause'}." for s in a.dead]
    out += [f"{r.start_s:.1f}–{r.end_s:.1f} s shows {r.repeats_start_s:.1f}–{r.repeats_end_s:.1f} s "
            f"again (similarity {r.score:.3f})." for r in a.repeats or []]
    if a.opening is not None:
        o = a.opening
        first_cut = f"first change of shot at {o.first_cut_s:.1f} s" if o.first_cut_s is not None else "no cut"
        first_move = (f"first clear motion at {o.first_motion_s:.1f} s" if o.first_motion_s is not None
                      else "no clear motion")
        out.append(f"Opening: {first_cut}, {first_move}.")
    if a.pacing_vs_catalog:
        v = a.pacing_vs_catalog
        out.append(f"Against {v.videos} catalog videos: more cuts a minute than {100 * v.cuts_per_min_percentile:.0f}%"
                   f", more varied shot lengths than {100 * v.shot_length_cv_percentile:.0f}%, more motion in the "
                   f"first 3 s than {100 * v.motion_3s_percentile:.0f}%.")
    if a.distinctiveness:
        d = a.distinctiveness
        out.append(f"More distinctive than {100 * d.percentile:.0f}% of catalog videos (nearest: "
                   f"{Path(d.nearest_path).name}, similarity {d.nearest_similarity:.3f}); its segments are more "
                   f"crowded than {100 * d.crowding_percentile:.0f}% of catalog videos'.")
    if a.originality:
        o = a.originality
        verdict = "FLAGGED as mostly copied" if o.flagged else "not flagged"
        out.append(f"Originality {o.originality:.2f}: {o.copied_s:.1f} s of {o.compared_s:.1f} s "
                   f"({100 * o.share:.0f}%) found in the catalog — {verdict}.")
    return out


def analyze(path: str | os.PathLike, catalog: Catalog | None = None, threshold: float | None = None,
            shots: str | ShotDetector | None = None, on_frame: Callable[[float], None] | None = None,
            on_catalog_video: Callable[[int, int], None] | None = None,
            engine: Any = None) -> tuple[Analysis, Signals]:
    """Analyse one video (against `catalog` when given, its model run by `engine`: an embed.Engine, default the
    catalog's own) with the shot detector `shots` (fast, transnetv2, cascade; default: cascade with the shots extra,
    else fast) → (the analysis, the frame signals behind it)."""
    det = shots if isinstance(shots, ShotDetector) else detector(shots)
    sig = frame_signals(path, keep_small=det.needs_small, on_frame=on_frame)
    transitions = det.detect(sig)
    shot_list = shots_between([t.at_s for t in transitions], sig.duration_s)
    a = Analysis(os.fspath(path), sig.duration_s, sig.fps, len(sig.times),
                 [t.start_s for t in transitions if t.kind == "cut"], shot_list, pacing(shot_list), dead_stretches(sig),
                 transitions, det.name, pace_of(sig, transitions))
    if catalog is not None:
        query = make_query(catalog, path, engine=engine)
        copies = find_copies(catalog, query, threshold)  # resolves the threshold (given, or calibrated)
        model = catalog.model
        a.repeats = repeats_within(query, model.stride_s, model.window_s, copies.threshold)
        a.distinctiveness = distinctiveness(catalog, query)
        a.originality = copies
        a.pacing_vs_catalog = versus_catalog(a.opening, catalog_paces(catalog, det, query.exclude, on_catalog_video))
    a.fixes = fix_list(a.duration_s, a.opening, a.pacing, a.dead, a.repeats, a.distinctiveness,
                       a.originality.spans if a.originality else None, a.pacing_vs_catalog)
    a.findings = _findings(a)
    return a, sig


# ---- the HTML report -------------------------------------------------------------------------------------------
KIND_COLOURS = {"cut": "#e45756", "dissolve": "#b279a2", "fade": "#222222", "fade-in": "#555555",
                "fade-out": "#555555", "wipe": "#f58518"}


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def timeline_figure(a: Analysis, sig: Signals, max_thumbs: int = 16) -> Any:
    """Thumbnails of the shots over a band chart (shots, transitions by type, fixes, dead stretches, repeats,
    copies), the change and motion curves with the transitions marked, and — with a catalog — how crowded each
    segment's catalog neighbourhood is."""
    plt = _pyplot()
    crowd = a.distinctiveness.segments if a.distinctiveness else []
    panels = 4 if crowd else 3
    fig = plt.figure(figsize=(12, 6.8 if crowd else 5.6))
    grid = fig.add_gridspec(panels, 1, height_ratios=[1.3, 1.5, 1.2, 1.0][:panels], hspace=0.4)
    T = a.duration_s
    ax = fig.add_subplot(grid[0])
    picks = [a.shots[i] for i in np.unique(np.linspace(0, len(a.shots) - 1, min(max_thumbs, len(a.shots))).astype(int))]
    thumbs = [sig.thumb_at((s.start_s + s.end_s) / 2) for s in picks]
    h = min(t.shape[0] for t in thumbs)
    strip = np.concatenate([np.pad(t[:h], ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in thumbs], axis=1)
    ax.imshow(strip)
    ax.set_xticks([(i + 0.5) * strip.shape[1] / len(picks) for i in range(len(picks))],
                  [f"{s.start_s:.1f} s" for s in picks], fontsize=7)
    ax.set_yticks([])
    ax.set_title(f"{Path(a.path).name}: {len(a.shots)} shot(s), {len(a.transitions)} transition(s) in {T:.1f} s",
                 fontsize=10)
    ax = fig.add_subplot(grid[1])
    width = max(T / 300, 1 / a.fps)  # a cut is drawn one frame wide (at least 1/300 of the plot)
    rows = [("shots", [(s.start_s, s.end_s, ("#4c78a8", "#9ecae9")[i % 2]) for i, s in enumerate(a.shots)]),
            ("transitions", [(t.start_s, max(t.end_s, t.start_s + width), KIND_COLOURS.get(t.kind, "#888888"))
                             for t in a.transitions]),
            ("fix", [(f.start_s, f.end_s, "#d62728") for f in a.fixes]),
            ("dead", [(s.start_s, s.end_s, "#222222" if s.kind == "black" else "#aaaaaa") for s in a.dead]),
            ("repeats", [(r.start_s, r.end_s, "#f58518") for r in a.repeats or []]),
            ("copied", [(c.query_start_s, c.query_end_s, "#e45756") for c in (a.originality.spans
                                                                            if a.originality else [])])]
    for y, (_, spans) in enumerate(rows):
        for s0, s1, colour in spans:
            ax.barh(len(rows) - 1 - y, s1 - s0, left=s0, height=0.7, color=colour)
    for t in a.transitions:
        if t.kind != "cut":
            ax.text(t.at_s, len(rows) - 1.5, t.kind, fontsize=6, ha="center", va="top")
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlim(0, T)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c, label=k) for k, c in KIND_COLOURS.items()
                       if k in {t.kind for t in a.transitions}], fontsize=6, loc="upper right", ncol=6)
    ax = fig.add_subplot(grid[2], sharex=fig.axes[1])
    ax.plot(sig.times, sig.change, lw=0.8, color="#4c78a8", label="picture change")
    ax.plot(sig.times, sig.motion(0.2), lw=0.8, color="#54a24b", label="motion")
    for t in a.transitions:
        if t.kind == "cut":
            ax.axvline(t.start_s, color=KIND_COLOURS["cut"], lw=0.6, ls="--")
        else:
            ax.axvspan(t.start_s, t.end_s, color=KIND_COLOURS.get(t.kind, "#888888"), alpha=0.2)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    if crowd:
        ax = fig.add_subplot(grid[3], sharex=fig.axes[1])
        mids = [(c.start_s + c.end_s) / 2 for c in crowd]
        pct = [c.percentile for c in crowd]
        ax.fill_between(mids, pct, step="mid", color="#9ecae9")
        ax.plot(mids, pct, drawstyle="steps-mid", color="#4c78a8", lw=0.8)
        ax.axhline(0.9, color="#d62728", lw=0.6, ls="--")
        ax.set_ylim(0, 1)
        ax.set_ylabel("crowding\npercentile", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.axes[-1].set_xlabel("seconds", fontsize=8)
    return fig


def shots_figure(a: Analysis) -> Any:
    """Shot lengths in order, irregular ones in orange, the median as a line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 2.4))
    odd = {(s.start_s, s.end_s) for s in a.pacing.irregular}
    colours = ["#f58518" if (s.start_s, s.end_s) in odd else "#4c78a8" for s in a.shots]
    ax.bar(range(1, len(a.shots) + 1), [s.duration_s for s in a.shots], color=colours)
    ax.axhline(a.pacing.median_shot_s, color="#555555", lw=0.8, ls="--", label="median")
    ax.set_xlabel("shot", fontsize=8)
    ax.set_ylabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return fig


def render_page(a: Analysis, sig: Signals) -> str:
    """report.html: the template filled in (everything escaped), pictures inline."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html").render(
        a=a, name=Path(a.path).name, timeline=_png(timeline_figure(a, sig)), shot_lengths=_png(shots_figure(a)),
        kind_colours=KIND_COLOURS)


def write_report(a: Analysis, sig: Signals, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """report.json and report.html (pictures inline) in out_dir, each written atomically → their paths."""
    out = Path(out_dir)
    paths = out / "report.json", out / "report.html"
    atomic_write(paths[0], json.dumps(to_json(a), indent=2) + "\n")
    atomic_write(paths[1], render_page(a, sig))
    return paths
