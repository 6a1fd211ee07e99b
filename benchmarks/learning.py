"""Learning benchmark: does masked-video pretraining learn motion, on data where one frame says nothing?

Synthetic clips (tubelet.data.synthetic): textured objects move together over a textured background, wrapping
around the frame; the class is the direction of motion (left, right, up, down); colours, textures, shapes, sizes,
positions and speed are random per clip, so no single frame tells the class.
The benchmark
1. writes three disjoint sets of such videos: unlabelled clips for pretraining, a probe-training and a test set;
2. pretrains a tiny VideoMAE on the unlabelled clips with tubelet's pretraining engine (videos decoded by the data
   pipeline, tube masking, raw-pixel targets, AdamW, warmup-cosine) for a fixed CPU budget: a short calibration
   run measures the CPU cost of a step, and the run gets as many steps as the budget buys;
3. fits a linear probe (batch norm + logistic regression) on frozen encoder features of the probe set and scores
   the test set, for: the pretrained encoder, the same architecture at random init, and the pretrained encoder
   shown a single frame (the middle one, repeated): an appearance-only baseline that should sit at chance.

Two poolings of the same frozen final-layer tokens are probed: their mean (what `tubelet probe` does; the goal is
judged on it) and the token map (all tokens side by side, [N·D], which keeps where and when).

Goal: pretrained ≥ random init + 25 points of top-1, whole benchmark within 15 CPU minutes.

CPU time is the process's user + system time (time.process_time): torch runs one thread and the loaders no worker
processes, so everything is counted and other load on a shared machine does not inflate the numbers (wall time
does grow with it; it is printed too).

    .venv/bin/python benchmarks/learning.py                     # the full benchmark (15 CPU minutes)
    .venv/bin/python benchmarks/learning.py --pretrain-cpu-min 1 --clips 200   # smoke run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from tubelet import load_model
from tubelet.data import make_loader
from tubelet.data.synthetic import write_synthetic_videos
from tubelet.model.videomae import VideoMAE
from tubelet.train.config import PretrainConfig
from tubelet.train.evaluate import eval_dataset
from tubelet.train.labels import LabelSet, read_labels
from tubelet.train.pretrain import pretrain
from tubelet.train.probe import extract_features, fit_probe

GOAL_POINTS = 25.0
GOAL_CPU_MIN = 15.0
CHANCE = 0.25


def cpu() -> float:
    return time.process_time()


def write_sets(root: Path, n_unlabelled: int, n_probe: int, n_test: int, size: int, frames: int, objects: int,
               seed: int) -> dict[str, Path]:
    """Three disjoint sets (different seeds) → their labels.csv manifests."""
    sets = {"unlabelled": n_unlabelled, "probe": n_probe, "test": n_test}
    out = {}
    for k, (name, n) in enumerate(sets.items()):
        write_synthetic_videos(root / name, n, num_frames=frames, size=size, seed=seed * 10 + k, objects=objects)
        out[name] = root / name / "labels.csv"
    return out


def pretrain_config(args: argparse.Namespace, data: Path, steps: int) -> PretrainConfig:
    model = {"num_frames": args.frames, "image_size": args.image_size, "patch_size": args.patch,
             "tubelet_size": args.tubelet, "depth": args.depth, "decoder_depth": args.decoder_depth,
             "decoder_dim": 96, "decoder_heads": 3, "decoder_mlp_dim": 384, "norm_pix_loss": args.norm_pix}
    return PretrainConfig(
        data=str(data), preset="vit_tiny", model=model, stride=args.stride, mask_type=args.mask_type,
        mask_ratio=args.mask_ratio,
        # the engine scales base_lr by decoded clips per step / 256: undo it so that --lr is the peak lr
        batch_size=args.batch, repeats=args.repeats, base_lr=args.lr * 256 / args.batch,
        min_lr=1e-6, warmup_lr=1e-6, warmup_frac=0.05, steps=steps, precision="fp32", device="cpu",
        workers=0, seed=args.seed, save_every=max(1, steps), keep_last=1, log_every=max(1, steps // 20),
    )


def calibrate(args: argparse.Namespace, data: Path, run_dir: Path) -> float:
    """CPU seconds per pretraining step, from a short run (first steps excluded)."""
    warm, n = 3, args.calibration_steps
    t0 = cpu()
    pretrain(pretrain_config(args, data, warm), run_dir / "warm", progress=False)
    t1 = cpu()
    pretrain(pretrain_config(args, data, warm + n), run_dir / "cal", progress=False)
    t2 = cpu()
    return ((t2 - t1) - (t1 - t0)) / n  # the difference cancels start-up, saving and picture costs


def batches(labels: LabelSet, model: VideoMAE, stride: int, single_frame: bool) -> Iterator[tuple[Any, Any]]:
    """(video, label) batches of every clip's centre window; with single_frame, the middle frame repeated."""
    loader = make_loader(eval_dataset(labels, model, stride), 16, workers=0, shuffle=False, drop_last=False)
    for batch in loader:
        video = batch["video"]
        if single_frame:
            mid = video.shape[2] // 2
            video = video[:, :, mid:mid + 1].expand_as(video).contiguous()
        yield video, batch["label"]


