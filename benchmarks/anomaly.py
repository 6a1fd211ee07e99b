"""Anomaly benchmark: learn each fixed camera's normal from the first part of its clip, find injected events in
the rest.

For each scene (default: the surveillance, parking-lot and indoor CCTV clips of ../shared/data/videos), the clip is
resampled to a 10 frames/s camera (≤ 640 px wide). The first `--fit-fraction` becomes the normal footage
(`fit_normal` with the default model — the frame detectors; `--model vit_tiny` adds the MAE detectors). From the
rest, test videos of up to `--length` seconds are cut at seeded random places, one per event kind with the event at
a seeded random time and duration — an unrelated object crossing (a disc of footage from another clip), a stretch
played `--speed`× faster, a frozen picture, the lights dropping, the camera knocked (the picture shifted 4–8 % of
its width), a stretch played backwards (fast and backward stretches are drawn where the source moves at least as
much as it does on average: a still room played faster is the same still room) — plus `--normal-videos`
event-free stretches. `--events stall` (not in the default) keeps a rectangle of 40–60 % of each side on one frame
for the event while the rest plays on: foliage, water or a machine that stops, which only a scene that always moves
there can show. `--events blur cover` (tampering, not in the default either) defocuses the lens (a Gaussian of 1–2 %
of the width) or holds something dark and nearly flat over 40–70 % of the picture from one edge. `--events slow
bright zoom rotate noise loop grey` (not in the default: the default families in other forms, for scenes and
events a fit was not tuned on) plays a stretch `--speed`× slower, turns the lights up 1.6–2.5×, zooms the camera
1.15–1.35× or turns it 3–8° about the centre, lays Gaussian noise of 12–25 grey levels over the picture, plays the
stretch before again (a replayed recording), or drops the colour (a camera's night mode). Every test video
is written as H.264 and scored through `score_source`, like `tubelet anomaly score`.

Per scene, pooled over its test videos (0.5 s segments; a segment is positive when its middle lies inside an
event; the one segment on either side of an event is left out of both classes, since windows straddle the edge):
- AUROC of the calibrated score, and of each detector alone (second table);
- event recall at the threshold giving at most one false-alarm segment per minute of normal test footage (the
  largest threshold allowing floor(minutes) negatives above it); an event counts when one of its segments passes;
- speed: video seconds per CPU second of scoring (torch on one thread; decoding included) and per wall second;
- the same for a frame-difference baseline: |mean absolute frame difference − its normal median| per segment.

    .venv/bin/python benchmarks/anomaly.py                       # the three scenes (~3 CPU minutes)
    .venv/bin/python benchmarks/anomaly.py --model vit_tiny      # with the MAE detectors (~5 CPU minutes a scene)
    .venv/bin/python benchmarks/anomaly.py --scenes parking_lot_overhead_static.mp4   # one scene
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

from tubelet.anomaly.config import AnomalyConfig
from tubelet.anomaly.features import FeatureExtractor
from tubelet.anomaly.fit import fit_normal
from tubelet.anomaly.frames import open_reader, ticks
from tubelet.anomaly.score import score_source
from tubelet.anomaly.synthetic import EVENTS, KINDS, activity, inject, plan, read_frames, write_frames
from tubelet.errors import TubeletError

SCENES = ("pedestrians_plaza_surveillance.avi", "parking_lot_overhead_static.mp4", "people_indoor_cctv_long.mp4")
DONORS = ("dog_with_owner.mp4", "cockatoo_closeup.mp4", "soccer_juggling.mp4", "kids_jumping_bedroom.mp4")
RATE = 10.0


@dataclass
class Scored:
    """Segment scores of one scene's test videos, pooled."""

    labels: list[np.ndarray] = field(default_factory=list)  # 1 event, 0 normal, -1 left out
    scores: list[np.ndarray] = field(default_factory=list)
    detectors: list[np.ndarray] = field(default_factory=list)  # [S, D]
    baseline: list[np.ndarray] = field(default_factory=list)
    events: list[tuple[str, int, np.ndarray]] = field(default_factory=list)  # (kind, video, segment mask)
    video_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    base_cpu_s: float = 0.0
    false_events: int = 0  # events reported by `score` on normal footage at the default threshold
    normal_s: float = 0.0


def labels_for(starts: np.ndarray, ends: np.ndarray, ev: tuple[float, float] | None, bin_s: float) -> np.ndarray:
    mid = 0.5 * (starts + ends)
    lab = np.zeros(len(mid), int)
    if ev is not None:
        a, b = ev
        lab[(mid >= a - bin_s) & (mid < b + bin_s)] = -1
        lab[(mid >= a) & (mid < b)] = 1
    return lab


