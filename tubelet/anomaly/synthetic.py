"""Known events injected into real fixed-camera footage, for the benchmark and the tests: an unrelated object
moving through, a stretch played much faster or backwards, a frozen picture, the lights dropping, the camera
knocked (the picture shifts); and, on request, part of the picture stalling (a machine, water or foliage that
stops while the rest plays on), the lens tampered with, and the default families in other forms (slowed down, the
lights up, the camera zoomed or turned, noise over the picture, a stretch replayed, the colour lost). Everything acts
on uint8 frames at a fixed rate and is seeded."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from tubelet.anomaly.frames import open_reader, ticks

EVENTS = ("object", "fast", "frozen", "dark", "shift", "reverse")  # the benchmark's default kinds
TAMPER = ("blur", "cover")  # the lens defocused or sprayed; something held over part of it
VARIANTS = ("slow", "bright", "zoom", "rotate", "noise", "loop", "grey")  # the default families in other forms
KINDS = (*EVENTS, "stall", *TAMPER, *VARIANTS)


@dataclass(frozen=True)
class Injected:
    kind: str
    start_s: float
    end_s: float


def read_frames(path: str | os.PathLike, rate_hz: float, max_width: int = 640) -> np.ndarray:
    """Every tick's frame (the one on screen at k / rate_hz) at display geometry, at most `max_width` wide."""
    def size(h: int, w: int) -> tuple[int, int]:
        s = min(1.0, max_width / w)
        return max(2, round(h * s / 2) * 2), max(2, round(w * s / 2) * 2)

    with open_reader(path) as reader:
        return np.stack([t.rgb for t in ticks(reader, size, rate_hz)])


