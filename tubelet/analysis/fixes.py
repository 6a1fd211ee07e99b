"""The fix list: the handful of findings worth acting on, each with its time range and a one-line reason, most
important first.

Importance = seconds affected × how much the kind costs a viewer (a slow opening loses viewers before anything
else can keep them; a dead stretch or a repeat is time with nothing new; a copied span risks the video; a long
shot or a generic-looking stretch is a matter of taste) — see WEIGHTS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tubelet.analysis.catalog_pace import Pace, PaceVersusCatalog
from tubelet.analysis.distinctiveness import Distinctiveness
from tubelet.analysis.pacing import Pacing, Span
from tubelet.analysis.repeats import Repeat
from tubelet.catalog.copies import CopiedSpan, runs

WEIGHTS = {"slow opening": 3.0, "copied": 2.0, "dead": 1.5, "repeat": 1.2, "long shot": 0.6, "generic": 0.5}
SLOW_MOTION_S = 1.5  # nothing clearly moves for this long at the start …
SLOW_CHANGE_S = 3.0  # … or the first shot runs past this, with a still picture
CROWDED = 0.9  # segments more crowded than this share of the catalog's look generic
MAX_FIXES = 6


@dataclass(frozen=True)
class Fix:
    kind: str  # one of WEIGHTS
    start_s: float
    end_s: float
    reason: str
    importance: float


def _fix(kind: str, start_s: float, end_s: float, reason: str, extra: float = 1.0) -> Fix:
    return Fix(kind, start_s, end_s, reason, round(WEIGHTS[kind] * max(end_s - start_s, 0.5) * extra, 3))


def fix_list(duration_s: float, pace: Pace, pacing: Pacing, dead: list[Span], repeats: list[Repeat] | None,
             distinct: Distinctiveness | None, copied: list[CopiedSpan] | None,
             versus: PaceVersusCatalog | None) -> list[Fix]:
    """The findings worth acting on, most important first (at most MAX_FIXES)."""
    out = []
    first_motion = pace.first_motion_s if pace.first_motion_s is not None else duration_s
    if first_motion >= SLOW_MOTION_S:
        slower = f", later than {100 * versus.first_motion_percentile:.0f}% of catalog videos" if versus else ""
        out.append(_fix("slow opening", 0.0, first_motion,
                        f"nothing clearly moves for the first {first_motion:.1f} s{slower}: open on action"))
    for s in dead:
        what = "black screen" if s.kind == "black" else "frozen or static picture"
        out.append(_fix("dead", s.start_s, s.end_s, f"{s.duration_s:.1f} s of {what}: cut it or add movement"))
    for r in repeats or []:
        out.append(_fix("repeat", r.start_s, r.end_s, f"shows {r.repeats_start_s:.1f}–{r.repeats_end_s:.1f} s again "
                        f"(similarity {r.score:.2f}): drop one or vary it"))
    for c in copied or []:
        out.append(_fix("copied", c.query_start_s, c.query_end_s, f"matches {c.path} at {c.start_s:.1f}–{c.end_s:.1f}"
                        " s: replace with original footage or make sure you may use it"))
    for s in pacing.irregular:
        if s.kind == "long shot":
            out.append(_fix("long shot", s.start_s, s.end_s, f"one shot of {s.detail}: trim it or cut into it"))
    if distinct is not None and distinct.segments:
        crowded = np.array([s.percentile >= CROWDED for s in distinct.segments])
        for a, b in runs(crowded, 2):
            segs = distinct.segments[a:b]
            share = np.mean([s.percentile for s in segs])
            out.append(_fix("generic", segs[0].start_s, segs[-1].end_s,
                            f"looks like the catalog's most crowded region (more look-alikes than {100 * share:.0f}% "
                            "of catalog segments): make it more your own"))
    return sorted(out, key=lambda f: -f.importance)[:MAX_FIXES]
