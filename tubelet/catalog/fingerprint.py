"""Frame fingerprints: a model-free channel beside the embedding, for copy detection that holds with any model.

A video is sampled at `FPS` frames a second. Each frame is turned grey, trimmed to its *content box* (black bars
and the blurred fill of a 9:16 re-frame cut away: rows and columns whose edge energy, over the whole video, is a
small fraction of the picture's), resized to 32×32, normalised to zero mean and unit variance (colour grades and
brightness drop out), and described by the low-frequency block of its 2-D DCT (pHash's idea, kept as real numbers,
without the DC term). A left–right mirror flips the sign of the odd horizontal frequencies, so a query is matched
in both orientations by negating them (`mirrored`), without decoding it twice.

Margins are not always clean: text burnt into black bars carries edges, so the bars read as content, and the
blurred fill of a 9:16 re-frame of a plain, low-texture picture can carry a fifth of the picture's edge energy. A
video whose box changes under a *strict* reading (rows and columns black in every frame are margin, and those
under 2 × MARGIN_ENERGY of the middle's energy) gets a second set of fingerprints of that box (`alt`). Either
reading can be the right one, and re-encoding can tip a near-threshold margin either way (a low-contrast, almost
textureless picture such as asphalt seen from above: the first box of one copy fell where the strict box of
another did), so both sides keep both: queries are matched in both readings, and the catalog stores a video's
strict rows after its first ones, at the same instants (`stored_rows`, `split_readings`). Flat content can also
read as margin where there is none (the white page of a screen recording), and a piece of such a video copied into
other footage has the margins of that footage: so where the first box cuts anything, the catalog also stores the
fingerprints of the whole frame (`whole`). Only such videos get the extra rows. A query may itself be such a
compilation (a 4:3 piece pillarboxed between 16:9 footage): its frames are also read each in a box of their own
(`local`, query side only), where that differs from the whole query's box: of the LOCAL-frame windows holding the
frame, the one that trims most, i.e. a window inside the piece rather than across its edge (a centred 3.5 s window
never lay inside a 3 s insert, so such inserts went unseen).

A crop or zoom to 80 % moves every frequency, and the DCT fingerprint is not tolerant of that (an 80 % off-centre
crop matched its source at 0.62–0.69 against catalog chance levels of 0.66–0.83; the same crop of the source at
the right place matches at 0.99, one twentieth of the frame off at ~0.85). So the catalog also keeps, per frame of
the first reading, a PATCH×PATCH grey thumbnail of its content box (`thumbs`), and `crop_views` describes the
CROP-sized crops of it on a GRID×GRID lattice of positions (CROP·PATCH = THUMB: a crop is described without
resizing). Copy detection compares a query with these only for the few sources its fingerprints saw or resemble most
(copies.py).

Everything above is grey. Per frame of the first reading, the catalog also keeps the joint colour histogram of its
content box (`colours`: BINS levels of each of R, G, B, read from the frame at COLOUR_SIDE pixels on its short side,
stored as 255·√share, so the dot product of two is their Bhattacharyya coefficient): the palette a footage keeps
across its scene cuts, which the grey channels do not see (insights/affinity.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from tubelet.data import read_frames_at

FPS = 2.0  # fingerprints a second
SIZE = 96  # frames are decoded with this short side
THUMB = 32  # side of the grey thumbnail the DCT is taken of
BLOCK = 8  # the BLOCK×BLOCK lowest frequencies are kept (less the DC term)
DIM = BLOCK * BLOCK - 1
MARGIN_ENERGY = 0.2  # rows/columns below this fraction of the median edge energy of the middle are margin
BLACK = 24  # grey level at or under which a pixel is black (bars after re-encoding)
PATCH = 40  # side of the stored thumbnail of the content box
CROP = THUMB / PATCH  # 0.8: the crops of a thumbnail that crop views describe
GRID = 4  # crop positions along each side
LOCAL = 3  # frames (1.5 s) in each window a frame's `local` content box is read from
BINS = 8  # levels of each colour channel in a frame's colour histogram (BINS³ bins)
COLOURS = BINS**3
COLOUR_SIDE = 32  # short side of the frame a colour histogram is counted on


@dataclass
class Fingerprints:
    """Per-frame descriptors of one video: times [F] in seconds and vectors [F, DIM] (float32, unit norm)."""

    times: np.ndarray
    vectors: np.ndarray
    box: tuple[int, int, int, int]  # (top, bottom, left, right) of the content, in decoded-frame pixels
    alt: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float32))  # [F, DIM] of the strict
    # reading's box, where it differs from `box`; empty otherwise
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, PATCH, PATCH), np.uint8))  # [F, PATCH, PATCH]
    # grey thumbnails of `box`
    whole: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float32))  # [F, DIM] of the whole
    # frame, where `box` cuts anything; empty otherwise
    local: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float32))  # [F, DIM] each frame in
    # the box of the LOCAL frames around it, where one differs from `box`; empty otherwise
    colours: np.ndarray = field(default_factory=lambda: np.zeros((0, COLOURS), np.uint8))  # [F, COLOURS] colour
    # histograms of `box` (255·√share)


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.arange(n)[:, None], np.arange(n)[None]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix(THUMB)
_ODD = np.array([(j % 2 == 1) for i in range(BLOCK) for j in range(BLOCK)][1:])  # odd horizontal frequency


def _band(energy: np.ndarray, black: np.ndarray | None = None) -> tuple[int, int]:
    """[lo, hi) of the run of above-margin entries of a 1-D edge-energy profile that holds its middle, made
    symmetric (the smaller margin on both sides); with `black` (the fraction of each entry's pixels black in every
    frame: the strict reading), entries mostly black are margin too, and the energy margin is doubled."""
    n = len(energy)
    ref = np.median(energy[n // 3: max(n // 3 + 1, 2 * n // 3)])
    if ref <= 0:
        return 0, n
    inside = energy >= MARGIN_ENERGY * ref * (1 if black is None else 2)
    if black is not None:
        inside &= black < 0.5
    lo, hi = n // 2, n // 2
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < n and inside[hi]:
        hi += 1
    m = min(lo, n - hi)  # bars and a 9:16 fill are centred: trim only what both sides have (a scene's dark
    return (m, n - m) if n // 10 <= m <= 2 * n // 5 else (0, n)  # corner must not shift the frame), and a real
    # margin (≥ 10 %), not a few dim rows


def content_box(grey: np.ndarray, strict: bool = False) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the content of grey frames [F, H, W]: black bars and blurred fill cut away
    (`strict`: also rows and columns mostly black in every frame, though text on them has edges, and those under
    twice the margin energy)."""
    g = grey.astype(np.float32)
    energy = np.abs(g[:, 1:-1, 1:-1] * 4 - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]).mean(0)
    rows = np.pad(energy.mean(1), 1, mode="edge")  # Laplacian energy: blur removes it, black has none
    cols = np.pad(energy.mean(0), 1, mode="edge")
    black = (grey.max(0) <= BLACK).astype(np.float32) if strict else None  # [H, W]
    top, bottom = _band(rows, None if black is None else black.mean(1))
    left, right = _band(cols, None if black is None else black.mean(0))
    return top, bottom, left, right


