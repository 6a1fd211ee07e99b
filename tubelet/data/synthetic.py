"""Real little video files for tests and the learning benchmark: textured objects moving together over a textured
background; the label is the direction of motion.

Colours, textures, object shapes, sizes, positions and the speed are drawn per clip, and objects wrap around the
frame, so a single frame carries no label information: only motion does (a model must use time). Files are written
with PyAV (H.264 when the encoder is available, else MPEG-4 Part 2) and listed in `labels.csv` (path,label) beside
them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from tubelet.atomic import atomic_open
from tubelet.errors import TubeletError

DIRECTIONS = {"left": (0.0, -1.0), "right": (0.0, 1.0), "up": (-1.0, 0.0), "down": (1.0, 0.0)}


def _texture(rng: np.random.Generator, h: int, w: int, noise: float = 6.0) -> np.ndarray:
    """Smooth random colour texture [h, w, 3] uint8: a few low-frequency colour blobs plus fine noise."""
    coarse = rng.uniform(0, 255, size=(4, 4, 3))
    ys = np.linspace(0, 3, h)[:, None]
    xs = np.linspace(0, 3, w)[None, :]
    y0, x0 = np.floor(ys).astype(int).clip(0, 2), np.floor(xs).astype(int).clip(0, 2)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    img = (coarse[y0, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1, x0] * fy * (1 - fx)
           + coarse[y0, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1, x0 + 1] * fy * fx)
    img += rng.normal(0, noise, size=(h, w, 3))
    return img.clip(0, 255).astype(np.uint8)


def _pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """A high-contrast checker of two random colours with a random period [size, size, 3] uint8 (stands out
    from the smooth background by its texture, not by a colour a single frame could key on)."""
    period = int(rng.integers(2, 5))
    yy, xx = np.mgrid[:size, :size] // period
    a, b = rng.uniform(0, 255, size=(2, 3))
    img = np.where(((yy + xx) % 2 == 0)[..., None], a, b) + rng.normal(0, 10, size=(size, size, 3))
    return img.clip(0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A filled disc, square or diamond of side `size` → bool [size, size]."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    kind = int(rng.integers(3))
    r = size / 2
    if kind == 0:
        return yy**2 + xx**2 <= r**2
    if kind == 1:
        return np.ones((size, size), dtype=bool)
    return np.abs(yy) + np.abs(xx) <= r


def _paste(frame: np.ndarray, sprite: np.ndarray, mask: np.ndarray, y: int, x: int) -> None:
    """Draw the masked sprite with its top-left corner at (y, x), clipped to the frame (in place)."""
    obj, size = sprite.shape[0], frame.shape[0]
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + obj, size), min(x + obj, size)
    if y0 < y1 and x0 < x1:
        m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
        frame[y0:y1, x0:x1][m] = sprite[y0 - y:y1 - y, x0 - x:x1 - x][m]


def render_clip(rng: np.random.Generator, direction: str, num_frames: int = 32, size: int = 64,
                objects: int = 1) -> np.ndarray:
    """Frames [T, size, size, 3] uint8 of `objects` textured objects, all moving in `direction` at one speed
    (40–80 % of the frame side over the clip) across a background.

    Objects live on a torus one object wider than the frame (they leave on one side and come back on the other),
    so where they are in any single frame is uniform whatever the direction: only motion tells the class.
    """
    if direction not in DIRECTIONS:
        raise TubeletError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")
    if objects < 1:
        raise TubeletError(f"objects must be >= 1, got {objects}")
    dy, dx = DIRECTIONS[direction]
    background = _texture(rng, size, size)
    shift = rng.uniform(0.4, 0.8) * size * np.arange(num_frames) / max(1, num_frames - 1)  # [T] pixels moved
    frames = np.repeat(background[None], num_frames, axis=0)
    for _ in range(objects):
        obj = int(rng.integers(size // 5, size // 3 + 1))
        sprite, mask = _pattern(rng, obj), _shape_mask(rng, obj)
        period = size + obj  # torus coordinate u ↔ top-left corner at u - obj
        y0, x0 = rng.uniform(0, period, size=2)
        ys = np.round((y0 + dy * shift) % period - obj).astype(int)
        xs = np.round((x0 + dx * shift) % period - obj).astype(int)
        for t in range(num_frames):
            _paste(frames[t], sprite, mask, ys[t], xs[t])
    return frames


def _codec() -> str:
    for name in ("libx264", "h264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError):
            continue
    raise TubeletError("no H.264 or MPEG-4 encoder in this PyAV build")


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 25, codec: str | None = None,
                keyframe_interval: int = 16) -> None:
    """Encode uint8 [T, H, W, 3] frames to `path` (H.264 yuv420p by default); written atomically."""
    path = Path(path)
    codec = codec or _codec()
    muxer = {"mkv": "matroska"}.get(path.suffix[1:].lower(), path.suffix[1:].lower())
    with atomic_open(path, "wb") as f, av.open(f, mode="w", format=muxer) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = keyframe_interval
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast", "bframes": "0"}
        else:
            stream.codec_context.bit_rate = 2_000_000
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_synthetic_videos(out_dir: str | os.PathLike, n: int, num_frames: int = 32, size: int = 64,
                           seed: int = 0, classes: Sequence[str] = ("left", "right", "up", "down"),
                           fps: int = 25, objects: int = 1) -> list[tuple[str, str]]:
    """Write n clips (classes balanced, in turn) to out_dir/<label>/<i>.mp4 and out_dir/labels.csv.

    Returns [(path, label)]. Same arguments → same pixels (the encoder is deterministic for a given build).
    """
    if n <= 0 or num_frames <= 0 or size < 16:
        raise TubeletError(f"need n > 0, num_frames > 0 and size >= 16, got {n}, {num_frames}, {size}")
    unknown = [c for c in classes if c not in DIRECTIONS]
    if unknown or not classes:
        raise TubeletError(f"classes must be among {', '.join(DIRECTIONS)}, got {list(classes)}")
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        (out / label).mkdir(parents=True, exist_ok=True)
        path = out / label / f"{i:05d}.mp4"
        write_video(path, render_clip(rng, label, num_frames, size, objects), fps)
        rows.append((str(path), label))
    with atomic_open(out / "labels.csv", "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows((os.path.relpath(p, out), label) for p, label in rows)
    return rows
