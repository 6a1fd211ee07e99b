"""Detectors: each turns analysis ticks into one raw score per tick (higher = more unusual), learns normal from
the camera's normal footage, and says what kind of change it reports. A small interface many detectors plug into;
`score.py` aggregates ticks into segments, calibrates and combines them.

Banks are cross-fitted forward in time: the normal footage is cut into `folds` contiguous parts and each part is
scored by a bank built from the parts before it (the first part by the others), so the normal score distribution
used for calibration is that of unseen normal footage recorded later — what scoring meets (a scene drifts: people
cross where nobody did before; banks fitted on both sides of a part hid that drift and under-scaled these
detectors 2–4× against later normal footage).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import uniform_filter
from scipy.signal.windows import tukey

from tubelet.anomaly.calibrate import TAIL_COUNT
from tubelet.anomaly.features import LUMA as LUMA_WEIGHTS
from tubelet.anomaly.features import TickFeatures

MOTION, APPEARANCE, FROZEN, LIGHTING, MOVED = (
    "unusual motion", "unusual appearance", "frozen picture", "lighting/tamper", "camera moved")
KINDS = (MOTION, APPEARANCE, FROZEN, LIGHTING, MOVED)
PAD = 1e3  # bank padding: farther than any real state


@dataclass
class Ticks:
    """Features of many ticks, stacked; `fold` is the cross-fitting part each tick belongs to."""

    appearance: np.ndarray  # [N, C, 4]
    motion: np.ndarray  # [N, C, 3]
    brightness: np.ndarray  # [N]
    grain: np.ndarray  # [N] TickFeatures.grain
    change: np.ndarray  # [N]
    luma: np.ndarray  # [n, h, w] the frames of a sample of ticks (for the reference picture)
    luma_at: np.ndarray  # [n] which ticks those are
    fold: np.ndarray  # [N] int
    residual: np.ndarray | None = None  # [N, C]
    recent: np.ndarray | None = None  # [N, C] each cell's mean change over the last ticks (TickFeatures.recent)
    jump: np.ndarray | None = None  # [N, C] the tick before's residual over its neighbours' (TickFeatures.jump)


def top_mean(values: np.ndarray, top: int) -> np.ndarray:
    """The mean of the `top` largest values along the last axis (a few cells that stand out, not the whole frame)."""
    return np.sort(values, axis=-1)[..., -top:].mean(-1)


def cell_grid(frame: tuple[int, ...], cells: int) -> tuple[int, int]:
    """(rows, columns) of the `cells` square cells tiling an analysis frame of (h, w) pixels."""
    h, w = frame
    cell = round(float(np.sqrt(h * w / cells)))
    return h // cell, w // cell


def forward_folds(fold: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(held, fitted) tick masks of each cross-fitting part: the part, and the parts before it (the first part:
    all the others)."""
    for f in np.unique(fold):
        held = fold == f
        yield held, (fold < f if f > fold.min() else ~held)


class Detector(ABC):
    """The interface: `fit` learns normal and returns cross-fitted raw scores of the normal ticks; `tick` scores
    one new tick; `reduce` turns a segment's tick scores into its score; `state` is what is saved."""

    name = ""
    kind = ""
    floor = 1e-6  # smallest calibration scale (median → 99th percentile) in raw units
    gate = 0.0  # calibrated score below which the detector adds no evidence (guards: their own normal p99)
    tail_count = 0  # > 0: on short footage the calibration's p99 is extrapolated (`calibrate.tail`)
    short = False  # on footage too short to have a tail, its p99 is extrapolated (`calibrate.few`), else read off
    since = 0  # the model format version that added it (a model fitted before scores without it)
    lag = 0  # ticks: its score at a tick is that of the tick this many before
    lasting = True  # its evidence lifts the neighbouring segments' (Calibration.steady); a moment's does not

    @abstractmethod
    def fit(self, ticks: Ticks) -> np.ndarray: ...

    @abstractmethod
    def tick(self, f: TickFeatures) -> float: ...

    def reduce(self, scores: np.ndarray) -> float:
        return float(np.mean(scores))

    def alarm(self, scores: np.ndarray) -> bool:
        """Whether a segment's tick scores pass a definite test that makes it an event whatever its score (none
        by default)."""
        return False

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to save (none for detectors that learn nothing beyond their calibration)."""
        return {}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore what `state` returned (detectors that save nothing have nothing to restore)."""
        return None


