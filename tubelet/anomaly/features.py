"""What one analysis frame says about the scene: per cell, its colour and texture (appearance) and how it moves
against the previous tick (motion: mean |Δ luma| and the mean optical-flow vector, from OpenCV's DIS flow, which
follows displacements of many pixels coarse to fine), the change that motion leaves unexplained (residual), how far
the tick before's residual stands over its neighbours' (jump) and its mean change over the last `window` ticks
(recent); for the whole frame, its brightness, grain and change. Frames of ~100 × 130 pixels: about a millisecond
a tick."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class TickFeatures:
    """Features of one tick; `cells` arrays are [gh·gw, d]."""

    appearance: np.ndarray  # [C, 4] mean R, G, B in [0, 1] and the luma standard deviation
    motion: np.ndarray  # [C, 3] mean |Δ luma| (sqrt), mean flow u, v in pixels per tick
    residual: np.ndarray  # [C] mean |luma − the previous luma moved along the flow| (sqrt)
    recent: np.ndarray  # [C] mean of motion[:, 0] over the last `window` ticks (inf until that many have a change)
    jump: np.ndarray  # [C] the tick before's residual over the larger of its two neighbours' (0 until there are both)
    brightness: float  # mean luma in [0, 1]
    grain: float  # the lower quartile over cells of mean |Δ luma − its 3×3 mean| (0 for the first tick)
    change: float  # mean |Δ luma| over the frame (0 for the first tick)
    luma: np.ndarray | None  # [h, w] float32 in [0, 1] (dropped once no longer needed)


def _cells(x: np.ndarray, c: int) -> np.ndarray:
    """[h, w, ...] → [gh·gw, c·c, ...]: the pixels of each c×c cell (h, w multiples of c)."""
    h, w = x.shape[:2]
    y = x.reshape(h // c, c, w // c, c, *x.shape[2:]).swapaxes(1, 2)
    return y.reshape((h // c) * (w // c), c * c, *x.shape[2:])


class FeatureExtractor:
    """Turns successive frames (uint8 [h, w, 3], h and w multiples of `cell`) into TickFeatures; `window` ticks of
    change make `recent`."""

    def __init__(self, cell: int, window: int = 10) -> None:
        self.cell = cell
        self.prev: np.ndarray | None = None
        self.changes: deque[np.ndarray] = deque(maxlen=window)  # the last ticks' motion[:, 0] (not the first tick's)
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.grid: tuple[np.ndarray, np.ndarray] | None = None  # pixel x, y coordinates, for moving along the flow
        self.residuals: deque[np.ndarray] = deque(maxlen=3)  # the last ticks' residual (not the first tick's)

    def __call__(self, rgb: np.ndarray) -> TickFeatures:
        c = self.cell
        x = rgb.astype(np.float32) / 255
        luma = x @ LUMA
        px = _cells(x, c)  # [C, c·c, 3]
        ly = _cells(luma, c)  # [C, c·c]
        appearance = np.concatenate([px.mean(1), ly.std(1, keepdims=True)], axis=1)
        prev = luma if self.prev is None else self.prev
        diff = luma - prev
        motion, residual = self._motion(prev, luma, diff)
        if self.prev is not None:
            self.changes.append(motion[:, 0])
            self.residuals.append(residual)
        self.prev = luma
        full = len(self.changes) == self.changes.maxlen
        recent = np.mean(self.changes, 0) if full else np.full(len(motion), np.inf, np.float32)
        return TickFeatures(appearance, motion, residual, recent.astype(np.float32), self._jump(len(motion)),
                            float(luma.mean()), self._grain(diff), float(np.abs(diff).mean()), luma)

    def _grain(self, diff: np.ndarray) -> float:
        """How much of a tick's change is each pixel's own: noise laid over the picture (interference, a failing
        sensor, the gain turned up) changes every pixel apart from its neighbours, while light, exposure and motion
        change neighbouring pixels alike; the lower quartile over cells reads the picture's still places."""
        own = np.abs(_cells(diff - cv2.blur(diff, (3, 3)), self.cell)).mean(1)
        return float(np.quantile(own, 0.25))

    def _jump(self, cells: int) -> np.ndarray:
        """[C] per cell, how far the residual of the tick before stands over both its neighbours' (a jump in time
        leaves unexplained change on one tick; fast or unfollowed motion and exposure swings leave it on several)."""
        if len(self.residuals) < 3:
            return np.zeros(cells, np.float32)
        before, mid, after = self.residuals
        return (mid - np.maximum(before, after)).astype(np.float32)

    def _motion(self, prev: np.ndarray, cur: np.ndarray, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.cell
        flow = self.flow.calc(_u8(prev), _u8(cur), None)  # [h, w, 2] pixels per tick
        uv = _cells(flow, c).mean(1)
        energy = np.sqrt(np.abs(_cells(diff, c)).mean(1))
        if self.grid is None or self.grid[0].shape != cur.shape:
            self.grid = tuple(np.meshgrid(np.arange(cur.shape[1], dtype=np.float32),
                                          np.arange(cur.shape[0], dtype=np.float32)))
        moved = cv2.remap(prev, self.grid[0] - flow[..., 0], self.grid[1] - flow[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        residual = np.sqrt(np.abs(_cells(cur - moved, c)).mean(1)).astype(np.float32)
        return np.concatenate([energy[:, None], np.clip(uv, -4 * c, 4 * c)], axis=1).astype(np.float32), residual


def _u8(luma: np.ndarray) -> np.ndarray:
    return (luma * 255 + 0.5).astype(np.uint8)
