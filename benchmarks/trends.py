"""Interest clusters, cold start and trends on a synthetic upload stream built from real clips.

    python benchmarks/trends.py --model runs/demo/run/checkpoints/step_00000300 [--model vit_tiny ...]
    python benchmarks/trends.py --held-out            # the same stream recipe from the other half of the clips
    python benchmarks/trends.py --scale 100000        # synthetic videos: clusters + trends timing
    python benchmarks/trends.py --recommend-cost 300,2000   # synthetic videos: one cold-start query's affinity

The stream (seeded, every knob an option): topics are source clips of ../shared/data/videos; each upload is a short
excerpt of one topic (random start) with one or two random light re-edits — crop, colour, mirror, caption, low
resolution, 9:16 re-frame — uploaded at a time over `--days` days. Most topics are steady (a constant rate), some
emerge late (nothing before their start day, then a high rate), one fades (high at first, nothing after its end
day). The clips are split in two halves by a hash of their name: the default stream draws its topics from one
half, `--held-out` from the other, so a recipe tuned on one is scored on clips it has never seen. Rendered
uploads are cached by their recipe (`--cache`), so reruns only embed.

Each model gets a fresh catalog (`tubelet index add MANIFEST.jsonl`, `uploaded_at` in days), then runs
`tubelet clusters`, `tubelet recommend` and `tubelet trends` through the real CLI and prints: the adjusted Rand
index and purity of the clusters against the topics (noise counts as its own label for ARI and as wrong for
purity), for each emerging topic its rank among the rising trends and the first day it is detected (trends run on
the catalog as it stood each day, from its start day), false trends among the top 3 (steady topics), whether the
fading topic is reported fading, cold-start precision@10 (three liked uploads of one topic → share of the 10
recommendations `tubelet recommend` returns that are from that topic, averaged over topics; for the k-means rows
the same rule on their clusters and vectors) and seconds per command. The baseline in the same run:
k-means (k = the number of topics, told the answer) on each upload's mean thumbnail colour histogram, with the
same trend and recommendation rules on its clusters; and, per model, the same k-means on tubelet's own vectors —
the ceiling the encoder allows, which tells an encoder too weak to separate the topics from a clustering that
splits them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"
EDITS = ("crop", "colour", "mirror", "caption", "lowres", "reframe")
MIN_CLIP_S = 5.0  # a topic's clip must hold excerpts from different places


# ----------------------------------------------------------------------------------------------- the stream
@dataclass
class StreamConfig:
    """Everything that decides a stream: same config, same uploads (byte for byte, given the clips)."""

    seed: int = 0
    held_out: bool = False  # topics from the other half of the clips
    days: int = 30
    steady: int = 6  # topics with a constant rate
    emerging: int = 2  # topics that start late
    fading: int = 1  # topics that stop early
    steady_rate: float = 0.9  # uploads per day
    burst_rate: float = 2.5  # uploads per day of an emerging topic once it started, of a fading one before it ends
    emerge_from: float = 0.55  # emerging topics start between these fractions of the stream
    emerge_to: float = 0.75
    fade_at: float = 0.4  # the fading topic's last upload is before this fraction of the stream
    excerpt_s: float = 3.0
    fps: int = 15
    size: int = 240  # short side of a rendered upload (low-resolution ones are smaller)


@dataclass
class Upload:
    path: str
    topic: str  # the source clip's name
    kind: str  # steady | emerging | fading
    uploaded_at: float  # days since the stream began
    start_s: float  # excerpt start in the source
    edits: list[str] = field(default_factory=list)


@dataclass
class Stream:
    config: StreamConfig
    uploads: list[Upload]
    starts: dict[str, float]  # emerging topic → its first day
    kinds: dict[str, str]  # topic → steady | emerging | fading


def clip_pool(videos: Path, held_out: bool) -> list[Path]:
    """Clips long enough to be topics, in one of two fixed halves (by a hash of the name)."""
    from tubelet.data import probe

    pool = []
    for p in sorted(videos.iterdir()):
        if p.suffix.lower() not in {".mp4", ".webm", ".avi", ".mkv", ".ogv", ".mov"}:
            continue
        if (int(hashlib.sha256(p.name.encode()).hexdigest(), 16) % 2 == 1) != held_out:
            continue
        if probe(p).duration_s >= MIN_CLIP_S:
            pool.append(p)
    return pool


def plan_stream(cfg: StreamConfig, videos: Path) -> tuple[list[tuple[Path, str, float, float, list[str]]],
                                                           dict[str, float], dict[str, str]]:
    """(source, kind, day, excerpt start, edits) per upload sorted by time; emerging starts; kinds."""
    from tubelet.data import probe

    rng = np.random.default_rng(cfg.seed)
    pool = clip_pool(videos, cfg.held_out)
    need = cfg.steady + cfg.emerging + cfg.fading
    if len(pool) < need:
        raise SystemExit(f"{videos}: {len(pool)} clips of {MIN_CLIP_S:.0f} s or more in this half, need {need}")
    chosen = [pool[i] for i in rng.choice(len(pool), need, replace=False)]
    kinds = ["steady"] * cfg.steady + ["emerging"] * cfg.emerging + ["fading"] * cfg.fading
    plan, starts = [], {}
    for src, kind in zip(chosen, kinds, strict=True):
        if kind == "steady":
            lo, hi, rate = 0.0, cfg.days, cfg.steady_rate
        elif kind == "emerging":
            lo = float(rng.uniform(cfg.emerge_from, cfg.emerge_to) * cfg.days)
            hi, rate = cfg.days, cfg.burst_rate
            starts[src.name] = lo
        else:
            lo, hi, rate = 0.0, cfg.fade_at * cfg.days, cfg.burst_rate
        n = max(3, int(rng.poisson(rate * (hi - lo))))
        duration = probe(src).duration_s
        for day in np.sort(rng.uniform(lo, hi, n)):
            k = 1 + int(rng.random() < 0.4)
            edits = sorted(rng.choice(len(EDITS), k, replace=False).tolist())
            start = float(rng.uniform(0, max(0.0, duration - cfg.excerpt_s - 0.1)))
            plan.append((src, kind, float(day), round(start, 2), [EDITS[e] for e in edits]))
    plan.sort(key=lambda p: p[2])
    return plan, starts, {src.name: kind for src, kind in zip(chosen, kinds, strict=True)}


def _even(x: float) -> int:
    return max(16, int(round(x / 2)) * 2)


def render(src: Path, start_s: float, edits: list[str], cfg: StreamConfig, seed: int, dst: Path) -> None:
    """Excerpt [start, start + excerpt_s) of src at cfg.fps, re-edited, as H.264 (written to a temp name first)."""
    import av
    from PIL import Image, ImageDraw

    from tubelet.data import read_frames_at

    rng = np.random.default_rng(seed)
    times = (start_s + np.arange(int(cfg.excerpt_s * cfg.fps)) / cfg.fps).tolist()
    frames, _ = read_frames_at(src, times, size=cfg.size)
    frames = frames.numpy()  # [T, H, W, 3] uint8
    t, h, w, _ = frames.shape
    if "crop" in edits:  # a random 70–90 % window, scaled back up
        s = rng.uniform(0.7, 0.9)
        ch, cw = int(h * s), int(w * s)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        frames = frames[:, y:y + ch, x:x + cw]
    if "reframe" in edits:  # 9:16 portrait: the middle column (off-centre a little), like a phone re-post
        fh, fw = frames.shape[1:3]
        cw = min(fw, int(fh * 9 / 16))
        x = int(np.clip((fw - cw) / 2 + rng.uniform(-0.15, 0.15) * fw, 0, fw - cw))
        frames = frames[:, :, x:x + cw]
    if "mirror" in edits:
        frames = frames[:, :, ::-1]
    out = frames.astype(np.float32)
    if "colour" in edits:  # gain per channel, brightness, contrast, saturation
        gain = rng.uniform(0.8, 1.2, 3)
        grey = out.mean(-1, keepdims=True)
        sat = rng.uniform(0.6, 1.4)
        out = grey + (out - grey) * sat
        out = (out - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-25, 25)
        out = out * gain
    frames = np.clip(out, 0, 255).astype(np.uint8)
    fh, fw = frames.shape[1:3]
    scale = cfg.size / min(fh, fw)
    if "lowres" in edits:
        scale *= rng.uniform(0.3, 0.45)
    ow, oh = _even(fw * scale), _even(fh * scale)
    images = [Image.fromarray(f).resize((ow, oh), Image.BILINEAR) for f in frames]
    if "caption" in edits:  # a bar with words across the lower third
        words = " ".join(rng.choice(["wow", "look", "new", "best", "day", "this", "so", "fun", "omg", "top"], 4))
        bar_h = max(10, oh // 7)
        y0 = int(oh * rng.uniform(0.65, 0.85))
        for im in images:
            d = ImageDraw.Draw(im)
            d.rectangle([0, y0, ow, min(oh, y0 + bar_h)], fill=(0, 0, 0))
            d.text((4, y0 + 1), words.upper(), fill=(255, 255, 255))
    tmp = dst.with_name(f".{dst.name}.tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=cfg.fps)
        stream.width, stream.height, stream.pix_fmt = ow, oh, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for i, im in enumerate(images):
            f = av.VideoFrame.from_ndarray(np.asarray(im), format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, cfg.fps)
            for packet in stream.encode(f):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(dst)


def build_stream(cfg: StreamConfig, videos: Path, cache: Path) -> Stream:
    """Plan the stream and render the uploads not yet in the cache."""
    plan, starts, kinds = plan_stream(cfg, videos)
    cache.mkdir(parents=True, exist_ok=True)
    uploads = []
    t0 = time.perf_counter()
    for i, (src, kind, day, start, edits) in enumerate(plan):
        recipe = json.dumps([src.name, start, edits, asdict(cfg), i], sort_keys=True)
        key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
        dst = cache / f"{src.stem}-{key}.mp4"
        if not dst.exists():
            render(src, start, edits, cfg, int(key, 16) % 2**32, dst)
        uploads.append(Upload(str(dst), src.name, kind, round(day, 4), start, edits))
        if (i + 1) % 25 == 0 or i + 1 == len(plan):
            print(f"  stream: {i + 1}/{len(plan)} uploads ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return Stream(cfg, uploads, starts, kinds)


def write_manifest(uploads: list[Upload], path: Path) -> None:
    path.write_text("".join(json.dumps({"path": u.path, "uploaded_at": u.uploaded_at, "creator": f"u{i % 17}"}) + "\n"
                            for i, u in enumerate(uploads)))


# ----------------------------------------------------------------------------------------------- measuring
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: day 0 of the stream
DAY = 86400.0
WINDOW_DAYS = 7
DETECT_WITHIN = 4  # days
LIKED = 3  # liked uploads per cold-start query


def iso(day: float) -> str:
    from tubelet.insights.times import format_time

    return str(format_time(T0 + day * DAY, True))


def cli(*args: str) -> tuple[dict, float]:
    """Run `tubelet ARGS --json` in a fresh process → (parsed stdout, seconds)."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "tubelet.cli", *args, "--json"], capture_output=True, text=True,
                       cwd=ROOT)
    took = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"tubelet {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout), took