class CellKNN(Detector):
    """Per cell, the distance of its state to the nearest normal state of the same cell (distinct normal states,
    scaled per feature) above that cell's usual (median) distance, in one unit for the whole scene (how far the
    median cell's normal states lie from each other); a tick's score is the mean of its `top` most unusual cells —
    small objects count. (A unit per cell, wider where people walk, hid an object crossing the same place: mean
    AUROC over seeds 0/1 × 3 scenes 0.889 → 0.900, the parking lot 0.808/0.748 → 0.826/0.797, the plaza's seed 0
    0.949 → 0.934.) Its p99 is extrapolated on short footage like the direction detector's (`calibrate.tail`):
    banks of a few seconds are the least sure of what normal looks like, and the extrapolated scale grows as the
    footage shrinks (15 s of parking lot: 2.5× the p99 read off, so held-out normal footage reaches 0.4–0.6 of it;
    the plaza's 40 s: 1.3×; 70 s of CCTV: unchanged), so the cell banks count less there against the detectors
    that need no bank. (Seeds 0–7 × three scenes: mean AUROC 0.952 → 0.957, the parking lot 0.875–0.947 →
    0.893–0.962, recall 0.924 → 0.944, no scene-seed lower by more than 0.003.)"""

    tail_count = TAIL_COUNT

    def __init__(self, name: str, kind: str, field: str, cap: int = 1024, quantum: float = 0.25, top: int = 3,
                 seed: int = 0, spread_floor: float = 0.5) -> None:
        self.name, self.kind, self.field = name, kind, field
        self.cap, self.quantum, self.top, self.seed, self.spread_floor = cap, quantum, top, seed, spread_floor
        self.scale = np.ones(1, np.float32)
        self.bank = np.zeros((0, 0, 0), np.float32)  # [C, M, d], padded with PAD
        self.center = np.zeros(0, np.float32)  # [C] median normal distance (cross-fitted)
        self.spread = np.ones(1, np.float32)  # [1] the median cell's 95th percentile above its median (≥ spread_floor)

    def _bank(self, z: np.ndarray) -> np.ndarray:
        """z [N, C, d] scaled → [C, M, d]: per cell its distinct states (on a `quantum` grid), at most `cap`."""
        rng = np.random.default_rng(self.seed)
        cells = []
        for x in z.swapaxes(0, 1):
            _, first = np.unique(np.round(x / self.quantum), axis=0, return_index=True)
            if len(first) > self.cap:
                first = rng.choice(first, self.cap, replace=False)
            cells.append(x[np.sort(first)])
        m = max(len(x) for x in cells)
        bank = np.full((len(cells), m, z.shape[2]), PAD, np.float32)
        for c, x in enumerate(cells):
            bank[c, :len(x)] = x
        return bank

    def _distances(self, z: np.ndarray, bank: np.ndarray) -> np.ndarray:
        """z [n, C, d] → [n, C] distance to the nearest bank state of the same cell."""
        zz = (z * z).sum(-1)[:, :, None]  # [n, C, 1]
        bb = (bank * bank).sum(-1)[None]  # [1, C, M]
        d2 = zz + bb - 2 * np.einsum("ncd,cmd->ncm", z, bank, optimize=True)
        return np.sqrt(np.maximum(d2.min(-1), 0))

    def _cell_distances(self, z: np.ndarray, bank: np.ndarray) -> np.ndarray:
        rows = max(1, 2 ** 22 // (z.shape[1] * bank.shape[1]))  # ~16 MB of distances at a time
        return np.concatenate([self._distances(z[lo:lo + rows], bank) for lo in range(0, len(z), rows)])

    def _top(self, d: np.ndarray) -> np.ndarray:
        """[n, C] distances → [n] mean of the `top` largest per-cell z-scores."""
        return top_mean((d - self.center) / self.spread, self.top)

    def fit(self, ticks: Ticks) -> np.ndarray:
        x = getattr(ticks, self.field).astype(np.float32)
        self.scale = x.reshape(-1, x.shape[-1]).std(0) + 1e-3
        z = x / self.scale
        d = np.empty(z.shape[:2], np.float32)
        for held, past in forward_folds(ticks.fold):
            d[held] = self._cell_distances(z[held], self._bank(z[past]) if past.any() else self._bank(z))
        self.center = np.median(d, 0)
        excess = np.median(np.percentile(d, 95, axis=0) - self.center)  # one unit for the whole scene
        self.spread = np.full(1, max(float(excess), self.spread_floor), np.float32)
        self.bank = self._bank(z)
        return self._top(d)

    def tick(self, f: TickFeatures) -> float:
        return float(self._top(self._distances((getattr(f, self.field) / self.scale)[None], self.bank))[0])

    def state(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale, "bank": self.bank, "center": self.center, "spread": self.spread}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.scale, self.bank, self.center, self.spread = (state[k] for k in ("scale", "bank", "center", "spread"))


class Frozen(Detector):
    """A picture that stops changing: −log10 of the change of its liveliest cell (a live camera always has some
    noise or motion somewhere; a frozen picture has none anywhere). Its score ranks segments. Its alarm is a
    definite test: all but one of a segment's ticks twice as still as those of the stillest segment-long stretch
    of the normal footage (all but one of its ticks) and stiller than half a grey level (mean |Δ luma| of the
    liveliest 8×8 cell: re-encoding a repeated frame refines it by less). The calibrated score scales this guard
    by a still room's own spread (the indoor CCTV: a frozen picture scores 1.6× its normal p99, under the
    threshold), while the alarm passes a frozen picture within 0.7 s of its start on every benchmark scene and no
    normal stretch (seeds 0–3). All but one: the encoder refines a repeated frame in pulses for its first second."""

    name, kind, floor, gate = "frozen", FROZEN, 0.3, 1.0
    encoder_noise = 0.5 / 255  # mean |Δ luma| of a cell, luma in [0, 1]
    margin = 2.0  # how many times stiller than the stillest normal stretch (a camera slower than the analysis rate
    # repeats frames in its normal footage too: at 2.3 frames/s most half seconds hold one change, and new footage
    # was as still by chance — a margin of 2 keeps the alarm off there and off its repeats)

    def __init__(self, window: int = 5) -> None:
        self.window = window  # ticks in a segment
        self.bar = np.zeros(1, np.float32)  # [1] the alarm's bar in raw units (stiller = higher)

    @staticmethod
    def _stillness(raw: np.ndarray) -> np.ndarray:
        """[..., k] tick raws → [...] raw of all but the liveliest tick (the second smallest)."""
        return np.sort(raw, axis=-1)[..., min(1, raw.shape[-1] - 1)]

    @staticmethod
    def _raw(motion: np.ndarray) -> np.ndarray:
        return -np.log10(motion[..., 0].max(-1) ** 2 + 1e-4)  # motion[..., 0] is sqrt(mean |Δ luma|) per cell

    def fit(self, ticks: Ticks) -> np.ndarray:
        raw = self._raw(ticks.motion)
        windows = np.lib.stride_tricks.sliding_window_view(raw, min(self.window, len(raw)))
        stillest = float(self._stillness(windows).max()) + np.log10(self.margin)
        self.bar = np.array([max(stillest, -np.log10(self.encoder_noise + 1e-4))], np.float32)
        return raw

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(f.motion))

    def reduce(self, scores: np.ndarray) -> float:
        """Frozen for two ticks running: the largest of the smaller of each adjacent pair (a segment that only
        starts or ends frozen counts; one duplicated frame does not)."""
        s = np.asarray(scores)
        return float(np.minimum(s[1:], s[:-1]).max()) if len(s) > 1 else float(s[0])

    def alarm(self, scores: np.ndarray) -> bool:
        """Frozen for the segment (at least `window` − 1 ticks: a video's first tick has no change to measure)."""
        s = np.asarray(scores)
        return len(s) >= self.window - 1 and bool(self._stillness(s) > self.bar[0])

    def state(self) -> dict[str, np.ndarray]:
        return {"bar": self.bar}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.bar = state["bar"]