def write_frames(path: str | os.PathLike, frames: np.ndarray, rate_hz: float, container: str | None = None) -> None:
    """H.264 at `rate_hz` (ultrafast, crf 18): what a camera recorder writes."""
    fps = Fraction(rate_hz).limit_denominator(1000)
    with av.open(os.fspath(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = i, 1 / fps
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _paste_object(frames: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A disc cut from the donor footage crossing the picture on a straight line at constant speed."""
    n, h, w = frames.shape[:3]
    side = max(8, int(min(h, w) * rng.uniform(0.18, 0.3)))
    dh, dw = donor.shape[1:3]
    oy, ox = (dh - min(dh, dw)) // 2, (dw - min(dh, dw)) // 2
    crop = donor[:, oy:oy + min(dh, dw), ox:ox + min(dh, dw)]
    idx = np.linspace(0, crop.shape[1] - 1, side).astype(int)
    crop = crop[:, idx][:, :, idx]  # [Nd, side, side, 3]
    yy, xx = np.mgrid[:side, :side]
    disc = ((yy - side / 2 + 0.5) ** 2 + (xx - side / 2 + 0.5) ** 2 <= (side / 2) ** 2)[..., None]
    edge = rng.integers(4)  # enter from one side, leave through the opposite one
    a = rng.uniform(0.2, 0.8)
    starts = {0: (a * (h - side), -side), 1: (a * (h - side), w), 2: (-side, a * (w - side)), 3: (h, a * (w - side))}
    y0, x0 = starts[edge]
    y1, x1 = {0: (rng.uniform(0.2, 0.8) * (h - side), w), 1: (rng.uniform(0.2, 0.8) * (h - side), -side),
              2: (h, rng.uniform(0.2, 0.8) * (w - side)), 3: (-side, rng.uniform(0.2, 0.8) * (w - side))}[edge]
    out = frames.copy()
    for i in range(n):
        f = i / max(1, n - 1)
        y, x = int(round(y0 + f * (y1 - y0))), int(round(x0 + f * (x1 - x0)))
        ya, xa, yb, xb = max(0, y), max(0, x), min(h, y + side), min(w, x + side)
        if ya >= yb or xa >= xb:
            continue
        patch = crop[i % len(crop), ya - y:yb - y, xa - x:xb - x]
        m = disc[ya - y:yb - y, xa - x:xb - x]
        out[i, ya:yb, xa:xb] = np.where(m, patch, out[i, ya:yb, xa:xb])
    return out


def _shift(frames: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate the picture by (dy, dx) pixels, the uncovered border repeating the edge."""
    h, w = frames.shape[1:3]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return frames[:, ys][:, :, xs]


def inject(source: np.ndarray, kind: str, length: int, start: int, duration: int, rng: np.random.Generator,
           donor: np.ndarray | None = None, speed: int = 4) -> np.ndarray:
    """`length` frames from `source` (ticks) with the event `kind` over frames [start, start + duration).
    'fast' and 'reverse' re-time the source (fast consumes (speed − 1)·duration extra source frames)."""
    t = np.arange(length)
    ev = (t >= start) & (t < start + duration)
    if kind == "fast":
        idx = np.where(t < start, t, np.where(ev, start + speed * (t - start), t + (speed - 1) * duration))
    elif kind == "reverse":
        idx = np.where(ev, 2 * start + duration - 1 - t, t)
    elif kind == "frozen":
        idx = np.where(ev, start, t)
    elif kind == "slow":  # played `speed` times slower
        idx = np.where(t < start, t, np.where(ev, start + (t - start) // speed, t - duration + -(-duration // speed)))
    elif kind == "loop":  # the stretch before it played again (a replayed recording)
        idx = np.where(ev, np.maximum(t - duration, 0), t)
    else:
        idx = t
    out = source[np.minimum(idx, len(source) - 1)].copy()
    if kind == "object":
        if donor is None:
            raise ValueError("an object event needs donor footage")
        out[ev] = _paste_object(out[ev], donor, rng)
    elif kind == "dark":
        ramp = np.clip(np.minimum(t - start + 1, start + duration - t) / 3, 0, 1)  # ~0.3 s fade at 10 fps
        gain = 1 - (1 - rng.uniform(0.25, 0.45)) * ramp
        out = np.clip(out.astype(np.float32) * gain[:, None, None, None], 0, 255).astype(np.uint8)
    elif kind == "shift":
        h, w = out.shape[1:3]
        angle = rng.uniform(0, 2 * np.pi)
        mag = rng.uniform(0.04, 0.08) * w
        out[ev] = _shift(out[ev], int(round(mag * np.sin(angle))), int(round(mag * np.cos(angle))))
    elif kind == "stall":  # a rectangle of 40–60 % of each side keeps the event's first frame
        h, w = out.shape[1:3]
        rh, rw = int(h * rng.uniform(0.4, 0.6)), int(w * rng.uniform(0.4, 0.6))
        y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        out[ev, y:y + rh, x:x + rw] = out[start, y:y + rh, x:x + rw]
    elif kind == "blur":  # defocus: a Gaussian of 1–2 % of the width
        sigma = rng.uniform(0.01, 0.02) * out.shape[2]
        out[ev] = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in out[ev]])
    elif kind == "cover":  # a dark, nearly flat cover over 40–70 % of the picture from one edge
        h, w = out.shape[1:3]
        share = rng.uniform(0.4, 0.7)
        axis, far = divmod(int(rng.integers(4)), 2)  # top, bottom, left, right
        side = (h, w)[axis]
        along = np.arange(side) >= side - int(side * share) if far else np.arange(side) < int(side * share)
        mask = along[:, None, None] if axis == 0 else along[None, :, None]  # [h, 1, 1] or [1, w, 1]
        tone = rng.uniform(10, 40, 3)
        cover = np.clip(tone + rng.normal(0, 2, (int(ev.sum()), h, w, 3)), 0, 255).astype(np.uint8)
        out[ev] = np.where(mask, cover, out[ev])
    elif kind == "bright":  # lights up or glare, 1.6–2.5× with the dark event's ramp
        ramp = np.clip(np.minimum(t - start + 1, start + duration - t) / 3, 0, 1)
        gain = 1 + (rng.uniform(1.6, 2.5) - 1) * ramp
        out = np.clip(out.astype(np.float32) * gain[:, None, None, None], 0, 255).astype(np.uint8)
    elif kind in ("zoom", "rotate"):  # zoomed 1.15–1.35× or turned 3–8° about the centre
        h, w = out.shape[1:3]
        if kind == "zoom":
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, rng.uniform(1.15, 1.35))
        else:
            m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.choice([-1, 1]) * rng.uniform(3, 8), 1.0)
        out[ev] = np.stack([cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in out[ev]])
    elif kind == "noise":  # Gaussian noise of 12–25 grey levels
        sd = rng.uniform(12, 25)
        out[ev] = np.clip(out[ev] + rng.normal(0, sd, out[ev].shape), 0, 255).astype(np.uint8)
    elif kind == "grey":  # black and white (a camera's night mode)
        out[ev] = out[ev].mean(-1, keepdims=True).astype(np.uint8).repeat(3, -1)
    elif kind not in KINDS:
        raise ValueError(f"unknown event {kind!r}; choose one of {', '.join(KINDS)}")
    return out


def extra_frames(kind: str, duration: int, speed: int = 4) -> int:
    """Source frames an event consumes beyond the video's own length."""
    return (speed - 1) * duration if kind == "fast" else 0


MOVING = ("fast", "reverse", "stall", "slow", "loop")  # events that show only where something moves: re-timing or
# stalling a still scene changes nothing


def activity(frames: np.ndarray) -> np.ndarray:
    """[N] how much the picture changes into each frame: mean |Δ| of its grey levels (0 for the first)."""
    grey = frames.mean(-1, dtype=np.float32)
    return np.r_[0.0, np.abs(np.diff(grey, axis=0)).mean((1, 2))]


def plan(kinds: Sequence[str], rng: np.random.Generator, available: int, rate_hz: float, length_s: float,
         duration_s: tuple[float, float], speed: int = 4, motion: np.ndarray | None = None, tries: int = 50
         ) -> list[tuple[str, int, int, int, int]]:
    """(kind, source offset, length, event start, event duration) in frames for each kind: the event falls at a
    random time at least 1.5 s from either end, the video at a random place in the available source. With
    `motion` (the source's `activity`), a fast or reversed stretch is drawn again (up to `tries` times) until the
    source it plays moves at least as much as the source does on average (a still room played faster or backwards
    is the same still room: an event nothing in the picture shows is not one a camera could report). An event may
    run past its video's end; a kind whose event would not start inside its video (a short clip: a fast stretch
    consumes `speed` times its length) is left out."""
    out = []
    floor = float(np.mean(motion)) if motion is not None else 0.0
    for kind in kinds:
        for _ in range(tries):
            dur = int(round(rng.uniform(*duration_s) * rate_hz))
            extra = extra_frames(kind, dur, speed)
            length = min(int(length_s * rate_hz), available - extra)
            margin = int(1.5 * rate_hz)
            start = int(rng.integers(margin, max(margin + 1, length - dur - margin)))
            offset = int(rng.integers(0, max(1, available - length - extra + 1)))
            played = motion[offset + start:offset + start + dur + extra] if motion is not None else None
            if kind not in MOVING or played is None or len(played) and played.mean() >= floor:
                break
        if length > 0 and (kind == "none" or start < length):
            out.append((kind, offset, length, start, dur))
    return out
