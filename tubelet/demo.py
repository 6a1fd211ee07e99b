"""`tubelet demo`: pretrain a tiny VideoMAE on the bundled clips for a few CPU minutes, then show what it learned.

The step count is fitted to the time budget from a short timed run, so the learning-rate schedule completes.
"""

from __future__ import annotations

import shutil
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from tubelet.catalog.indexing import demo_catalog
from tubelet.errors import TubeletError
from tubelet.train.config import PretrainConfig
from tubelet.train.metrics import read_metrics
from tubelet.train.pretrain import pretrain

CALIBRATION_STEPS = 4
# vit_tiny at 16 frames of 112 px: 392 tubes, 40 visible — a few steps per second on two CPU cores
DEMO_MODEL = {"num_frames": 16, "image_size": 112}


def bundled_clips() -> Path:
    """The folder of demo clips shipped inside the package (see its ATTRIBUTION.md)."""
    return Path(str(resources.files("tubelet") / "assets" / "clips"))


def demo_config(steps: int) -> PretrainConfig:
    """The demo recipe: vit_tiny with the v1 masking; a peak lr of 1e-3 (base_lr × 4 clips / 256) suits a short run."""
    return PretrainConfig(data=str(bundled_clips()), preset="vit_tiny", model=dict(DEMO_MODEL), steps=steps,
                          batch_size=4, repeats=2, base_lr=1e-3 * 256 / 4, warmup_frac=0.1, workers=1,
                          save_every=max(1, steps // 4), keep_last=1, log_every=1)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _check_replaceable(path: Path, marker: str) -> None:
    """The demo replaces what an earlier demo left at `path`; anything else there is the user's and is kept."""
    if path.exists() and not (path / marker).is_file() and not (path.is_dir() and not any(path.iterdir())):
        raise TubeletError(f"{path}: exists and is not what an earlier demo left (no {marker} in it), so the demo "
                           f"will not replace it; give another --out")


def fit_steps(minutes: float, out: Path) -> int:
    """Steps that fill `minutes` of training on this machine, from a few timed steps."""
    probe = out / ".calibration"
    shutil.rmtree(probe, ignore_errors=True)
    pretrain(demo_config(CALIBRATION_STEPS).replace(save_every=CALIBRATION_STEPS), probe, progress=False)
    step_s = [r["step_s"] for r in read_metrics(probe) if "step_s" in r][1:]  # the first step warms up
    shutil.rmtree(probe, ignore_errors=True)
    per_step = sum(step_s) / len(step_s)
    return max(CALIBRATION_STEPS, int(minutes * 60 / per_step))


def run_demo(out: str | Path = "runs/demo", minutes: float = 3.0, steps: int | None = None) -> dict[str, Any]:
    """Pretrain on the bundled clips into `out`; returns where the checkpoint and the picture are."""
    out = Path(out)
    if minutes <= 0 and not steps:
        raise TubeletError("the demo needs a positive --minutes or --steps")
    run_dir = out / "run"
    for path, marker in ((run_dir, "pretrain.yaml"), (out / ".calibration", "pretrain.yaml"),
                         (out / "catalog", "catalog.json")):
        _check_replaceable(path, marker)
    shutil.rmtree(run_dir, ignore_errors=True)  # the demo starts afresh each time
    started = time.perf_counter()
    if not steps:
        _say(f"timing a few steps to fit {minutes:g} minutes …")
        steps = fit_steps(minutes, out)
    clips = sorted(p.name for p in bundled_clips().iterdir() if p.suffix == ".mp4")
    _say(f"pretraining vit_tiny (16×112×112) on {len(clips)} bundled clips for {steps} steps …")
    result = pretrain(demo_config(steps), run_dir)
    summary = {**result.summary(), "clips": clips, "seconds": round(time.perf_counter() - started, 2)}
    _say(f"loss {result.losses[0]:.3f} → {result.losses[-1]:.3f} over {result.step} steps "
         f"({summary['seconds']:.0f} s)")
    _say(f"checkpoint:     {result.checkpoint}")
    _say(f"reconstruction: {result.picture}")
    _say(f"try:            tubelet reconstruct {bundled_clips() / clips[0]} --model {result.checkpoint} "
         f"--out reconstruction.png")
    summary["search"] = demo_catalog(result.checkpoint, bundled_clips(), out, _say)
    return summary


__all__ = ["DEMO_MODEL", "bundled_clips", "demo_config", "fit_steps", "run_demo"]