class Speed(Detector):
    """Things move faster than anything in the normal footage: the mean speed of the `top` fastest cells (their
    mean optical flow, pixels per tick), wherever they are; a segment's score is its median tick (a jump in time
    or a knocked camera moves everything for one tick only)."""

    name, kind, floor = "speed", MOTION, 0.2

    def __init__(self, top: int = 3) -> None:
        self.top = top

    def _raw(self, motion: np.ndarray) -> np.ndarray:
        speed = np.hypot(motion[..., 1], motion[..., 2])
        return top_mean(speed, self.top)

    def fit(self, ticks: Ticks) -> np.ndarray:
        return self._raw(ticks.motion)

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(f.motion))

    def reduce(self, scores: np.ndarray) -> float:
        return float(np.median(scores))


class Direction(Detector):
    """Things move against the way they usually go here: per cell, how often normal footage moves each of 8
    directions (cells that move faster than `moving` pixels a tick; counts pooled over the 3×3 neighbouring cells —
    a lane is wider than a cell — and one pseudo-count spread evenly); a tick's score is the surprise −log(8·p) of
    its moving cells' directions, averaged with their speeds as weights and `support` more of motion the usual way
    (0 for a uniform cell, positive against the usual way; a cell or two of flow noise in an empty room says
    little). The nearest-state banks miss this where both ways occur at all: a lane used one way 9 times
    in 10 still holds the other way. (Seeds 0–2, mean AUROC over the three scenes 0.906 → 0.915, the indoor
    CCTV's reverse kind 0.54–0.95 → 0.63–0.99; the plaza's two-way crowd gains nothing.)"""

    name, kind, floor = "direction", MOTION, 0.05
    tail_count = TAIL_COUNT  # its normal tail is a few one-off moves (a car pulling out, 1.5 s): see `calibrate.tail`
    bins = 8
    moving = 1.0  # pixels per tick
    prior = 1.0  # pseudo-count per cell, spread over the bins
    support = 8.0  # pixels per tick of motion counted as going the usual way

    def __init__(self) -> None:
        self.surprise = np.zeros((0, self.bins), np.float32)  # [C, bins] −log(bins · p)

    def _directions(self, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[..., C, 3] → direction bin and weight (speed where moving, else 0), both [..., C]."""
        u, v = motion[..., 1], motion[..., 2]
        speed = np.hypot(u, v)
        b = np.floor((np.arctan2(v, u) + np.pi) / (2 * np.pi) * self.bins).astype(int) % self.bins
        return b, np.where(speed > self.moving, speed, 0.0)

    def _table(self, motion: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
        b, weight = self._directions(motion)
        counts = np.stack([((b == k) & (weight > 0)).sum(0) for k in range(self.bins)], -1).astype(np.float64)
        counts = 9 * uniform_filter(counts.reshape(*grid, self.bins), size=(3, 3, 1), mode="nearest")
        p = (counts.reshape(-1, self.bins) + self.prior / self.bins) / (counts.sum(-1).reshape(-1, 1) + self.prior)
        return -np.log(self.bins * p).astype(np.float32)

    def _raw(self, motion: np.ndarray, surprise: np.ndarray) -> np.ndarray:
        b, weight = self._directions(motion)
        s = np.take_along_axis(surprise, b.reshape(-1, b.shape[-1]).T, axis=1).T.reshape(b.shape)
        return (s * weight).sum(-1) / (weight.sum(-1) + self.support)

    def fit(self, ticks: Ticks) -> np.ndarray:
        grid = cell_grid(ticks.luma.shape[1:], ticks.motion.shape[1])
        out = np.empty(len(ticks.fold))
        for held, past in forward_folds(ticks.fold):
            out[held] = self._raw(ticks.motion[held], self._table(ticks.motion[past], grid))
        self.surprise = self._table(ticks.motion, grid)
        return out

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(f.motion[None], self.surprise)[0])

    def state(self) -> dict[str, np.ndarray]:
        return {"surprise": self.surprise}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.surprise = state["surprise"]


class Residual(Detector):
    """Change that motion does not explain: per cell, the mean |Δ luma| left once the previous frame is moved along
    the optical flow; a tick's score is the mean of its `top` largest cells, a segment's its largest tick. Footage
    that jumps in time (a spliced or replayed stretch: one played backwards starts and ends with such a jump) or
    moves too fast for the flow to follow leaves change no flow explains; ordinary motion and sensor noise leave
    little. It adds evidence only past its own normal p99 (elsewhere it would add noise to every segment), and
    that p99 is extrapolated on short footage. (Seeds 0–6 × three scenes: mean AUROC 0.948 → 0.956, recall 0.913
    → 0.937, reverse kind 0.857 → 0.892, no scene-seed lower by more than 0.001.)"""

    name, kind, floor, gate = "residual", MOTION, 0.01, 1.0
    tail_count, since = TAIL_COUNT, 6
    field = "residual"  # the per-cell feature read

    def __init__(self, top: int = 20) -> None:
        self.top = top

    def _raw(self, cells: np.ndarray) -> np.ndarray:
        return top_mean(cells, self.top)

    def fit(self, ticks: Ticks) -> np.ndarray:
        return self._raw(getattr(ticks, self.field))

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(getattr(f, self.field)))

    def reduce(self, scores: np.ndarray) -> float:
        return float(np.max(scores))


class Jump(Residual):
    """A jump in time on its own: per cell, how far a tick's residual stands over both its neighbours' (`jump`); as
    the residual detector, the top cells and a segment's largest tick, only past its own normal p99. A splice
    leaves its unexplained change on one tick, while the residual's normal tail is motion the flow follows badly on
    several ticks running (a car turning, an exposure swing): on the parking lot's reversed car (seeds 2, 3) the
    splices stood at 1.7–2.3× the residual's normal p99 against 1.7× for its normal test footage, and at 2.6–3.9×
    this detector's against 1.5×. Its score at a tick is the tick before's (`lag`): segments wait a tick for it. A
    jump is a moment: its evidence does not lift the neighbouring segments (the bracket lifts what lies between two
    jumps); lent to them, a reversed stretch's closing splice on the segment after it lifted the next, normal one
    past the CCTV's frozen and crossing events (seed 2: recall 1.00 -> 0.67)."""

    name, since, field, lag, lasting = "jump", 8, "jump", 1, False

    def fit(self, ticks: Ticks) -> np.ndarray:
        """Each tick's own score (the feature reports the tick before; the last tick's is not known: 0, about
        the median)."""
        return np.r_[super().fit(ticks)[1:], 0.0]

    def reduce(self, scores: np.ndarray) -> float:
        """The largest tick (0 for a video's last segment when its one tick's score is not known yet)."""
        return float(np.max(scores)) if len(scores) else 0.0


class Stall(Detector):
    """Motion that stops where it never stops: per cell, its mean change over the last second (`recent`) against
    the least the normal footage ever showed over as long; a tick's score is the mean of the `top` largest log
    ratios of that least to the present. Foliage in the wind, water, a running machine or conveyor always move
    somewhere in their cells: a stretch where they go still (a stalled machine, a region of the picture frozen, a
    frozen picture from a camera slower than the analysis rate, which the frozen guard's own bar must let pass)
    falls far under it. Where the normal footage holds still moments everywhere (a plaza, a parking lot, a room),
    the least is the sensor's noise and nothing falls under it: the detector stays silent. The least is
    cross-fitted like the banks (each part of the normal footage against the parts before it), and it adds
    evidence only past its own normal p99, in units of at least `floor`: the 20 cells 1.5× (e^0.4) under that
    least. (The encoder's quality ramp at the start of a still parking lot's video dips its noise by e^0.25, and at a
    floor of 0.1 the parking lot lost 0.002–0.010 AUROC on every seen seed; at 0.4 none of the three scenes
    moved by more than 0.001.) A segment takes its largest tick."""

    name, kind, floor, gate = "stall", MOTION, 0.4, 1.0
    since = 7
    noise = 0.03  # added to both sides of the ratio: sqrt(mean |Δ luma|) of a cell, a quarter of a grey level

    def __init__(self, top: int = 20) -> None:
        self.top = top
        self.least = np.zeros(0, np.float32)  # [C] the normal footage's least recent change per cell

    def _raw(self, recent: np.ndarray, least: np.ndarray) -> np.ndarray:
        deficit = np.maximum(np.log(least + self.noise) - np.log(recent + self.noise), 0)
        return top_mean(deficit, self.top)

    @staticmethod
    def _least(recent: np.ndarray) -> np.ndarray:
        """[n, C] → [C] the least recent change per cell; 0 (nothing falls under it) where no tick has a full
        window yet (a part of 4 s of footage can lie wholly in its first second)."""
        least = recent.min(0) if len(recent) else np.full(recent.shape[1:], np.inf)
        return np.where(np.isfinite(least), least, 0).astype(np.float32)

    def fit(self, ticks: Ticks) -> np.ndarray:
        recent = ticks.recent
        out = np.zeros(len(recent))
        for held, past in forward_folds(ticks.fold):
            out[held] = self._raw(recent[held], self._least(recent[past]))
        self.least = self._least(recent)
        return out

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(f.recent, self.least))

    def reduce(self, scores: np.ndarray) -> float:
        return float(np.max(scores))

    def state(self) -> dict[str, np.ndarray]:
        return {"least": self.least}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.least = state["least"]


