"""Interest clusters, cold start and trends on a synthetic upload stream built from real clips.

    python benchmarks/trends.py --model runs/demo/checkpoints/step_000300 [--model vit_tiny ...]
    python benchmarks/trends.py --held-out            # the same stream recipe from the other half of the clips
    python benchmarks/trends.py scale                 # 100 000 synthetic videos: clusters + trends timing

The stream (seeded, every knob an option): topics are source clips of ../shared/data/videos; each upload is a short
excerpt of one topic (random start) with one or two random light re-edits — crop, colour, mirror, caption, low
resolution, 9:16 re-frame — uploaded at a time over `--days` days. Most topics are steady (a constant rate), some
emerge late (nothing before their start day, then a high rate), one fades (high at first, nothing after its end
day). The clips are split in two halves by a hash of their name: the default stream draws its topics from one
half, `--held-out` from the other, so a recipe tuned on one is scored on clips it has never seen. Rendered
uploads are cached by their recipe (`--cache`), so reruns only embed.

Each model gets a fresh catalog (`tubelet index add MANIFEST.jsonl`, `uploaded_at` in days), then runs
`tubelet clusters`, `tubelet recommend` and `tubelet trends` through the real CLI and prints: the adjusted Rand
index and purity of the clusters against the topics (noise counts as its own label for ARI and as wrong for
purity), for each emerging topic its rank among the rising trends and the first day it is detected (trends run on
the catalog as it stood each day, from its start day), false trends among the top 3 (steady topics), whether the
fading topic is reported fading, cold-start precision@10 (three liked uploads of one topic → share of the 10
recommendations from that topic, averaged over topics) and seconds per command. The baseline in the same run:
k-means (k = the number of topics, told the answer) on each upload's mean thumbnail colour histogram, with the
same trend and recommendation rules on its clusters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"
EDITS = ("crop", "colour", "mirror", "caption", "lowres", "reframe")
MIN_CLIP_S = 5.0  # a topic's clip must hold excerpts from different places


# ----------------------------------------------------------------------------------------------- the stream
@dataclass
class StreamConfig:
    """Everything that decides a stream: same config, same uploads (byte for byte, given the clips)."""

    seed: int = 0
    held_out: bool = False  # topics from the other half of the clips
    days: int = 30
    steady: int = 6  # topics with a constant rate
    emerging: int = 2  # topics that start late
    fading: int = 1  # topics that stop early
    steady_rate: float = 0.9  # uploads per day
    burst_rate: float = 2.5  # uploads per day of an emerging topic once it started, of a fading one before it ends
    emerge_from: float = 0.55  # emerging topics start between these fractions of the stream
    emerge_to: float = 0.75
    fade_at: float = 0.4  # the fading topic's last upload is before this fraction of the stream
    excerpt_s: float = 3.0
    fps: int = 15
    size: int = 240  # short side of a rendered upload (low-resolution ones are smaller)


@dataclass
class Upload:
    path: str
    topic: str  # the source clip's name
    kind: str  # steady | emerging | fading
    uploaded_at: float  # days since the stream began
    start_s: float  # excerpt start in the source
    edits: list[str] = field(default_factory=list)


@dataclass
class Stream:
    config: StreamConfig
    uploads: list[Upload]
    starts: dict[str, float]  # emerging topic → its first day
    kinds: dict[str, str]  # topic → steady | emerging | fading


def clip_pool(videos: Path, held_out: bool) -> list[Path]:
    """Clips long enough to be topics, in one of two fixed halves (by a hash of the name)."""
    from tubelet.data import probe

    pool = []
    for p in sorted(videos.iterdir()):
        if p.suffix.lower() not in {".mp4", ".webm", ".avi", ".mkv", ".ogv", ".mov"}:
            continue
        if (int(hashlib.sha256(p.name.encode()).hexdigest(), 16) % 2 == 1) != held_out:
            continue
        if probe(p).duration_s >= MIN_CLIP_S:
            pool.append(p)
    return pool


def plan_stream(cfg: StreamConfig, videos: Path) -> tuple[list[tuple[Path, str, float, float, list[str]]],
                                                           dict[str, float], dict[str, str]]:
    """(source, kind, day, excerpt start, edits) per upload sorted by time; emerging starts; kinds."""
    from tubelet.data import probe

    rng = np.random.default_rng(cfg.seed)
    pool = clip_pool(videos, cfg.held_out)
    need = cfg.steady + cfg.emerging + cfg.fading
    if len(pool) < need:
        raise SystemExit(f"{videos}: {len(pool)} clips of {MIN_CLIP_S:.0f} s or more in this half, need {need}")
    chosen = [pool[i] for i in rng.choice(len(pool), need, replace=False)]
    kinds = ["steady"] * cfg.steady + ["emerging"] * cfg.emerging + ["fading"] * cfg.fading
    plan, starts = [], {}
    for src, kind in zip(chosen, kinds, strict=True):
        if kind == "steady":
            lo, hi, rate = 0.0, cfg.days, cfg.steady_rate
        elif kind == "emerging":
            lo = float(rng.uniform(cfg.emerge_from, cfg.emerge_to) * cfg.days)
            hi, rate = cfg.days, cfg.burst_rate
            starts[src.name] = lo
        else:
            lo, hi, rate = 0.0, cfg.fade_at * cfg.days, cfg.burst_rate
        n = max(3, int(rng.poisson(rate * (hi - lo))))
        duration = probe(src).duration_s
        for day in np.sort(rng.uniform(lo, hi, n)):
            k = 1 + int(rng.random() < 0.4)
            edits = sorted(rng.choice(len(EDITS), k, replace=False).tolist())
            start = float(rng.uniform(0, max(0.0, duration - cfg.excerpt_s - 0.1)))
            plan.append((src, kind, float(day), round(start, 2), [EDITS[e] for e in edits]))
    plan.sort(key=lambda p: p[2])
    return plan, starts, {src.name: kind for src, kind in zip(chosen, kinds, strict=True)}


def _even(x: float) -> int:
    return max(16, int(round(x / 2)) * 2)


def render(src: Path, start_s: float, edits: list[str], cfg: StreamConfig, seed: int, dst: Path) -> None:
    """Excerpt [start, start + excerpt_s) of src at cfg.fps, re-edited, as H.264 (written to a temp name first)."""
    import av
    from PIL import Image, ImageDraw

    from tubelet.data import read_frames_at

    rng = np.random.default_rng(seed)
    times = (start_s + np.arange(int(cfg.excerpt_s * cfg.fps)) / cfg.fps).tolist()
    frames, _ = read_frames_at(src, times, size=cfg.size)
    frames = frames.numpy()  # [T, H, W, 3] uint8
    t, h, w, _ = frames.shape
    if "crop" in edits:  # a random 70–90 % window, scaled back up
        s = rng.uniform(0.7, 0.9)
        ch, cw = int(h * s), int(w * s)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        frames = frames[:, y:y + ch, x:x + cw]
    if "reframe" in edits:  # 9:16 portrait: the middle column (off-centre a little), like a phone re-post
        fh, fw = frames.shape[1:3]
        cw = min(fw, int(fh * 9 / 16))
        x = int(np.clip((fw - cw) / 2 + rng.uniform(-0.15, 0.15) * fw, 0, fw - cw))
        frames = frames[:, :, x:x + cw]
    if "mirror" in edits:
        frames = frames[:, :, ::-1]
    out = frames.astype(np.float32)
    if "colour" in edits:  # gain per channel, brightness, contrast, saturation
        gain = rng.uniform(0.8, 1.2, 3)
        grey = out.mean(-1, keepdims=True)
        sat = rng.uniform(0.6, 1.4)
        out = grey + (out - grey) * sat
        out = (out - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-25, 25)
        out = out * gain
    frames = np.clip(out, 0, 255).astype(np.uint8)
    fh, fw = frames.shape[1:3]
    scale = cfg.size / min(fh, fw)
    if "lowres" in edits:
        scale *= rng.uniform(0.3, 0.45)
    ow, oh = _even(fw * scale), _even(fh * scale)
    images = [Image.fromarray(f).resize((ow, oh), Image.BILINEAR) for f in frames]
    if "caption" in edits:  # a bar with words across the lower third
        words = " ".join(rng.choice(["wow", "look", "new", "best", "day", "this", "so", "fun", "omg", "top"], 4))
        bar_h = max(10, oh // 7)
        y0 = int(oh * rng.uniform(0.65, 0.85))
        for im in images:
            d = ImageDraw.Draw(im)
            d.rectangle([0, y0, ow, min(oh, y0 + bar_h)], fill=(0, 0, 0))
            d.text((4, y0 + 1), words.upper(), fill=(255, 255, 255))
    tmp = dst.with_name(f".{dst.name}.tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=cfg.fps)
        stream.width, stream.height, stream.pix_fmt = ow, oh, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for i, im in enumerate(images):
            f = av.VideoFrame.from_ndarray(np.asarray(im), format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, cfg.fps)
            for packet in stream.encode(f):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(dst)


def build_stream(cfg: StreamConfig, videos: Path, cache: Path) -> Stream:
    """Plan the stream and render the uploads not yet in the cache."""
    plan, starts, kinds = plan_stream(cfg, videos)
    cache.mkdir(parents=True, exist_ok=True)
    uploads = []
    t0 = time.perf_counter()
    for i, (src, kind, day, start, edits) in enumerate(plan):
        recipe = json.dumps([src.name, start, edits, asdict(cfg), i], sort_keys=True)
        key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
        dst = cache / f"{src.stem}-{key}.mp4"
        if not dst.exists():
            render(src, start, edits, cfg, int(key, 16) % 2**32, dst)
        uploads.append(Upload(str(dst), src.name, kind, round(day, 4), start, edits))
        if (i + 1) % 25 == 0 or i + 1 == len(plan):
            print(f"  stream: {i + 1}/{len(plan)} uploads ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return Stream(cfg, uploads, starts, kinds)


def write_manifest(uploads: list[Upload], path: Path) -> None:
    path.write_text("".join(json.dumps({"path": u.path, "uploaded_at": u.uploaded_at, "creator": f"u{i % 17}"}) + "\n"
                            for i, u in enumerate(uploads)))
