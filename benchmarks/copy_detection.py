"""Copy detection on re-edits: tubelet originality against a per-frame pHash baseline, per edit family.

    python benchmarks/copy_detection.py --model runs/demo --model vit_tiny --set num_frames=8 --set image_size=112

One command builds its own set from ../shared/data/videos (cached under --cache): clips of at least --min-s
seconds are shuffled with --seed; the first --sources become indexed sources, the next --negatives are never
indexed, two more are filler footage. All clips are cut to their first --clip-s seconds at ≤ 480 px wide. Every
edit family of tubelet.catalog.reedits at both strengths is applied to --per-edit sources and to one never-indexed
clip (in rotation), plus per source one excerpt (half its length, from a seeded start) and one partial insert (a
3 s piece of it between two 3 s filler pieces). A different --seed draws a different split: a held-out set built
the same way.

Printed per family and overall, for each --model and for the baseline:
  µAP      VSC 2022 descriptor track: one score per (query, indexed video) pair, every pair ranked by score; AP
           over that ranking with recall relative to all true pairs (a pair never scored counts as a miss).
           A family's µAP ranks its own queries' pairs together with the pairs of every never-indexed query.
  P / R    flag precision and recall at 70 %: full copies (edits, excerpts) should be flagged; partial inserts
           and never-indexed clips should not.
  IoU      copied span (union of spans attributed to the true source, query time) against the true one.
  speed err  full copies: |ln(reported / true speed)| of the longest span on the true source, averaged (0.05 ≈ 5 %;
           tubelet only: the baseline reports no speed).
  s/query  wall time of one query (tubelet: embedding + fingerprints + matching; baseline: hashing + matching).
The baseline is a DCT pHash (imagehash.phash, 64 bits) of one frame a second, each query frame matched to the
nearest hash of each indexed video (Hamming ≤ --hamming); pair score = share of the query's frames matched to that
video, copied seconds = the matched frames.

`cost` (run with `--cost`): originality of a 30 s video against a synthetic 1000-video catalog, against embedding it.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
FLAG_AT = 0.7


@dataclass
class Case:
    """One query file and its truth."""

    path: Path
    family: str
    source: str | None  # stem of the indexed source it copies, None for never-indexed
    span: tuple[float, float] | None  # query seconds holding the copy
    full: bool  # a full copy (should be flagged)
    speed: float = 1.0  # source seconds per query second


@dataclass
class Result:
    scores: dict[str, float]  # indexed stem → pair score
    flagged: bool
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # stem → query spans
    seconds: float = 0.0
    speed: dict[str, float] = field(default_factory=dict)  # stem → speed of its longest span


# ------------------------------------------------------------------------------------------------- the set
def build_set(args: argparse.Namespace) -> tuple[list[Path], list[Case]]:
    from tubelet.catalog.reedits import EDITS, Edit, concat, render
    from tubelet.data import probe

    cache = Path(args.cache) / f"seed{args.seed}-{args.sources}-{args.negatives}-{args.per_edit}-{args.clip_s}"
    clips = []
    for p in sorted(Path(args.videos).iterdir()):
        if p.suffix.lower() in {".mp4", ".mkv", ".webm", ".avi", ".ogv", ".mov"}:
            info = probe(p)
            if info.has_video and info.duration_s >= args.min_s:
                clips.append((p, info))
    order = np.random.default_rng(args.seed).permutation(len(clips))
    need = args.sources + args.negatives + 2
    if len(clips) < need:
        raise SystemExit(f"{args.videos}: {len(clips)} clips of ≥ {args.min_s} s, need {need}")
    picked = [clips[i] for i in order[:need]]

    def base(p: Path, info) -> Path:
        dst = cache / "base" / f"{p.stem}.mp4"
        if not dst.exists():
            shrink = Edit("base", "-", "scale=480:-2") if info.width > 480 else None
            render(p, dst, shrink, 0.0, min(info.duration_s, args.clip_s))
        return dst

    bases = [base(p, info) for p, info in picked]
    sources, negatives, fillers = bases[:args.sources], bases[args.sources:-2], bases[-2:]
    dur = {b: probe(b).duration_s for b in bases}
    rng = np.random.default_rng(args.seed + 1)
    cases: list[Case] = []

    def edited(src: Path, e) -> Path:
        dst = cache / "q" / f"{e.key}--{src.stem}.mp4"
        if not dst.exists():
            render(src, dst, e)
        return dst

    for i, e in enumerate(EDITS):
        for j in range(args.per_edit):
            src = sources[(i * args.per_edit + j) % len(sources)]
            out = edited(src, e)
            cases.append(Case(out, e.family, src.stem, (0.0, probe(out).duration_s), True, e.speed))
        neg = negatives[i % len(negatives)]
        cases.append(Case(edited(neg, e), e.family, None, None, False))
    for src in sources:
        d = dur[src]
        a = float(rng.uniform(0, d / 2))
        dst = cache / "q" / f"excerpt--{src.stem}.mp4"
        if not dst.exists():
            render(src, dst, None, a, a + d / 2)
        cases.append(Case(dst, "excerpt", src.stem, (0.0, probe(dst).duration_s), True))
        a = float(rng.uniform(0, d - 3))
        dst = cache / "q" / f"insert--{src.stem}.mp4"
        if not dst.exists():
            pieces = [render(fillers[0], cache / "tmp" / "a.mp4", None, 0, 3), render(src, cache / "tmp" / "b.mp4",
                      None, a, a + 3), render(fillers[1], cache / "tmp" / "c.mp4", None, 0, 3)]
            concat(pieces, dst)
        cases.append(Case(dst, "insert", src.stem, (3.0, 6.0), False))
    return sources, cases


# ------------------------------------------------------------------------------------------------- the systems
def run_tubelet(model: str, overrides: dict, sources: list[Path], cases: list[Case], work: Path,
                channels: list[tuple[str, ...]]) -> list[list[Result]]:
    """Results of each channel set (queries embedded once; the time is embedding + that channel set's matching)."""
    import shutil

    from tubelet.catalog.copies import find_copies
    from tubelet.catalog.embed import EmbedOptions
    from tubelet.catalog.indexing import add_to_catalog
    from tubelet.catalog.search import make_query
    from tubelet.catalog.store import Catalog

    root = work / "catalog"
    shutil.rmtree(root, ignore_errors=True)
    add_to_catalog(root, sources, model, EmbedOptions(), overrides)
    cat = Catalog.open(root)
    stem = {v.id: Path(v.path).stem for v in cat.videos()}
    out: list[list[Result]] = [[] for _ in channels]
    for n, c in enumerate(cases):
        t = time.perf_counter()
        query = make_query(cat, c.path)
        t_query = time.perf_counter() - t
        for ch, res in zip(channels, out, strict=True):
            t = time.perf_counter()
            rep = find_copies(cat, query, channels=ch)
            secs = t_query + time.perf_counter() - t
            spans: dict[str, list[tuple[float, float]]] = {}
            for s in rep.spans:
                spans.setdefault(stem[s.id], []).append((s.query_start_s, s.query_end_s))
            longest = sorted(rep.spans, key=lambda s: s.query_end_s - s.query_start_s)
            speed = {stem[s.id]: s.speed for s in longest}  # the longest span of each video comes last
            res.append(Result({stem[s.id]: s.score for s in rep.sources}, rep.flagged, spans, secs, speed))
        _progress(n + 1, len(cases), secs)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _hashes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times, 64-bit pHashes as [F, 64] bool) of one frame a second."""
    import imagehash
    from PIL import Image

    from tubelet.data import probe, read_frames_at

    d = probe(path).duration_s
    times = np.arange(0.5, max(d, 1.0), 1.0)
    frames, _ = read_frames_at(path, times.tolist(), size=128)
    return times, np.stack([imagehash.phash(Image.fromarray(f)).hash.reshape(-1) for f in frames.numpy()])


def run_phash(sources: list[Path], cases: list[Case], hamming: int) -> list[Result]:
    index = {s.stem: _hashes(s)[1] for s in sources}
    out = []
    for c in cases:
        t = time.perf_counter()
        times, h = _hashes(c.path)
        scores, spans, matched = {}, {}, np.zeros(len(times), bool)
        for stem, hs in index.items():
            dist = (h[:, None, :] != hs[None]).sum(-1).min(1)  # [Q] nearest hash of this video
            hit = dist <= hamming
            if hit.any():
                scores[stem] = float(hit.mean())
                spans[stem] = [(float(t - 0.5), float(t + 0.5)) for t in times[hit]]
                matched |= hit
        out.append(Result(scores, bool(matched.mean() >= FLAG_AT), spans, seconds=time.perf_counter() - t))
    return out


def _progress(done: int, total: int, secs: float) -> None:
    print(f"\r  query {done}/{total} ({secs:.1f} s)", end="" if done < total else "\n", flush=True)


# ------------------------------------------------------------------------------------------------- metrics
def micro_ap(scores: np.ndarray, truth: np.ndarray, positives: int) -> float:
    """VSC 2022 µAP: pairs ranked by score, precision summed at each true pair, over all `positives`."""
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    t = truth[order]
    hits = np.cumsum(t)
    precision = hits / np.arange(1, len(t) + 1)
    return float((precision * t).sum() / positives)


def iou(pred: list[tuple[float, float]], true: tuple[float, float]) -> float:
    from tubelet.catalog.copies import covered_seconds

    inter = covered_seconds([(max(a, true[0]), min(b, true[1])) for a, b in pred if min(b, true[1]) > max(a, true[0])])
    union = covered_seconds([*pred, true])
    return inter / union if union > 0 else 0.0


def table(name: str, sources: list[Path], cases: list[Case], results: list[Result]) -> list[str]:
    stems = [s.stem for s in sources]
    families = list(dict.fromkeys(c.family for c in cases))
    rows = [f"{name}", f"{'family':10s} {'queries':>7s} {'µAP':>6s} {'flag P':>7s} {'flag R':>7s} {'IoU':>6s} "
            f"{'neg flagged':>11s} {'speed err':>9s} {'s/query':>8s}"]
    negatives = [i for i, c in enumerate(cases) if c.source is None]

    def line(label: str, idx: list[int], ap_idx: list[int]) -> str:
        sc = np.array([results[i].scores.get(s, 0.0) for i in ap_idx for s in stems])
        tr = np.array([cases[i].source == s for i in ap_idx for s in stems])
        ap = micro_ap(sc, tr, int(tr.sum()))
        flagged = np.array([results[i].flagged for i in idx])
        want = np.array([cases[i].full for i in idx])
        prec = (flagged & want).sum() / flagged.sum() if flagged.any() else float("nan")
        rec = (flagged & want).sum() / want.sum() if want.any() else float("nan")
        ious = [iou(results[i].spans.get(cases[i].source, []), cases[i].span) for i in idx if cases[i].source]
        negf = sum(results[i].flagged for i in idx if cases[i].source is None)
        nneg = sum(cases[i].source is None for i in idx)
        secs = np.mean([results[i].seconds for i in idx])
        found = [results[i].speed[cases[i].source] / cases[i].speed for i in idx
                 if cases[i].full and cases[i].source in results[i].speed]
        err = np.mean(np.abs(np.log(found))) if found else np.nan
        return (f"{label:10s} {len(idx):7d} {ap:6.3f} {prec:7.3f} {rec:7.3f} {np.mean(ious) if ious else np.nan:6.3f} "
                f"{negf:>7d}/{nneg:<3d} {err:9.3f} {secs:8.2f}")

    for fam in families:
        idx = [i for i, c in enumerate(cases) if c.family == fam]
        rows.append(line(fam, idx, sorted(set(idx) | set(negatives))))
    everything = list(range(len(cases)))
    rows.append(line("overall", everything, everything))
    return rows


# ------------------------------------------------------------------------------------------------- cost
def cost(args: argparse.Namespace, overrides: dict, video: Path) -> list[str]:
    """Originality of a 30 s video against a synthetic 1000-video catalog vs embedding it (same model)."""
    import shutil
    import tempfile

    from tubelet.catalog.copies import find_copies
    from tubelet.catalog.embed import EmbedOptions, embed_video, load_embedder
    from tubelet.catalog.fingerprint import DIM, FPS
    from tubelet.catalog.search import make_query
    from tubelet.catalog.store import Catalog, VideoEntry, VideoRecord

    model = args.model[-1]
    emb = load_embedder(model, **overrides)
    opts = EmbedOptions()
    work = Path(tempfile.mkdtemp(prefix="copycost-"))
    try:
        root = work / "c"
        cat = Catalog.create(root, emb.info(opts))
        rng = np.random.default_rng(0)
        dim, entries = emb.info(opts).dim, []
        for i in range(args.cost_videos):
            seg = rng.standard_normal((30, dim)).astype(np.float32)
            seg /= np.linalg.norm(seg, axis=1, keepdims=True)
            fp = rng.standard_normal((int(30 * FPS), DIM)).astype(np.float32)
            fp /= np.linalg.norm(fp, axis=1, keepdims=True)
            rec = VideoRecord(f"{i:012x}", f"synthetic/{i}.mp4", f"{i:064x}", 30.0, 25.0, 480, 270, 0, 30, "", {})
            entries.append(VideoEntry(rec, seg.mean(0) / np.linalg.norm(seg.mean(0)), np.arange(30.0),
                                      np.arange(30.0) + 2, seg, (np.arange(int(30 * FPS)) + 0.5) / FPS, fp))
        cat.add(entries, emb.id)
        cat = Catalog.open(root)
        t_embed, t_orig = [], []
        for _ in range(args.cost_repeats):
            t = time.perf_counter()
            embed_video(emb, video, opts)
            t_embed.append(time.perf_counter() - t)
            t = time.perf_counter()
            find_copies(cat, make_query(cat, video))
            t_orig.append(time.perf_counter() - t)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    e, o = min(t_embed), min(t_orig)
    return [f"cost: {video.name} (30 s) against {args.cost_videos} synthetic videos, model {model}, best of "
            f"{args.cost_repeats}: embed {e:.2f} s, originality {o:.2f} s = {o / e:.2f}× embedding "
            f"(load {os.getloadavg()[0]:.1f})"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", default=str(SHARED))
    ap.add_argument("--model", action="append", default=None, help="repeatable; default: runs/demo and vit_tiny")
    ap.add_argument("--set", action="append", default=[], help="overrides for preset models, FIELD=VALUE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--negatives", type=int, default=4)
    ap.add_argument("--per-edit", type=int, default=2)
    ap.add_argument("--clip-s", type=float, default=8.0)
    ap.add_argument("--min-s", type=float, default=6.0)
    ap.add_argument("--hamming", type=int, default=10)
    ap.add_argument("--cache", default="runs/copy_detection")
    ap.add_argument("--cost", action="store_true", help="also measure the 1000-video cost against embedding")
    ap.add_argument("--cost-video", default=None, help="a ≥ 30 s video (default: the longest shared clip cut)")
    ap.add_argument("--cost-videos", type=int, default=1000)
    ap.add_argument("--cost-repeats", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--channels", nargs="+", default=["frames", "frames+crops", "frames+crops+segments", "segments"],
                    help="evidence channel sets to compare (frames: fingerprints; crops: crop views of the "
                         "sources they saw; segments: the model, whitened)")
    args = ap.parse_args()
    args.model = args.model or ["runs/demo", "vit_tiny"]
    from tubelet.config import PRESETS
    from tubelet.settings import model_overrides

    overrides = model_overrides(args.set)
    t = time.perf_counter()
    sources, cases = build_set(args)
    print(f"set: {len(sources)} indexed sources, {len(cases)} queries ({sum(c.source is None for c in cases)} "
          f"never-indexed) from {args.videos}, seed {args.seed}; built/cached in {time.perf_counter() - t:.0f} s")
    out: list[str] = []
    for model in args.model:
        ov = overrides if model in PRESETS else {}
        label = f"tubelet, model {model}" + (f" ({', '.join(args.set)})" if ov else "")
        print(label)
        channels = [tuple(c.split("+")) for c in args.channels]
        work = Path(args.cache) / f"work-{os.getpid()}"  # a catalog of its own: runs side by side do not collide
        for ch, res in zip(channels, run_tubelet(model, ov, sources, cases, work, channels), strict=True):
            rows = table(f"{label}, evidence: {' + '.join(ch)}", sources, cases, res)
            print("\n".join(rows))
            out += rows + [""]
    if not args.no_baseline:
        out += table(f"baseline: pHash at 1 frame/s, Hamming ≤ {args.hamming}", sources, cases,
                     run_phash(sources, cases, args.hamming)) + [""]
    if args.cost:
        from tubelet.catalog.reedits import render

        video = Path(args.cost_video) if args.cost_video else render(
            Path(args.videos) / "tree_wind_cinepak.avi", Path(args.cache) / "cost30.mp4", None, 0, 30)
        out += cost(args, overrides if args.model[-1] in PRESETS else {}, video)
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores)")
    print("\n".join(out))


if __name__ == "__main__":
    main()