class Lighting(Detector):
    """The light changed: the median over cells of the log ratio of each cell's brightness to its normal
    brightness (objects move a few cells, light moves them all) where the whole picture's mean brightness moved the
    same way, by the smaller of the two (light acts on every pixel alike; a camera's exposure swing after a bright
    car enters dims the background more than the whole picture, car included: parking lot's normal swings no
    longer hide its lights dropping, seeds 0–2 lighting-kind AUROC 0.81 / 0.76 / 0.97 → 0.84 / 0.84 / 0.98); and
    the same median ratio for texture (a covered or blinded lens flattens every cell)."""

    name, kind, floor, gate = "lighting", LIGHTING, 0.05, 1.0

    def __init__(self) -> None:
        self.reference = np.zeros((0, 2), np.float32)  # [C, 2] normal median of cell luma and cell texture
        self.whole = np.zeros(1, np.float32)  # [1] normal median of the picture's log mean brightness

    @staticmethod
    def _cells(appearance: np.ndarray) -> np.ndarray:
        """[..., C, 4] → [..., C, 2] log(luma), log(texture)."""
        luma = appearance[..., :3] @ LUMA_WEIGHTS
        return np.log(np.stack([luma + 0.02, appearance[..., 3] + 0.01], -1))

    def _raw(self, appearance: np.ndarray, brightness: np.ndarray | float) -> np.ndarray:
        gain = np.median(self._cells(appearance) - self.reference, axis=-2)  # [..., 2]
        whole = np.log(np.asarray(brightness) + 0.02) - self.whole[0]
        luma = np.where(np.sign(gain[..., 0]) == np.sign(whole), np.minimum(np.abs(gain[..., 0]), np.abs(whole)), 0)
        return np.maximum(luma, np.abs(gain[..., 1]))

    def _prepare(self) -> None:
        """What scoring derives from the saved state, once (nothing here)."""

    def fit(self, ticks: Ticks) -> np.ndarray:
        self.reference = np.median(self._cells(ticks.appearance), 0).astype(np.float32)
        self.whole = np.array([np.median(np.log(ticks.brightness + 0.02))], np.float32)
        self._prepare()
        return self._raw(ticks.appearance, ticks.brightness)

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(f.appearance, f.brightness))

    def state(self) -> dict[str, np.ndarray]:
        return {"reference": self.reference, "whole": self.whole}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.reference, self.whole = state["reference"], state["whole"]
        self._prepare()


