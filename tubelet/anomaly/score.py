"""Scoring footage against a camera's normal: ticks in, calibrated segments out as soon as each one's MAE
window and the next segment have arrived (about one window of latency), events out as they open and close.
Memory is bounded: a few seconds of analysis frames plus one small record per segment."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from tubelet.anomaly.detectors import FROZEN, LIGHTING, MOVED
from tubelet.anomaly.features import FeatureExtractor
from tubelet.anomaly.frames import Tick, open_reader, ticks
from tubelet.anomaly.normal import NormalModel

GUARDS = (FROZEN, LIGHTING, MOVED)  # kinds that name a segment whenever their detector adds evidence
JUMPERS = ("residual", "jump")  # detectors that read a jump in time (SegmentScorer._bracket)
BRACKET_S = (1.5, 5.0)  # how far apart two jumps in time may lie to bracket spliced-in footage (SegmentScorer._bracket)


def clip_of(frames: Iterable[tuple[int, np.ndarray]], idx: list[int]) -> np.ndarray:
    """The frames at tick indices `idx` from recent (index, frame) pairs, indices clamped to those held."""
    have = dict(frames)
    lo, hi = min(have), max(have)
    return np.stack([have[min(max(i, lo), hi)] for i in idx])


@dataclass
class Segment:
    start_s: float
    end_s: float
    evidence: float  # the detectors' z combined, before its neighbours and the normal p99 (Calibration.evidence)
    lasting: float  # the same without the detectors of a moment (Detector.lasting): what it lends its neighbours
    kind: str
    z: np.ndarray  # [D] each detector's calibrated score (1.0 = its own normal 99th percentile)
    center: np.ndarray | None = field(default=None, repr=False)  # the analysis frame at its middle
    alarm: bool = False  # a detector's definite test passed (a frozen picture): an event whatever the score
    score: float = 0.0  # calibrated, among its neighbours: 1.0 = the normal footage's 99th percentile
    own: float = 0.0  # calibrated alone (its evidence over the same normal p99)


@dataclass
class Event:
    start_s: float
    end_s: float
    score: float  # the peak segment's
    kind: str  # the peak segment's, or the strongest alarm's
    peak_s: float
    thumb: np.ndarray | None = field(default=None, repr=False)  # analysis frame at the peak

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "score": round(self.score, 4),
                "kind": self.kind}


@dataclass
class _Bin:
    index: int
    frame_raw: list[list[float]]  # per frame detector, the tick scores so far
    center: np.ndarray | None = None  # the analysis frame at the bin's middle tick
    clip: np.ndarray | None = None  # the MAE window, once all its ticks are in
    window_raw: np.ndarray | None = None  # per window detector


class SegmentScorer:
    """Feed ticks with `push`, then `finish`; both return the segments completed, in time order."""

    def __init__(self, normal: NormalModel, batch: int = 4) -> None:
        self.normal, self.cfg, self.batch = normal, normal.config, batch
        self.fx = FeatureExtractor(self.cfg.cell, 2 * self.cfg.ticks_per_bin)
        self.mae = normal.scorer()
        self.frames: deque[tuple[int, np.ndarray]] = deque(maxlen=self.cfg.window_ticks + 2 * self.cfg.ticks_per_bin)
        self.bins: deque[_Bin] = deque()
        self.held: Segment | None = None  # the last segment made, scored once the next one is in
        self.before: tuple[float, str] | None = None  # the evidence and own kind of the segment before it
        self.n = 0  # ticks seen
        self.lag = max(d.lag for d in normal.detectors)  # ticks a segment waits for its lagging detectors
        # a guard names a segment once it adds evidence (past its own p99, or its gate where that is higher); the
        # other detectors never do
        self.names_at = np.array([max(1.0, normal.calibration.gate[name]) if kind in GUARDS else np.inf
                                  for name, kind in zip(normal.names, normal.kinds, strict=True)])
        self.lasting = normal.lasting
        self.jumpers = [i for i, name in enumerate(normal.names) if name in JUMPERS]  # a model before them: none
        self.apart = [round(s / self.cfg.bin_s) for s in BRACKET_S]
        self.jumps: deque[tuple[int, Segment]] = deque()  # recent segments that jump in time, by index
        self.pending: deque[tuple[int, Segment]] = deque()  # scored segments a later jump may still bracket
        self.made = 0  # segments scored

    def push(self, tick: Tick) -> list[Segment]:
        cfg = self.cfg
        k, self.n = self.n, self.n + 1
        b = k // cfg.ticks_per_bin
        if not self.bins or self.bins[-1].index < b:
            self.bins.append(_Bin(b, [[] for _ in self.normal.detectors]))
        f = self.fx(tick.rgb)
        for j, det in enumerate(self.normal.detectors):  # a lagging detector's score is of a tick before
            of = (k - det.lag) // cfg.ticks_per_bin
            if k >= det.lag:
                next(p for p in reversed(self.bins) if p.index == of).frame_raw[j].append(det.tick(f))
        if k == b * cfg.ticks_per_bin + (cfg.ticks_per_bin - 1) // 2:
            self.bins[-1].center = tick.rgb
        self.frames.append((k, tick.rgb))
        for pending in self.bins:
            if pending.clip is None and self.cfg.window_of(pending.index)[-1] <= k:
                pending.clip = clip_of(self.frames, self.cfg.window_of(pending.index))
        return self._drain(final=False)

    def finish(self) -> list[Segment]:
        for pending in self.bins:
            if pending.clip is None:
                pending.clip = clip_of(self.frames, self.cfg.window_of(pending.index))
            if pending.center is None:
                pending.center = self.frames[-1][1]
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[Segment]:
        waiting = [p for p in self.bins if p.clip is not None and p.window_raw is None]
        if self.mae is not None and waiting and (final or len(waiting) >= self.batch):
            w = self.mae(np.stack([p.clip for p in waiting]))
            raw = np.stack([d.score(w) for d in self.normal.window_detectors], 1)
            for p, r in zip(waiting, raw, strict=True):
                p.window_raw = r
        out = []
        tpb = self.cfg.ticks_per_bin
        while self.bins:
            p = self.bins[0]
            complete = final or self.n >= (p.index + 1) * tpb + self.lag
            if not complete or (self.mae is not None and p.window_raw is None):
                break
            self.bins.popleft()
            out.append(self._segment(p))
        return self._bracket(self._steady(out, final), final)

    def _bracket(self, scored: list[Segment], final: bool) -> list[Segment]:
        """Footage between two jumps in time (a JUMPERS detector past its own p99, `BRACKET_S` apart, the first
        not at the stream's start, which has nothing before it to jump from) was spliced in: a stretch played
        backwards or replayed starts and ends with such a jump, and in between it looks like any normal footage.
        The segments between take the weaker jump's score; a segment is held while a jump before it may still be
        answered (up to BRACKET_S[1] more latency, only after a jump)."""
        if not self.jumpers:
            return scored
        lo, hi = self.apart
        for seg in scored:
            b, self.made = self.made, self.made + 1
            if b > 0 and any(seg.z[i] > self.normal.detectors[i].gate for i in self.jumpers):
                for a, first in self.jumps:
                    if lo <= b - a <= hi:
                        lift, kind = min((first.score, first.kind), (seg.score, seg.kind))
                        for i, held in self.pending:
                            if a < i and lift > held.score:
                                held.score, held.kind = lift, kind
                self.jumps.append((b, seg))
            self.pending.append((b, seg))
            while self.jumps and self.jumps[0][0] + hi <= b:
                self.jumps.popleft()
        done = []
        while self.pending and (final or not self.jumps or self.pending[0][0] <= self.jumps[0][0]):
            done.append(self.pending.popleft()[1])
        return done

    def _steady(self, made: list[Segment], final: bool) -> list[Segment]:
        """Segments scored among their neighbours (Calibration.steady), each once the next is in (at the end, the
        last with itself as its next); one lifted by a neighbour takes the kind of the stronger neighbour. A
        neighbour lends only its lasting evidence (Segment.lasting)."""
        cal, done = self.normal.calibration, []
        for seg in made + ([None] if final else []):
            held = self.held
            if held is not None:
                nxt = seg or held
                before, after, kind = self.before or (held.lasting, held.kind), (nxt.lasting, nxt.kind), held.kind
                held.score = float(cal.steady(before[0], held.evidence, after[0], cal.most)) / cal.combined_p99
                held.own = held.evidence / cal.combined_p99
                if held.score * cal.combined_p99 > held.evidence and not held.alarm:
                    held.kind = max(before, after)[1]
                self.before = (held.lasting, kind)
                done.append(held)
            self.held = seg
        return done

    def _segment(self, p: _Bin) -> Segment:
        cal, cfg = self.normal.calibration, self.cfg
        first = 1 if p.index == 0 and len(p.frame_raw[0]) > 1 else 0  # the first tick has no motion to measure
        ticks = [np.array(s[first:]) for s in p.frame_raw]
        raw = [d.reduce(s) for d, s in zip(self.normal.detectors, ticks, strict=True)]
        alarms = [d.alarm(s) for d, s in zip(self.normal.detectors, ticks, strict=True)]
        if p.window_raw is not None:
            raw += list(p.window_raw)
        z = np.array([float(cal.z(name, r)) for name, r in zip(self.normal.names, raw, strict=True)])
        evidence = float(cal.evidence(z[None])[0])
        lasting = float(cal.evidence(z[None] * self.lasting)[0])
        guard = np.where(z >= self.names_at, z, -np.inf)
        if np.isfinite(guard.max()):  # a guard adding evidence names the segment, an alarm's included (lights
            kind = self.normal.kinds[int(np.argmax(guard))]  # dropping on a still scene: its change under the
            # frozen bar)
        elif any(alarms):
            kind = self.normal.kinds[alarms.index(True)]
        else:
            kind = self.normal.kinds[int(np.argmax(z))]
        start = p.index * cfg.bin_s
        end = min(start + cfg.bin_s, self.n / cfg.rate_hz)
        return Segment(start, end, evidence, lasting, kind, z, p.center, any(alarms))


class EventTracker:
    """Segments in, events out: an event opens at a segment over the threshold on its own (not only among its
    neighbours: an event does not start a segment early) or raising an alarm, lasts while segments' scores stay
    over it, absorbs gaps up to `merge_gap_s` and closes after a longer quiet stretch; its score and kind are its
    peak segment's (an alarm's kind wins over any score)."""

    def __init__(self, threshold: float, merge_gap_s: float, on_open: Callable[[Event], None] | None = None,
                 on_close: Callable[[Event], None] | None = None) -> None:
        self.threshold, self.merge_gap_s = threshold, merge_gap_s
        self.on_open, self.on_close = on_open, on_close
        self.open: Event | None = None
        self.kind_of = (False, 0.0)  # the open event's kind is that of its largest (alarm, score)
        self.events: list[Event] = []

    def push(self, seg: Segment) -> None:
        hot = seg.score >= self.threshold or seg.alarm
        if self.open is not None and (hot and seg.start_s - self.open.end_s > self.merge_gap_s
                                      or not hot and seg.start_s - self.open.end_s >= self.merge_gap_s):
            self._close()
        if not hot:
            return
        if self.open is None:
            if seg.own < self.threshold and not seg.alarm:
                return
            self.open = Event(seg.start_s, seg.end_s, seg.score, seg.kind, 0.5 * (seg.start_s + seg.end_s),
                              seg.center)
            self.kind_of = (seg.alarm, seg.score)
            if self.on_open:
                self.on_open(self.open)
            return
        self.open.end_s = seg.end_s
        if (seg.alarm, seg.score) > self.kind_of:
            self.open.kind, self.kind_of = seg.kind, (seg.alarm, seg.score)
        if seg.score > self.open.score:
            self.open.score, self.open.peak_s, self.open.thumb = seg.score, 0.5 * (seg.start_s + seg.end_s), seg.center

    def _close(self) -> None:
        self.events.append(self.open)
        if self.on_close:
            self.on_close(self.open)
        self.open = None

    def finish(self) -> None:
        if self.open is not None:
            self._close()


@dataclass
class VideoScore:
    """One video scored: every segment (covering it whole) and its events."""

    path: str
    duration_s: float
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    z: np.ndarray  # [S, D]
    detectors: list[str]
    events: list[Event]
    seconds: float  # wall time spent

    def to_dict(self) -> dict:
        return {"path": self.path, "duration_s": round(self.duration_s, 3),
                "segments": [{"start_s": round(float(a), 3), "end_s": round(float(b), 3), "score": round(float(s), 4)}
                             for a, b, s in zip(self.starts, self.ends, self.scores, strict=True)],
                "events": [e.to_dict() for e in self.events]}


def score_ticks(normal: NormalModel, stream: Iterable[Tick], name: str, threshold: float | None = None,
                on_open: Callable[[Event], None] | None = None, on_close: Callable[[Event], None] | None = None,
                on_segment: Callable[[Segment], None] | None = None) -> VideoScore:
    """Score a stream of analysis ticks (any source) into segments and events."""
    started = time.perf_counter()
    scorer = SegmentScorer(normal)
    cfg = normal.config
    tracker = EventTracker(cfg.threshold if threshold is None else threshold, cfg.merge_gap_s, on_open, on_close)
    rows: list[tuple[float, float, float]] = []
    zs: list[np.ndarray] = []

    def take(segments: list[Segment]) -> None:
        for seg in segments:
            rows.append((seg.start_s, seg.end_s, seg.score))
            zs.append(seg.z.astype(np.float32))
            tracker.push(seg)
            if on_segment:
                on_segment(seg)

    for tick in stream:
        take(scorer.push(tick))
    take(scorer.finish())
    tracker.finish()
    arr = np.array(rows).reshape(-1, 3)
    return VideoScore(name, scorer.n / cfg.rate_hz, arr[:, 0], arr[:, 1], arr[:, 2],
                      np.stack(zs) if zs else np.zeros((0, len(normal.names))), normal.names, tracker.events,
                      time.perf_counter() - started)


def score_source(normal: NormalModel, source: str | os.PathLike, follow: bool = False, idle_s: float = 5.0,
                 threshold: float | None = None, on_open: Callable[[Event], None] | None = None,
                 on_close: Callable[[Event], None] | None = None,
                 on_segment: Callable[[Segment], None] | None = None) -> VideoScore:
    """Score a file, a growing file (`follow`: wait up to `idle_s` for more bytes at its end) or a URL."""
    h, w = normal.frame_size
    with open_reader(source, follow, idle_s) as reader:
        return score_ticks(normal, ticks(reader, lambda *_: (h, w), normal.config.rate_hz), os.fspath(source),
                           threshold, on_open, on_close, on_segment)
