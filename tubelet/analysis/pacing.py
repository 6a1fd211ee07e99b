"""Cuts, shots and pacing, and the dead stretches of a video (black, or nothing moving), from its frame signals.

A hard cut is a frame whose colour histogram jumps from the previous one: at least `hard` (half-L1 distance), or
at least `min_change` and `spike`× the largest jump 2 to `window_s` frames around it — a cut is an isolated spike
(one or two frames), motion and flicker change the picture over many frames. Cuts closer than `min_shot_s`
keep the stronger one. Gradual transitions (fades, dissolves) are not cuts here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tubelet.analysis.signals import Signals
from tubelet.catalog.copies import runs


@dataclass(frozen=True)
class Span:
    """A stretch of the video: a shot, or something to look at (`kind` says what)."""

    kind: str
    start_s: float
    end_s: float
    detail: str = ""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s}


def detect_cuts(sig: Signals, min_change: float = 0.03, spike: float = 3.0, hard: float = 0.5,
                window_s: float = 0.25, min_shot_s: float = 0.25) -> np.ndarray:
    """Times (s) of the first frame of every new shot."""
    c = sig.change
    w = max(2, round(window_s * sig.fps))
    padded = np.concatenate([np.zeros(w), c, np.zeros(w)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)  # [F, 2w+1], frame t at column w
    around = np.maximum(windows[:, :w - 1].max(1), windows[:, w + 2:].max(1))  # the frames beside t do not count:
    # a cut re-encoded with a blended frame spreads over two
    is_cut = (c >= hard) | ((c >= min_change) & (c >= spike * np.maximum(around, 1e-6)))
    is_cut &= sig.times >= sig.times[0] + min_shot_s  # a fade-in is not a first shot
    kept: list[int] = []
    for i in sorted(np.flatnonzero(is_cut), key=lambda i: -c[i]):  # strongest first
        if all(abs(sig.times[i] - sig.times[j]) >= min_shot_s for j in kept):
            kept.append(int(i))
    return np.sort(sig.times[kept])


def shots_between(cuts: np.ndarray, duration_s: float) -> list[Span]:
    edges = [0.0, *map(float, cuts), duration_s]
    return [Span("shot", a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def pacing(shots: list[Span], irregular_factor: float = 3.0) -> dict[str, Any]:
    """Shot-length statistics, and the shots much shorter or longer than the median (with 3+ shots)."""
    lengths = np.array([s.duration_s for s in shots])
    total = float(lengths.sum())
    median = float(np.median(lengths))
    irregular = []
    if len(shots) >= 3:
        for i, (s, d) in enumerate(zip(shots, lengths, strict=True)):
            last = i == len(shots) - 1  # the last shot may be cut short by the end of the video
            if d < median / irregular_factor and not last:
                irregular.append(Span("short shot", s.start_s, s.end_s, f"{d:.1f} s vs median {median:.1f} s"))
            elif d > median * irregular_factor:
                irregular.append(Span("long shot", s.start_s, s.end_s, f"{d:.1f} s vs median {median:.1f} s"))
    return {"shots": len(shots), "cuts_per_min": 60 * (len(shots) - 1) / total if total else 0.0,
            "median_shot_s": median, "mean_shot_s": float(lengths.mean()), "shortest_shot_s": float(lengths.min()),
            "longest_shot_s": float(lengths.max()),
            "shot_length_cv": float(lengths.std() / lengths.mean()) if lengths.mean() else 0.0,
            "irregular": [s.to_dict() for s in irregular]}


def _stretches(flags: np.ndarray, times: np.ndarray, end_s: float, min_s: float) -> list[tuple[float, float]]:
    """(start, end) seconds of the runs of True frames lasting at least min_s."""
    spans = [(float(times[a]), float(times[b]) if b < len(times) else end_s) for a, b in runs(flags, 1)]
    return [(start, stop) for start, stop in spans if stop - start >= min_s]


def dead_stretches(sig: Signals, still: float = 0.004, min_still_s: float = 2.0, black_luma: float = 0.07,
                   black_contrast: float = 0.03, min_black_s: float = 0.5) -> list[Span]:
    """Black stretches (dark and flat for ≥ min_black_s) and still ones (the luma grid moves less than `still`,
    ~1 grey level, over 0.2 s, for ≥ min_still_s: a frozen or static picture), in time order."""
    black = (sig.brightness < black_luma) & (sig.contrast < black_contrast)
    spans = [Span("black", a, b, "dark, flat picture") for a, b in
             _stretches(black, sig.times, sig.duration_s, min_black_s)]
    moving = sig.motion(0.2)
    lag = sig.lag_frames(0.2)
    moving[:lag] = moving[lag] if len(moving) > lag else 0.0  # the first frames have no earlier frame to compare
    still_frames = (moving < still) & ~black
    # a frame is still when it matches the one 0.2 s before: the stretch starts at that earlier frame
    back = lag / sig.fps
    spans += [Span("still", max(float(sig.times[0]), a - back), b, "nothing moves") for a, b in
              _stretches(still_frames, sig.times, sig.duration_s, min_still_s - back)]
    return sorted(spans, key=lambda s: s.start_s)