class Cover(Lighting):
    """Part of the picture changed brightness and the rest did not: the spread (interquartile range) over cells of
    the log ratio of each cell's brightness to its normal. Light and exposure act on every cell alike and moving
    things change a few cells; a hand, a cloth or paint over part of the lens, or part of the lights going out,
    splits the picture in two. (`benchmarks/anomaly.py --events blur cover`, seeds 0–3: a dark cover over 40–70 % of
    the parking lot scored 0.2–1.5× the lighting guard's normal p99, which reads the median cell among the lot's
    exposure swings, and was never reported at the default threshold; the spread reads 10–20× its own on the three
    scenes, normal footage ≤ 0.72× and the default events ≤ 0.6× but a knocked camera's 1.2–2.7×, which the
    camera-moved guard names first. Seeds 0–5, 12, 13, 17 of the default events: the same events at 1.5.)"""

    name, kind, floor, gate = "cover", LIGHTING, 0.1, 1.0
    short = True  # a head turning in 6 s of normal footage splits the picture more than those 6 s showed
    since = 9
    quartiles = (0.25, 0.75)  # a cover of a quarter to three quarters of the picture splits them

    def _raw(self, appearance: np.ndarray, brightness: np.ndarray | float) -> np.ndarray:
        gain = self._cells(appearance)[..., 0] - self.reference[:, 0]  # [..., C] log luma ratios
        lo, hi = np.quantile(gain, self.quartiles, axis=-1)
        return hi - lo


