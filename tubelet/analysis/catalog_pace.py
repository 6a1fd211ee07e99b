"""How a video's pacing and opening compare with the catalog's videos.

Each catalog video's pace (cuts a minute, shot-length spread, opening) is measured once, with the same decode and
shot detector as the analysed video, and cached beside the catalog in `analysis_pace.json`, keyed by the video's
content hash and the detector (a re-encoded or edited file is measured again; a removed one is dropped). The file
is rewritten atomically after each newly measured video, so an interrupted run keeps what it measured. A catalog
video whose file is gone or unreadable is left out and named in `skipped`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from tubelet.analysis.pacing import pacing, shots_between
from tubelet.analysis.signals import Signals, frame_signals
from tubelet.analysis.transitions import ShotDetector, Transition
from tubelet.atomic import atomic_write
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError

CACHE = "analysis_pace.json"
CACHE_VERSION = 19  # bump when the detectors decide differently (2: motion-compensated evidence, 3: camera jolts,
# 4: changes of lighting, 5: the jolt test judged without the brightness offset, 6: a change repeated next door,
# 7: a change repeated two frames away, a whip pan's blur switching on or off, 8: jumps in a still framing at twice
# the size, 9: a blend to the same picture moved, 10: the smear test on the fast path too, 11: a sudden frame in a
# busy picture, 12: a jump that the frames after it do not add to, 13: a ramp whose picture comes back, 14: an
# unpredicted jump that comes again within 0.75 s, 15: no fade through a flat stretch smeared one way,
# 16: a blend between plainly different shots need not dip, 17: wipes found by their front, 18: dissolves
# found by their blocks, 19: … fitted over each length's own window too)
CLEAR_MOTION = 0.05  # a twentieth of the 16×16 luma grid changes by 13+ grey levels in 0.2 s: something moves
OPENING_S = 3.0


@dataclass(frozen=True)
class Pace:
    """Pacing and opening of one video."""

    duration_s: float
    cuts_per_min: float
    shot_length_cv: float
    median_shot_s: float
    first_cut_s: float | None  # the first change of shot (None: one shot)
    first_motion_s: float | None  # the first time something clearly moves (None: never)
    motion_3s: float  # mean clear_motion over the first 3 s
    changes_3s: int  # changes of shot in the first 3 s


def clear_motion(sig: Signals, lag_s: float = 0.2) -> np.ndarray:
    """[F] the 95th percentile over the 16×16 luma grid of |Δ| against `lag_s` earlier: high when anything in
    the picture moves, even a small part (the mean dilutes a dog running across a still room)."""
    lag = sig.lag_frames(lag_s)
    out = np.zeros(len(sig.times))
    if len(out) > lag:
        out[lag:] = np.quantile(np.abs(sig.grid[lag:] - sig.grid[:-lag]).reshape(len(out) - lag, -1), 0.95, axis=1)
    return out


def pace_of(sig: Signals, transitions: list[Transition]) -> Pace:
    """The pace of a video from its signals and transitions."""
    changes = [t.at_s for t in transitions]
    p = pacing(shots_between(changes, sig.duration_s))
    motion = clear_motion(sig)
    for t in transitions:  # a change of shot is not motion
        motion[(sig.times >= t.start_s) & (sig.times < t.end_s + 0.2 + 1 / sig.fps)] = 0.0
    moving = np.flatnonzero(motion >= CLEAR_MOTION)
    opening = sig.times < sig.times[0] + OPENING_S
    return Pace(sig.duration_s, p.cuts_per_min, p.shot_length_cv, p.median_shot_s,
                changes[0] if changes else None, float(sig.times[moving[0]]) if len(moving) else None,
                float(motion[opening].mean()), sum(c < OPENING_S for c in changes))


def percentile(value: float, others: list[float]) -> float:
    """Share of `others` below `value` (ties count half), in [0, 1]."""
    arr = np.asarray(others, dtype=float)
    return float(((arr < value).sum() + 0.5 * (arr == value).sum()) / len(arr)) if len(arr) else 0.5


@dataclass
class CatalogPaces:
    videos: list[Pace]
    measured: int  # newly measured in this run (the rest came from the cache)
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def catalog_paces(catalog: Catalog, detector: ShotDetector, exclude: str | None = None,
                  on_video: Callable[[int, int], None] | None = None) -> CatalogPaces:
    """Every catalog video's pace (but `exclude`), from the cache or measured now and added to it."""
    path = catalog.root / CACHE
    key = f"{detector.name}/{CACHE_VERSION}"
    try:
        cache = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}  # unreadable: measure again and rewrite it
    known = cache.get(key, {})
    records = [r for r in catalog.videos() if r.id != exclude]
    paces, skipped, measured = [], [], 0
    for i, r in enumerate(records):
        if r.content_hash not in known:
            try:
                sig = frame_signals(r.path, keep_small=detector.needs_small)
            except (TubeletError, OSError) as e:
                skipped.append(f"{r.path}: {e}")
                continue
            known[r.content_hash] = asdict(pace_of(sig, detector.detect(sig)))
            measured += 1
            live = {x.content_hash for x in catalog.videos()}
            atomic_write(path, json.dumps({key: {h: v for h, v in known.items() if h in live}}, indent=1))
        paces.append(Pace(**known[r.content_hash]))
        if on_video is not None:
            on_video(i + 1, len(records))
    return CatalogPaces(paces, measured, skipped)


@dataclass
class PaceVersusCatalog:
    """This video's pace as percentiles of the catalog's videos (share of them with a lower value)."""

    videos: int
    cuts_per_min_percentile: float
    shot_length_cv_percentile: float
    median_shot_percentile: float
    first_motion_percentile: float  # share of catalog videos that start moving sooner (high: a slow start)
    motion_3s_percentile: float
    changes_3s_percentile: float
    catalog_median_cuts_per_min: float
    catalog_median_shot_length_cv: float
    catalog_median_motion_3s: float
    skipped: list[str] = field(default_factory=list)


def versus_catalog(pace: Pace, paces: CatalogPaces) -> PaceVersusCatalog | None:
    """None when no catalog video could be measured."""
    v = paces.videos
    if not v:
        return None
    never = 1e9  # a video that never moves or never cuts comes last
    return PaceVersusCatalog(
        len(v), percentile(pace.cuts_per_min, [p.cuts_per_min for p in v]),
        percentile(pace.shot_length_cv, [p.shot_length_cv for p in v]),
        percentile(pace.median_shot_s, [p.median_shot_s for p in v]),
        percentile(pace.first_motion_s if pace.first_motion_s is not None else never,
                   [p.first_motion_s if p.first_motion_s is not None else never for p in v]),
        percentile(pace.motion_3s, [p.motion_3s for p in v]), percentile(pace.changes_3s, [p.changes_3s for p in v]),
        float(np.median([p.cuts_per_min for p in v])), float(np.median([p.shot_length_cv for p in v])),
        float(np.median([p.motion_3s for p in v])), paces.skipped)
