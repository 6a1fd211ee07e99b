"""End-to-end embedding throughput (decode + test view + model) on the shared clips: transformers' VideoMAEModel fp32
against tubelet's engines, with each one's fidelity to the fp32 reference.

    .venv/bin/python benchmarks/embed_speed.py                                  # vit_small 16×224², random init
    .venv/bin/python benchmarks/embed_speed.py --demo runs/demo/run             # and the demo model
    .venv/bin/python benchmarks/embed_speed.py --videos 4 --seconds 6           # a quicker run

Every path embeds the same windows (2 s every 1 s over the first --seconds of each of --videos shared clips) through
`tubelet.catalog.embed.embed_span`: the same decoder and test view, only the model call differs. The paths are
timed interleaved per video (the order rotates), so load from other processes falls on all of them alike; the
ratio column (speed over transformers fp32) is the figure to read on a busy machine. ONNX graphs are exported
before timing (an export is once per model: the onnx engine keeps it in ~/.cache/tubelet), and every path embeds one
window before the clock starts.

Fidelity: cosine of each window's vector to tubelet torch fp32's (which matches transformers within 1e-5), min and
mean over all windows. The last line names the fastest path that keeps the minimum cosine ≥ 0.99.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tubelet.catalog.embed import EmbedOptions, Engine, embed_span, load_embedder
from tubelet.data import probe

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
BUNDLED = Path(__file__).resolve().parents[1] / "tubelet" / "assets" / "clips"
FIDELITY = 0.99


class Peer:
    """transformers' VideoMAEModel with the tubelet model's weights, behind the Embedder interface (mean of the
    last hidden state, L2-normalised: a pretraining model's embedding)."""

    def __init__(self, embedder) -> None:
        from transformers import VideoMAEConfig, VideoMAEForPreTraining

        from tubelet.model.transformers_ckpt import to_transformers

        model = embedder.model
        meta, sd = to_transformers(model.config, model.state_dict())
        peer = VideoMAEForPreTraining(VideoMAEConfig(**meta))
        if any(k.endswith("query.bias") for k in peer.state_dict()):  # newer transformers: q_bias → query.bias
            sd = {k.replace(".q_bias", ".query.bias").replace(".v_bias", ".value.bias"): v for k, v in sd.items()}
        peer.load_state_dict(sd, strict=True)
        self.model = peer.videomae.eval()  # the VideoMAEModel encoder
        self.num_frames, self.size = embedder.num_frames, embedder.size

    def __call__(self, clips: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            hidden = self.model(pixel_values=clips.transpose(1, 2)).last_hidden_state  # [B, N, D]
            return torch.nn.functional.normalize(hidden.mean(1), dim=-1).numpy()


@dataclass
class Contender:
    name: str
    embedder: object
    seconds: float = 0.0
    vectors: list[np.ndarray] | None = None


def paths_for(model: str, overrides: dict) -> list[Contender]:
    """transformers fp32 and every tubelet engine worth timing, built (and exported) before any timing."""
    torch_fp32 = load_embedder(model, **overrides)
    out = [Contender("transformers VideoMAEModel fp32", Peer(torch_fp32)), Contender("tubelet torch fp32", torch_fp32)]
    variants = [("tubelet onnx fp32", 1.0, Engine("onnx")), ("tubelet onnx int8", 1.0, Engine("onnx", int8=True)),
                ("tubelet torch fp32, tokens 0.5", 0.5, Engine()),
                ("tubelet onnx fp32, tokens 0.5", 0.5, Engine("onnx")),
                ("tubelet onnx int8, tokens 0.5", 0.5, Engine("onnx", int8=True)),
                ("tubelet onnx int8, tokens 0.25", 0.25, Engine("onnx", int8=True))]
    for name, tokens, engine in variants:
        t0 = time.perf_counter()
        out.append(Contender(name, load_embedder(model, tokens=tokens, engine=engine, **overrides)))
        print(f"  built {name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def run(model: str, overrides: dict, videos: list[Path], seconds: float, batch_size: int) -> str:
    paths = paths_for(model, overrides)
    opts = EmbedOptions(window_s=2.0, stride_s=1.0, batch_size=batch_size)
    windows = 0
    for p in paths:
        p.vectors = []
    for p in paths:  # warm-up: first calls (allocators, ORT's graph preparation) are not throughput
        embed_span(p.embedder, videos[0], opts, 0.0, 2.0)
    load0 = os.getloadavg()
    for i, video in enumerate(videos):
        end = min(seconds, probe(video).duration_s)
        order = paths[i % len(paths):] + paths[:i % len(paths)]
        for p in order:
            t0 = time.perf_counter()
            vecs = embed_span(p.embedder, video, opts, 0.0, end)[2]
            p.seconds += time.perf_counter() - t0
            p.vectors.append(vecs)
        windows += len(paths[0].vectors[-1])
        print(f"  {video.name}: {len(paths[0].vectors[-1])} windows", file=sys.stderr)
    load1 = os.getloadavg()
    ref = np.concatenate(paths[1].vectors)
    peer_s = paths[0].seconds
    cfg = paths[1].embedder.model.config
    lines = [f"{model} {cfg.num_frames}×{cfg.image_size[0]}² ({cfg.num_patches} tokens), {len(videos)} shared clips, "
             f"{windows} windows (2 s every 1 s over the first {seconds:g} s), batch {batch_size}, "
             f"{torch.get_num_threads()} threads (torch and ONNX Runtime); load average {load0[0]:.1f} → "
             f"{load1[0]:.1f} on {os.cpu_count()} CPUs", "",
             "| path | videos/min | clips/s | time s | speed vs transformers fp32 | min cosine | mean cosine |",
             "|---|---|---|---|---|---|---|"]
    best = None
    for p in paths:
        cos = (np.concatenate(p.vectors) * ref).sum(1)
        ratio = peer_s / p.seconds
        lines.append(f"| {p.name} | {60 * len(videos) / p.seconds:.2f} | {windows / p.seconds:.3f} | "
                     f"{p.seconds:.1f} | {ratio:.2f}× | {cos.min():.5f} | {cos.mean():.5f} |")
        if cos.min() >= FIDELITY and p is not paths[0] and (best is None or ratio > best[1]):
            best = (p.name, ratio)
    lines += ["", f"fastest path keeping cosine ≥ {FIDELITY}: {best[0]} at {best[1]:.2f}× transformers fp32"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vit_small", help="preset (seeded random init), checkpoint or Hub id")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--demo", help="also the demo model: its run directory or checkpoint (e.g. runs/demo/run)")
    ap.add_argument("--videos", type=int, default=6, help="shared clips")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds embedded from the start of each clip")
    ap.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    args = ap.parse_args()
    root = SHARED if SHARED.is_dir() else BUNDLED
    videos = sorted(p for p in root.iterdir() if p.suffix in (".mp4", ".webm", ".mkv", ".mov"))[:args.videos]
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(run(args.model, {"num_frames": args.frames, "image_size": args.size}, videos, args.seconds,
              args.batch_size))
    if args.demo:
        print()
        print(run(args.demo, {}, videos, args.seconds, args.batch_size))
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