def baseline_scores(path: Path, size: tuple[int, int], bin_ticks: int) -> np.ndarray:
    """Mean absolute frame difference per segment."""
    fx = FeatureExtractor(8)
    with open_reader(path) as reader:
        change = np.array([fx(t.rgb).change for t in ticks(reader, lambda *_: size, RATE)])
    return np.array([c.mean() for c in np.array_split(change, np.arange(bin_ticks, len(change), bin_ticks))])


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    keep = labels >= 0
    return float(roc_auc_score(labels[keep], scores[keep]))


def recall_at_budget(s: Scored, scores: list[np.ndarray], bin_s: float) -> tuple[float, float]:
    """(event recall, threshold) at ≤ 1 false-alarm segment per minute of normal test footage."""
    neg = np.concatenate([sc[lab == 0] for sc, lab in zip(scores, s.labels, strict=True)])
    allowed = int(math.floor(len(neg) * bin_s / 60))
    thr = float(np.sort(neg)[::-1][allowed]) if allowed < len(neg) else -np.inf
    hits = [bool((scores[v][m] > thr).any()) for _, v, m in s.events]
    return float(np.mean(hits)), thr


def dump(path: Path, s: Scored, names: list[str]) -> None:
    """One scene's pooled segment scores, for looking into what was missed: video ids, labels, scores, detector
    z, the detector names and each event video's kind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kinds = {v: k for k, v, _ in s.events}
    np.savez(path, video=np.concatenate([np.full(len(lab), v) for v, lab in enumerate(s.labels)]),
             labels=np.concatenate(s.labels), scores=np.concatenate(s.scores), z=np.concatenate(s.detectors),
             names=np.array(names), kinds=np.array([kinds.get(v, "none") for v in range(len(s.labels))]))


def run_scene(scene: Path, donors: list[np.ndarray], args: argparse.Namespace, work: Path, console: Console
              ) -> tuple[Scored, list[str], dict]:
    cfg = AnomalyConfig(adapt_steps=args.adapt_steps, seed=args.seed)
    frames = read_frames(scene, RATE)
    n_fit = int(len(frames) * args.fit_fraction)
    normal_path = work / f"{scene.stem}.normal.mp4"
    write_frames(normal_path, frames[:n_fit], RATE)
    t0 = time.process_time()
    normal = fit_normal([normal_path], args.model, cfg,
                        progress=lambda stage, done, total: None)
    fit_cpu = time.process_time() - t0
    test = frames[n_fit:]
    rng = np.random.default_rng([args.seed, sum(scene.name.encode())])
    kinds = list(args.events) * args.repeats + ["none"] * args.normal_videos
    s = Scored()
    planned = plan(kinds, rng, len(test), RATE, args.length, (args.min_event, args.max_event), args.speed,
                   activity(test))
    left_out = list(kinds)
    for kind, *_ in planned:
        left_out.remove(kind)
    if left_out:
        console.log(f"{scene.stem}: its {len(test) / RATE:.1f} s test part is too short for {', '.join(left_out)}: "
                    "left out")
    for v, (kind, offset, length, start, dur) in enumerate(planned):
        src = test[offset:]
        if kind == "none":
            video, ev = src[:length], None
        else:
            donor = donors[int(rng.integers(len(donors)))]
            video, ev = inject(src, kind, length, start, dur, rng, donor, args.speed), (start / RATE,
                                                                                          (start + dur) / RATE)
        path = work / f"{scene.stem}.{v:02d}.{kind}.mp4"
        write_frames(path, video, RATE)
        c0, w0 = time.process_time(), time.perf_counter()
        res = score_source(normal, path)
        s.cpu_s += time.process_time() - c0
        s.wall_s += time.perf_counter() - w0
        s.video_s += res.duration_s
        c0 = time.process_time()
        base = (baseline_scores(path, normal.frame_size, cfg.ticks_per_bin)[:len(res.scores)] if args.baseline
                else np.zeros(len(res.scores)))
        s.base_cpu_s += time.process_time() - c0
        lab = labels_for(res.starts, res.ends, ev, cfg.bin_s)
        s.labels.append(lab)
        s.scores.append(res.scores)
        s.detectors.append(res.z)
        s.baseline.append(base)
        if ev is not None:
            s.events.append((kind, v, lab == 1))
        else:
            s.false_events += len(res.events)
            s.normal_s += res.duration_s
        found = [(e.kind, round(e.start_s, 1), round(e.end_s, 1)) for e in res.events]
        console.log(f"{scene.stem} {kind:8s} truth {ev} found {found}")
    return s, res.detectors, {"fit_cpu_s": fit_cpu, "normal_s": n_fit / RATE}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "videos")
    p.add_argument("--scenes", nargs="+", default=list(SCENES))
    p.add_argument("--donors", nargs="+", default=list(DONORS), help="clips the crossing objects are cut from")
    p.add_argument("--events", nargs="+", default=list(EVENTS), choices=KINDS,
                   help="event kinds (default: the six of the issue)")
    p.add_argument("--model", default=None, help="checkpoint or preset for the MAE (default: the fit's default)")
    p.add_argument("--adapt-steps", type=int, default=AnomalyConfig().adapt_steps)
    p.add_argument("--fit-fraction", type=float, default=0.5)
    p.add_argument("--length", type=float, default=12.0, help="test video length, seconds")
    p.add_argument("--min-event", type=float, default=2.0)
    p.add_argument("--max-event", type=float, default=4.0)
    p.add_argument("--speed", type=int, default=4, help="speed-up of the fast stretches")
    p.add_argument("--repeats", type=int, default=1, help="test videos per event kind")
    p.add_argument("--normal-videos", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the frame-difference baseline (its columns read 0.5 / nan)")
    p.add_argument("--dump", type=Path, default=None,
                   help="also write each scene's segment scores, detector z and labels here (SCENE.SEED.npz)")
    args = p.parse_args()
    torch.set_num_threads(1)
    console = Console(stderr=True)
    donors = [read_frames(args.videos / d, RATE, 320)[:40] for d in args.donors]
    table = Table(title="anomaly benchmark (0.5 s segments; recall at ≤ 1 false-alarm segment per normal minute)")
    for col in ("scene", "normal s", "test s", "AUROC", "recall", "baseline AUROC", "baseline recall",
                "× real time (CPU)", "× real time (wall)", "baseline × rt (CPU)", "false events/min"):
        table.add_column(col, justify="right" if col != "scene" else "left")
    det_table = Table(title="AUROC of each detector alone")
    results = {}
    per_kind: dict[str, list[bool]] = {}
    kind_auroc: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            try:
                s, names, info = run_scene(args.videos / name, donors, args, Path(tmp), console)
            except TubeletError as e:  # a clip too short to learn from, or one that cannot be decoded
                console.log(f"{name}: left out ({e})")
                continue
            lab = np.concatenate(s.labels)
            a, b = auroc(lab, np.concatenate(s.scores)), auroc(lab, np.concatenate(s.baseline))
            rec, thr = recall_at_budget(s, s.scores, 0.5)
            brec, _ = recall_at_budget(s, s.baseline, 0.5)
            neg = np.concatenate([sc[lb == 0] for sc, lb in zip(s.scores, s.labels, strict=True)])
            for kind, v, m in s.events:
                per_kind.setdefault(kind, []).append(bool((s.scores[v][m] > thr).any()))
                pos = s.scores[v][m]
                kind_auroc.setdefault(kind, []).append(
                    auroc(np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)], np.r_[pos, neg]))
            fa = s.false_events / max(s.normal_s / 60, 1e-9)
            table.add_row(Path(name).stem, f"{info['normal_s']:.0f}", f"{s.video_s:.0f}", f"{a:.3f}", f"{rec:.2f}",
                          f"{b:.3f}", f"{brec:.2f}", f"{s.video_s / s.cpu_s:.1f}", f"{s.video_s / s.wall_s:.1f}",
                          f"{s.video_s / s.base_cpu_s:.1f}", f"{fa:.1f}")
            z = np.concatenate(s.detectors)
            if args.dump:
                dump(args.dump / f"{Path(name).stem}.{args.seed}.npz", s, names)
            if not det_table.columns:
                det_table.add_column("scene")
                for n in names:
                    det_table.add_column(n, justify="right")
            det_table.add_row(Path(name).stem, *(f"{auroc(lab, z[:, j]):.3f}" for j in range(len(names))))
            results[name] = {"auroc": a, "recall": rec, "baseline_auroc": b, "baseline_recall": brec,
                             "speed_cpu": s.video_s / s.cpu_s, "speed_wall": s.video_s / s.wall_s,
                             "detectors": {n: auroc(lab, z[:, j]) for j, n in enumerate(names)}, **info}
    console = Console(width=200)
    console.print(table)
    console.print(det_table)
    console.print("recall per event kind: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in per_kind.items()))
    console.print("AUROC per event kind (its segments against all normal ones): " + ", ".join(
        f"{k} {np.mean(v):.3f}" for k, v in kind_auroc.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
