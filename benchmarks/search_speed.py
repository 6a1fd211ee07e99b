"""Catalog speed: the vector-store comparison and end-to-end embedding throughput.

    python benchmarks/search_speed.py stores [--sizes 100000 1000000] [--out benchmarks/store_comparison.md]
    python benchmarks/search_speed.py            # the same, at 100k

Stores. Recall on random vectors says nothing, so the corpus is synthesised from statistics measured on real
window embeddings of the shared clips (tubelet's own `embed_video`): a hierarchical Gaussian model — videos scatter
around the corpus mean with the measured between-video spectrum, segments wander around their video with the
measured within-video spectrum and lag-1 autocorrelation — spectra extended past their measured rank by a
power-law fit. Queries are fresh videos from the same model. Each store builds in one subprocess and is
queried in a fresh one (memory = peak RSS growth from opening the store to the last query); a build that runs
past --cap-s is stopped and reported as capped.

End-to-end embedding throughput (tubelet's engines against transformers) is benchmarks/embed_speed.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
THREADS = 2
K = 10


# ----------------------------------------------------------------------------------------------- corpus model
@dataclass
class CorpusStats:
    """Real window embeddings reduced to what the generator needs."""

    between: list[float]  # eigenvalues of the covariance of video means, descending, length D
    within: list[float]  # eigenvalues of the covariance of segments around their video mean, length D
    mean_ratio: float  # |corpus mean| / sqrt(total variance)
    rho: float  # lag-1 autocorrelation of consecutive segments' deviations from their video mean
    segments_per_video: float
    source: str


def _extend_spectrum(eig: np.ndarray, rank: int, dim: int) -> np.ndarray:
    """Keep the measured eigenvalues up to `rank`; continue with a power law fitted to the upper half of them."""
    eig = np.sort(np.clip(eig, 0, None))[::-1][:dim]
    rank = max(2, min(rank, int((eig > eig[0] * 1e-9).sum())))
    i = np.arange(1, rank + 1)
    fit = slice(rank // 4, rank)
    slope, icpt = np.polyfit(np.log(i[fit]), np.log(eig[:rank][fit]), 1)
    tail = np.exp(icpt + slope * np.log(np.arange(rank + 1, dim + 1)))
    return np.concatenate([eig[:rank], tail])


def calibrate(vectors: np.ndarray, video: np.ndarray, source: str) -> CorpusStats:
    """Statistics of L2-normalised segment vectors [N, D] grouped by `video` [N] (segments in time order)."""
    x = vectors.astype(np.float64)
    mu = x.mean(0)
    ids, inv = np.unique(video, return_inverse=True)
    means = np.stack([x[inv == j].mean(0) for j in range(len(ids))])
    dev = x - means[inv]
    between = np.linalg.eigvalsh(np.cov((means - mu).T))
    within = np.linalg.eigvalsh(np.cov(dev.T))
    same = inv[1:] == inv[:-1]
    rho = float((dev[1:][same] * dev[:-1][same]).sum() / (dev[:-1][same] ** 2).sum())
    total = float(between.sum() + within.sum())
    d = x.shape[1]
    return CorpusStats(between=_extend_spectrum(between, len(ids) - 1, d).tolist(),
                       within=_extend_spectrum(within, len(x) - len(ids), d).tolist(),
                       mean_ratio=float(np.linalg.norm(mu) / np.sqrt(total)), rho=float(np.clip(rho, 0, 0.99)),
                       segments_per_video=len(x) / len(ids), source=source)


def synthesize(stats: CorpusStats, n: int, seed: int) -> np.ndarray:
    """n L2-normalised float32 vectors drawn from the calibrated model (videos of geometric length)."""
    rng = np.random.default_rng(seed)
    d = len(stats.between)
    rot_b = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]  # fixed bases: queries and corpus
    rot_w = np.linalg.qr(np.random.default_rng(1).standard_normal((d, d)))[0]  # share one embedding space
    total = sum(stats.between) + sum(stats.within)
    mu = rot_b[:, 0] * stats.mean_ratio * np.sqrt(total)
    sb, sw = np.sqrt(np.asarray(stats.between)), np.sqrt(np.asarray(stats.within))
    out = np.empty((n, d), np.float32)
    for lo in range(0, n, 65536):
        rows = min(65536, n - lo)
        lengths = rng.geometric(1 / stats.segments_per_video, size=rows)
        lengths = lengths[: np.searchsorted(np.cumsum(lengths), rows) + 1]
        lengths[-1] -= lengths.sum() - rows  # a chunk ends where a video ends
        video = np.repeat(np.arange(len(lengths)), lengths)
        pos = np.arange(rows) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        eps = rng.standard_normal((rows, d)) * sw
        for t in range(1, int(pos.max()) + 1):  # AR(1) along each video
            at = np.flatnonzero(pos == t)
            eps[at] = stats.rho * eps[at - 1] + np.sqrt(1 - stats.rho**2) * eps[at]
        centres = (rng.standard_normal((len(lengths), d)) * sb) @ rot_b.T
        seg = mu + centres[video] + eps @ rot_w.T
        out[lo:lo + rows] = seg / np.linalg.norm(seg, axis=1, keepdims=True)
    return out


def exact_top_k(x: np.ndarray, q: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """Ground truth: ids [Q, k] of the largest inner products."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for lo in range(0, len(x), chunk):
        s = q @ x[lo:lo + chunk].T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        best_i = np.concatenate([best_i, top + lo], 1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def measure_stats(model: str, overrides: dict, max_videos: int) -> CorpusStats:
    """Embed the shared clips' windows with tubelet (2 s windows every 1 s) and calibrate on them."""
    from tubelet.catalog.embed import EmbedOptions, embed_video, load_embedder

    embedder = load_embedder(model, **overrides)
    vecs, vids = [], []
    for j, path in enumerate(_shared_clips()[:max_videos]):
        t0 = time.perf_counter()
        emb = embed_video(embedder, path, EmbedOptions(window_s=2.0, stride_s=1.0))
        print(f"  calibration {path.name}: {len(emb.segments)} windows, {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        vecs.append(emb.segments)
        vids += [j] * len(emb.segments)
    return calibrate(np.concatenate(vecs), np.asarray(vids),
                     f"{model} {overrides} (random init, seed 0) on {j + 1} shared clips, {len(vids)} windows")


def _shared_clips() -> list[Path]:
    return sorted(p for p in SHARED.iterdir() if p.suffix != ".md")


# ----------------------------------------------------------------------------------------------- stores
class Store:
    """One candidate: build from vectors into a directory, open it again, search it."""

    name = ""
    params = ""

    def build(self, x: np.ndarray, path: Path) -> None: ...

    def open(self, path: Path) -> None: ...

    def search(self, q: np.ndarray, k: int) -> np.ndarray: ...


class NumpyExact(Store):
    name, params = "numpy exact (.npy + matmul)", "float32, brute force"

    def build(self, x, path):
        np.save(path / "x.npy", x)

    def open(self, path):
        self.x = np.load(path / "x.npy")

    def search(self, q, k):
        return exact_top_k(self.x, q, k)


class FaissHNSW(Store):
    name, params = "FAISS IndexHNSWFlat", "M=16 efC=100 efS=96, IP"

    def build(self, x, path):
        import faiss

        index = faiss.IndexHNSWFlat(x.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 100
        index.add(x)
        faiss.write_index(index, str(path / "index.faiss"))

    def open(self, path):
        import faiss

        self.index = faiss.read_index(str(path / "index.faiss"))
        self.index.hnsw.efSearch = 96

    def search(self, q, k):
        return self.index.search(q, k)[1]


class FaissIVFFlat(Store):
    name, params = "FAISS IndexIVFFlat", "nlist=4·sqrt(N) nprobe=32, IP"

    def build(self, x, path):
        import faiss

        nlist = int(4 * np.sqrt(len(x)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(x[np.random.default_rng(0).choice(len(x), min(len(x), 64 * nlist), replace=False)])
        index.add(x)
        faiss.write_index(index, str(path / "index.faiss"))

    def open(self, path):
        import faiss

        self.index = faiss.read_index(str(path / "index.faiss"))
        self.index.nprobe = 32

    def search(self, q, k):
        return self.index.search(q, k)[1]


class USearchHNSW(Store):
    name, params = "usearch HNSW (memory-mapped view)", "M=16 efC=100 efS=96, IP, f32"

    def build(self, x, path):
        from usearch.index import Index

        index = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=100,
                      expansion_search=96)
        index.add(np.arange(len(x)), x, threads=THREADS)
        index.save(str(path / "index.usearch"))

    def open(self, path):
        from usearch.index import Index

        self.index = Index.restore(str(path / "index.usearch"), view=True)
        self.index.expansion_search = 96

    def search(self, q, k):
        return self.index.search(q, k, threads=THREADS).keys.reshape(len(q), k)


class HnswlibHNSW(Store):
    name, params = "hnswlib HNSW", "M=16 efC=100 ef=96, IP"

    def build(self, x, path):
        import hnswlib

        index = hnswlib.Index(space="ip", dim=x.shape[1])
        index.init_index(max_elements=len(x), ef_construction=100, M=16)
        index.add_items(x, np.arange(len(x)), num_threads=THREADS)
        index.save_index(str(path / "index.hnsw"))

    def open(self, path):
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=int(np.load(path.parent / "corpus" / "q.npy").shape[1]))
        self.index.load_index(str(path / "index.hnsw"))
        self.index.set_ef(96)
        self.index.set_num_threads(THREADS)

    def search(self, q, k):
        return self.index.knn_query(q, k)[0].astype(np.int64)


class Lance(Store):
    """LanceDB table (id + vector), optionally with an ANN index."""

    def __init__(self, index_type: str | None = None, **query):
        self.index_type, self.query = index_type, query
        self.name = f"LanceDB {index_type or 'flat (no index)'}"
        self.params = ", ".join(f"{k}={v}" for k, v in query.items()) or "brute force, dot"

    def build(self, x, path):
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(path))
        vec = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
        tbl = db.create_table("segments", pa.table({"id": pa.array(np.arange(len(x))), "vector": vec}))
        if self.index_type == "IVF_PQ":
            tbl.create_index(metric="dot", index_type="IVF_PQ", num_partitions=int(np.sqrt(len(x))),
                             num_sub_vectors=x.shape[1] // 8)
        elif self.index_type == "IVF_HNSW_SQ":
            tbl.create_index(metric="dot", index_type="IVF_HNSW_SQ", num_partitions=max(1, len(x) // 250_000),
                             m=16, ef_construction=100)

    def open(self, path):
        import lancedb

        self.tbl = lancedb.connect(str(path)).open_table("segments")

    def search(self, q, k):
        out = np.empty((len(q), k), np.int64)
        for lo in range(0, len(q), 100):  # multi-vector queries, 100 at a time
            qb = self.tbl.search(q[lo:lo + 100]).distance_type("dot").limit(k).select(["id"])
            for name, value in self.query.items():
                qb = getattr(qb, name)(value)
            r = qb.to_arrow()
            ids = r["id"].to_numpy()
            qi = r["query_index"].to_numpy() if "query_index" in r.column_names else np.zeros(len(ids), int)
            for j in range(min(100, len(q) - lo)):
                got = ids[qi == j][:k]
                out[lo + j] = np.pad(got, (0, k - len(got)), constant_values=-1)
        return out


STORES: dict[str, Store] = {
    "numpy": NumpyExact(),
    "faiss-hnsw": FaissHNSW(),
    "faiss-ivf": FaissIVFFlat(),
    "usearch": USearchHNSW(),
    "hnswlib": HnswlibHNSW(),
    "lance-flat": Lance(),
    "lance-ivfpq": Lance("IVF_PQ", nprobes=32, refine_factor=10),
    "lance-hnsw": Lance("IVF_HNSW_SQ", nprobes=4, ef=96),
}


def _proc_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since exec) of this process, in MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def _child(store_key: str, phase: str, work: Path) -> dict:
    """Runs in a subprocess: one phase of one store; returns its measurements."""
    store, path = STORES[store_key], work / store_key
    if phase == "build":
        x = np.load(work / "corpus" / "x.npy")
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        t0 = time.perf_counter()
        store.build(x, path)
        return {"build_s": time.perf_counter() - t0,
                "disk_mb": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20}
    q, gt = np.load(work / "corpus" / "q.npy"), np.load(work / "corpus" / "gt.npy")
    base = _proc_mb("VmRSS")
    t0 = time.perf_counter()
    store.open(path)
    open_s = time.perf_counter() - t0
    store.search(q[:5], K)  # warm-up
    single = []
    for v in q[:50]:
        t = time.perf_counter()
        store.search(v[None], K)
        single.append(time.perf_counter() - t)
    t = time.perf_counter()
    got = store.search(q, K)
    batch_s = time.perf_counter() - t
    recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(got, gt, strict=True)])
    peak = _proc_mb("VmHWM")
    return {"recall": float(recall), "open_s": open_s, "p50_ms": 1000 * float(np.median(single)),
            "p95_ms": 1000 * float(np.percentile(single, 95)), "batch_ms_per_q": 1000 * batch_s / len(q),
            "mem_mb": peak - base}


def _run_child(store_key: str, phase: str, work: Path, cap_s: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "RAYON_NUM_THREADS": str(THREADS)}
    cmd = [sys.executable, __file__, "_child", store_key, phase, str(work)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=cap_s, env=env)
    except subprocess.TimeoutExpired:
        return {"capped": f"{phase} stopped at the {cap_s:.0f} s cap"}
    if r.returncode != 0:
        return {"capped": f"{phase} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def make_corpus(stats: CorpusStats, n: int, n_queries: int, work: Path) -> None:
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    x = synthesize(stats, n, seed=1234)
    q = synthesize(stats, n_queries, seed=99)
    np.save(work / "corpus" / "x.npy", x)
    np.save(work / "corpus" / "q.npy", q)
    np.save(work / "corpus" / "gt.npy", exact_top_k(x, q, K))
    print(f"corpus {n:,} x {x.shape[1]} + {n_queries} queries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def bench_stores(stats: CorpusStats, sizes: list[int], keys: list[str], cap_s: float, n_queries: int) -> list[dict]:
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="tubelet-stores-") as tmp:
            work = Path(tmp)
            make_corpus(stats, n, n_queries, work)
            for key in keys:
                row = {"n": n, "store": STORES[key].name, "params": STORES[key].params}
                row |= _run_child(key, "build", work, cap_s)
                if "capped" not in row:
                    row |= _run_child(key, "query", work, cap_s)
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
                shutil.rmtree(work / key, ignore_errors=True)
    return rows


def store_table(rows: list[dict]) -> str:
    head = ("| vectors | store | params | recall@10 | p50 ms (1 query) | p95 ms | ms/query (batch) | build s | "
            "open s | query RAM MB | disk MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "capped" in r:
            lines.append(f"| {r['n']:,} | {r['store']} | {r['params']} | {r['capped']} | | | | | | | |")
            continue
        lines.append(f"| {r['n']:,} | {r['store']} | {r['params']} | {r['recall']:.3f} | {r['p50_ms']:.2f} | "
                     f"{r['p95_ms']:.2f} | {r['batch_ms_per_q']:.3f} | {r['build_s']:.1f} | {r['open_s']:.2f} | "
                     f"{r['mem_mb']:.0f} | {r['disk_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="all", choices=["all", "stores", "_child"])
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--stores", nargs="+", default=list(STORES), choices=list(STORES))
    ap.add_argument("--cap-s", type=float, default=1200.0, help="time cap per build and per query phase")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--model", default="vit_small", help="calibration / throughput model (preset or checkpoint)")
    ap.add_argument("--calib-videos", type=int, default=64, help="shared clips embedded for the calibration")
    ap.add_argument("--calib-size", type=int, default=224, help="crop size of the calibration embeddings")
    ap.add_argument("--stats", type=Path, help="reuse calibration statistics saved by an earlier run (JSON)")
    ap.add_argument("--out", type=Path, help="also write the store table (markdown) here")
    args = ap.parse_args()
    if args.what == "_child":
        print(json.dumps(_child(args.rest[0], args.rest[1], Path(args.rest[2]))))
        return
    if args.what in ("all", "stores"):
        if args.stats and args.stats.exists():
            stats = CorpusStats(**json.loads(args.stats.read_text()))
        else:
            stats = measure_stats(args.model, {"num_frames": 16, "image_size": args.calib_size}, args.calib_videos)
            if args.stats:
                args.stats.write_text(json.dumps(asdict(stats)))
        print(f"calibration: {stats.source}; mean ratio {stats.mean_ratio:.2f}, rho {stats.rho:.2f}, "
              f"{stats.segments_per_video:.1f} segments/video", file=sys.stderr)
        head = (f"Corpus: synthetic, {len(stats.between)}-d, calibrated on {stats.source}: corpus-mean ratio "
                f"{stats.mean_ratio:.2f}, lag-1 autocorrelation {stats.rho:.2f}, {stats.segments_per_video:.1f} "
                f"segments/video, between/within-video variance {sum(stats.between):.3g}/{sum(stats.within):.3g}. "
                f"{args.queries} queries (fresh videos from the same model); latency from {min(50, args.queries)} "
                f"single queries; {THREADS} threads; cap {args.cap_s:.0f} s per build and per query phase.")
        table = store_table(bench_stores(stats, args.sizes, args.stores, args.cap_s, args.queries))
        print(head + "\n\n" + table)
        if args.out:
            args.out.write_text(head + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
