"""Decode exactly the frames a clip needs with PyAV: seek to the keyframe before, decode forward, stop after the last.

Choices (the ones a video-ML user would otherwise have to guess):
- Frame order is the decoder's output order (FFmpeg decoders output in presentation order). A frame's time is
  the smallest not-yet-used packet pts fed to the decoder so far; for well-formed files this is exactly the
  frame's own pts, and for files whose pts are scrambled in decode order (AVI packed B-frames, badly muxed MP4)
  it gives the sorted timestamps in order, like FFmpeg's best-effort timestamps. Times are seconds from the
  stream's start time.
- Frames come out as RGB uint8 at display geometry: the sample aspect ratio (SAR) is applied by scaling the
  width (a 340×256 stream with SAR 64:51 comes out 427×256), then the rotation from the display matrix is
  applied (a phone video stored 1920×1080 with rotation 90 comes out 1080×1920). Colour conversion uses the
  frame's colour matrix and range; 10-bit, 4:4:4 and grey inputs all come out RGB uint8.
- A requested `size` is applied by swscale: YUV frames are scaled in YUV and then converted (3–7× cheaper than
  swscale's scaling RGB path, and closer to an antialiased float resize), other formats in one call.
- Conversion runs on a helper thread (swscale and the decoder both release the GIL) while the decoder goes on,
  and writes straight into the clip's preallocated tensor: no per-frame arrays to stack.
"""

from __future__ import annotations

import heapq
import io
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from tubelet.errors import VideoError

VideoInput = str | os.PathLike | bytes | BinaryIO
Size = int | tuple[int, int] | None

TOL_S = 1e-4  # two times closer than this are the same instant
SEEK_GAP_S = 2.0  # without a keyframe index, seek rather than decode forward over a gap longer than this
INTERPOLATION = "BILINEAR"  # swscale's bilinear filters over the whole footprint when downscaling
PAST_END_S = 1.0  # a window may start this far past the container's claimed duration (headers can be short)
MAX_TIME_S = 1e9  # 31 years: any later time cannot be a position in a video (and would overflow a pts)
MAX_BAD_PACKETS = 100  # corrupt packets tolerated in one pass before the file is called undecodable


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns from a container without decoding more than its first frame.

    width/height are the display size (SAR and rotation applied); coded_* are the stored size. rotation is
    the clockwise rotation, in degrees, applied for display (0, 90, 180, 270). num_frames is the container's
    count or duration × fps unless `frames_exact` (probe(..., exact=True) counts packets).
    """

    path: str
    has_video: bool
    duration_s: float
    fps: float
    num_frames: int
    width: int
    height: int
    coded_width: int
    coded_height: int
    sar: float
    rotation: int
    codec: str
    pix_fmt: str
    container: str
    has_audio: bool
    bit_rate: int
    frames_exact: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_name(src: VideoInput) -> str:
    """The name used in messages: the path, or a file object's name."""
    if isinstance(src, str | os.PathLike):
        return os.fspath(src)
    if isinstance(src, bytes | bytearray | memoryview):
        return "<bytes>"
    return str(getattr(src, "name", "<stream>"))


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(text).split())


