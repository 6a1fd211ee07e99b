"""Speed of the default `tubelet analyze` path (no catalog): decode at 64 px and measure every frame, find the
transitions, write report.html and report.json — against PySceneDetect's content detector on the same files, same run.

    python benchmarks/analyze_speed.py [--videos ../shared/data/videos] [--clips a.mp4,b.avi]

Prints per clip and in total: seconds of video per second of wall clock (× real time) and per CPU second of the
process (all its threads: steadier on a shared machine), the share of tubelet's CPU spent in the motion-compensated
residual (optical flow, `signals.Residual`), and the wall-clock ratio to PySceneDetect.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tubelet.analysis import analyze, write_report
from tubelet.analysis.signals import Residual
from tubelet.data import probe

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
CLIPS = ["people_indoor_cctv_long.mp4", "pedestrians_plaza_surveillance.avi", "mixed_content_cuts.webm",
         "dog_with_owner.mp4", "kids_jumping_bedroom.mp4", "scene_cuts_nature_montage.mp4"]


def report(path: Path, out: Path) -> None:
    """The default path: analyse without a catalog, write report.html and report.json."""
    write_report(*analyze(path), out)


def timed(fn, *args) -> tuple[float, float]:  # noqa: ANN001
    """(wall s, CPU s of the process) of fn(*args)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=SHARED)
    ap.add_argument("--clips", default=",".join(CLIPS))
    args = ap.parse_args()
    paths = [args.videos / c for c in args.clips.split(",")]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"error: {missing[0]}: no such clip")
    from scenedetect import ContentDetector, detect

    flow_cpu = [0.0]
    add = Residual.add

    def counted(self: Residual, luma) -> None:  # noqa: ANN001
        c0 = time.thread_time()  # this thread only: the decoder's threads run meanwhile
        add(self, luma)
        flow_cpu[0] += time.thread_time() - c0

    Residual.add = counted  # type: ignore[method-assign]
    rows, total = [], [0.0] * 6
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(paths, 1):
            seconds = probe(path).duration_s
            flow_cpu[0] = 0.0
            wall, cpu = timed(report, path, Path(tmp) / path.stem)
            flow = flow_cpu[0]
            p_wall, p_cpu = timed(detect, str(path), ContentDetector())
            for k, v in enumerate((seconds, wall, cpu, flow, p_wall, p_cpu)):
                total[k] += v
            rows.append((path.name, seconds, wall, cpu, flow, p_wall, p_cpu))
            print(f"\r{i}/{len(paths)} clips", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows.append(("all", *total))
    head = ("clip", "video s", "× real time", "× per CPU s", "flow share of CPU", "PySceneDetect × real time",
            "PSD × per CPU s", "speed vs PSD")
    cells = [head] + [(name, f"{s:.1f}", f"{s / w:.1f}×", f"{s / c:.1f}×", f"{f / c:.0%}", f"{s / pw:.1f}×",
                       f"{s / pc:.1f}×", f"{pw / w:.2f}") for name, s, w, c, f, pw, pc in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(head))]
    for j, r in enumerate(cells):
        print("| " + " | ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
