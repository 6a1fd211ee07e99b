"""Per-frame signals of a whole video, from one decode at low resolution: how much the colours change from the
previous frame (for cuts), the histogram itself (to compare frames further apart), a 16×16 luma grid (for motion
and gradual transitions), where the picture changes pixel by pixel and how much of that change is new (for jump
cuts in one framing; and the same on the luma at twice the size while the picture is still, for jumps too small for
64 px), how much of each frame the previous one, moved by optical flow, fails to predict (motion is
predicted, a cut or a jump cut is not), how bright and how flat it is, and — for a shot model — each frame at
48×27."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from tubelet.data.decode import VideoReader
from tubelet.errors import VideoError

BINS = 4  # per channel: a 64-bin colour histogram, coarse enough for 64-pixel frames
SMALL = (48, 27)  # (width, height) of the frames TransNetV2 reads


@dataclass
class Signals:
    """One row per decoded frame (change is 0 for the first)."""

    path: str
    fps: float
    times: np.ndarray  # [F] seconds
    change: np.ndarray  # [F] half the L1 distance of colour histograms to the previous frame, in [0, 1]
    hist: np.ndarray  # [F, 64] float32 colour histograms (sum 1)
    grid: np.ndarray  # [F, 16, 16] float32 block-mean luma in [0, 1]
    brightness: np.ndarray  # [F] mean luma in [0, 1]
    contrast: np.ndarray  # [F] std of luma in [0, 1]
    edges: np.ndarray  # [F, 2] mean |Δ luma| between horizontal and between vertical neighbours (motion blur
    # along one direction flattens one of them)
    changed: np.ndarray  # [F] share of pixels whose luma changed by more than NOISE since the previous frame
    novel: np.ndarray  # [F] share of pixels that changed where neither the previous nor the next change was (see
    # Novelty): things that appear or vanish rather than move
    diff: np.ndarray  # [F] mean |Δ luma| from the previous frame (3×3 blurred), in [0, 1]
    residual: np.ndarray  # [F] the same after moving the previous frame by optical flow (and evening out a global
    # change of brightness): what motion does not explain (see Residual)
    unpredicted: np.ndarray  # [F] share of pixels whose motion-compensated change exceeds NOISE
    across: np.ndarray  # [F] where `unpredicted` jumps: the least unpredicted share of a frame 1–3 later from one 1–2
    # earlier (a flash is predicted again once it is over; a cut is not); 0 elsewhere
    camera: np.ndarray  # [F] where the changed share jumps: the share of the changed pixels that one motion of the
    # whole picture (a similarity transform fitted to the flow) leaves off (a jolt of the camera: little); 1 elsewhere
    accel: np.ndarray  # [F] where `unpredicted` jumps: how far the flow into the frame departs from the mean of the
    # flows into the frames before and after it, as a share of their size (motion changes speed gradually: little; a
    # jump in one framing breaks the flow: much); 0 elsewhere
    steady: np.ndarray  # [F] where `unpredicted` jumps: the most the picture's own motion over Residual.lag frames
    # (~0.15 s) leaves unpredicted on either side of it (a frame from the one lag frames before it, both on one side:
    # a busy picture leaves much, yet a cut leaves more in one frame); inf elsewhere
    fine_changed: np.ndarray  # [F] `changed` on the luma decoded at FINE× the size (small people in a static framing
    # that the 64 px frames average away), looked at only where `changed` ≤ STILL: 1 where not (and on the frame after)
    fine_novel: np.ndarray  # [F] `novel` at that size (0 where not looked at)
    fine_across: np.ndarray  # [F] at that size, the share of pixels changed from two frames before to one after
    grey_small: np.ndarray  # [F, 27, 48] uint8: each frame's grey at 48×27 (1.3 KB a frame: whether a cut is a whip
    # pan's blur switching on or off)
    thumbs: dict[int, np.ndarray] = field(default_factory=dict)  # frame index → uint8 [h, w, 3]
    small: np.ndarray | None = None  # [F, 27, 48, 3] uint8 when asked for (keep_small)

    @property
    def duration_s(self) -> float:
        return float(self.times[-1] + 1 / self.fps) if len(self.times) else 0.0

    def lag_frames(self, lag_s: float) -> int:
        """Frames in `lag_s` seconds (at least one)."""
        return max(1, round(lag_s * self.fps))

    def motion(self, lag_s: float = 0.2) -> np.ndarray:
        """[F] mean |Δ luma grid| against the frame `lag_s` earlier (0 for the first frames): how much moves."""
        lag = self.lag_frames(lag_s)
        out = np.zeros(len(self.times))
        out[lag:] = np.abs(self.grid[lag:] - self.grid[:-lag]).mean((1, 2))
        return out

    def distance(self, i: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
        """Half the L1 distance between the colour histograms of frames i and j, in [0, 1]."""
        return 0.5 * np.abs(self.hist[i] - self.hist[j]).sum(-1)

    def thumb_at(self, t: float) -> np.ndarray:
        """The kept thumbnail nearest to time t."""
        keys = np.fromiter(self.thumbs, int)
        return self.thumbs[int(keys[np.argmin(np.abs(self.times[keys] - t))])]


def _histogram(rgb: np.ndarray) -> np.ndarray:
    q = (rgb.astype(np.uint16) * BINS) >> 8  # [h, w, 3] in 0..BINS-1
    idx = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
    return np.bincount(idx.ravel(), minlength=BINS**3) / idx.size


def _grid(luma: np.ndarray, n: int = 16) -> np.ndarray:
    """[h, w] → [n, n] block means (blocks as even as the size allows)."""
    ys = np.linspace(0, luma.shape[0], n + 1).astype(int)
    xs = np.linspace(0, luma.shape[1], n + 1).astype(int)
    rows = np.add.reduceat(luma, ys[:-1], axis=0) / np.diff(ys)[:, None]
    return (np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :]).astype(np.float32)


NOISE = 12  # luma levels (of 255, after a 3×3 blur): a smaller change is compression noise
REPEATS = 3  # a frame shown up to this many times in a row (a low frame rate raised) is one frame
FINE = 2  # the fine look (Signals.fine_*) decodes the luma at this many times the size …
STILL = 0.05  # … where at most this share of the 64 px pixels changed (elsewhere the picture moves: no still jump)


class Novelty:
    """Streams the pixel-level change of each frame and how much of it is new. Continuous motion changes a frame
    near where the previous and the next frame changed too (the moving edges); a jump cut inside one framing
    changes where nothing was moving (things vanish from where they were and appear where they were not).
    Repeated frames (no change) are skipped, up to REPEATS of them: the neighbours of a changed frame are the
    nearest changed frames; further away than that, nothing was moving on that side. With `across`, also the share
    of pixels changed from two frames before each frame to one after (all its change when nothing else moves)."""

    def __init__(self, across: bool = False) -> None:
        self.changed: list[float] = []
        self.novel: list[float] = []
        self.across: list[float] | None = [] if across else None
        self.recent: list[np.ndarray] = []  # the last 4 blurred frames (with `across`)
        self.prev: np.ndarray | None = None
        self.before: tuple[int, np.ndarray] | None = None  # the last judged changed frame: index, dilated mask
        self.pending: tuple[int, np.ndarray] | None = None  # the last changed frame, waiting for its next: index, mask

    def add(self, luma: np.ndarray) -> None:
        """Take the next frame's luma (uint8 [h, w])."""
        luma = cv2.blur(luma, (3, 3))
        mask = (cv2.absdiff(luma, self.prev) > NOISE) if self.prev is not None else np.zeros(luma.shape, bool)
        fresh, self.prev, i = self.prev is None, luma, len(self.changed)
        self.changed.append(1.0 if fresh and i else float(mask.mean()))  # after a skipped frame: compared with none
        self.novel.append(0.0)
        if self.across is not None:
            self.recent = [*self.recent[-3:], luma]
            self.across.append(0.0)
            if len(self.recent) == 4:  # frame i − 1: from i − 3 to i
                self.across[i - 1] = float((cv2.absdiff(self.recent[0], luma) > NOISE).mean())
        moved = self.changed[-1] * mask.size >= 4
        if self.pending is not None and (moved or i - self.pending[0] > REPEATS):
            j, middle = self.pending
            near = self._grown(mask) if moved and i - j <= REPEATS else None
            if self.before is not None and j - self.before[0] <= REPEATS and near is not None:
                middle = middle & ~(self.before[1] & near)
            self.novel[j] = float(middle.mean())
            self.before, self.pending = (j, self._grown(self.pending[1])), None
        if moved:
            self.pending = (i, mask)

    def skip(self) -> None:
        """A frame not looked at: it counts as all changed (and the next one, which has nothing to be compared with)."""
        self.changed.append(1.0)
        self.novel.append(0.0)
        if self.across is not None:
            self.across.append(0.0)
        self.prev, self.before, self.pending, self.recent = None, None, None, []

    @staticmethod
    def _grown(mask: np.ndarray) -> np.ndarray:
        return cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)


