"""Frames of a camera at a fixed analysis rate, from a file, a file still being written, or an rtsp/http URL.

A tick k is the instant k / rate_hz after the first frame; its frame is the one on screen then. Frames are
scaled by swscale straight to the analysis size (whole picture, no crop: a camera's corners matter).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tubelet.data.decode import VideoReader
from tubelet.errors import VideoError


def is_url(source: str | os.PathLike) -> bool:
    return "://" in str(source)


class GrowingFile(io.RawIOBase):
    """A file that another process is still appending to, read like `tail -f`: at its current end a read waits
    for more bytes and reports the end only after `idle_s` seconds without growth."""

    def __init__(self, path: str | os.PathLike, idle_s: float = 5.0, poll_s: float = 0.05) -> None:
        super().__init__()
        self.name = os.fspath(path)
        self._f = open(path, "rb")  # noqa: SIM115 (closed in close())
        self.idle_s, self.poll_s = idle_s, poll_s

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buf: memoryview) -> int:
        waited = 0.0
        while True:
            n = self._f.readinto(buf)
            if n:
                return n
            if waited >= self.idle_s:
                return 0
            time.sleep(self.poll_s)
            waited += self.poll_s

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass
class Tick:
    """One analysis instant: its time in seconds and the RGB frame on screen (uint8 [h, w, 3])."""

    t: float
    rgb: np.ndarray


def open_reader(source: str | os.PathLike, follow: bool = False, idle_s: float = 5.0) -> VideoReader:
    """A VideoReader for a path, a growing file (`follow`) or a URL."""
    if is_url(source):
        return VideoReader(str(source), name=str(source))
    if follow:
        path = Path(source)
        if not path.is_file():
            raise VideoError(f"{path}: no such file")
        return VideoReader(GrowingFile(path, idle_s), name=str(path))
    return VideoReader(source)


def ticks(reader: VideoReader, size_for: Callable[[int, int], tuple[int, int]], rate_hz: float) -> Iterator[Tick]:
    """Frames on screen at 0, 1/rate, 2/rate … seconds after the first frame, scaled to size_for(display h, w)."""
    step = 1.0 / rate_hz
    k, t0 = 0, None
    geometry: tuple[int, int, int] | None = None
    pending: av.VideoFrame | None = None  # the last decoded frame, on screen until the next one's time
    rgb: np.ndarray | None = None  # pending, converted (once, however many ticks show it)
    try:
        for t, frame in reader.frames(0.0):
            if t0 is None:
                t0 = t
                w, h, quarter = reader.output_geometry(frame, None)
                geometry = reader.output_geometry(frame, size_for(*((w, h) if quarter % 2 else (h, w))))
            while pending is not None and t - t0 > k * step + 1e-6:
                rgb = _rgb(reader, pending, geometry) if rgb is None else rgb
                yield Tick(k * step, rgb)
                k += 1
            pending, rgb = frame, None
    except av.FFmpegError as e:
        if pending is None:
            raise VideoError(f"{reader.name}: cannot decode ({e})") from None
    if pending is not None:  # the last frame stays on screen for one more tick
        yield Tick(k * step, _rgb(reader, pending, geometry) if rgb is None else rgb)


def _rgb(reader: VideoReader, frame: av.VideoFrame, geometry: tuple[int, int, int]) -> np.ndarray:
    w, h, quarter = geometry
    out = np.empty((w, h, 3) if quarter % 2 else (h, w, 3), np.uint8)
    reader.to_rgb(frame, geometry, out)
    return out
