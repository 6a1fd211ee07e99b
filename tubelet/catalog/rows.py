"""Rows of some catalogued videos as arrays: their segments and their frame fingerprints, in catalog order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frames:
    """Fingerprint rows of some videos, in catalog order: `video[i]` indexes `ids`."""

    ids: list[str]
    video: np.ndarray  # [F] int
    times: np.ndarray  # [F] seconds
    vectors: np.ndarray  # [F, FP_DIM] float32


@dataclass
class Segments:
    """Segment rows of some videos, in catalog order: `video[i]` indexes `ids`."""

    ids: list[str]
    video: np.ndarray  # [S] int
    keys: np.ndarray  # [S] uint64, stable across compaction
    starts: np.ndarray  # [S]
    ends: np.ndarray  # [S]
    vectors: np.ndarray  # [S, D] float32
