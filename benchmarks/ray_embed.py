"""Batch embedding: the local engine against Ray Data on this machine — videos/min and peak memory.

    python benchmarks/ray_embed.py [--clips DIR] [--limit N] [--model vit_tiny --set num_frames=8 ...]

Each engine runs `tubelet embed CLIPS --engine torch|ray` in a fresh process (Ray: a local cluster the command
starts itself, every core of this machine). Time is the whole command, Ray's start-up included. Memory is the
peak, over the run, of the summed proportional set size (PSS, so Ray's shared object store is counted once) of
the command and every process under it (Ray's GCS, raylet and workers), sampled every 0.5 s from /proc. The two
parquet files are then compared vector by vector. On one small machine Ray can only add overhead (it pays for
its processes and the object store); what it buys is the same command on a cluster (`--address auto`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "videos"


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def pss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak PSS MiB of the process tree, stderr tail) of one command."""
    peak = [0.0]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], pss_mib(tree(proc.pid)))
            done.wait(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:6])} … failed:\n{err[-2000:]}")
    return seconds, peak[0], err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, default=SHARED if SHARED.is_dir() else ROOT / "tubelet/assets/clips")
    ap.add_argument("--limit", type=int, default=0, help="Use the first N clips (0: all).")
    ap.add_argument("--model", default="vit_tiny")
    ap.add_argument("--set", dest="overrides", action="append", default=None,
                    help="model override FIELD=VALUE (default: num_frames=8, image_size=112)")
    args = ap.parse_args()

    from tubelet.catalog.embed import read_parquet
    from tubelet.data.sources import VIDEO_EXTENSIONS

    clips = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    clips = clips[:args.limit] if args.limit else clips
    sets = [x for kv in (args.overrides or ["num_frames=8", "image_size=112"]) for x in ("--set", kv)]
    work = Path(tempfile.mkdtemp(prefix="ray-embed-"))
    results = {}
    for engine in ("torch", "ray"):
        out = work / f"{engine}.parquet"
        cmd = [sys.executable, "-m", "tubelet.cli", "embed", *map(str, clips), "--out", str(out),
               "--model", args.model, *sets, "--engine", engine, "--json"]
        seconds, peak, _ = run(cmd)
        results[engine] = (seconds, peak, {v.content_hash: v for v in read_parquet(out).videos})
    local, ray = results["torch"][2], results["ray"][2]
    diff = max(float(np.abs(local[h].segments - ray[h].segments).max()) for h in local)
    seconds = sum(v.duration_s for v in local.values())
    load = os.getloadavg()
    print(f"\nbatch embedding — {len(clips)} clips ({len(local)} embedded, {seconds / 60:.1f} min of video) from "
          f"{args.clips.name}, model {args.model} {' '.join(sets[1::2])}; {os.cpu_count()} cores, load average "
          f"{load[0]:.1f}\n")
    print("| engine | wall s | videos/min | peak memory MiB (PSS, all processes) |")
    print("|---|---|---|---|")
    for engine, (s, peak, _) in results.items():
        print(f"| {engine} | {s:.1f} | {60 * len(clips) / s:.1f} | {peak:.0f} |")
    (ts, tp, _), (rs, rp, _) = results["torch"], results["ray"]
    print(f"| ray / local | {rs / ts:.2f}× time | {ts / rs:.2f}× | {rp / tp:.2f}× |")
    print(f"\nlargest |Δ| between the two engines' segment vectors: {diff:.2e}")


if __name__ == "__main__":
    main()