class Defocus(Lighting):
    """The picture lost its detail and kept its light: how far the upper quartile over cells of their texture
    against their brightness (log texture − log luma) fell under the normal picture's. An exposure swing or the
    lights dropping move both alike; a defocused, fogged or sprayed lens softens every edge wherever it is, while a
    knocked camera or a person moving carries the edges elsewhere in the picture (the quartile is of the picture,
    not of its places: read at the normal picture's most textured places, knocks were named lighting/tamper and
    talking heads lost 0.01–0.08 AUROC). The lighting guard's texture alone moves with the exposure: a defocused
    parking lot (`--events blur`, a Gaussian of 1–2 % of the width) read 1.3–1.7× the normal test footage's highest
    there; this guard reads it at 3.8–4.9× its normal p99. It adds evidence only past 1.5× that p99: the indoor
    CCTV's later normal footage (people near the camera) reaches 1.04×, and at a gate of 1 it cost the CCTV
    0.002–0.010 AUROC on four of five seeds."""

    name, kind, floor, gate = "defocus", LIGHTING, 0.05, 1.5
    short = True  # 5 s of yoga lawn set a scale its own later 5 s passed 2–2.7× (a false event on normal footage)
    since = 10
    quantile = 0.75  # the picture's detailed cells (flat ones carry the sensor's noise, which an exposure swing
    # lifts against their brightness)

    def _detail(self, cells: np.ndarray) -> np.ndarray:
        """[..., C, 2] log luma, log texture → [...] the upper quartile of texture against brightness."""
        return np.quantile(cells[..., 1] - cells[..., 0], self.quantile, axis=-1)

    def _prepare(self) -> None:
        self._normal = self._detail(self.reference)

    def _raw(self, appearance: np.ndarray, brightness: np.ndarray | float) -> np.ndarray:
        return self._normal - self._detail(self._cells(appearance))


class Grain(Detector):
    """Noise over the picture: the tick's grain (`TickFeatures.grain`: the part of its change each pixel makes on
    its own, in the picture's still places). Interference, a failing sensor or the gain turned up lays it over every
    pixel; light, exposure and motion move neighbouring pixels alike and leave it where it was. The cells' texture
    does not see it: at the analysis size a noise of 12–25 grey levels is averaged down to a few. It adds evidence
    only past 1.5× its normal p99: the three benchmark scenes' later normal footage reaches 1.0–1.4×, and noise
    read 3–17×."""

    name, kind, floor, gate = "grain", LIGHTING, 0.0005, 1.5
    short = True
    since = 11

    def fit(self, ticks: Ticks) -> np.ndarray:
        return np.asarray(ticks.grain, np.float64)

    def tick(self, f: TickFeatures) -> float:
        return f.grain

    def reduce(self, scores: np.ndarray) -> float:
        """The segment's median tick: noise lasts, while a knock, a cut or a flash changes every pixel on one tick
        (read as the mean, a knocked plaza read 5× this guard's p99 and was named lighting/tamper)."""
        return float(np.median(scores))


