"""Every setting of anomaly detection in one dataclass, saved with the fitted model."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from tubelet.config import coerce
from tubelet.errors import TubeletError

# the sane range of every number (inclusive)
LIMITS: dict[str, tuple[float, float]] = {
    "rate_hz": (0.1, 240), "bin_s": (0.01, 3600), "short_side": (8, 4096), "patch": (1, 256), "cell": (1, 1024),
    "num_frames": (2, 256), "frame_step": (1, 1000), "masks": (2, 16), "adapt_steps": (0, 10**9),
    "adapt_batch": (1, 4096), "adapt_lr": (0, 10), "adapt_mask_ratio": (0, 0.99), "bank_cells": (1, 10**6),
    "bank_windows": (1, 10**6), "max_windows": (1, 10**6), "folds": (2, 64), "threshold": (1e-6, 1e6),
    "min_event_s": (0, 86400), "merge_gap_s": (0, 86400), "seed": (0, 2**32 - 1),
}


@dataclass(frozen=True)
class AnomalyConfig:
    """How footage is sampled, cut into segments and scored."""

    rate_hz: float = 10.0  # analysis ticks per second (the frame on screen at each tick)
    bin_s: float = 0.5  # one scored segment
    short_side: int = 96  # analysis frames: short side in pixels; the long side rounds to a multiple of `patch`
    patch: int = 16  # MAE patch size (the analysis frame is a whole number of patches)
    cell: int = 8  # side of a statistics cell in pixels
    # the MAE: num_frames ticks `frame_step` apart, centred on a segment
    model: str = "none"  # no MAE by default: measured, it lowered AUROC (see benchmarks/anomaly.py)
    num_frames: int = 8
    frame_step: int = 2
    masks: int = 4  # complementary tube masks per window: every cell is hidden in masks-1 of them
    adapt_steps: int = 100  # AdamW steps adapting the MAE to the camera's normal footage (0 = none)
    adapt_batch: int = 8
    adapt_lr: float = 3e-4
    adapt_mask_ratio: float = 0.75  # as the scoring masks hide
    # statistics banks
    bank_cells: int = 1024  # distinct normal states kept per cell
    bank_windows: int = 2048  # normal window embeddings kept
    max_windows: int = 1024  # normal windows kept in memory for adaptation and calibration
    folds: int = 4  # cross-fitting: each fold of the normal footage is scored by banks built from the others
    threshold: float = 1.5  # an event: calibrated score at or above this (1.0 = the normal footage's 99th percentile)
    min_event_s: float = 0.5
    merge_gap_s: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Every field of its type and finite, each number within its sane range (a model directory's anomaly.json
        is a file anyone may have edited: nothing is allocated or looped over before this)."""
        hints = typing.get_type_hints(AnomalyConfig)
        for f in dataclasses.fields(self):
            value = coerce(f.name, getattr(self, f.name), hints[f.name], "anomaly config")
            lo, hi = LIMITS.get(f.name, (None, None))
            if lo is not None and not lo <= value <= hi:
                raise TubeletError(f"anomaly config: {f.name} must be in {lo:g}–{hi:g}, got {value:g}")
            object.__setattr__(self, f.name, value)
        if self.short_side < self.patch or self.num_frames % 2:
            raise TubeletError(f"anomaly config: short_side ({self.short_side}) must be at least patch "
                               f"({self.patch}) and num_frames ({self.num_frames}) even")

    @property
    def ticks_per_bin(self) -> int:
        return max(1, round(self.bin_s * self.rate_hz))

    @property
    def window_ticks(self) -> int:
        """Ticks spanned by one MAE window."""
        return (self.num_frames - 1) * self.frame_step + 1

    def window_of(self, segment: int) -> list[int]:
        """The ticks of a segment's MAE window, centred on the segment's middle tick (tick k is in segment
        k // ticks_per_bin; indices outside the video are clamped by the reader of the window)."""
        centre = segment * self.ticks_per_bin + (self.ticks_per_bin - 1) // 2
        first = centre - (self.window_ticks - 1) // 2
        return [first + self.frame_step * j for j in range(self.num_frames)]

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the analysis frame for a video of this display size: short side `short_side`, long side the
        nearest multiple of `patch`."""
        short, long_ = sorted((height, width))
        other = max(self.patch, round(self.short_side * long_ / short / self.patch) * self.patch)
        return (self.short_side, other) if height <= width else (other, self.short_side)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnomalyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
