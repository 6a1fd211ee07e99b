"""Repeats within a video: a later span that shows an earlier one again, found like copies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tubelet.catalog.copies import best_runs, diagonal_runs
from tubelet.catalog.search import Query, on_grid

REPEAT_MIN_RUN = 2  # consecutive segments a repeat needs, as for copies


@dataclass(frozen=True)
class Repeat:
    """[start_s, end_s) shows [repeats_start_s, repeats_end_s) again."""

    start_s: float
    end_s: float
    repeats_start_s: float
    repeats_end_s: float
    score: float  # mean segment similarity along the run


def repeats_within(query: Query, stride_s: float, window_s: float, threshold: float) -> list[Repeat]:
    """Spans of the video that show an earlier part of it again, starting after that part ends (segment similarity
    ≥ threshold along a diagonal of its own similarity matrix, as copies are found)."""
    grid = on_grid(query.starts, stride_s)
    starts, ends, vecs = query.starts[grid], query.ends[grid], query.vectors[grid]
    apart = int(np.ceil(window_s / stride_s - 1e-9))  # windows this many strides apart do not overlap
    found = [r for r in diagonal_runs(vecs @ vecs.T, threshold, REPEAT_MIN_RUN, min_offset=apart)
             if ends[r.last] <= starts[r.first + r.offset]]  # the repeat starts after the original ends (else: slow)
    return sorted((Repeat(float(starts[r.first + r.offset]), float(ends[r.last + r.offset]), float(starts[r.first]),
                          float(ends[r.last]), r.score) for r in best_runs(found)), key=lambda r: r.start_s)