class Tint(Detector):
    """The picture's colour changed: the median over cells of how far each cell's chromaticity (colour over
    brightness) moved from the nearest of the normal picture's at it and its 8 neighbours. A camera switched to black
    and white, a colour cast or a filter over the lens move every cell; a coloured object moves a few, exposure none,
    and a knocked camera carries each colour a cell or so away (read against each cell's own, knocks were named
    lighting/tamper). Cells at under half their normal brightness are left to the lighting and cover guards: a dark
    cover's noise has no colour, and read here it doubled a cover's evidence. It adds evidence only past three times
    its normal p99: the parking lot's white balance follows the cars (its normal test footage 1.9×), and a knocked
    plaza, its colours a cell and a half away, read 2.5×."""

    name, kind, floor, gate = "tint", LIGHTING, 0.002, 3.0
    short = True
    since = 11
    dark = 0.5  # cells darker than this share of their normal brightness are not read

    def __init__(self) -> None:
        self.colour = np.zeros((0, 0, 4), np.float32)  # [gh, gw, 4] the normal picture's chromaticity and luma per cell

    @staticmethod
    def _colour(appearance: np.ndarray) -> np.ndarray:
        """[..., C, 4] → [..., C, 4] chromaticity (3) and luma."""
        rgb = appearance[..., :3] + 0.02
        return np.concatenate([rgb / rgb.sum(-1, keepdims=True), appearance[..., :3] @ LUMA_WEIGHTS[:, None]], -1)

    def _prepare(self) -> None:
        gh, gw, _ = self.colour.shape
        padded = np.pad(self.colour[..., :3], ((1, 1), (1, 1), (0, 0)), mode="edge")
        self._near = np.stack([padded[dy:dy + gh, dx:dx + gw].reshape(-1, 3) for dy in range(3) for dx in range(3)])
        self._luma = self.colour[..., 3].reshape(-1)

    def _raw(self, appearance: np.ndarray) -> np.ndarray:
        cur = self._colour(appearance)
        moved = np.linalg.norm(cur[..., None, :, :3] - self._near, axis=-1).min(-2)  # [..., C]
        lit = cur[..., 3] >= self.dark * self._luma
        read = np.sort(np.where(lit, moved, np.inf), axis=-1)
        count = lit.sum(-1)
        middle = np.take_along_axis(read, np.maximum(count - 1, 0)[..., None] // 2, -1)[..., 0]  # the lower median
        return np.where(count > 0, middle, 0.0)

    def fit(self, ticks: Ticks) -> np.ndarray:
        colour = np.median(self._colour(ticks.appearance), 0)
        self.colour = colour.reshape(*cell_grid(ticks.luma.shape[1:], len(colour)), 4).astype(np.float32)
        self._prepare()
        return self._raw(ticks.appearance)

    def tick(self, f: TickFeatures) -> float:
        return float(self._raw(f.appearance))

    def state(self) -> dict[str, np.ndarray]:
        return {"colour": self.colour}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.colour = state["colour"]
        self._prepare()


class Shift(Detector):
    """The camera moved: how far (in % of the picture's short side) the picture has to be shifted to match the
    normal reference picture (the median of normal frames). Both are compared as brightness-free gradient images
    (complex gx + i·gy over their median magnitude: an exposure swing or a bright car changes nothing; the few
    edges of a textureless scene — lines on asphalt — carry the match); the shift comes from phase correlation and
    counts only when it matches the reference's most textured pixels at least 10 % better than no shift. A knocked
    camera stays moved, so new footage is compared with the normal reference, not with its own past; a camera
    that sways by a pixel or two in its normal footage sets its own scale (at least `floor`). A segment takes the
    shift most of its ticks agree on (`reduce`)."""

    name, kind, floor, gate = "shift", MOVED, 2.0, 1.0
    taper = 0.2  # share of the window in its cosine taper, half at each end (a Hann window would hide edges near
    # the border)
    textured = 10.0  # % of the reference's pixels, its strongest gradients, that verify a shift
    better = float(np.log(1.1))  # how much better the shifted match must be
    slack = 1  # pixels: each match is the better one within a pixel of its move (the correlation's peak can be a
    # pixel off, and a sharp edge one pixel off mismatched as much as a knock: the knocked bottles table failed)
    agree = 1.5  # % of the picture: ticks reading shifts this close read the same knock (`reduce`)
    ecc = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4)  # the roll's fit: iterations, tolerance
    border = 0.25  # share of the short side: the band along the border a roll is also verified on
    least = 20  # textured pixels that band needs
    turn = 10.0  # degrees: the largest roll read as a knock
    quiet = 0.9  # quantile of the normal footage's mismatch in place under which no roll is fitted

    def __init__(self, window: int = 5) -> None:
        self.window = window  # ticks in a segment
        self.reference = np.zeros((0, 0), np.float32)  # [h, w] median normal luma
        self.calm = np.zeros(1, np.float32)  # [1] the normal footage's p90 mismatch in place (0: always fit a roll)

    @staticmethod
    def _gradient(luma: np.ndarray) -> np.ndarray:
        g = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3) + 1j * cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
        return g / (np.median(np.abs(g)) + 1e-6)

    def _prepare(self) -> None:
        h, w = self.reference.shape
        self._ref = self._gradient(self.reference)
        self._window = np.outer(tukey(h, self.taper), tukey(w, self.taper))
        self._conj = np.conj(np.fft.fft2(self._ref * self._window))
        mag = np.abs(self._ref)
        self._mask = mag >= np.percentile(mag, 100 - self.textured)
        self._small = cv2.pyrDown(self.reference)
        y, x = np.mgrid[:h, :w]
        edge = np.minimum(np.minimum(y, h - 1 - y), np.minimum(x, w - 1 - x))  # pixels to the nearest border
        self._border = self._mask & (edge < self.border * min(h, w))
        if self._border.sum() < self.least:  # a picture textured only in its middle: verified there
            self._border = self._mask

    def _raw(self, luma: np.ndarray) -> float:
        """The larger of the picture's move and its roll, both as the farthest a pixel moved in % of the short side
        (a knocked camera can turn about its lens as well as pan or tilt; a roll that moves no pixel by a whole one
        is the mast's sway)."""
        luma = luma.astype(np.float32)
        g = self._gradient(luma)
        h, w = g.shape
        corner = np.hypot(h, w) / 2 * abs(np.radians(self._roll(luma, g)))  # pixels the corners moved
        return max(self._move(g), 100 * corner / min(h, w) if corner >= 1 else 0.0)

    def _roll(self, luma: np.ndarray, g: np.ndarray) -> float:
        """Degrees the picture turned against the reference: a rigid motion (turn and move) fitted by OpenCV's ECC
        at half size, which follows a turn the phase correlation of moves cannot; 0 unless bringing the picture back
        matches the reference's most textured pixels at least 10 % better, over the whole picture and along its
        border (where a turn moves things furthest: a head that tilts in the middle of a talking-head shot, fitted
        by ECC as a turn, leaves the border where it was), and the turn is at most `turn` degrees (ECC fits a cover
        over part of the lens as a turn, of 14–72° on three of the benchmark's six covers seen). A picture that
        matches the reference in place as well as 90 % of the normal footage's does is not fitted (the fit is most
        of the guard's cost: the parking lot scored at 12× real time with it on every tick, 18× without)."""
        still = np.abs(g - self._ref)
        if self._in_place(still) <= self.calm[0]:  # matches in place as well as most normal frames do
            return 0.0
        h, w = luma.shape
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(self._small, cv2.pyrDown(luma), warp, cv2.MOTION_EUCLIDEAN, self.ecc,
                                           None, 3)
        except cv2.error:  # no convergence: a flat or changed picture
            return 0.0
        warp[:, 2] *= 2
        back = cv2.warpAffine(luma, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        turned = np.abs(self._gradient(back) - self._ref)

        def gain(m: np.ndarray) -> float:
            return float(np.log((np.median(still[m]) + 1e-4) / (np.median(turned[m]) + 1e-4)))

        angle = float(np.degrees(np.arctan2(warp[1, 0], warp[0, 0])))
        if abs(angle) > self.turn or min(gain(self._mask), gain(self._border)) < self.better:
            return 0.0
        return angle

    def _in_place(self, still: np.ndarray) -> float:
        """The median over the reference's textured pixels of |frame − reference| (gradient images, unmoved)."""
        return float(np.median(still[self._mask]))

    def _move(self, g: np.ndarray) -> float:
        """% of the picture's short side it moved (phase correlation), 0 unless the move matches the reference's
        most textured pixels at least 10 % better than none."""
        h, w = g.shape
        cross = np.fft.fft2(g * self._window) * self._conj
        r = np.abs(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
        dy, dx = np.unravel_index(int(np.argmax(r)), r.shape)
        dy, dx = (dy - h if dy > h // 2 else dy), (dx - w if dx > w // 2 else dx)
        if dy == 0 and dx == 0 or abs(dy) > h // 4 or abs(dx) > w // 4:
            return 0.0
        s = self.slack if max(abs(dy), abs(dx)) > 2 * self.slack else 0  # a smaller move's slack touches the still's
        rows = slice(max(dy, 0) + s, h + min(dy, 0) - s)  # the frame's pixels compared: all moves stay in the reference
        cols = slice(max(dx, 0) + s, w + min(dx, 0) - s)
        mask = self._mask[rows.start - dy:rows.stop - dy, cols.start - dx:cols.stop - dx]  # textured, where they moved
        still = np.median(self._mismatch(g[rows, cols], rows, cols, 0, 0, s)[mask])
        moved = np.median(self._mismatch(g[rows, cols], rows, cols, dy, dx, s)[mask])
        if np.log((still + 1e-4) / (moved + 1e-4)) < self.better:
            return 0.0
        return float(100 * np.hypot(dy, dx) / min(h, w))

    def _mismatch(self, part: np.ndarray, rows: slice, cols: slice, dy: int, dx: int, s: int) -> np.ndarray:
        """Per pixel of `part` (the frame's gradient image at rows, cols), |part − the reference moved by (dy, dx)|,
        the least over moves within `s` pixels of it."""
        return np.min([np.abs(part - self._ref[rows.start - dy - ey:rows.stop - dy - ey,
                                               cols.start - dx - ex:cols.stop - dx - ex])
                       for ey in range(-s, s + 1) for ex in range(-s, s + 1)], axis=0)

    def fit(self, ticks: Ticks) -> np.ndarray:
        self.reference = np.median(ticks.luma, 0).astype(np.float32)
        self._prepare()
        still = [self._in_place(np.abs(self._gradient(y.astype(np.float32)) - self._ref)) for y in ticks.luma]
        self.calm = np.array([np.quantile(still, self.quiet)], np.float32)
        scores = np.array([self._raw(y) for y in ticks.luma])
        nearest = np.clip(np.searchsorted(ticks.luma_at, np.arange(len(ticks.change))), 0, len(scores) - 1)
        return scores[nearest]

    def tick(self, f: TickFeatures) -> float:
        return self._raw(f.luma)

    def reduce(self, scores: np.ndarray) -> float:
        """The shift more than half a segment's ticks agree on (within `agree` % of each other), else none: a
        knocked camera stays put, so its ticks read one shift, while chance matches against a blurred reference (a
        hand-held camera's normal footage) jump from tick to tick. A video's last, shorter segment counts as a whole
        one (one tick alone is no agreement)."""
        s = np.asarray(scores)
        near = np.abs(s[:, None] - s[None, :]) <= self.agree
        most = near[int(np.argmax(near.sum(1)))]
        return float(np.median(s[most])) if 2 * most.sum() > max(len(s), self.window) else 0.0

    def state(self) -> dict[str, np.ndarray]:
        return {"reference": self.reference, "calm": self.calm}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.reference = state["reference"]
        self.calm = state.get("calm", np.zeros(1, np.float32))  # a model before format 11 fits a roll on every tick
        self._prepare()


def frame_detectors(cap: int, seed: int, window: int) -> list[Detector]:
    """The cheap per-frame detectors (`window` ticks a segment), in the order their kind wins ties."""
    return [Frozen(window), Lighting(), Shift(window), Speed(),
            CellKNN("cell_motion", MOTION, "motion", cap=cap, seed=seed),
            CellKNN("cell_appearance", APPEARANCE, "appearance", cap=cap, seed=seed), Direction(), Residual(), Stall(),
            Jump(), Cover(), Defocus(), Grain(), Tint()]