def local_boxes(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The content box of each of grey frames [F, H, W] read from the LOCAL frames around it: of the windows
    holding it, the one that trims most (each window's box read once)."""
    if len(grey) <= LOCAL:
        return [content_box(grey)] * len(grey)
    windows = [content_box(grey[a:a + LOCAL]) for a in range(len(grey) - LOCAL + 1)]
    return [min(windows[max(0, i - LOCAL + 1):i + 1], key=lambda b: (b[1] - b[0]) * (b[3] - b[2]))
            for i in range(len(grey))]


def resized(grey: np.ndarray, box: tuple[int, int, int, int], side: int) -> np.ndarray:
    """The content box of grey frames [F, H, W] uint8, each resized to side × side → [F, side, side] uint8."""
    top, bottom, left, right = box
    return np.stack([cv2.resize(np.ascontiguousarray(f[top:bottom, left:right]), (side, side),
                                interpolation=cv2.INTER_AREA) for f in grey]) if len(grey) else \
        np.zeros((0, side, side), np.uint8)


def _dct_block(thumbs: np.ndarray) -> np.ndarray:
    """Grey THUMB×THUMB thumbnails [N, THUMB, THUMB] → unit fingerprints [N, DIM]: normalised to zero mean and unit
    variance, the low-frequency DCT block less the DC term."""
    t = thumbs.astype(np.float32)
    t = (t - t.mean((1, 2), keepdims=True)) / (t.std((1, 2), keepdims=True) + 1.0)
    out = (_DCT[:BLOCK] @ t @ _DCT[:BLOCK].T).reshape(len(t), -1)[:, 1:]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def describe(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Grey frames [F, H, W] uint8 → unit fingerprints [F, DIM] of the content box."""
    return _dct_block(resized(grey, box, THUMB))


def crop_boxes() -> list[tuple[int, int, int, int]]:
    """The THUMB×THUMB crops (top, bottom, left, right) of a PATCH×PATCH thumbnail on a GRID×GRID lattice of
    positions (corners included): what a crop to CROP of the frame at about that place shows."""
    at = np.round(np.linspace(0, PATCH - THUMB, GRID)).astype(int)
    return [(int(y), int(y) + THUMB, int(x), int(x) + THUMB) for y in at for x in at]


def crop_views(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails [F, PATCH, PATCH] → fingerprints [GRID², F, DIM] of their crops on the lattice (`crop_boxes`)."""
    views = [thumbs[:, t:b, x0:x1] for t, b, x0, x1 in crop_boxes()]
    return _dct_block(np.concatenate(views)).reshape(len(views), len(thumbs), DIM) if len(thumbs) else \
        np.zeros((len(views), 0, DIM), np.float32)


def part_views(thumbs: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Thumbnails [F, PATCH, PATCH] → fingerprints [len(boxes), F, DIM] of the parts (top, bottom, left, right) of
    them, each resized to THUMB×THUMB: what a re-edit that keeps only that part shows (a 9:16 column of a landscape
    frame), or the part a re-edit leaves alone (the picture above a caption bar)."""
    if not len(thumbs) or not boxes:
        return np.zeros((len(boxes), len(thumbs), DIM), np.float32)
    parts = [np.stack([cv2.resize(np.ascontiguousarray(f[t:b, x0:x1]), (THUMB, THUMB), interpolation=cv2.INTER_LINEAR)
                       for f in thumbs]) for t, b, x0, x1 in boxes]
    return _dct_block(np.concatenate(parts)).reshape(len(boxes), len(thumbs), DIM)


def colour_histograms(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Colour frames [F, H, W, 3] uint8 → their joint colour histograms [F, COLOURS] uint8 (255·√share) over `box`,
    given as fractions (top, bottom, left, right) of the height and width."""
    h, w = rgb.shape[1:3]
    top, bottom = int(box[0] * h), max(int(box[0] * h) + 1, round(box[1] * h))
    left, right = int(box[2] * w), max(int(box[2] * w) + 1, round(box[3] * w))
    q = rgb[:, top:bottom, left:right].reshape(len(rgb), -1, 3).astype(np.int64) * BINS // 256
    code = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
    counts = np.stack([np.bincount(c, minlength=COLOURS) for c in code]) if len(rgb) else np.zeros((0, COLOURS))
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return np.round(255 * np.sqrt(share)).astype(np.uint8)


def ranked_histograms(hists: np.ndarray) -> np.ndarray:
    """Colour histograms [F, COLOURS] (255·√share, `colour_histograms`) → the joint histograms of the same pixels'
    per-channel ranks [F, COLOURS] (unit √shares): each level of R, G and B is moved to its mid-rank in the frame
    (the share of the frame's pixels below it plus half its own), read on BINS levels with linear weights. A colour
    grade (a gain, brightness and contrast per channel: monotone in each) keeps every pixel's ranks, so it leaves
    this histogram as it was, save for clipping and a change of saturation (which mixes the channels)."""
    share = (np.asarray(hists, np.float64).reshape(len(hists), BINS, BINS, BINS) / 255.0) ** 2
    share /= np.maximum(share.sum((1, 2, 3), keepdims=True), 1e-12)
    out = share
    for axis in (1, 2, 3):
        level = share.sum(tuple(a for a in (1, 2, 3) if a != axis))  # [F, BINS] the channel's own histogram
        at = np.clip((np.cumsum(level, 1) - level / 2) * BINS - 0.5, 0, BINS - 1)  # mid-rank, in bins
        lo = np.minimum(np.floor(at).astype(np.int64), BINS - 2)
        move = np.zeros((len(share), BINS, BINS))  # [F, level, rank bin]: linear weights onto the two nearest
        rows = np.arange(len(share))[:, None], np.arange(BINS)[None]
        move[(*rows, lo)] = 1 - (at - lo)
        move[(*rows, lo + 1)] = at - lo
        out = np.moveaxis(np.moveaxis(out, axis, -1) @ move[:, None], -1, axis)
    out = np.sqrt(np.maximum(out.reshape(len(share), COLOURS), 0.0))
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def mirrored(vectors: np.ndarray) -> np.ndarray:
    """The fingerprints of the left–right mirrored frames."""
    out = vectors.copy()
    out[..., _ODD] *= -1
    return out


def sample_times(start_s: float, end_s: float, fps: float = FPS) -> np.ndarray:
    """Instants 1/(2·fps) after start_s, every 1/fps seconds, up to end_s (at least one)."""
    return start_s + (np.arange(max(1, int(np.floor((end_s - start_s) * fps)))) + 0.5) / fps


def grey(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 [..., 3] → luma uint8 [...]."""
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)


def _short_side_size(h: int, w: int, side: int) -> tuple[int, int]:
    """cv2's (width, height) of an h×w frame scaled to `side` pixels on its short side."""
    scale = side / min(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _one_size(frames: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Frames stacked at one cv2 (width, height), those of another size resized (a resolution change)."""
    return np.stack([f if f.shape[1::-1] == size else cv2.resize(f, size, interpolation=cv2.INTER_AREA)
                     for f in frames])


class FrameSampler:
    """Collects, from frames decoded for another purpose, the one nearest to each fingerprint instant of a span
    (grey, short side SIZE), so fingerprinting costs no second decode."""

    def __init__(self, start_s: float, end_s: float) -> None:
        self.start_s = start_s
        self.times = sample_times(start_s, end_s)
        self.gap = np.full(len(self.times), np.inf)
        self.frames: list[np.ndarray | None] = [None] * len(self.times)
        self.colour: list[np.ndarray | None] = [None] * len(self.times)  # the same frames in colour, small

    def offer(self, t: float, rgb: np.ndarray) -> None:
        """A decoded frame [H, W, 3] uint8 shown at t seconds."""
        i = int(np.clip(np.round((t - self.start_s) * FPS - 0.5), 0, len(self.times) - 1))
        gap = abs(t - self.times[i])
        if gap < self.gap[i]:
            h, w = rgb.shape[:2]
            self.gap[i], self.frames[i] = gap, cv2.resize(grey(rgb), _short_side_size(h, w, SIZE),
                                                          interpolation=cv2.INTER_AREA)
            self.colour[i] = cv2.resize(np.ascontiguousarray(rgb), _short_side_size(h, w, COLOUR_SIDE),
                                        interpolation=cv2.INTER_AREA)

    def fingerprints(self) -> Fingerprints:
        """Fingerprints of the instants that got a frame."""
        have = [i for i, f in enumerate(self.frames) if f is not None]
        if not have:
            return Fingerprints(np.zeros(0), np.zeros((0, DIM), np.float32), (0, 0, 0, 0))
        shapes = {self.frames[i].shape for i in have}
        shape = max(shapes, key=lambda hw: sum(self.frames[i].shape == hw for i in have))  # a resolution change
        g = _one_size([self.frames[i] for i in have], shape[::-1])
        box, cut, whole = content_box(g), content_box(g, strict=True), (0, g.shape[1], 0, g.shape[2])
        none = np.zeros((0, DIM), np.float32)
        near = local_boxes(g)
        h, w = shape
        small = _one_size([self.colour[i] for i in have], _short_side_size(h, w, COLOUR_SIDE))  # as the grey ones
        return Fingerprints(self.times[have], describe(g, box), box, describe(g, cut) if cut != box else none,
                            resized(g, box, PATCH), describe(g, whole) if box != whole else none,
                            np.concatenate([describe(g[i:i + 1], b) for i, b in enumerate(near)])
                            if any(b != box for b in near) else none,
                            colour_histograms(small, (box[0] / h, box[1] / h, box[2] / w, box[3] / w)))


def stored_rows(fp: Fingerprints) -> tuple[np.ndarray, np.ndarray]:
    """(times, vectors) of the rows a catalog stores: the first reading, then the strict one and the whole frame
    (those there), each at the same instants."""
    blocks = [v for v in (fp.vectors, fp.alt, fp.whole) if len(v)]
    return np.tile(fp.times, len(blocks)), np.concatenate(blocks).astype(np.float32)


def split_readings(times: np.ndarray) -> int:
    """The number of a video's stored rows (`stored_rows`) that belong to its first reading: up to where the times
    stop increasing."""
    back = np.flatnonzero(np.diff(times) <= 0)
    return int(back[0]) + 1 if len(back) else len(times)


def fingerprint_file(path: str | os.PathLike, start_s: float, end_s: float) -> Fingerprints:
    """Fingerprints of [start_s, end_s] of a file decoded for them alone (where no embedding pass decodes it)."""
    sampler = FrameSampler(start_s, end_s)
    frames, times = read_frames_at(path, sampler.times.tolist(), size=SIZE)
    for t, frame in zip(sampler.times, frames.numpy(), strict=True):
        sampler.offer(float(t), frame)
    return sampler.fingerprints()