def _open(src: VideoInput, name: str) -> av.container.InputContainer:
    if isinstance(src, str) and "://" in src:  # rtsp://, http://, … : FFmpeg opens the stream itself
        target: Any = src
    elif isinstance(src, str | os.PathLike):
        p = Path(src)
        if not p.exists():
            raise VideoError(f"{name}: no such file")
        if p.is_dir():
            raise VideoError(f"{name}: is a directory, not a video file")
        if p.stat().st_size == 0:
            raise VideoError(f"{name}: empty file (0 bytes)")
        target = str(p)
    elif isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise VideoError(f"{name}: empty file (0 bytes)")
        target = io.BytesIO(src)
    else:
        target = src
    try:
        return av.open(target, metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise VideoError(f"{name}: not a readable video ({_reason(e)})") from None


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:  # skip cover art
            return s
    return None


def check_times(name: str, times_s: Sequence[float]) -> None:
    """VideoError unless every time is a finite number of seconds (NaN would never be reached, inf cannot be
    sought to)."""
    for t in times_s:
        if not isinstance(t, int | float | np.floating | np.integer) or not math.isfinite(t):
            raise VideoError(f"{name}: time {t!r} is not a finite number of seconds")


def _ratio(x: Any) -> float:
    return float(x) if x else 0.0


class VideoReader:
    """An open video stream: frames in presentation order with their times, from any start point.

    `threads`: decoder threads (0 = FFmpeg's choice, 1 = single-threaded, best inside DataLoader workers).
    """

    def __init__(self, src: VideoInput, threads: int = 0, name: str | None = None) -> None:
        self.name = name or source_name(src)
        self.container = _open(src, self.name)
        stream = _video_stream(self.container)
        if stream is None:
            kinds = "audio only" if self.container.streams.audio else "no video stream"
            self.container.close()
            raise VideoError(f"{self.name}: no video stream ({kinds})")
        self.stream = stream
        self._src, self._threads, self._fresh, self._primed = src, threads, True, False
        if threads != 1:
            stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        self.tb = stream.time_base
        self._tb_s = float(self.tb)  # seconds per pts tick, for the per-frame times
        self.start_pts = stream.start_time if stream.start_time is not None else 0
        self.fps = _ratio(stream.average_rate) or _ratio(stream.guessed_rate) or _ratio(stream.base_rate) or 25.0
        self._keyframes = self._keyframe_times()
        # one swscale context each for scaling, RGB conversion and grey, reused across frames (a frame's own
        # reformat() builds a fresh context every time); used only from the conversion thread
        self._scaler, self._rgb, self._grey = VideoReformatter(), VideoReformatter(), VideoReformatter()

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- metadata ---------------------------------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        """The container's claimed duration of the video stream (may be wrong; decoding is not bound by it)."""
        s = self.stream
        if s.duration:
            return float(s.duration * self.tb)
        if self.container.duration:
            return self.container.duration / av.time_base
        return s.frames / self.fps if s.frames else 0.0

    @property
    def claimed_frames(self) -> int:
        return self.stream.frames or round(self.duration_s * self.fps)

    def _seconds(self, pts: int) -> float:
        return (pts - self.start_pts) * self._tb_s

    def _keyframe_times(self) -> list[float]:
        """Keyframe times from the container index (mp4/avi/mkv cues), empty when the index is not usable."""
        try:
            entries = self.stream.index_entries
            times = [self._seconds(e.timestamp) for e in entries if e.is_keyframe] if entries else []
        except (AttributeError, av.FFmpegError):
            return []
        return times if len(times) > 1 else []

    # --- decoding ---------------------------------------------------------------------------------------------
    def _seek(self, t_s: float) -> None:
        """Move the read position to the keyframe at or before t_s (no-op at the start of a fresh reader)."""
        if t_s <= 0 and self._fresh:
            return
        self._fresh = False
        if t_s > MAX_TIME_S:
            raise VideoError(f"{self.name}: time {t_s:g} s is past any video's end")
        target = self.start_pts + int(t_s / self.tb) if t_s > 0 else self.start_pts
        try:
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        except av.FFmpegError:
            if t_s > 0:
                raise
            self._reopen()

    def _reopen(self) -> None:
        """Start over from the first byte: for containers that cannot seek back to their start."""
        self.container.close()
        if hasattr(self._src, "seek"):
            self._src.seek(0)
        self.container = _open(self._src, self.name)
        self.stream = _video_stream(self.container)
        self.stream.codec_context.thread_count = self._threads
        if self._threads != 1:
            self.stream.thread_type = "AUTO"

    def _decode(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Frames from the current read position; each time = smallest unused packet pts (see module doc)."""
        self._fresh = False
        heap: list[int] = []
        bad = 0
        last = None
        step = max(1, round(1 / (self.fps * self.tb)))
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError:  # truncated or corrupt container: what decoded so far is all there is
                return
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None and packet.size:
                heapq.heappush(heap, ts)
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    raise VideoError(f"{self.name}: too many corrupt packets ({_reason(e)})") from None
                continue
            for frame in frames:
                if heap:
                    pts = heapq.heappop(heap)
                elif frame.pts is not None:
                    pts = frame.pts
                else:
                    pts = (last if last is not None else self.start_pts - step) + step
                if last is not None and pts <= last:  # a dropped packet left a stale time: keep order
                    pts = last + 1
                last = pts
                yield self._seconds(pts), frame

    def frames(self, from_s: float = 0.0) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time_s, frame) in presentation order, starting at the keyframe at or before `from_s`.

        The caller drops frames before `from_s`; they are yielded so that a caller can still use the last frame
        when `from_s` lies past the end. If the seek lands after `from_s`, it seeks again further back; if the
        decoder reports the frame after a seek as corrupt (some H.264 4:4:4 streams need state from their first
        packet), it decodes the first packet and seeks again; a container that cannot seek is read from its start.
        """
        check_times(self.name, [from_s])
        back = 0.0
        while True:
            seek_s = from_s - back
            try:
                self._seek(seek_s)
            except av.FFmpegError:  # the container cannot seek there: decode from the start
                seek_s = 0.0
                self._reopen()
            it = self._decode()
            first = next(it, None)
            if first is None and seek_s <= 0:
                return
            if first is not None and first[1].is_corrupt and seek_s > 0 and not self._primed:
                self._prime()
                continue
            if first is not None and (first[0] <= from_s + TOL_S or seek_s <= 0):
                yield first
                yield from it
                return
            back = 1.0 if back == 0 else back * 4  # landed past from_s (or past the end): look further back

    def _prime(self) -> None:
        """Feed the decoder the stream's first packet (parameter state some streams only carry there)."""
        self._primed = True
        self._seek(0.0)
        for packet in self.container.demux(self.stream):
            if packet.size:
                try:
                    packet.decode()
                except av.FFmpegError:
                    pass
                return

    def needs_seek(self, pos_s: float, target_s: float) -> bool:
        """Whether reaching `target_s` from decode position `pos_s` is cheaper by seeking than decoding on."""
        if target_s <= pos_s:
            return target_s < pos_s - TOL_S
        if self._keyframes:
            before = [k for k in self._keyframes if k <= target_s + TOL_S]
            return bool(before) and before[-1] > pos_s + TOL_S
        return target_s - pos_s > SEEK_GAP_S

    # --- geometry ---------------------------------------------------------------------------------------------
    def output_geometry(self, frame: av.VideoFrame, size: Size) -> tuple[int, int, int]:
        """(width, height) to scale the stored frame to, and quarter turns counter-clockwise to apply after."""
        sar = _ratio(self.stream.sample_aspect_ratio) or _ratio(self.stream.codec_context.sample_aspect_ratio) or 1.0
        quarter = round((frame.rotation or 0) / 90) % 4
        disp_w, disp_h = max(1, round(frame.width * sar)), frame.height
        if quarter % 2:
            disp_w, disp_h = disp_h, disp_w
        out_h, out_w = _target_size(disp_h, disp_w, size)
        if quarter % 2:
            out_h, out_w = out_w, out_h
        return out_w, out_h, quarter

    def to_rgb(self, frame: av.VideoFrame, geometry: tuple[int, int, int], out: np.ndarray) -> None:
        """One frame → out [H, W, 3] uint8 at the output geometry."""
        w, h, quarter = geometry
        if (w, h) != (frame.width, frame.height) and frame.format.name.startswith("yuv"):
            # scale the YUV planes, then convert at the new size: 3–7× cheaper than swscale's scaled RGB path
            rng = frame.color_range or None
            frame = self._scaler.reformat(frame, width=w, height=h, interpolation=INTERPOLATION, src_color_range=rng,
                                          dst_color_range=rng, threads=1)
        kwargs: dict[str, Any] = {}
        if frame.color_range:
            kwargs["src_color_range"] = frame.color_range
        rgb = self._rgb.reformat(frame, width=w, height=h, format="rgb24", interpolation=INTERPOLATION, threads=1,
                                 **kwargs).to_ndarray()
        out[...] = np.rot90(rgb, quarter) if quarter else rgb

    def to_grey(self, frame: av.VideoFrame, geometry: tuple[int, int, int]) -> np.ndarray:
        """One frame's luma → uint8 [H, W] at the output geometry (swscale reads the Y plane alone)."""
        w, h, quarter = geometry
        grey = self._grey.reformat(frame, width=w, height=h, format="gray", interpolation=INTERPOLATION,
                                   threads=1).to_ndarray()
        return np.ascontiguousarray(np.rot90(grey, quarter)) if quarter else grey


class _Clip:
    """A clip being filled: frames are converted to RGB on a helper thread into one preallocated tensor, so
    conversion overlaps with decoding and nothing is stacked at the end."""

    def __init__(self, reader: VideoReader, size: Size, num_frames: int) -> None:
        self.reader, self.size, self.num_frames = reader, size, num_frames
        self.geometry: tuple[int, int, int] | None = None
        self.video: torch.Tensor | None = None  # [num_frames, H, W, 3] uint8
        self.times = [0.0] * num_frames
        self.pending: list[Future] = []

    def put(self, slot: int, t: float, frame: av.VideoFrame) -> None:
        """Convert `frame` into slot `slot` (asynchronously)."""
        if self.geometry is None:
            self.geometry = self.reader.output_geometry(frame, self.size)
            w, h, quarter = self.geometry
            hw = (w, h) if quarter % 2 else (h, w)
            self.video = torch.empty((self.num_frames, *hw, 3), dtype=torch.uint8)
        self.times[slot] = t
        self.pending.append(_converter().submit(self.reader.to_rgb, frame, self.geometry, self.video[slot].numpy()))

    def result(self, filled: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Wait for the conversions; slots past `filled` repeat the last filled one → (video, times)."""
        for job in self.pending:
            job.result()
        if filled == 0 or self.video is None:
            raise VideoError(f"{self.reader.name}: no decodable video frames")
        self.video[filled:] = self.video[filled - 1]
        self.times[filled:] = [self.times[filled - 1]] * (self.num_frames - filled)
        return self.video, torch.tensor(self.times, dtype=torch.float64)


_CONVERTER: tuple[int, ThreadPoolExecutor] | None = None


def _converter() -> ThreadPoolExecutor:
    """This process's RGB conversion thread (a DataLoader worker forked from a parent makes its own)."""
    global _CONVERTER
    if _CONVERTER is None or _CONVERTER[0] != os.getpid():
        _CONVERTER = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="tubelet-rgb"))
    return _CONVERTER[1]


def _target_size(disp_h: int, disp_w: int, size: Size) -> tuple[int, int]:
    """size None → display size; int → short side = size, aspect kept; (h, w) → exactly that."""
    if size is None:
        return disp_h, disp_w
    if isinstance(size, int):
        if size <= 0:
            raise VideoError(f"size must be positive, got {size}")
        scale = size / min(disp_h, disp_w)
        return max(1, round(disp_h * scale)), max(1, round(disp_w * scale))
    h, w = size
    if h <= 0 or w <= 0:
        raise VideoError(f"size must be positive, got {size}")
    return int(h), int(w)


def window_span(num_frames: int, stride: int) -> int:
    """Frames covered by a window of num_frames taken every stride frames: (T-1)·stride + 1."""
    return (num_frames - 1) * stride + 1


def _check_window(num_frames: int, stride: int) -> None:
    if num_frames <= 0 or stride <= 0:
        raise VideoError(f"num_frames and stride must be positive, got {num_frames} and {stride}")


def _read_window(reader: VideoReader, start_s: float, num_frames: int, stride: int, size: Size,
                 ) -> tuple[_Clip, int, list[float]]:
    """Frames start, start+stride, … counted from the first frame at or after start_s; stops after the last.

    Returns (the clip, frames filled, times of every frame decoded in this pass). If the stream ends first, the
    stream's last frame is added once (index clamping), so the caller only repeats it.
    """
    clip = _Clip(reader, size, num_frames)
    filled = 0
    seen: list[float] = []
    index = 0
    last: tuple[float, av.VideoFrame] | None = None
    for t, frame in reader.frames(start_s):
        seen.append(t)
        last = (t, frame)
        if t < start_s - TOL_S:
            continue
        if index % stride == 0:
            clip.put(filled, t, frame)
            filled += 1
            if filled == num_frames:
                return clip, filled, seen
        index += 1
    if last is not None and (not filled or last[0] > clip.times[filled - 1]):
        clip.put(filled, *last)
        filled += 1
    return clip, filled, seen


def window_from(reader: VideoReader, start_s: float, num_frames: int = 16, stride: int = 4, size: Size = None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """read_clip's window on an open reader (several windows from one file share the open): _read_window, moved
    back to end exactly on the last frame when it runs off the end of the video; a video shorter than the window
    repeats its last frame → (uint8 [T, H, W, 3], float64 [T])."""
    check_times(reader.name, [start_s])
    if reader.duration_s > 0 and start_s > reader.duration_s + PAST_END_S:
        raise VideoError(f"{reader.name}: start {start_s:g} s is past the end of the video ({reader.duration_s:.2f} s)")
    span = window_span(num_frames, stride)
    clip, filled, tail = _read_window(reader, start_s, num_frames, stride, size)
    if filled == num_frames or start_s <= 0 or not tail:
        return clip.result(filled)
    for _ in range(5):  # rare path: decode (without converting) further back until `span` final frames are known
        if len(tail) >= span or tail[0] <= 0:
            break
        dt = (tail[-1] - tail[0]) / (len(tail) - 1) if len(tail) > 1 else 1 / reader.fps
        tail = [t for t, _ in reader.frames(max(0.0, tail[0] - 1.5 * (span - len(tail)) * dt - 1.0))]
    start_s = tail[-span] if len(tail) >= span else 0.0
    clip, filled, _ = _read_window(reader, start_s, num_frames, stride, size)
    return clip.result(filled)


def read_clip(src: VideoInput, num_frames: int = 16, stride: int = 4, start_s: float | None = None,
              size: Size = None, *, fps: float | None = None, threads: int = 0,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one clip → (uint8 [T, H, W, 3] RGB at display geometry, float64 [T] frame times in seconds).

    Frames are taken every `stride` decoded frames from the first frame at or after `start_s` (K400-style
    dense sampling; frame counts, not an assumed fps). With `fps`, frames are instead the ones on screen at
    start_s + k/fps (time-based sampling; `stride` is ignored). `start_s=None` centres the window on the video.
    `size`: None keeps the display size, an int sets the short side (aspect kept), (h, w) sets both.

    Near the end: a window that runs past the last frame is moved back to end on the last frame; a video with
    fewer frames than the window gives its frames at `stride` and then its last frame, repeated (the official
    VideoMAE loaders' index clamping); the returned times repeat with it. Raises VideoError("<path>: <reason>")
    for a file that cannot be decoded.
    """
    _check_window(num_frames, stride)
    with VideoReader(src, threads) as reader:
        if fps is not None:
            if not 0 < fps < math.inf:
                raise VideoError(f"{reader.name}: fps must be a finite positive number, got {fps}")
            if start_s is None:
                start_s = max(0.0, (reader.duration_s - num_frames / fps) / 2)
            return frames_at(reader, [start_s + k / fps for k in range(num_frames)], size)
        if start_s is None:
            span_s = window_span(num_frames, stride) / reader.fps
            start_s = max(0.0, (reader.duration_s - span_s) / 2)
        return window_from(reader, start_s, num_frames, stride, size)


def frames_at(reader: VideoReader, times_s: Sequence[float], size: Size) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame on screen at each requested time (last frame with time ≤ t; clamped to first/last frame)."""
    check_times(reader.name, times_s)
    order = sorted(range(len(times_s)), key=lambda i: times_s[i])
    clip = _Clip(reader, size, len(times_s))
    k = 0
    while k < len(order):
        prev: tuple[float, av.VideoFrame] | None = None
        k0 = k  # seek again only after this pass has served a target: every pass makes progress
        for t, frame in reader.frames(max(0.0, times_s[order[k]])):
            while k < len(order) and t > times_s[order[k]] + TOL_S:  # frame `prev` was on screen at the target
                clip.put(order[k], *(prev if prev is not None else (t, frame)))
                k += 1
            prev = (t, frame)
            if k == len(order) or (k > k0 and reader.needs_seek(t, times_s[order[k]])):
                break
        else:  # end of stream: remaining targets get the last frame
            if prev is None:
                break
            for i in order[k:]:
                clip.put(i, *prev)
            k = len(order)
        if prev is None:
            break
    return clip.result(len(times_s) if k == len(order) else 0)


def read_frames_at(src: VideoInput, times_s: Sequence[float], size: Size = None, *, threads: int = 0,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames on screen at the given times (segment / fps sampling) → (uint8 [T, H, W, 3], float64 [T]).

    Decodes forward between nearby times and seeks over long gaps (by the keyframe index when the container
    has one). Times before the first frame give the first frame, times past the end give the last frame.
    """
    if not len(times_s):
        raise VideoError(f"{source_name(src)}: no frame times requested")
    with VideoReader(src, threads) as reader:
        return frames_at(reader, list(times_s), size)


def read_clips(src: VideoInput, starts_s: Sequence[float], num_frames: int = 16, stride: int = 4, size: Size = None,
               *, threads: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Several windows from one open file (multi-clip testing) → (uint8 [V, T, H, W, 3], float64 [V, T])."""
    _check_window(num_frames, stride)
    clips, stamps = [], []
    with VideoReader(src, threads) as reader:
        for start in starts_s:
            video, t = window_from(reader, start, num_frames, stride, size)
            clips.append(video)
            stamps.append(t)
    return torch.stack(clips), torch.stack(stamps)


def probe(src: VideoInput, exact: bool = False) -> VideoInfo:
    """Container facts plus the first frame (rotation, pixel format). `exact` counts packets for num_frames
    and duration instead of trusting the container (demuxes the whole file, decodes nothing more)."""
    name = source_name(src)
    try:
        reader = VideoReader(src, threads=1)
    except VideoError as e:
        if "no video stream" not in str(e):
            raise
        container = _open(src, name)
        with container:
            duration = (container.duration or 0) / av.time_base
            return VideoInfo(name, False, duration, 0.0, 0, 0, 0, 0, 0, 0.0, 0, "", "",
                             container.format.name, bool(container.streams.audio), container.bit_rate or 0, False)
    with reader:
        first = next(reader.frames(0.0), None)
        if first is None:
            raise VideoError(f"{name}: no decodable video frames")
        frame = first[1]
        w, h, quarter = reader.output_geometry(frame, None)
        if quarter % 2:
            w, h = h, w
        s = reader.stream
        sar = _ratio(s.sample_aspect_ratio) or _ratio(s.codec_context.sample_aspect_ratio) or 1.0
        duration, count = reader.duration_s, reader.claimed_frames
        if exact:
            count, duration = _count_packets(reader)
        return VideoInfo(
            path=name, has_video=True, duration_s=duration, fps=reader.fps, num_frames=count,
            width=w, height=h, coded_width=frame.width, coded_height=frame.height, sar=sar,
            rotation=(-quarter * 90) % 360, codec=s.codec_context.name, pix_fmt=frame.format.name,
            container=reader.container.format.name, has_audio=bool(reader.container.streams.audio),
            bit_rate=reader.container.bit_rate or 0, frames_exact=exact,
        )


def _count_packets(reader: VideoReader) -> tuple[int, float]:
    """(packets with data, span of their timestamps + one frame) over the whole stream; no decoding."""
    reader.container.seek(0, backward=True, any_frame=False)
    count, lo, hi = 0, math.inf, -math.inf
    try:
        for packet in reader.container.demux(reader.stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if not packet.size:
                continue
            count += 1
            if ts is not None:
                lo, hi = min(lo, ts), max(hi, ts)
    except av.FFmpegError:
        pass  # truncated: count what is there
    if count == 0:
        return 0, 0.0
    return count, float((hi - lo) * reader.tb) + 1 / reader.fps
