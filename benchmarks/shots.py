"""Shot transitions: tubelet's fast detector and its cascade (the fast pass, with TransNetV2's second opinion on
short windows around the doubtful cuts: `analyze`'s default with the shots extra) against PySceneDetect (content,
adaptive) and TransNetV2 on every frame, same run.

    python benchmarks/shots.py [--videos ../shared/data/videos] [--seed 0] [--half all|0|1] [--keep DIR]

Builds edits of the real clips with ffmpeg (`tubelet.analysis.edits`): pieces of different clips joined by hard
cuts, cross-fades, fades through black or white, wipes (and a fade in from black at some starts); jump cuts (one
static framing, a stretch skipped); and clips that hold no transition: single shots, whip pans, fast motion (4×),
camera shake and flashes. A jump cut across which nothing visibly moved (under 2 % of the pixels change by more than
10 grey levels) is left out of the scores and counted. Everything random — clips, where they start, piece lengths,
transition kinds (balanced) and lengths, frame size and rate — comes from --seed; --half 0 or 1 draws from one half
of the clips only (a fixed split), so a set built from the other half, or with another seed, is a held-out set made
the same way. Prints hard-cut precision/recall/F1 at ±2 frames (detections inside a gradual transition count for it,
not as cuts), gradual transitions found (a detection overlapping it, ±2 frames), typed right and the span error of
the detected ones, detections on the clips with no transition, and speed (seconds of video per second: × real time,
by wall clock and per CPU second of the process — steadier on a shared machine —, with the wall-clock ratio to
tubelet). Each detector decodes for itself: tubelet, its cascade and TransNetV2 through tubelet's decode at 64 px (the
model on the 48×27 frames it keeps), PySceneDetect through its own default backend.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from tubelet.analysis.edits import EFFECTS, XFADES, Edit, Join, Piece
from tubelet.analysis.signals import frame_signals
from tubelet.analysis.transitions import FastDetector, Transition, TransNetV2Detector, detector
from tubelet.data import probe

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
# clips that hold one shot (no cut or transition of their own), and those with a static framing (jump cuts);
# hand_rotating_box.mp4 is left out: its stream is spliced (the box jumps at 5.04 s and 12.08 s: jump cuts)
SINGLE_SHOT = ["aquarium_fish_wide.mp4", "arm_wrestling.mp4", "baseball_batting_cage.mp4", "basketball_gym.mp4",
               "bottles_static_table.mp4", "carphone_talking_head_qcif.mp4", "cat_lying_blanket.mp4",
               "child_talking_head.mp4", "cleaning_pool.mp4", "cockatoo_closeup.mp4", "dog_with_owner.mp4",
               "eye_makeup_ucf101.avi", "face_expressions_woman.mp4", "flower_timelapse.webm", "highway_dashcam.mp4",
               "kids_jumping_bedroom.mp4", "making_cake_vertical_shaky.mp4", "pancake_flip.mkv",
               "parking_lot_overhead_static.mp4", "pedestrians_plaza_surveillance.avi", "people_indoor_cctv_long.mp4",
               "soccer_juggling.mp4", "tennis_practice.mp4", "yoga_outdoor.mp4"]
STATIC = {"yoga_outdoor.mp4", "child_talking_head.mp4", "face_expressions_woman.mp4",
          "pedestrians_plaza_surveillance.avi", "eye_makeup_ucf101.avi", "people_indoor_cctv_long.mp4",
          "baseball_batting_cage.mp4", "basketball_gym.mp4",
          "carphone_talking_head_qcif.mp4"}
# skips in a source's own recording (seconds): a jump cut inside the clip that no edit made, so no piece spans one
# (the plaza at 40.4 s: a walker vanishes mid-pavement and the others jump; found as a cut, it was counted false)
SKIPS = {"pedestrians_plaza_surveillance.avi": (40.4,)}
SIZES = ((320, 180), (384, 216), (256, 144))  # (width, height) an edit is rendered at, one drawn per edit
RATES = (25, 30)  # frames per second, one drawn per edit
UNSEEN_LEVELS, UNSEEN_SHARE = 10, 0.02  # a jump cut changing fewer pixels than this by more than this is unseen
FAMILIES = ("dissolve", "fade", "wipe")


# ----------------------------------------------------------------------------------------------- the edits
@dataclass
class Case:
    edit: Edit
    group: str  # "transitions", "jump cuts", or the effect ("single", "whip", …) of a clip with no transition
    path: Path = Path()
    unseen: tuple[float, ...] = ()  # jump cuts across which nothing visibly changes: neither found nor missed

    def mark_unseen(self) -> None:
        """A jump cut over a skipped stretch in which nothing moved shows nothing: fewer than UNSEEN_SHARE of the
        pixels change by more than UNSEEN_LEVELS grey levels between its two frames (at the rendered size)."""
        if self.group != "jump cuts":
            return
        at = {round(t.start_s * self.edit.fps): t.start_s for t in self.edit.truth()}
        with av.open(str(self.path)) as c:
            grey = [f.to_ndarray(format="gray").astype(np.int16) for f in c.decode(video=0)]
        self.unseen = tuple(t for i, t in at.items()
                            if (np.abs(grey[i] - grey[i - 1]) > UNSEEN_LEVELS).mean() < UNSEEN_SHARE)


def halves(names: list[str], half: str) -> list[str]:
    """A fixed split of the clips in two (seeded on nothing but the names)."""
    if half == "all":
        return names
    order = sorted(names)
    random.Random(12345).shuffle(order)
    return sorted(order[int(half)::2])


def build_cases(videos: Path, seed: int, half: str, n_edits: int, n_clean: int,
                sizes: Sequence[tuple[int, int]] = SIZES, rates: Sequence[int] = RATES) -> list[Case]:
    rng = random.Random(seed)
    durations = {n: probe(videos / n).duration_s for n in SINGLE_SHOT if (videos / n).is_file()}
    pool = halves(sorted(durations), half)
    static = [n for n in pool if n in STATIC]

    def clear(name: str, start: float, span_s: float) -> float:
        """`start`, or, where [start, start + span_s] holds one of the source's SKIPS, moved just past it (before it
        where the source ends too soon): no draw is added, so every other clip of a seed stays as it was."""
        for t in SKIPS.get(name, ()):
            if start <= t <= start + span_s:
                start = t + 0.2 if t + 0.2 + span_s <= durations[name] - 0.3 else max(0.0, t - span_s - 0.2)
        return start

    def piece(name: str, frames: int, fps: int, speed: int = 1) -> Piece:
        span_s = speed * frames / fps
        room = durations[name] - span_s - 0.3
        return Piece(str(videos / name), round(clear(name, rng.uniform(0, max(0.0, room)), span_s), 2), frames)

    def look() -> tuple[int, int, int]:
        w, h = rng.choice(sizes)
        return w, h, rng.choice(rates)

    cases = []
    kinds = ["cut", *FAMILIES] * n_edits
    rng.shuffle(kinds)
    for e in range(n_edits):  # 3 joins each, kinds balanced over the set
        w, h, fps = look()
        joins_kinds = kinds[3 * e:3 * e + 3]
        lengths = [round(rng.uniform(0.3, 1.6) * fps) if k != "cut" else 0 for k in joins_kinds]
        names = rng.sample(pool, 4)
        pieces = []
        for i, name in enumerate(names):
            around = (lengths[i - 1] if i else 0) + (lengths[i] if i < 3 else 0)
            frames = around + round(rng.uniform(1.0, 2.6) * fps)
            pieces.append(piece(name, min(frames, int((durations[name] - 0.4) * fps)), fps))
        joins = [Join(k, rng.choice(XFADES[k]) if k != "cut" else "", n) for k, n in zip(joins_kinds, lengths,
                                                                                             strict=True)]
        fade_in = round(rng.uniform(0.3, 1.0) * fps) if rng.random() < 0.3 else 0
        cases.append(Case(Edit(f"edit{e:02d}", w, h, fps, pieces, joins, fade_in), "transitions"))
    for e in range(max(1, n_edits // 3)):  # jump cuts: the same static framing, a stretch skipped
        w, h, fps = look()
        name = rng.choice([n for n in static if durations[n] >= 7])
        n_pieces = rng.choice([2, 3])
        frames = [round(rng.uniform(1.2, 2.2) * fps) for _ in range(n_pieces)]
        gaps = [rng.uniform(1.0, 2.5) for _ in range(n_pieces - 1)]
        total = sum(frames) / fps + sum(gaps)
        t = clear(name, rng.uniform(0, max(0.0, durations[name] - total - 0.3)), total)
        pieces = []
        for i, f in enumerate(frames):
            pieces.append(Piece(str(videos / name), round(t, 2), f))
            t += f / fps + (gaps[i] if i < len(gaps) else 0)
        cases.append(Case(Edit(f"jump{e:02d}", w, h, fps, pieces, [Join("cut")] * (n_pieces - 1)), "jump cuts"))
    for e in range(n_clean):  # clips with no transition: plain, or with an effect that is not one
        group = ("single", *EFFECTS)[e % (len(EFFECTS) + 1)]
        w, h, fps = look()
        frames = round(rng.uniform(2.5, 4.5) * fps)
        speed = 4 if group == "fast" else 1
        name = rng.choice([n for n in pool if durations[n] >= speed * frames / fps + 0.5] or pool)
        frames = min(frames, int((durations[name] - 0.4) * fps / speed))
        at: tuple[float, ...] = ()
        if group == "whip":
            at = (round(rng.uniform(0.8, frames / fps - 1.0), 2), round(rng.uniform(0.15, 0.4), 2))
        elif group == "flash":
            at = tuple(round(rng.uniform(0.5, frames / fps - 0.5), 2) for _ in range(rng.choice([1, 2, 3])))
        effect = "" if group == "single" else group
        cases.append(Case(Edit(f"{group}{e:02d}", w, h, fps, [piece(name, frames, fps, speed)], effect=effect,
                               effect_at=at), group))
    return cases


# ----------------------------------------------------------------------------------------------- the detectors
def tubelet_fast() -> Callable[[Path], list[Transition]]:
    det = FastDetector()
    return lambda path: det.detect(frame_signals(path))


def tubelet_cascade() -> Callable[[Path], list[Transition]]:
    det = detector("cascade")
    return lambda path: det.detect(frame_signals(path, keep_small=True))


def transnetv2() -> Callable[[Path], list[Transition]]:
    det = TransNetV2Detector()
    return lambda path: det.detect(frame_signals(path, keep_small=True))


def pyscenedetect(kind: str) -> Callable[[Path], list[Transition]]:
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    make = {"content": ContentDetector, "adaptive": AdaptiveDetector}[kind]

    def run(path: Path) -> list[Transition]:
        scenes = detect(str(path), make())
        return [Transition("cut", s[0].get_seconds(), s[0].get_seconds()) for s in scenes[1:]]
    return run


DETECTORS = {"tubelet": tubelet_fast, "tubelet-cascade": tubelet_cascade, "transnetv2": transnetv2,
             "pyscenedetect-content": lambda: pyscenedetect("content"),
             "pyscenedetect-adaptive": lambda: pyscenedetect("adaptive")}


# ----------------------------------------------------------------------------------------------- scoring
@dataclass
class Score:
    cut_tp: int = 0
    cut_fp: int = 0
    cut_fn: int = 0
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    typed: int = 0
    span_errors: list[float] = field(default_factory=list)  # frames, worse end of each detected span
    false_gradual: int = 0
    unseen: int = 0  # jump cuts left out: nothing visibly changes across them
    clean: dict[str, int] = field(default_factory=dict)  # detections on clips with no transition, per group
    seconds: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the process's CPU time (all its threads): steadier than wall time on a shared machine

    def f1(self) -> tuple[float, float, float]:
        p = self.cut_tp / max(1, self.cut_tp + self.cut_fp)
        r = self.cut_tp / max(1, self.cut_tp + self.cut_fn)
        return p, r, 2 * p * r / max(1e-9, p + r)


def score_case(s: Score, case: Case, found: list[Transition]) -> None:
    tol = 2 / case.edit.fps
    truth = case.edit.truth()
    if not truth:
        s.clean[case.group] = s.clean.get(case.group, 0) + len(found)
        return
    gradual = [t for t in truth if t.kind != "cut"]
    cuts = [t for t in truth if t.kind == "cut" and t.start_s not in case.unseen]
    s.unseen += len(case.unseen)

    def overlaps(d: Transition, g: Transition) -> bool:
        return d.start_s <= g.end_s + tol and d.end_s >= g.start_s - tol

    claimed: set[int] = set()
    for g in gradual:
        s.total[g.family] += 1
        hits = [i for i, d in enumerate(found) if overlaps(d, g)]
        if not hits:
            continue
        s.found[g.family] += 1
        claimed.update(hits)
        best = max(hits, key=lambda i: min(found[i].end_s, g.end_s) - max(found[i].start_s, g.start_s))
        d = found[best]
        s.typed += d.family == g.family
        if d.kind != "cut":
            s.span_errors.append(max(abs(d.start_s - g.start_s), abs(d.end_s - g.end_s)) * case.edit.fps)
    rest = [d for i, d in enumerate(found) if i not in claimed]
    s.false_gradual += sum(d.kind != "cut" and not any(overlaps(d, c) for c in cuts) for d in rest)
    detected_cuts = sorted((d for d in rest if d.kind == "cut" or any(overlaps(d, c) for c in cuts)),
                           key=lambda d: d.at_s)
    detected_cuts = [d for d in detected_cuts if all(abs(d.at_s - u) > tol + 1e-6 for u in case.unseen)]
    used: set[int] = set()
    for c in cuts:
        near = [i for i, d in enumerate(detected_cuts) if i not in used and abs(d.at_s - c.start_s) <= tol + 1e-6]
        if near:
            used.add(min(near, key=lambda i: abs(detected_cuts[i].at_s - c.start_s)))
            s.cut_tp += 1
        else:
            s.cut_fn += 1
    s.cut_fp += len(detected_cuts) - len(used)


def table(scores: dict[str, Score], load: str) -> str:
    groups = sorted({g for s in scores.values() for g in s.clean})
    head = ["detector", "cut P", "cut R", "cut F1", *(f"{f}s" for f in FAMILIES), "typed", "span err fr",
            "false gradual", *(f"on {g}" for g in groups), "× real time", "× real time per CPU s",
            "speed vs tubelet"]
    rows = []
    base = scores.get("tubelet")
    for name, s in scores.items():
        p, r, f1 = s.f1()
        found = sum(s.found.values())
        speed = s.seconds / max(s.wall_s, 1e-9)
        ratio = speed / (base.seconds / max(base.wall_s, 1e-9)) if base else float("nan")
        rows.append([name, f"{p:.3f}", f"{r:.3f}", f"{f1:.3f}",
                     *(f"{s.found[f]}/{s.total[f]}" for f in FAMILIES),
                     f"{s.typed}/{found}" if name.startswith("tubelet") or name == "transnetv2" else "-",
                     f"{np.mean(s.span_errors):.1f} (max {max(s.span_errors):.0f})" if s.span_errors else "-",
                     str(s.false_gradual), *(str(s.clean.get(g, 0)) for g in groups), f"{speed:.1f}×",
                     f"{s.seconds / max(s.cpu_s, 1e-9):.1f}×", f"{ratio:.3f}"])
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows),
                      f"load average: {load}"])


def frames(found: list[Transition], fps: float) -> str:
    """Transitions in frames: cut12 dissolve[30-45]."""
    return " ".join(f"cut{t.start_s * fps:.0f}" if t.kind == "cut" else
                    f"{t.kind}[{t.start_s * fps:.0f}-{t.end_s * fps:.0f}]" for t in found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=SHARED)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--half", choices=["all", "0", "1"], default="all")
    ap.add_argument("--edits", type=int, default=12, help="edits with 3 transitions each")
    ap.add_argument("--clean", type=int, default=15, help="clips with no transition")
    ap.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                    help="frame sizes WxH the edits are drawn from (portrait too: 180x320)")
    ap.add_argument("--fps", default=",".join(map(str, RATES)), help="frame rates the edits are drawn from")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--keep", type=Path, help="render the edits here (reused when present) instead of a temp dir")
    ap.add_argument("--verbose", action="store_true", help="print every edit's truth and detections")
    args = ap.parse_args()
    if not args.videos.is_dir():
        sys.exit(f"error: {args.videos}: no such directory of clips")
    try:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
        rates = [int(v) for v in args.fps.split(",")]
    except ValueError:
        sys.exit(f"error: --sizes takes WxH[,WxH…] and --fps N[,N…], got {args.sizes!r} and {args.fps!r}")
    if any(len(wh) != 2 or min(wh) < 32 or min(wh) % 2 for wh in sizes) or any(not 1 <= r <= 240 for r in rates):
        sys.exit("error: sizes must be even, at least 32 px a side, and frame rates 1-240")
    cases = build_cases(args.videos, args.seed, args.half, args.edits, args.clean, sizes, rates)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for i, case in enumerate(cases, 1):
            case.path = root / f"s{args.seed}h{args.half}_{case.edit.name}.mp4"
            if not case.path.exists():
                case.edit.render(case.path)
            case.mark_unseen()
            eta = (time.perf_counter() - started) / i * (len(cases) - i)
            print(f"\rbuilding edits {i}/{len(cases)} ETA {eta:.0f} s", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        truth = sum(len(c.edit.truth()) - len(c.unseen) for c in cases)
        seconds = sum(c.edit.frames / c.edit.fps for c in cases)
        unseen = sum(len(c.unseen) for c in cases)
        print(f"{len(cases)} clips, {seconds:.0f} s, {truth} transitions (seed {args.seed}, half {args.half}); "
              f"{unseen} jump cut(s) left out: nothing visibly changes across them")
        scores = {}
        for name in args.detectors.split(","):
            run = DETECTORS[name]()
            s = scores[name] = Score()
            t_start = time.perf_counter()
            for i, case in enumerate(cases, 1):
                t0, c0 = time.perf_counter(), time.process_time()
                found = run(case.path)
                s.wall_s += time.perf_counter() - t0
                s.cpu_s += time.process_time() - c0
                s.seconds += case.edit.frames / case.edit.fps
                score_case(s, case, found)
                if args.verbose:
                    fps = case.edit.fps
                    print(f"  {name} {case.edit.name}: truth {frames(case.edit.truth(), fps)} | found "
                          f"{frames(found, fps)}", file=sys.stderr)
                rate = s.seconds / max(1e-9, time.perf_counter() - t_start)
                eta = (time.perf_counter() - t_start) / i * (len(cases) - i)
                print(f"{chr(10) if args.verbose else chr(13)}{name}: {i}/{len(cases)} ({rate:.1f}× real time) "
                      f"ETA {eta:.0f} s", end="",
                      file=sys.stderr, flush=True)
            print(file=sys.stderr)
    print(table(scores, " ".join(f"{x:.2f}" for x in os.getloadavg())))


if __name__ == "__main__":
    main()