def ari_purity(topics: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Adjusted Rand index (noise as one more label) and purity (noise counted wrong)."""
    from sklearn.metrics import adjusted_rand_score

    right = sum(np.unique(topics[labels == c], return_counts=True)[1].max() for c in set(labels.tolist()) if c >= 0)
    return float(adjusted_rand_score(topics, labels)), right / len(topics)


def topic_cluster(topics: np.ndarray, labels: np.ndarray, topic: str) -> int:
    """The cluster holding most of a topic's uploads (−1 if they are mostly noise)."""
    lab, n = np.unique(labels[topics == topic], return_counts=True)
    return int(lab[np.argmax(n)])


def majority_topic(topics: np.ndarray, labels: np.ndarray, cluster: int) -> str:
    t, n = np.unique(topics[labels == cluster], return_counts=True)
    return str(t[np.argmax(n)])


@dataclass
class Scores:
    method: str
    ari: float
    purity: float
    clusters: int
    noise: float
    emerging: list[tuple[str, int | None, float | None]]  # topic, rank on its start + DETECT_WITHIN, detection lag
    false_top3: int
    fading_found: bool
    precision10: float
    seconds: dict[str, float] = field(default_factory=dict)


def evaluate(method: str, stream: Stream, cluster_fn, trends_fn, recommend_fn, seconds: dict[str, float]) -> Scores:
    """Quality of one method, given `cluster_fn(mask) → labels` that clusters the uploads `mask` selects,
    `trends_fn(mask, their labels, now) → TrendReport` (labels numbered as the report's clusters) and
    `recommend_fn(liked rows, labels of all uploads) → the rows of the 10 uploads it recommends`."""
    topics = np.array([u.topic for u in stream.uploads])
    days = np.array([u.uploaded_at for u in stream.uploads])
    labels = cluster_fn(np.ones(len(topics), bool))
    ari, purity = ari_purity(topics, labels)
    # emerging: each day from its start, the uploads seen by then are clustered afresh and trends are asked
    emerging = []
    for topic, start in sorted(stream.starts.items(), key=lambda kv: kv[1]):
        best, found = None, None
        for day in np.arange(np.ceil(start), stream.config.days + 1):
            seen = days <= day
            if (topics[seen] == topic).sum() < 2:
                continue
            lab = cluster_fn(seen)
            report, lab = trends_fn(seen, lab, float(day))
            rising = [t.cluster for t in report.trends if t.direction == "rising"]
            mine = topic_cluster(topics[seen], lab, topic)
            if mine < 0 or mine not in rising or majority_topic(topics[seen], lab, mine) != topic:
                continue
            rank = rising.index(mine) + 1
            best = rank if best is None else min(best, rank)
            if rank <= 2:
                found = (rank, float(day - start))
                break
        emerging.append((topic, *(found or (best, None))))
    report, split = trends_fn(np.ones(len(topics), bool), labels, float(days.max()))
    top3 = [t for t in report.trends if t.direction == "rising"][:3]
    false_top3 = sum(stream.kinds[majority_topic(topics, split, t.cluster)] != "emerging" for t in top3)
    fading = [t for t in report.trends if t.direction == "fading"]
    fading_found = all(any(majority_topic(topics, split, t.cluster) == topic for t in fading)
                       for topic, kind in stream.kinds.items() if kind == "fading")
    # cold start: LIKED uploads of each topic → share of the 10 recommendations from it
    rng = np.random.default_rng(stream.config.seed + 1)
    precision = []
    for topic in sorted(stream.kinds):
        rows = np.flatnonzero(topics == topic)
        liked = rng.choice(rows, min(LIKED, len(rows)), replace=False)
        top = np.asarray(recommend_fn(liked, labels), np.int64)
        precision.append(float((topics[top] == topic).sum() / 10))
    return Scores(method, ari, purity, int(labels.max()) + 1, float((labels < 0).mean()), emerging, false_top3,
                  fading_found, float(np.mean(precision)), seconds)


def catalog_rows(catalog, uploads: list[Upload]) -> list[int]:
    """Each upload's row in `catalog.video_vectors()` order, found by its content: two uploads that are the very
    same bytes (the same excerpt with the same re-edit: seed 9 drew one) are one catalog video."""
    from tubelet.catalog.embed import file_sha256

    ids, _ = catalog.video_vectors()
    pos = {v: i for i, v in enumerate(ids)}
    row = {v.content_hash: pos[v.id] for v in catalog.videos()}
    return [row[file_sha256(u.path)] for u in uploads]


def tubelet_run(stream: Stream, model: str, overrides: list[str], work: Path) -> tuple[Scores, np.ndarray]:
    """Index the stream with `model` through the CLI, time each command, score the stored clustering → (scores,
    the uploads' vectors in the clustering's space)."""
    from tubelet.catalog.store import Catalog
    from tubelet.insights.affinity import features
    from tubelet.insights.clusters import ClusterParams, fit, load
    from tubelet.insights.recommend import recommend
    from tubelet.insights.trends import trends_with_groups

    manifest = work / "uploads.jsonl"
    manifest.write_text("".join(json.dumps({"path": u.path, "uploaded_at": iso(u.uploaded_at),
                                            "creator": f"u{i % 17}"}) + "\n" for i, u in enumerate(stream.uploads)))
    cat = work / "catalog"
    sets = [a for o in overrides for a in ("--set", o)]
    seconds = {}
    _, seconds["index add"] = cli("index", "add", str(manifest), "--catalog", str(cat), "--model", model, *sets)
    _, seconds["clusters"] = cli("clusters", "--catalog", str(cat), "--out", str(work / "out"))
    catalog = Catalog.open(cat)
    ids, vectors = catalog.video_vectors()
    rows = catalog_rows(catalog, stream.uploads)
    liked = [ids[r] for r, u in zip(rows, stream.uploads, strict=True) if u.kind == "steady"][:LIKED]
    _, seconds["recommend"] = cli("recommend", "--catalog", str(cat), *[a for v in liked for a in ("--liked", v)])
    _, seconds["trends"] = cli("trends", "--catalog", str(cat), "--window", f"{WINDOW_DAYS}d", "--out",
                               str(work / "out"))
    stored = load(catalog)
    label = stored.label_of()
    full = np.array([label[ids[r]] for r in rows])
    raw = vectors[rows]
    feats = features(catalog, [ids[r] for r in rows])
    days = np.array([u.uploaded_at for u in stream.uploads])
    fits = {}

    def cluster_fn(mask: np.ndarray) -> np.ndarray:
        if mask.all():
            return full  # the clustering the CLI stored
        fits[mask.tobytes()] = c = fit([str(i) for i in range(int(mask.sum()))], raw[mask], ClusterParams(),
                                       feats=feats.subset(np.flatnonzero(mask)))
        return c.labels

    def trends_fn(mask: np.ndarray, labels: np.ndarray, now: float):  # what `tubelet trends` reports
        c, f, names = ((stored, feats, [ids[r] for r in rows]) if mask.all() else
                       (fits[mask.tobytes()], feats.subset(np.flatnonzero(mask)), [str(i) for i in range(len(labels))]))
        report, labels, _ = trends_with_groups(days[mask], labels, WINDOW_DAYS, None, now, c.num_clusters,
                                               partial(c.near, f, names))
        return report, labels

    upload = {ids[r]: i for i, r in enumerate(rows)}

    def recommend_fn(liked: np.ndarray, labels: np.ndarray) -> list[int]:  # what `tubelet recommend` returns
        return [upload[r.id] for r in recommend(catalog, stored, [ids[rows[i]] for i in liked], 10)]

    return evaluate(f"tubelet {Path(model).name}", stream, cluster_fn, trends_fn, recommend_fn, seconds), \
        stored.space(raw)


def colour_features(stream: Stream) -> np.ndarray:
    """Baseline features: the joint 4×4×4 colour histogram of three thumbnails (¼, ½, ¾ of each upload)."""
    from tubelet.data import read_frames_at

    out = []
    for u in stream.uploads:
        frames, _ = read_frames_at(u.path, [0.25 * stream.config.excerpt_s, 0.5 * stream.config.excerpt_s,
                                            0.75 * stream.config.excerpt_s], size=32)
        q = frames.numpy().reshape(-1, 3) // 64
        h = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(np.float64)
        out.append(np.sqrt(h / h.sum()))  # Hellinger: Euclidean on square roots
    return np.array(out)


def kmeans_run(method: str, stream: Stream, x: np.ndarray, took: dict[str, float]) -> Scores:
    """k-means on features x [N, D], told the number of topics, scored by the same rules."""
    from sklearn.cluster import KMeans

    k = len(stream.kinds)

    def cluster_fn(mask: np.ndarray) -> np.ndarray:
        return KMeans(min(k, int(mask.sum())), n_init=10, random_state=0).fit_predict(x[mask])

    t = time.perf_counter()
    cluster_fn(np.ones(len(x), bool))
    took["clusters"] = time.perf_counter() - t
    from tubelet.insights.trends import find_trends

    days = np.array([u.uploaded_at for u in stream.uploads])

    def trends_fn(mask: np.ndarray, labels: np.ndarray, now: float):  # the trend rule on the clusters alone
        return find_trends(days[mask], labels, WINDOW_DAYS, now=now), labels

    return evaluate(method, stream, cluster_fn, trends_fn, nearest(x / np.linalg.norm(x, axis=1, keepdims=True)),
                    took)


def nearest(z: np.ndarray):
    """The cold-start rule of tubelet's vector path (recommend.py) on unit vectors z [N, D] of the uploads."""
    from tubelet.insights.recommend import scores

    def recommend_fn(liked: np.ndarray, labels: np.ndarray) -> np.ndarray:
        s = scores((1 + (z @ z[liked].T).max(1)) / 2, labels, labels[liked])
        s[liked] = -np.inf
        return np.argsort(-s, kind="stable")[:10]

    return recommend_fn


def baseline_run(stream: Stream) -> Scores:
    """The baseline: k-means on thumbnail colour histograms, told the number of topics."""
    t = time.perf_counter()
    x = colour_features(stream)
    return kmeans_run("colour k-means (k told)", stream, x, {"features": time.perf_counter() - t})


def table(rows: list[Scores], stream: Stream) -> str:
    head = ("| method | ARI | purity | clusters | noise | emerging: rank, days to top 2 | false in top 3 | "
            "fading found | cold-start P@10 | seconds per command |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        em = "; ".join(f"{Path(t).stem[:14]} #{rank if rank else '–'}, {f'{lag:.0f} d' if lag is not None else 'never'}"
                       for t, rank, lag in r.emerging)
        secs = ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items())
        lines.append(f"| {r.method} | {r.ari:.3f} | {r.purity:.3f} | {r.clusters} | {r.noise:.0%} | {em} | "
                     f"{r.false_top3} | {'yes' if r.fading_found else 'no'} | {r.precision10:.3f} | {secs} |")
    n = len(stream.uploads)
    kinds = ", ".join(f"{sum(k == x for k in stream.kinds.values())} {x}" for x in ("steady", "emerging", "fading"))
    lines.append(f"\n{n} uploads over {stream.config.days} days, {len(stream.kinds)} topics ({kinds}); "
                 f"{'held-out' if stream.config.held_out else 'default'} clips, seed {stream.config.seed}; "
                 f"emerging starts: " + ", ".join(f"{Path(t).stem} day {d:.1f}" for t, d in stream.starts.items()))
    return "\n".join(lines)


