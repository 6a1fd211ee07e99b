"""Latency of `tubelet serve` on a large catalog, over real HTTP to a real uvicorn server.

    python benchmarks/serve_latency.py [--videos 10000] [--segments 10] [--model vit_small --set num_frames=8 ...]

1. Search by catalog id (GET /api/videos/{id}/similar?k=10): p50/p95 over --requests random ids, in a catalog of
   --videos synthetic videos (goal: p50 ≤ 50 ms at 10 000 videos). Peer: the same search called in-process on an
   open catalog (`search(cat, id_query(cat, id))`), so the ratio is what HTTP, JSON and the server add.
   Synthetic videos: a random unit direction per video, each segment that direction plus Gaussian noise
   (σ = 0.5 per unit vector, renormalised), at the model's width; --segments per video (10 → 100 000 segments,
   the largest catalog searched without the HNSW index: block summaries first, then exact, see store.py).
   --catalog DIR keeps the catalog (building it takes minutes) for the next run.
2. Originality of an upload (POST /api/originality, polled every 20 ms until done) against the same catalog, for
   real clips the catalog does not hold. Peer: `embed_video` of the same clip with the same model in this process:
   goal ≤ 2× its embedding time. The server calibrates the copy threshold once per catalog state; that first call
   is reported apart.
Both processes share this machine's cores with whatever else runs: read the ratios, the load average printed,
and the CPU time per request (server process, from /proc; the peer's from process_time), which load inflates
far less than wall time. --threads sets BLAS/torch threads in both (default 1: on a busy machine more threads
spin against each other).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"
sys.path.insert(0, str(ROOT / "tests"))


def synthetic_catalog(root: Path, embedder, videos: int, segments: int, seed: int = 0) -> list[str]:
    """A catalog of `videos` synthetic videos with the embedder's identity (so uploads are embedded with it)."""
    from tubelet.catalog.embed import EmbedOptions
    from tubelet.catalog.store import Catalog, VideoEntry, VideoRecord

    rng = np.random.default_rng(seed)
    cat = Catalog.create(root, embedder.info(EmbedOptions()))
    dim = embedder.model.config.embed_dim
    ids = []
    for lo in range(0, videos, 1000):
        entries = []
        for i in range(lo, min(videos, lo + 1000)):
            base = rng.standard_normal(dim)
            base /= np.linalg.norm(base)
            segs = base + 0.5 * rng.standard_normal((segments, dim)) / np.sqrt(dim)
            segs = (segs / np.linalg.norm(segs, axis=1, keepdims=True)).astype(np.float32)
            vec = segs.mean(0)
            digest = hashlib.sha256(f"synthetic-{i}".encode()).hexdigest()
            rec = VideoRecord(id=digest[:12], path=f"synthetic/{i:05d}.mp4", content_hash=digest,
                              duration_s=float(segments + 1), fps=25.0, width=320, height=180, size_bytes=0,
                              num_segments=segments, added_at=datetime.now(UTC).isoformat(timespec="seconds"),
                              meta={})
            entries.append(VideoEntry(rec, vec / np.linalg.norm(vec), np.arange(segments, dtype=float),
                                      np.arange(segments, dtype=float) + 2.0, segs))
            ids.append(rec.id)
        cat.add(entries, embedder.id)
    return ids


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=10_000)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--model", default="vit_small")
    ap.add_argument("--set", dest="overrides", action="append", default=None,
                    help="model override FIELD=VALUE (default: num_frames=8, image_size=112)")
    ap.add_argument("--clips", type=Path, default=SHARED if SHARED.is_dir() else ROOT / "tubelet/assets/clips")
    ap.add_argument("--uploads", nargs="*", default=["tennis_practice.mp4", "cat_lying_blanket.mp4",
                                                     "bw_film_dialogue.mp4"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-uploads", action="store_true", help="Only the search latency (part 1).")
    ap.add_argument("--catalog", type=Path, help="Keep the synthetic catalog here and reuse it when this script "
                                                 "built it before with the same model, videos and segments.")
    args = ap.parse_args()

    import torch
    from serve_helpers import free_port

    from tubelet.catalog.embed import EmbedOptions, embed_video, load_embedder
    from tubelet.catalog.search import id_query, search
    from tubelet.catalog.store import Catalog
    from tubelet.settings import model_overrides

    torch.set_num_threads(args.threads)
    overrides = model_overrides(args.overrides or ["num_frames=8", "image_size=112"])
    embedder = load_embedder(args.model, **overrides)
    work = Path(tempfile.mkdtemp(prefix="serve-latency-"))
    root = args.catalog or work / "catalog"
    t0 = time.perf_counter()
    if Catalog.exists(root):
        cat = Catalog.open(root)
        st = cat.stats()
        if (cat.model.id, st["videos"], st["segments"]) != (embedder.id, args.videos, args.videos * args.segments):
            raise SystemExit(f"{root}: holds another synthetic catalog; remove it or choose another --catalog")
        ids, build_s = [v.id for v in cat.videos()], None
    else:
        ids = synthetic_catalog(root, embedder, args.videos, args.segments)
        build_s = time.perf_counter() - t0
        cat = Catalog.open(root)
    rng = np.random.default_rng(1)
    picks = [ids[i] for i in rng.integers(0, len(ids), args.requests)]

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tubelet.cli", "serve", "--catalog", str(root),
                               "--port", str(port)],
                              env={**os.environ, "TMPDIR": str(work), **threads_env(args.threads)})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            # 1. search by id
            for vid in picks[:5]:
                client.get(f"/api/videos/{vid}/similar", params={"k": 10}).raise_for_status()
            http_ms = []
            cpu0 = cpu_seconds(server.pid)
            for vid in picks:
                t = time.perf_counter()
                client.get(f"/api/videos/{vid}/similar", params={"k": 10}).raise_for_status()
                http_ms.append(1000 * (time.perf_counter() - t))
            http_cpu = 1000 * (cpu_seconds(server.pid) - cpu0) / len(picks)
            peers = {}  # the catalog warmed as the server's (block summaries when they pass), and a one-shot one
            for name, c in (("warmed", Catalog.open(root)), ("one-shot", Catalog.open(root))):
                if name == "warmed":
                    c.warm()
                for vid in picks[:5]:
                    search(c, id_query(c, vid), 10)
                lib_ms = []
                cpu0 = time.process_time()
                for vid in picks:
                    t = time.perf_counter()
                    search(c, id_query(c, vid), 10)
                    lib_ms.append(1000 * (time.perf_counter() - t))
                peers[name] = (lib_ms, 1000 * (time.process_time() - cpu0) / len(picks), c.stats()["search"])

            # 2. originality of uploads vs embedding them
            def originality(path: Path) -> float:
                t = time.perf_counter()
                with open(path, "rb") as f:
                    job = client.post("/api/originality", files={"file": (path.name, f)}).json()
                while job["status"] in ("queued", "running"):
                    time.sleep(0.02)
                    job = client.get(f"/api/jobs/{job['id']}").json()
                assert job["status"] == "done", job
                return time.perf_counter() - t

            clips = [] if args.no_uploads else [args.clips / n for n in args.uploads if (args.clips / n).is_file()]
            first_s = originality(clips[0]) if clips else 0.0  # loads the model, calibrates the threshold
            opts = EmbedOptions()
            rows = []
            for c in clips:
                embed_video(embedder, c, opts)  # warm-up
                emb = statistics.median(_timed(lambda c=c: embed_video(embedder, c, opts)) for _ in range(2))
                orig = statistics.median(originality(c) for _ in range(2))
                rows.append((c.name, emb, orig))
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    st = cat.stats()
    st["search"] = peers["warmed"][2]  # what the server uses (it warms its catalog)
    print(f"\nserve latency — {st['videos']} videos, {st['segments']} segments ({st['search']} search), model "
          f"{args.model} {overrides} (dim {embedder.model.config.embed_dim}); catalog "
          f"{'reused' if build_s is None else f'built in {build_s:.0f} s'}; "
          f"load average {load[0]:.1f} on {os.cpu_count()} cores\n")
    print("| search by catalog id, k=10 | p50 ms | p95 ms | mean ms | CPU ms/request | goal |")
    print("|---|---|---|---|---|---|")
    print(f"| HTTP GET /api/videos/{{id}}/similar ({len(picks)} requests) | {pct(http_ms, 50):.1f} | "
          f"{pct(http_ms, 95):.1f} | {np.mean(http_ms):.1f} | {http_cpu:.1f} (server) | p50 ≤ 50 ms: "
          f"{'met' if pct(http_ms, 50) <= 50 else 'NOT met'} |")
    for name, (lib_ms, lib_cpu, mode) in peers.items():
        print(f"| peer: in-process search(), {name} catalog ({mode}) | {pct(lib_ms, 50):.1f} | {pct(lib_ms, 95):.1f} | "
              f"{np.mean(lib_ms):.1f} | {lib_cpu:.1f} | |")
    lib_ms, lib_cpu, _ = peers["warmed"]
    print(f"| ratio HTTP / in-process warmed | {pct(http_ms, 50) / pct(lib_ms, 50):.2f}× (p50) | | | "
          f"{http_cpu / lib_cpu:.2f}× | |")
    if not rows:
        return
    print("\n| upload | embed_video s (peer) | POST /api/originality → done, s | ratio | goal ≤ 2× |")
    print("|---|---|---|---|---|")
    for name, emb, orig in rows:
        print(f"| {name} | {emb:.2f} | {orig:.2f} | {orig / emb:.2f}× | {'met' if orig <= 2 * emb else 'NOT met'} |")
    print(f"\nfirst originality request (loads the model, calibrates the copy threshold on {st['segments']} "
          f"segments): {first_s:.2f} s")


def threads_env(n: int) -> dict[str, str]:
    return {k: str(n) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
