"""Scores calibrated on the normal footage: each detector's segment scores become z = (raw − median) / (p99 −
median); the segment's score is the root sum of squares of the positive z (evidence from several detectors adds up,
in quadrature like independent z-scores; one loud detector still carries a segment alone), divided by that sum's
own 99th percentile on normal footage — so 1.0 is the normal footage's 99th percentile and one threshold means the
same on every camera. (The largest z, measured on the same detector outputs, scored AUROC 0.915 / 0.838 / 0.721
against 0.945 / 0.855 / 0.726 on the benchmark's seed 0 and tied or lost on seed 1: one heavy-tailed detector set
the score of every normal segment.) A guard (frozen, lighting, camera moved) is a test with one question, so it adds
evidence only past its own normal p99 (its `gate`): below that, a still room's "nearly frozen" added up with
ordinary motion on normal footage (AUROC 0.855 → 0.884 on the indoor CCTV, no scene lower on seeds 0 and 1).
The sum is taken steady over time before the division: a segment's evidence is the larger of its own and the root
mean square over it and its two neighbours (the segment is scored once the next one is in). Events outlast a
segment and their evidence dips inside them (a reversed car slows down, a crossing object passes a quiet cell);
normal footage's highs are mostly lone segments, which keep their height. (Seeds 0–3, mean AUROC over the 12
scene-seeds 0.915 → 0.944, 11 of 12 higher, event recall unchanged at 0.903; counting the segments next to an event,
which the benchmark leaves out, 0.913 → 0.926.) A segment lifted by one neighbour only — beside an event, not inside
it — rises at most to LIFT × the normal p99: a strong event's edge segment lent the segment past it a score of
its own size (benchmarks/anomaly.py seed 23, the plaza: after a dark event scored 19.6, the next segment but one
scored 3.3, after a frozen one 2.9; the threshold allowing one false-alarm segment per minute rose to 2.88 and a
crossing object (2.54) and a knock (2.38) were missed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tubelet.config import coerce
from tubelet.errors import TubeletError

PERCENTILE = 99.0
TAIL_FROM = 0.25  # extrapolate only from a score in the upper quartile (nearer the median there is no tail to
# follow: on 5 s of footage, 10 segments, the 5th largest gave the cell banks a scale 8× their largest excess)
TAIL_COUNT = 4  # segments past the percentile a tail is read from (the detectors' `tail_count`; see `tail`)
ENOUGH = int(np.ceil(TAIL_COUNT / TAIL_FROM)) + 1  # the fewest normal segments `too_few` reads a tail off (17)
LIFT = 2.0  # the most a segment is lifted to (× the normal p99, the combined score's 1.0) by one neighbour alone (the
# weaker neighbour lifts without bound: a dip inside an event); 1.5 is the default threshold, so an event's edge
# still joins it


def too_few(n: int, count: int = TAIL_COUNT) -> bool:
    """Whether `count` of n segments lie outside the upper quartile (TAIL_FROM): no tail to read a percentile off
    or extrapolate from (`few` instead). For the tail count 4: n ≤ 16, 8 s of footage."""
    return count / max(n - 1, 1) > TAIL_FROM


def tail(normal: np.ndarray, med: float, count: int = 0) -> float:
    """The normal scores' PERCENTILE-th percentile above their median. With fewer than `count` segments past it
    (short footage: under 400 segments, 200 s, for p99 and count 4), that percentile is one or two segments — on
    15 s of parking lot, one car pulling out at the end of the normal footage, which cross-fitting scores as never
    seen and the full model has seen — so it is extrapolated instead from the largest score that `count` segments
    pass, along an exponential tail (the excess over the median of percentile q grows as log(0.5 / (1 − q))).
    (The direction detector, seeds 0–3: its p99 on unseen normal parking footage went from 0.30–0.36 to 0.73–0.90
    of its calibrated 1.0, the CCTV's from 0.43–0.79 to 0.56–1.03; mean AUROC over the 12 scene-seeds 0.944 →
    0.951, parking 0.876–0.937 → 0.912–0.943, event recall 0.903 → 0.931, none lower. A count of 3 let the
    parking lot's bulk set a tail that missed a dark event on seed 1.)"""
    if count > 0 and too_few(len(normal), count):
        return few(normal, med)
    past, read = 1 - PERCENTILE / 100, count / max(len(normal) - 1, 1)  # the count-th largest's percentile
    if count <= 0 or read <= past:
        return float(np.percentile(normal, PERCENTILE)) - med
    return (float(np.sort(normal)[-1 - count]) - med) * np.log(0.5 / past) / np.log(0.5 / read)


def few(normal: np.ndarray, med: float) -> float:
    """The PERCENTILE-th percentile above the median of scores too few to have a tail (`too_few`): read off
    them it is their largest, which n segments pass on average only 1 in n + 1 times (on 4 s of footage, 8
    segments, 1 in 9, not 1 in 100: every event threshold was passed by normal footage over and over), so the
    largest is placed at that percentile of the exponential tail `tail` follows and extrapolated to PERCENTILE.
    Used for the combined score and for the detectors with a tail count. (Seeds 0–9, the three scenes fitted on
    their first 8 s: false events at the threshold 5.8 → 3.0 a minute, parking 5.0 → 0, mean AUROC 0.882 → 0.900;
    on their first 4 s the plaza's 8.5 → 0.5 a minute; on the combined score alone only 8.5 → 7.3: the detectors'
    own scales read off 8 segments made ordinary motion loud. Footage of 17 segments or more is calibrated as
    before, bit for bit.)"""
    n = max(len(normal), 2)
    return (float(np.max(normal)) - med) * np.log(0.5 / (1 - PERCENTILE / 100)) / np.log(0.5 * (n + 1))


@dataclass
class Calibration:
    median: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    gate: dict[str, float] = field(default_factory=dict)  # z below which a detector adds nothing
    combined_p99: float = 1.0
    normal_quantiles: dict[str, float] = field(default_factory=dict)  # of the calibrated score on normal footage

    def fit_detector(self, name: str, normal: np.ndarray, floor: float, gate: float = 0.0,
                     tail_count: int = 0, short: bool = False) -> np.ndarray:
        """Learn one detector's median and scale from its normal segment scores; returns their z-scores.
        `tail_count` > 0: the p99 is read off the data only where that many segments lie past it (see `tail`);
        `short`: on footage too short to have a tail (`too_few`), the p99 is extrapolated (`few`)."""
        med = float(np.median(normal))
        self.median[name] = med
        self.gate[name] = gate
        x = np.asarray(normal, np.float64)
        p99 = few(x, med) if short and too_few(len(x)) else tail(x, med, tail_count)
        self.scale[name] = max(p99, floor)
        return self.z(name, normal)

    def z(self, name: str, raw: np.ndarray | float) -> np.ndarray:
        return (np.asarray(raw, np.float64) - self.median[name]) / self.scale[name]

    def fit_combined(self, zs: np.ndarray, segment: np.ndarray, at_least: float = 1e-6,
                     lasting: np.ndarray | None = None) -> None:
        """zs [S, D] normal segments × detectors, `segment` [S] their ids in time order → the 99th percentile of
        their steady evidence (a neighbour not among them counts as the segment itself; a neighbour lends only the
        evidence of the `lasting` [D] detectors, default all), at least `at_least`."""
        e = self.evidence(zs)
        lent = e if lasting is None else self.evidence(zs * lasting)
        row = {int(s): i for i, s in enumerate(segment)}
        prev = lent[[row.get(int(s) - 1, i) for i, s in enumerate(segment)]]
        after = lent[[row.get(int(s) + 1, i) for i, s in enumerate(segment)]]
        steady = self.steady(prev, e, after)
        med = float(np.median(steady))
        p99 = med + few(steady, med) if too_few(len(steady)) else float(np.percentile(steady, PERCENTILE))
        self.combined_p99 = max(p99, at_least)
        calibrated = self.steady(prev, e, after, self.most) / self.combined_p99  # a lift capped above the p99
        # leaves the p99 where it was
        self.normal_quantiles = {f"p{q:g}": round(float(np.percentile(calibrated, q)), 4)
                                 for q in (50, 90, 95, 99, 99.9)}
        self.normal_quantiles["max"] = round(float(calibrated.max()), 4)

    @property
    def most(self) -> float:
        """The most one neighbour lifts a segment's evidence to (LIFT × the combined p99)."""
        return LIFT * self.combined_p99

    def evidence(self, zs: np.ndarray) -> np.ndarray:
        """[S, D] → [S] root sum of squares of the positive z, each guard's only past its gate."""
        gate = np.array([self.gate[name] for name in self.median])
        return np.sqrt((np.where(zs >= np.maximum(gate, 0), zs, 0) ** 2).sum(-1))

    @staticmethod
    def steady(before: np.ndarray | float, e: np.ndarray | float, after: np.ndarray | float,
               most: float = np.inf) -> np.ndarray:
        """A segment's evidence among its neighbours': the larger of its own and the root mean square over it and
        the segments on either side (an event outlasts a segment: a dip inside it is lifted, and a lone spike
        keeps its own height), that mean at most `most` unless the weaker neighbour alone lifts it further (as if
        both neighbours were the weaker one)."""
        e = np.asarray(e, np.float64)
        around = np.sqrt((np.square(before) + e ** 2 + np.square(after)) / 3)
        both = np.sqrt((2 * np.square(np.minimum(before, after)) + e ** 2) / 3)
        return np.maximum(e, np.minimum(around, np.maximum(both, most)))

    def to_dict(self) -> dict:
        return {"median": self.median, "scale": self.scale, "gate": self.gate, "combined_p99": self.combined_p99,
                "normal_quantiles": self.normal_quantiles}

    @classmethod
    def from_dict(cls, d: dict, where: str = "calibration") -> Calibration:
        """From its JSON form, every number checked finite (TubeletError naming `where` otherwise)."""
        if not isinstance(d, dict):
            raise TubeletError(f"{where}: calibration must be an object")

        def numbers(key: str) -> dict[str, float]:
            table = d.get(key)
            if not isinstance(table, dict):
                raise TubeletError(f"{where}: calibration.{key} must be an object of numbers")
            return {str(k): coerce(f"calibration.{key}.{k}", v, float, where) for k, v in table.items()}

        scale, gate = numbers("scale"), numbers("gate")
        p99 = coerce("calibration.combined_p99", d.get("combined_p99"), float, where)
        if p99 <= 0 or any(v <= 0 for v in scale.values()):
            raise TubeletError(f"{where}: calibration scales must be positive")
        median = numbers("median")
        if set(gate) != set(median) or set(scale) != set(median):
            raise TubeletError(f"{where}: calibration median, scale and gate must name the same detectors")
        return cls(median, scale, gate, p99, numbers("normal_quantiles"))