class Residual:
    """Streams what motion does not explain: each frame is predicted by the previous one warped by OpenCV's DIS
    optical flow (coarse to fine, ~0.5 ms a frame at 64 px), with a global brightness offset removed. Motion, fast
    motion and pans are predicted; a cut or a jump cut is not, anywhere. Where the unpredicted share jumps (at least
    `min_jump` and `jump`× the `window` frames before it), the frames on its two sides are compared too
    (Signals.across), each side with itself `lag` frames apart (Signals.steady), from a ring of recent frames, and the
    flow into it with the flows into the frames before and after it (Signals.accel).
    Where the share of changed pixels jumps (at least `min_share` and `spike`× the window before), a single motion
    of the whole picture is fitted to the flow (Signals.camera): a jolt of the camera moves everything together, a
    jump cut in one framing does not."""

    def __init__(self, window: int, lag: int = 4, min_share: float = 0.05, spike: float = 3.0,
                 jump: float = 2.5, min_jump: float = 0.02, min_flow: float = 0.25, max_flow: float = 4.0) -> None:
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.window, self.lag, self.min_share, self.spike, self.jump = window, lag, min_share, spike, jump
        self.min_jump, self.min_flow, self.max_flow = min_jump, min_flow, max_flow
        self.diff: list[float] = []
        self.residual: list[float] = []
        self.unpredicted: list[float] = []
        self.across: list[float] = []
        self.changed: list[float] = []
        self.camera: list[float] = []
        self.steady: list[float] = []
        self.accel: list[float] = []
        self.recent: list[np.ndarray] = []  # the last blurred frames (enough for _across and _steady)
        self.flows: list[np.ndarray] = []  # the flows into the recent frames (for _accel)
        self.pending: list[int] = []  # jumps waiting for the frames after them
        self.coords: np.ndarray | None = None

    def add(self, luma: np.ndarray) -> None:
        """Take the next frame's luma (uint8 [h, w])."""
        luma = cv2.blur(luma, (3, 3))
        self.recent = [*self.recent[-max(5, 2 * self.lag + 1):], luma]
        if len(self.recent) == 1:
            self.coords = np.indices(luma.shape, np.float32)[::-1]  # [2, h, w]: x, y
            # DIS's pyramid stops where the long side is under ~4 patches (8 px) a level; a finest level below that
            # (the preset's 2 on a 4:3 or square 64 px frame) costs 10× (0.8 ms instead of 0.08): stop one higher
            levels = int(np.log2(max(luma.shape) / 32) + 0.5)
            self.flow.setFinestScale(max(0, min(self.flow.getFinestScale(), levels)))
            for row in (self.diff, self.residual, self.unpredicted, self.across, self.changed, self.accel):
                row.append(0.0)
            self.camera.append(1.0)
            self.steady.append(np.inf)
            return
        prev = self.recent[-2]
        flow = self.flow.calc(luma, prev, None)  # where each pixel of luma was in prev
        self.flows = [*self.flows[-(self.lag + 2 * REPEATS):], flow]
        mean, share = self._predict(prev, luma, flow)
        delta = cv2.absdiff(luma, prev)
        changed = float((delta > NOISE).mean())
        self.diff.append(float(delta.mean()) / 255)
        self.residual.append(mean)
        self.unpredicted.append(share)
        self.across.append(0.0)
        self.changed.append(changed)
        self.steady.append(np.inf)
        self.accel.append(0.0)
        i = len(self.unpredicted) - 1
        before = max(self.unpredicted[max(0, i - self.window):i - 1], default=0.0)
        if share >= self.min_jump and share >= self.jump * before:
            self.pending.append(i)
        before = max(self.changed[max(0, i - self.window):i - 1], default=0.0)
        jumped = changed >= self.min_share and changed >= self.spike * before
        # the changed share the transform is judged against, measured like its leftover (brightness offset removed:
        # a jump cut whose exposure also moved was read as a jolt on the bundled plaza, 0.23)
        self.camera.append(self._camera(prev, luma, flow) / max(self._error(luma, prev)[1], 1e-6) if jumped else 1.0)
        for j in [j for j in self.pending if i - j >= max(3, self.lag)]:
            self.across[j], self.steady[j], self.accel[j] = self._across(j, i), self._steady(j, i), self._accel(j, i)
            self.pending.remove(j)

    def finish(self) -> None:
        """Judge the jumps still waiting at the end with the frames there are."""
        last = len(self.unpredicted) - 1
        for j in self.pending:
            self.across[j], self.steady[j] = self._across(j, last), self._steady(j, last)
            self.accel[j] = self._accel(j, last)
        self.pending = []

    def _frame(self, k: int, last: int) -> np.ndarray:
        """Frame k from the ring (`last` is the newest frame's index)."""
        return self.recent[len(self.recent) - 1 - (last - k)]

    def _across(self, j: int, last: int) -> float:
        """The least unpredicted share of frames j+1..j+3 from frames j−2, j−1 (frame indices; `last` is the newest)."""
        pairs = [(a, b) for a in (j - 1, j - 2) for b in (j + 1, j + 2, j + 3)
                 if a >= 0 and b <= last and last - a < len(self.recent) and b - a <= 4]
        return min((self._predict(self._frame(a, last), self._frame(b, last))[1] for a, b in pairs),
                   default=self.unpredicted[j])

    def _steady(self, j: int, last: int) -> float:
        """The most unpredicted share of frame j − 1 from frame j − 1 − lag and of frame j + lag from frame j: what
        the picture's own motion over `lag` frames leaves, on each side of frame j (inf with neither side)."""
        pairs = [(a, a + self.lag) for a in (j - 1 - self.lag, j) if a >= 0 and a + self.lag <= last]
        return max((self._predict(self._frame(a, last), self._frame(b, last))[1] for a, b in pairs), default=np.inf)

    def _accel(self, j: int, last: int) -> float:
        """Mean |flow into frame j − the mean of the flows into the nearest changing frames before and after it| over
        the mean size of those two (a frame repeated up to REPEATS times, a low frame rate raised, is skipped; `last`
        is the newest frame's index); 0 without both, or where they move under `min_flow` pixels on average (a still
        picture: no motion to break from) or over `max_flow` (faster than DIS's 8-pixel patches follow at this size:
        its flow breaks with no jump)."""
        def flow(k: int) -> np.ndarray:
            return self.flows[len(self.flows) - 1 - (last - k)]
        lo = max(1, j - 1 - REPEATS, last - len(self.flows) + 1)
        near = ([k for k in range(j - 1, lo - 1, -1) if self.changed[k] > 0][:1],
                [k for k in range(j + 1, min(last, j + 1 + REPEATS) + 1) if self.changed[k] > 0][:1])
        if not all(near):
            return 0.0
        before, at, after = flow(near[0][0]), flow(j), flow(near[1][0])
        size = 0.5 * float(np.linalg.norm(before, axis=-1).mean() + np.linalg.norm(after, axis=-1).mean())
        if not self.min_flow <= size <= self.max_flow:
            return 0.0
        return float(np.linalg.norm(at - 0.5 * (before + after), axis=-1).mean()) / size

    def _predict(self, prev: np.ndarray, cur: np.ndarray, flow: np.ndarray | None = None) -> tuple[float, float]:
        """(mean |cur − prev moved onto cur| in [0, 1], share of pixels off by more than NOISE), prev moved by the
        flow from cur to prev (computed when not given)."""
        if flow is None:
            flow = self.flow.calc(cur, prev, None)
        moved = cv2.remap(prev, self.coords[0] + flow[..., 0], self.coords[1] + flow[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        return self._error(cur, moved)

    def _camera(self, prev: np.ndarray, cur: np.ndarray, flow: np.ndarray) -> float:
        """The share of pixels still off by more than NOISE once prev is moved by the one similarity transform
        (shift, turn, zoom) that best fits the flow (RANSAC over a 3-pixel grid of it): what a camera jolt leaves."""
        h, w = cur.shape
        at = np.ascontiguousarray(self.coords[:, 1:h - 1:3, 1:w - 1:3].reshape(2, -1).T)  # [P, 2] x, y in cur
        was = at + flow[1:h - 1:3, 1:w - 1:3].reshape(-1, 2)  # where they were in prev
        m, _ = cv2.estimateAffinePartial2D(at, was, ransacReprojThreshold=1.0)
        if m is None:
            return 1.0
        moved = cv2.warpAffine(prev, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        return self._error(cur, moved)[1]

    @staticmethod
    def _error(cur: np.ndarray, moved: np.ndarray) -> tuple[float, float]:
        """(mean |cur − moved| in [0, 1], share off by more than NOISE), a global brightness offset removed."""
        error = cur.astype(np.int16) - moved.astype(np.int16)
        error = np.abs(error - np.median(error))
        return float(error.mean()) / 255, float((error > NOISE).mean())


@contextmanager
def _one_cv2_thread() -> Iterator[None]:
    """OpenCV single-threaded meanwhile: on 64 px frames its threads cost more than they save (~20 % of the CPU)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def frame_signals(path: str | os.PathLike, size: int = 64, thumbs_every_s: float = 0.5, candidate: float = 0.2,
                  keep_small: bool = False, on_frame: Callable[[float], None] | None = None) -> Signals:
    """Decode every frame of `path` at short side `size` and measure it. Thumbnails are kept every
    `thumbs_every_s` and on both sides of every change above `candidate` (possible cuts); `keep_small` keeps
    every frame at 48×27 in colour too (resized from the decoded one, as a shot model reads them)."""
    times, change, hists, grids, bright, contrast, edges, small, grey_small = [], [], [], [], [], [], [], [], []
    novelty, fine = Novelty(), Novelty(across=True)
    thumbs: dict[int, np.ndarray] = {}
    prev_hist = prev_rgb = None
    next_thumb = 0.0
    with _one_cv2_thread(), VideoReader(path) as reader:
        fps = reader.fps
        residual = Residual(window=max(2, round(0.25 * fps)), lag=max(2, round(0.15 * fps)))
        try:
            for t, frame in reader.frames(0.0):
                w, h, quarter = geometry = reader.output_geometry(frame, size)
                rgb = np.empty((w, h, 3) if quarter % 2 else (h, w, 3), np.uint8)  # display orientation
                reader.to_rgb(frame, geometry, rgb)
                luma8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                novelty.add(luma8)
                if novelty.changed[-1] <= STILL:
                    fine.add(reader.to_grey(frame, reader.output_geometry(frame, FINE * size)))
                else:
                    fine.skip()
                residual.add(luma8)
                luma = rgb @ np.array([0.299, 0.587, 0.114]) / 255
                hist = _histogram(rgb)
                change.append(0.5 * float(np.abs(hist - prev_hist).sum()) if prev_hist is not None else 0.0)
                hists.append(hist)
                rgb_small = cv2.resize(rgb, SMALL, interpolation=cv2.INTER_AREA)
                grey_small.append(cv2.cvtColor(rgb_small, cv2.COLOR_RGB2GRAY))
                if keep_small:
                    small.append(rgb_small)
                grids.append(_grid(luma))
                bright.append(float(luma.mean()))
                contrast.append(float(luma.std()))
                edges.append((float(np.abs(np.diff(luma, axis=1)).mean()), float(np.abs(np.diff(luma, axis=0)).mean())))
                i = len(times)
                times.append(t)
                if t >= next_thumb:
                    thumbs[i] = rgb
                    next_thumb = t + thumbs_every_s
                if change[-1] >= candidate:
                    thumbs[i] = rgb
                    if prev_rgb is not None:
                        thumbs[i - 1] = prev_rgb
                prev_hist, prev_rgb = hist, rgb
                if on_frame is not None:
                    on_frame(t)
        except av.FFmpegError as e:
            if not times:
                raise VideoError(f"{reader.name}: cannot decode ({e})") from e
    if not times:
        raise VideoError(f"{os.fspath(path)}: no decodable video frames")
    residual.finish()
    arr = np.asarray
    return Signals(os.fspath(path), fps, arr(times), arr(change), np.stack(hists).astype(np.float32),
                   np.stack(grids), arr(bright), arr(contrast), arr(edges).reshape(-1, 2), arr(novelty.changed),
                   arr(novelty.novel), arr(residual.diff), arr(residual.residual), arr(residual.unpredicted),
                   arr(residual.across), arr(residual.camera), arr(residual.accel), arr(residual.steady),
                   arr(fine.changed), arr(fine.novel), arr(fine.across), np.stack(grey_small), thumbs,
                   np.stack(small) if keep_small else None)
