"""The timeline picture of one scored video: the calibrated score over time with the threshold, each event as a
coloured band by kind, and a thumbnail of each event's peak frame underneath."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from tubelet.anomaly.detectors import KINDS
from tubelet.anomaly.score import VideoScore
from tubelet.atomic import atomic_write

COLOURS = dict(zip(KINDS, ("tab:red", "tab:orange", "tab:blue", "tab:purple", "tab:green"), strict=True))
MAX_THUMBS = 8


def draw_timeline(result: VideoScore, threshold: float, path: str | os.PathLike) -> Path:
    """Write the picture as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = sorted(result.events, key=lambda e: -e.score)[:MAX_THUMBS]
    shown = sorted((e for e in shown if e.thumb is not None), key=lambda e: e.start_s)
    cols = max(1, len(shown))
    fig = plt.figure(figsize=(max(8.0, 2.0 * cols), 4.6 if shown else 2.8))
    grid = fig.add_gridspec(2 if shown else 1, cols, height_ratios=[1.4, 1] if shown else [1])
    ax = fig.add_subplot(grid[0, :])
    mid = 0.5 * (result.starts + result.ends)
    ax.plot(mid, result.scores, color="black", lw=1)
    ax.axhline(threshold, color="grey", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    for e in result.events:
        ax.axvspan(e.start_s, e.end_s, color=COLOURS.get(e.kind, "tab:gray"), alpha=0.3)
    for kind in dict.fromkeys(e.kind for e in result.events):
        ax.plot([], [], color=COLOURS.get(kind, "tab:gray"), lw=6, alpha=0.4, label=kind)
    ax.set_xlim(0, max(result.duration_s, 1e-3))
    ax.set_ylim(0, max(2.0 * threshold, float(np.nanmax(result.scores)) * 1.05 if len(result.scores) else 1.0))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (1 = normal p99)")
    ax.set_title(Path(result.path).name, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    for i, e in enumerate(shown):
        tax = fig.add_subplot(grid[1, i])
        tax.imshow(e.thumb)
        tax.set_title(f"{e.start_s:.1f}–{e.end_s:.1f} s\n{e.kind} {e.score:.1f}", fontsize=7)
        tax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())