def scale(n: int, dim: int, topics: int, seed: int = 0) -> None:
    """Clusters + trends over n synthetic videos: topic centres in a narrow cone (as a barely trained encoder
    gives), videos scattered around them, 5 % uniform noise, upload times over 30 days; the peer in the same run
    is scikit-learn's MiniBatchKMeans told the number of topics."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score

    from tubelet.insights.clusters import ClusterParams, fit
    from tubelet.insights.trends import find_trends, trends_with_groups

    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    centres = common * 4 + rng.normal(size=(topics, dim))
    topic = rng.integers(0, topics, n)
    x = centres[topic] + 0.35 * rng.normal(size=(n, dim))
    stray = rng.random(n) < 0.05
    x[stray] = common * 4 + 1.5 * rng.normal(size=(int(stray.sum()), dim))
    topic[stray] = -1
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    days = rng.uniform(0, 30, n)
    ids = [f"v{i}" for i in range(n)]
    t, c = time.perf_counter(), time.process_time()
    clustering = fit(ids, x, ClusterParams())
    t_fit, c_fit = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    report = find_trends(days, clustering.labels, 7.0, 1.0)
    t_trends, c_trends = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    km = MiniBatchKMeans(topics, n_init=3, random_state=0, batch_size=4096).fit_predict(x)
    t_km, c_km = time.perf_counter() - t, time.process_time() - c
    keep = topic >= 0
    ari = adjusted_rand_score(topic[keep], clustering.labels[keep])
    ari_km = adjusted_rand_score(topic[keep], km[keep])
    print(f"| {n} videos × {dim} dims, {topics} topics | seconds | CPU seconds | ARI (topic videos) |\n"
          "|---|---|---|---|")
    print(f"| tubelet clusters (HDBSCAN on {clustering.info['fitted_videos']}, rest placed) | {t_fit:.1f} | "
          f"{c_fit:.1f} | {ari:.3f} ({clustering.num_clusters} clusters, {(clustering.labels < 0).mean():.0%} noise) |")
    print(f"| tubelet trends (30 daily periods) | {t_trends:.2f} | {c_trends:.2f} | {len(report.trends)} trends |")
    print(f"| tubelet clusters + trends | {t_fit + t_trends:.1f} | {c_fit + c_trends:.1f} | goal < 60 s |")
    print(f"| peer: MiniBatchKMeans (k told) | {t_km:.1f} | {c_km:.1f} | {ari_km:.3f} |")
    print(f"| ratio tubelet / peer | {(t_fit + t_trends) / t_km:.2f} | {(c_fit + c_trends) / c_km:.2f} | |")
    m = min(n, ClusterParams().affinity_max)
    feats = synthetic_features(topic[:m], x[:m], rng)
    t, c = time.perf_counter(), time.process_time()
    on_affinity = fit(ids[:m], x[:m], ClusterParams(), feats=feats)
    t_aff, c_aff = time.perf_counter() - t, time.process_time() - c
    keep = topic[:m] >= 0
    print(f"| tubelet clusters on the affinity, the largest catalog that takes it ({m} videos, synthetic items) | "
          f"{t_aff:.1f} | {c_aff:.1f} | {adjusted_rand_score(topic[:m][keep], on_affinity.labels[keep]):.3f} |")
    t, c = time.perf_counter(), time.process_time()
    _, _, groups = trends_with_groups(days[:m], on_affinity.labels, 7.0, 1.0, 30.0, on_affinity.num_clusters,
                                      partial(on_affinity.near, feats, ids[:m]))
    t_new, c_new = time.perf_counter() - t, time.process_time() - c
    print(f"| tubelet trends with new groups and rising parts there ({int((days[:m] > 23).sum())} recent videos "
          f"against all) | {t_new:.1f} | {c_new:.1f} | {sum(g.kind == 'new' for g in groups)} new groups, "
          f"{sum(g.kind == 'part' for g in groups)} rising parts |")
    print(f"\nload average {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")


def synthetic_features(topic: np.ndarray, x: np.ndarray, rng: np.random.Generator):
    """Affinity items shaped like a 3 s upload's (6 fingerprint pairs, their 16 crop views, 2 segments, 6 colour
    histograms; a quarter of the videos portrait, the others with COLUMNS 9:16 columns among their crop views and
    as column views near their frames), scattered around a per-topic pattern (strays: their own): for timing the
    affinity path."""
    from tubelet.catalog.fingerprint import COLOURS, DIM, ranked_histograms
    from tubelet.insights.affinity import COLUMNS, Crops, Features, Items

    def unit(a: np.ndarray) -> np.ndarray:
        return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)

    n = len(topic)
    key = np.where(topic >= 0, topic, topic.max() + 1 + np.arange(n))
    base = rng.normal(size=(int(key.max()) + 1, 6, 2 * DIM))
    pairs = unit(base[key] + 0.5 * rng.normal(size=(n, 6, 2 * DIM)))
    owner = np.repeat(np.arange(n), 6)
    frames = Items(pairs.reshape(-1, 2 * DIM), owner, n)
    portrait = rng.random(n) < 0.25
    crops = [unit(p[None] + 0.5 * rng.normal(size=(16 + (0 if v else COLUMNS), 6, 2 * DIM))).reshape(-1, 2 * DIM)
             for p, v in zip(pairs, portrait, strict=True)]
    columns = [np.zeros((0, 2 * DIM), np.float32) if v else  # a column is like its video's frames, a little off
               unit(p[None] + 0.05 * rng.normal(size=(COLUMNS, 6, 2 * DIM))).reshape(-1, 2 * DIM)
               for p, v in zip(pairs, portrait, strict=True)]
    segs = unit(np.repeat(x, 2, axis=0) + 0.1 * rng.normal(size=(2 * n, x.shape[1])))
    mirror = Items(-frames.vectors, owner, n)
    hues = unit(np.abs(rng.normal(size=(int(key.max()) + 1, 1, COLOURS))[key] + rng.normal(size=(n, 6, COLOURS))))
    hues = hues.reshape(-1, COLOURS)
    return Features(frames, mirror, frames, mirror, Crops.given(crops), Items(segs, np.repeat(np.arange(n), 2), n),
                    Items(hues, owner, n), Items(ranked_histograms(255 * hues), owner, n), Crops.given(columns),
                    portrait)


def recommend_cost(sizes: list[int], liked: int = 3, seed: int = 0) -> None:
    """One cold-start query on the affinity path (recommend.py `_by_affinity`: the catalog's features, then `liked`
    catalog videos against all) over synthetic videos shaped like 3 s uploads (7 stored fingerprints with their
    thumbnails, 16:9, 2 segment vectors; 20 topics). Before: every catalog video's crop views made up front (what
    recommend did until the views were made on first use); after: only those the query compares crops with. The
    reference statistics are fixed (timing does not depend on them); the two affinities must be equal."""
    from tubelet.catalog.fingerprint import COLOURS, DIM, PATCH
    from tubelet.insights.affinity import STATISTICS, Reference, Source, affinity, features_of

    print("| videos | before (s) | after (s) | crop views made | ratio before / after |\n|---|---|---|---|---|")
    for n in sizes:
        rng = np.random.default_rng(seed)
        topic = rng.integers(0, 20, n)
        base = rng.integers(0, 256, (20, PATCH, PATCH))
        sources = []
        for t in topic:
            thumbs = np.clip(base[t] + rng.normal(0, 40, (7, PATCH, PATCH)), 0, 255).astype(np.uint8)
            fp = rng.normal(size=(7, DIM)).astype(np.float32)
            sources.append(Source(np.arange(7) * 0.5, fp / np.linalg.norm(fp, axis=1, keepdims=True), thumbs,
                                  1280, 720, rng.normal(size=(2, 192)).astype(np.float32),
                                  rng.integers(0, 256, (7, COLOURS)).astype(np.uint8)))
        mine = np.sort(rng.choice(n, liked, replace=False))
        stats = np.tile(np.array([0.5, 0.05], np.float32), (n, len(STATISTICS), 1))
        out = {}
        for when in ("before", "after"):
            t0 = time.perf_counter()
            feats = features_of(sources)
            if when == "before":
                [feats.crops[j] for j in range(n)]
            out[when] = affinity(feats.subset(mine), Reference(feats, stats), seed, own=mine)[0]
            out[when + " s"] = time.perf_counter() - t0
        made = feats.crops.made()
        assert np.array_equal(out["before"], out["after"])
        print(f"| {n} | {out['before s']:.2f} | {out['after s']:.2f} | {made} of {n} | "
              f"{out['before s'] / out['after s']:.1f} |")
    print(f"\n{liked} liked catalog videos per query; load average "
          f"{' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None,
                    help="Checkpoint or preset (repeat). Default: runs/demo's newest checkpoint and vit_tiny.")
    ap.add_argument("--set", action="append", default=[], dest="overrides",
                    help="Config override for preset models (default for presets: num_frames=8 image_size=112).")
    ap.add_argument("--videos", type=Path, default=SHARED)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tubelet-trends-cache")
    ap.add_argument("--work", type=Path, default=None, help="Keep catalogs and pictures here (default: a temp dir).")
    for f in StreamConfig.__dataclass_fields__.values():
        kind = {"action": "store_true"} if f.type == "bool" else {"type": type(f.default), "default": f.default}
        ap.add_argument(f"--{f.name.replace('_', '-')}", **kind)
    ap.add_argument("--scale", type=int, default=0, help="Instead: clusters + trends timing on this many "
                                                           "synthetic videos (e.g. 100000).")
    ap.add_argument("--recommend-cost", default="", help="Instead: one cold-start query's affinity, before and "
                                                          "after making crop views on first use, at these "
                                                          "catalog sizes (e.g. 300,2000).")
    args = ap.parse_args()
    if args.recommend_cost:
        recommend_cost([int(x) for x in args.recommend_cost.split(",")], seed=args.seed)
        return
    if args.scale:
        scale(args.scale, 192, 200, args.seed)
        return
    cfg = StreamConfig(**{f: getattr(args, f) for f in StreamConfig.__dataclass_fields__})
    models = args.model or [str(latest_demo()), "vit_tiny"]
    stream = build_stream(cfg, args.videos, args.cache)
    work = args.work or Path(tempfile.mkdtemp(prefix="tubelet-trends-"))
    rows = []
    for i, model in enumerate(models):
        preset = not Path(model).exists()
        overrides = args.overrides or (["num_frames=8", "image_size=112"] if preset else [])
        print(f"indexing {len(stream.uploads)} uploads with {model} {' '.join(overrides)} …", file=sys.stderr)
        d = work / f"model{i}"
        d.mkdir(parents=True, exist_ok=True)
        scores, z = tubelet_run(stream, model, overrides, d)
        scores.method += " (random init)" if preset else ""
        # the encoder's ceiling: k-means told the answer on the same vectors (a low figure here is the encoder's
        # limit, not the clustering's)
        rows += [scores, kmeans_run(f"k-means (k told) on {Path(model).name} vectors", stream, z, {})]
    rows.append(baseline_run(stream))
    print(table(rows, stream))
    print(f"\nload average {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}; pictures in {work}")


def latest_demo() -> Path:
    runs = sorted((ROOT / "runs" / "demo").glob("**/checkpoints/step_*"))  # not its reconstructions' PNGs
    if not runs:
        raise SystemExit("no runs/demo checkpoint: train one with `make demo` or give --model")
    return runs[-1]


if __name__ == "__main__":
    main()
