"""Where clips come from in a video: start times and frame times for each sampling strategy.

Everything is in seconds, not frame indices: frame counts and rates in containers are often wrong, while the
decoder finds frames by timestamp. A window is `num_frames` frames taken every `stride` decoded frames from a
start time (see decode.read_clip); its length in seconds, needed to place it, is estimated from the stream's
frame rate.
"""

from __future__ import annotations

import math

import torch

from tubelet.errors import TubeletError


def window_seconds(num_frames: int, stride: int, fps: float) -> float:
    """Duration covered by (T-1)·stride + 1 frames at `fps`."""
    return ((num_frames - 1) * stride + 1) / fps


def random_start(duration_s: float, window_s: float, generator: torch.Generator | None = None) -> float:
    """Training: a start uniform over [0, duration − window] (0 when the video is shorter than the window)."""
    room = max(0.0, duration_s - window_s)
    return room * float(torch.rand((), generator=generator, dtype=torch.float64))


def center_start(duration_s: float, window_s: float) -> float:
    """The window centred on the video."""
    return max(0.0, duration_s - window_s) / 2


def uniform_starts(duration_s: float, window_s: float, num_clips: int) -> list[float]:
    """Testing: num_clips windows spread evenly from the first to the last possible start (1 clip: centred)."""
    if num_clips <= 0:
        raise TubeletError(f"num_clips must be positive, got {num_clips}")
    if num_clips == 1:
        return [center_start(duration_s, window_s)]
    room = max(0.0, duration_s - window_s)
    return [room * i / (num_clips - 1) for i in range(num_clips)]


def segment_times(duration_s: float, num_segments: int, generator: torch.Generator | None = None,
                  start_s: float = 0.0) -> list[float]:
    """TSN / SSv2 sampling: one time per equal segment of [start, start+duration): random within it when a
    generator is given (training), its middle otherwise (testing)."""
    if num_segments <= 0:
        raise TubeletError(f"num_segments must be positive, got {num_segments}")
    seg = duration_s / num_segments
    if generator is None:
        offsets = [0.5] * num_segments
    else:
        offsets = torch.rand(num_segments, generator=generator, dtype=torch.float64).tolist()
    return [start_s + (i + o) * seg for i, o in enumerate(offsets)]


def fps_times(start_s: float, num_frames: int, fps: float) -> list[float]:
    """Time-based sampling: num_frames instants 1/fps apart from start_s."""
    if fps <= 0:
        raise TubeletError(f"fps must be positive, got {fps}")
    return [start_s + k / fps for k in range(num_frames)]


MAX_WINDOWS = 100_000  # windows of one video (28 h at the default stride of 1 s)


def sliding_windows(duration_s: float, window_s: float, stride_s: float | None = None) -> list[tuple[float, float]]:
    """(start_s, end_s) windows covering [0, duration] every stride_s (default: window_s, no overlap).

    The last window is aligned to end at the video's end so the tail is covered without running past it;
    a video shorter than one window gives one window (0, duration).
    """
    stride_s = window_s if stride_s is None else stride_s
    if not all(math.isfinite(x) and x > 0 for x in (window_s, stride_s)):
        raise TubeletError(f"window and stride must be finite positive seconds, got {window_s} and {stride_s}")
    if not math.isfinite(duration_s):
        raise TubeletError(f"duration must be a finite number of seconds, got {duration_s}")
    if duration_s <= window_s:
        return [(0.0, max(0.0, duration_s))]
    last = duration_s - window_s
    if last / stride_s + 2 > MAX_WINDOWS:
        raise TubeletError(f"{duration_s:.1f} s in windows every {stride_s:g} s would be over {MAX_WINDOWS:,} "
                           f"windows; use a longer stride")
    starts = [i * stride_s for i in range(int(last / stride_s + 1e-9) + 1)]
    if last - starts[-1] > 1e-6:
        starts.append(last)
    return [(s, s + window_s) for s in starts]
