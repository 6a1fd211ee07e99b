"""Shots and pacing, and the dead stretches of a video (black, or nothing moving), from its transitions and frame
signals. A shot runs from one change of shot to the next (a cut, or the middle of a gradual transition)."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Pacing:
    """Shot-length statistics, and the shots much shorter or longer than the median."""

    shots: int
    cuts_per_min: float  # changes of shot a minute (cuts and gradual transitions)
    median_shot_s: float
    mean_shot_s: float
    shortest_shot_s: float
    longest_shot_s: float
    shot_length_cv: float  # std / mean of the shot lengths
    irregular: list[Span] = field(default_factory=list)


def shots_between(changes: list[float] | np.ndarray, duration_s: float) -> list[Span]:
    """The shots between the times the shot changes."""
    edges = [0.0, *map(float, changes), duration_s]
    return [Span("shot", a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def pacing(shots: list[Span], irregular_factor: float = 3.0) -> Pacing:
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
    return Pacing(len(shots), 60 * (len(shots) - 1) / total if total else 0.0, median, float(lengths.mean()),
                  float(lengths.min()), float(lengths.max()),
                  float(lengths.std() / lengths.mean()) if lengths.mean() else 0.0, irregular)


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