def top1(x_tr: Tensor, y_tr: Tensor, x_te: Tensor, y_te: Tensor, num_classes: int, seed: int) -> float:
    fit = fit_probe(x_tr, y_tr, num_classes, seed=seed)
    with torch.no_grad():
        return (fit.probe.eval()(x_te).argmax(1) == y_te).float().mean().item()


def probe_score(model: VideoMAE, probe_set: LabelSet, test_set: LabelSet, stride: int, layer: int | None,
                single_frame: bool = False, seed: int = 0) -> dict[str, float]:
    """Top-1 of linear probes on the token map and on the mean over tokens (one encoder pass)."""
    x_tr, y_tr = extract_features(model, batches(probe_set, model, stride, single_frame), layer, pool="tokens")
    x_te, y_te = extract_features(model, batches(test_set, model, stride, single_frame), layer, pool="tokens")
    dim, k = model.config.embed_dim, probe_set.num_classes
    mean_tr, mean_te = (x.view(len(x), -1, dim).mean(1) for x in (x_tr, x_te))
    return {"top1": top1(mean_tr, y_tr, mean_te, y_te, k, seed),
            "top1_token_map": top1(x_tr, y_tr, x_te, y_te, k, seed)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="Keep videos and runs here (default: a temp folder).")
    p.add_argument("--pretrain-cpu-min", type=float, default=12.0, help="CPU minutes for pretraining.")
    p.add_argument("--clips", type=int, default=1500, help="Unlabelled clips for pretraining.")
    p.add_argument("--probe-clips", type=int, default=400)
    p.add_argument("--test-clips", type=int, default=400)
    p.add_argument("--video-size", type=int, default=32, help="Side of the synthetic videos (pixels).")
    p.add_argument("--video-frames", type=int, default=16)
    p.add_argument("--objects", type=int, default=6, help="Moving objects per clip.")
    p.add_argument("--frames", type=int, default=8, help="Frames per clip the model sees.")
    p.add_argument("--stride", type=int, default=2, help="Frame sampling rate.")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--tubelet", type=int, default=4, help="Frames per token.")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--decoder-depth", type=int, default=1)
    p.add_argument("--mask-type", choices=("tube", "random"), default="tube")
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--norm-pix", action="store_true", help="Reconstruct per-patch normalised pixels.")
    p.add_argument("--batch", type=int, default=16, help="Clips decoded per step.")
    p.add_argument("--repeats", type=int, default=2, help="Masked views per decoded clip.")
    p.add_argument("--lr", type=float, default=1.5e-3, help="Peak learning rate (not scaled).")
    p.add_argument("--layer", type=int, default=None, help="Encoder block probed (default: final features).")
    p.add_argument("--calibration-steps", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    console = Console(stderr=True)
    wall0, cpu0 = time.perf_counter(), cpu()
    with tempfile.TemporaryDirectory(prefix="tubelet-learning-") as tmp:
        root = args.out or Path(tmp)
        console.print(f"writing {args.clips} + {args.probe_clips} + {args.test_clips} synthetic videos …")
        sets = write_sets(root / "videos", args.clips, args.probe_clips, args.test_clips, args.video_size,
                          args.video_frames, args.objects, args.seed)
        cpu_data = cpu() - cpu0

        t = cpu()
        per_step = calibrate(args, sets["unlabelled"], root / "calibration")
        steps = max(1, int(args.pretrain_cpu_min * 60 / per_step))
        cpu_cal = cpu() - t
        console.print(f"{per_step:.3f} CPU s per step → {steps} steps in {args.pretrain_cpu_min} CPU min")
        t = cpu()
        result = pretrain(pretrain_config(args, sets["unlabelled"], steps), root / "pretrain", progress=True)
        cpu_pre = cpu() - t

        t = cpu()
        probe_set, test_set = read_labels(sets["probe"]), read_labels(sets["test"])
        pretrained = load_model(result.checkpoint)
        random_init = VideoMAE(pretrained.config)
        rows = {
            "pretrained (VideoMAE)": probe_score(pretrained, probe_set, test_set, args.stride, args.layer),
            "random init": probe_score(random_init, probe_set, test_set, args.stride, args.layer),
            "single frame (pretrained)": probe_score(pretrained, probe_set, test_set, args.stride, args.layer,
                                                     single_frame=True),
        }
        cpu_probe = cpu() - t
    cpu_total, wall = cpu() - cpu0, time.perf_counter() - wall0
    gain = 100 * (rows["pretrained (VideoMAE)"]["top1"] - rows["random init"]["top1"])

    table = Table(title=f"linear probe, motion direction (4 classes, chance {CHANCE:.0%}), {len(test_set.examples)} "
                        f"test clips")
    table.add_column("encoder")
    for head in ("top-1 mean pool", "vs random init", "top-1 token map", "vs random init"):
        table.add_column(head, justify="right")
    for name, r in rows.items():
        cells = []
        for k in ("top1", "top1_token_map"):
            cells += [f"{100 * r[k]:.1f}", f"{100 * (r[k] - rows['random init'][k]):+.1f}"]
        table.add_row(name, *cells)
    out = Console()
    out.print(table)
    out.print(f"pretraining: {result.step} steps × {args.batch}×{args.repeats} clips, loss {result.losses[0]:.4f} → "
              f"{result.losses[-1]:.4f}; model {pretrained.config.name} depth {args.depth}, "
              f"{args.frames}×{args.image_size}² (stride {args.stride}, tubelet {args.tubelet}×{args.patch}²), "
              f"{args.mask_type} mask {args.mask_ratio}, {args.objects} objects per clip")
    out.print(f"CPU seconds: data {cpu_data:.0f}, calibration {cpu_cal:.0f}, pretraining {cpu_pre:.0f}, "
              f"probes {cpu_probe:.0f}, total {cpu_total:.0f} ({cpu_total / 60:.1f} min); wall {wall:.0f} s")
    met = gain >= GOAL_POINTS and cpu_total <= GOAL_CPU_MIN * 60
    out.print(f"goal (≥ +{GOAL_POINTS:.0f} points within {GOAL_CPU_MIN:.0f} CPU min): "
              f"{'met' if met else 'NOT met'} ({gain:+.1f} points, {cpu_total / 60:.1f} CPU min)")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows, "gain_points": gain, "goal_met": met, "steps": result.step,
            "first_loss": result.losses[0], "last_loss": result.losses[-1],
            "cpu_s": {"data": cpu_data, "calibration": cpu_cal, "pretraining": cpu_pre, "probes": cpu_probe,
                      "total": cpu_total},
            "wall_s": wall, "settings": {k: str(v) for k, v in vars(args).items()},
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
