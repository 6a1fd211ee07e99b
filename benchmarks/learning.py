"""Learning benchmark: does masked-video pretraining pay where VideoMAE says it does — fine-tuning with few labels?

Synthetic clips (tubelet.data.synthetic): textured objects move together over a textured background, wrapping
around the frame; the class is the direction of motion (left, right, up, down); colours, textures, shapes, sizes,
positions and speed are random per clip, so no single frame tells the class.
The benchmark
1. writes disjoint sets (different seeds): unlabelled clips, a labelled pool and a held-apart test set;
2. pretrains a tiny VideoMAE on the unlabelled clips for --pretrain-cpu-min CPU minutes with tubelet's engine;
3. distils the pretrained encoder into a half-depth student on the same unlabelled clips (--distill-cpu-min);
4. for 10 and 50 labels per class (the first ones of the pool), fine-tunes three inits with the same recipe (the
   few-label one, FEW_LABELS) and the same CPU budget (--finetune-cpu-min): the pretrained encoder, the same
   architecture at random init, the distilled student; each is scored on the test set (top-1 of the centre clip);
5. fine-tunes random init on every unlabelled clip with its label, in the same budget: what supervision alone
   reaches (if it stays near chance, the model cannot learn the motion in this budget whatever the init);
6. fits the linear probe of frozen features as before (pretrained and random init, on the 50-per-class labels).
It prints one table: labels per class × init → top-1, with the CPU minutes spent on it.

Goal: with 10 labels per class, fine-tuning from the pretrained encoder beats fine-tuning from random init by ≥ 15
points of top-1, pretraining + fine-tuning within 20 CPU minutes.

Every run stops on CPU time, not on a step count calibrated in advance: the engine's `cpu_minutes` ends a run
when the process has used that much CPU and fits the learning-rate schedule to the budget as the run goes. CPU
time is the process's user + system time (time.process_time): torch runs one thread and the loaders no worker
processes, so everything is counted and other load on a shared machine does not inflate it (wall time does grow;
it is printed too, with the load average).

    .venv/bin/python benchmarks/learning.py                                   # the full benchmark
    .venv/bin/python benchmarks/learning.py --pretrain-cpu-min 1 --distill-cpu-min 0.3 --finetune-cpu-min 0.2 \
        --clips 200 --test-clips 100                                          # smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from tubelet import VideoMAE, load_model, save_model
from tubelet.data import make_loader
from tubelet.data.synthetic import write_synthetic_videos
from tubelet.train import distributed as D
from tubelet.train.config import PretrainConfig
from tubelet.train.distill import DistillConfig, distill
from tubelet.train.evaluate import eval_dataset, evaluate_dataset
from tubelet.train.finetune import FinetuneConfig, finetune
from tubelet.train.labels import LabelSet, read_labels
from tubelet.train.linear_probe import extract_features, fit_probe
from tubelet.train.pretrain import pretrain

GOAL_POINTS = 15.0
GOAL_CPU_MIN = 20.0
CHANCE = 0.25
LABELS_PER_CLASS = (10, 50)


def cpu() -> float:
    return time.process_time()


def write_sets(root: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Disjoint sets (different seeds) → their labels.csv manifests."""
    sets = {"unlabelled": args.clips, "pool": 4 * max(LABELS_PER_CLASS), "test": args.test_clips}
    out = {}
    for k, (name, n) in enumerate(sets.items()):
        write_synthetic_videos(root / name, n, num_frames=args.video_frames, size=args.video_size,
                               seed=args.seed * 10 + k, objects=args.objects)
        out[name] = root / name / "labels.csv"
    return out


def first_per_class(manifest: Path, n: int, out: Path) -> Path:
    """A manifest of the first n clips of each class (absolute paths)."""
    seen: dict[str, int] = {}
    rows = []
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if seen.get(row["label"], 0) < n:
                seen[row["label"]] = seen.get(row["label"], 0) + 1
                rows.append((str(manifest.parent / row["path"]), row["label"]))
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return out


def model_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"num_frames": args.frames, "image_size": args.image_size, "patch_size": args.patch,
            "tubelet_size": args.tubelet, "depth": args.depth}


def engine_settings(args: argparse.Namespace, cpu_minutes: float, batch: int, lr: float) -> dict[str, Any]:
    """What every run shares: a CPU-time stop, one thread, no worker processes; `lr` is the peak (the engine scales
    base_lr by the batch / 256, undone here)."""
    return {"cpu_minutes": cpu_minutes, "batch_size": batch, "base_lr": lr * 256 / batch, "min_lr": 1e-6,
            "warmup_lr": 1e-6, "precision": "fp32", "device": "cpu", "workers": 0, "seed": args.seed,
            "save_every": 10**6, "keep_last": 1, "log_every": 10, "stride": args.stride}


def run_pretraining(args: argparse.Namespace, data: Path, run_dir: Path) -> tuple[Path, Any]:
    model = {**model_settings(args), "decoder_depth": args.decoder_depth, "decoder_dim": 96, "decoder_heads": 3,
             "decoder_mlp_dim": 384, "norm_pix_loss": args.norm_pix}
    cfg = PretrainConfig(data=str(data), preset="vit_tiny", model=model, mask_type=args.mask_type,
                         mask_ratio=args.mask_ratio, repeats=args.repeats, warmup_frac=0.05,
                         **engine_settings(args, args.pretrain_cpu_min, args.batch, args.lr))
    result = pretrain(cfg, run_dir)
    return result.checkpoint, result


def run_distillation(args: argparse.Namespace, teacher: Path, data: Path, run_dir: Path) -> Path:
    student = {**model_settings(args), "depth": max(1, args.depth // 2)}
    cfg = DistillConfig(data=str(data), teacher=str(teacher), student="vit_tiny", model=student, flip=False,
                        warmup_frac=0.05, **engine_settings(args, args.distill_cpu_min, args.batch, args.lr))
    return distill(cfg, run_dir).checkpoint


# The papers' regularisers are made for 10⁵ labelled clips and hundreds of epochs; with 10 clips per class and a
# CPU minute, mixup/cutmix turn the few examples into soft blends, RandAugment and smoothing slow the fit further.
# The few-label recipe keeps AdamW, layer decay, warmup + cosine and the random resized crop, and drops those.
FEW_LABELS = {"mixup": 0.0, "cutmix": 0.0, "randaug_ops": 0, "smoothing": 0.0, "drop_path": 0.0}


def run_finetuning(args: argparse.Namespace, init: Path, labels: Path, run_dir: Path) -> Path:
    """Fine-tuning without the flip (left/right is the label), on the CPU budget: the few-label recipe, or the
    papers' full one (layer decay, drop path, smoothing, mixup/cutmix, RandAugment) with --ft-recipe papers."""
    recipe = FEW_LABELS if args.ft_recipe == "few-labels" else {}
    cfg = FinetuneConfig(data=str(labels.parent), labels=str(labels), init=str(init), val_frac=0.0, flip=False,
                         layer_decay=args.layer_decay, **recipe,
                         **engine_settings(args, args.finetune_cpu_min, args.ft_batch, args.ft_lr))
    return finetune(cfg, run_dir).checkpoint


def test_top1(checkpoint: Path, test_set: LabelSet, stride: int) -> float:
    model = load_model(checkpoint)
    info = D.setup("cpu")
    try:
        report, _ = evaluate_dataset(model, eval_dataset(test_set, model, stride), info, batch_size=16)
    finally:
        D.teardown()
    return report.top1 if report else 0.0


def batches(labels: LabelSet, model: VideoMAE, stride: int) -> Iterator[tuple[Any, Any]]:
    """(video, label) batches of every clip's centre window."""
    for batch in make_loader(eval_dataset(labels, model, stride), 16, workers=0, shuffle=False, drop_last=False):
        yield batch["video"], batch["label"]


def top1(x_tr: Tensor, y_tr: Tensor, x_te: Tensor, y_te: Tensor, num_classes: int, seed: int) -> float:
    fit = fit_probe(x_tr, y_tr, num_classes, seed=seed)
    with torch.no_grad():
        return (fit.probe.eval()(x_te).argmax(1) == y_te).float().mean().item()


def probe_score(model: VideoMAE, train: LabelSet, test: LabelSet, stride: int, seed: int) -> dict[str, float]:
    """Top-1 of linear probes on the mean over tokens and on the token map (one encoder pass)."""
    x_tr, y_tr = extract_features(model, batches(train, model, stride), pool="tokens")
    x_te, y_te = extract_features(model, batches(test, model, stride), pool="tokens")
    dim, k = model.config.embed_dim, train.num_classes
    mean_tr, mean_te = (x.view(len(x), -1, dim).mean(1) for x in (x_tr, x_te))
    return {"mean": top1(mean_tr, y_tr, mean_te, y_te, k, seed), "tokens": top1(x_tr, y_tr, x_te, y_te, k, seed)}


def loss_curve(losses: list[float], parts: int = 5) -> list[float]:
    """The mean loss of each of `parts` equal stretches of the run: does pretraining still learn at the end?"""
    bounds = [round(i * len(losses) / parts) for i in range(parts + 1)]
    return [sum(losses[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="Keep videos and runs here (default: a temp folder).")
    p.add_argument("--pretrain-cpu-min", type=float, default=14.0, help="CPU minutes for pretraining.")
    p.add_argument("--distill-cpu-min", type=float, default=3.0, help="CPU minutes for distillation.")
    p.add_argument("--finetune-cpu-min", type=float, default=1.5, help="CPU minutes for each fine-tuning run.")
    p.add_argument("--clips", type=int, default=1500, help="Unlabelled clips for pretraining and distillation.")
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
    p.add_argument("--batch", type=int, default=16, help="Clips decoded per pretraining/distillation step.")
    p.add_argument("--repeats", type=int, default=2, help="Masked views per decoded clip.")
    p.add_argument("--lr", type=float, default=1.5e-3, help="Peak pretraining/distillation learning rate.")
    p.add_argument("--ft-batch", type=int, default=8, help="Clips per fine-tuning step.")
    p.add_argument("--ft-lr", type=float, default=1e-3, help="Peak fine-tuning learning rate (before layer decay).")
    p.add_argument("--layer-decay", type=float, default=0.75, help="Fine-tuning layer-wise lr decay.")
    p.add_argument("--ft-recipe", choices=("few-labels", "papers"), default="few-labels",
                   help="few-labels: no mixup/cutmix/RandAugment/smoothing/drop path; papers: all of them.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    console = Console(stderr=True)
    wall0, cpu0, load0 = time.perf_counter(), cpu(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tubelet-learning-") as tmp:
        root = args.out or Path(tmp)
        console.print(f"writing {args.clips} unlabelled + {4 * max(LABELS_PER_CLASS)} labelled + {args.test_clips} "
                      "test videos …")
        sets = write_sets(root / "videos", args)
        cpu_data = cpu() - cpu0
        test_set = read_labels(sets["test"])

        t = cpu()
        pretrained, result = run_pretraining(args, sets["unlabelled"], root / "pretrain")
        cpu_pre = cpu() - t
        torch.manual_seed(args.seed)
        random_init = root / "random_init"
        save_model(VideoMAE(load_model(pretrained).config), random_init)
        t = cpu()
        distilled = run_distillation(args, pretrained, sets["unlabelled"], root / "distill")
        cpu_dis = cpu() - t

        rows: list[dict[str, Any]] = []
        inits = {"pretrained (VideoMAE)": (pretrained, cpu_pre), "random init": (random_init, 0.0),
                 "distilled student": (distilled, cpu_pre + cpu_dis)}
        for n in LABELS_PER_CLASS:
            labels = first_per_class(sets["pool"], n, root / f"labels_{n}.csv")
            for name, (init, cpu_before) in inits.items():
                console.print(f"fine-tuning {name} on {n} labels per class …")
                t = cpu()
                ckpt = run_finetuning(args, init, labels, root / f"ft_{n}_{name.split()[0]}")
                cpu_ft = cpu() - t
                rows.append({"labels_per_class": n, "init": name, "top1": test_top1(ckpt, test_set, args.stride),
                             "cpu_min": (cpu_before + cpu_ft) / 60, "finetune_cpu_min": cpu_ft / 60})
        console.print(f"fine-tuning random init on all {args.clips} clips, labelled (what supervision reaches) …")
        t = cpu()
        ckpt = run_finetuning(args, random_init, sets["unlabelled"], root / "ft_all_random")
        cpu_ft = cpu() - t
        ceiling = {"labels_per_class": args.clips // 4, "init": "random init, every clip labelled",
                   "top1": test_top1(ckpt, test_set, args.stride), "cpu_min": cpu_ft / 60}

        t = cpu()
        probe_train = read_labels(root / f"labels_{max(LABELS_PER_CLASS)}.csv")
        probes = {name: probe_score(load_model(init), probe_train, test_set, args.stride, args.seed)
                  for name, (init, _) in list(inits.items())[:2]}
        cpu_probe = cpu() - t
    cpu_total, wall, load1 = cpu() - cpu0, time.perf_counter() - wall0, os.getloadavg()[0]

    def top(n: int, init: str) -> dict[str, Any]:
        return next(r for r in rows if r["labels_per_class"] == n and r["init"] == init)

    table = Table(title=f"fine-tuning with few labels: motion direction (4 classes, chance {CHANCE:.0%}), "
                        f"{len(test_set.examples)} held-apart test clips")
    for col in ("labels per class", "init", "top-1", "vs random init", "CPU min (pre-stage + fine-tune)"):
        table.add_column(col, justify="right" if col != "init" else "left")
    for r in rows:
        gain = 100 * (r["top1"] - top(r["labels_per_class"], "random init")["top1"])
        table.add_row(str(r["labels_per_class"]), r["init"], f"{100 * r['top1']:.1f}", f"{gain:+.1f}",
                      f"{r['cpu_min']:.1f}")
    table.add_row(str(ceiling["labels_per_class"]), ceiling["init"], f"{100 * ceiling['top1']:.1f}", "—",
                  f"{ceiling['cpu_min']:.1f}")
    for name, pr in probes.items():
        table.add_row(str(max(LABELS_PER_CLASS)), f"linear probe, {name}", f"{100 * pr['mean']:.1f}",
                      f"{100 * (pr['mean'] - probes['random init']['mean']):+.1f}", "—")
    out = Console()
    out.print(table)
    tokens = {name: f"{100 * pr['tokens']:.1f}" for name, pr in probes.items()}
    out.print(f"linear probe on the token map (keeps where and when): {tokens}")
    curve = " → ".join(f"{x:.4f}" for x in loss_curve(result.losses))
    out.print(f"pretraining: {result.step} steps × {args.batch}×{args.repeats} clips, loss (mean of each fifth) "
              f"{curve}; model vit_tiny depth {args.depth}, {args.frames}×{args.image_size}² (stride {args.stride}, "
              f"tubelet {args.tubelet}×{args.patch}²), {args.mask_type} mask {args.mask_ratio}, {args.objects} objects "
              f"per clip; student depth {max(1, args.depth // 2)}; fine-tuning recipe {args.ft_recipe}")
    out.print(f"CPU seconds: data {cpu_data:.0f}, pretraining {cpu_pre:.0f}, distillation {cpu_dis:.0f}, "
              f"fine-tuning {sum(r['finetune_cpu_min'] for r in rows) * 60:.0f} ({len(rows)} runs), probes "
              f"{cpu_probe:.0f}, total {cpu_total:.0f} ({cpu_total / 60:.1f} min); wall {wall:.0f} s; load average "
              f"{load0:.1f} → {load1:.1f} on {os.cpu_count()} cores")
    best = top(10, "pretrained (VideoMAE)")
    gain10 = 100 * (best["top1"] - top(10, "random init")["top1"])
    met = gain10 >= GOAL_POINTS and best["cpu_min"] <= GOAL_CPU_MIN
    out.print(f"goal (10 labels/class: pretrained ≥ random init + {GOAL_POINTS:.0f} points, pretraining + "
              f"fine-tuning ≤ {GOAL_CPU_MIN:.0f} CPU min): {'met' if met else 'NOT met'} ({gain10:+.1f} points, "
              f"{best['cpu_min']:.1f} CPU min)")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows, "supervised_all_clips": ceiling, "probes": probes, "gain_points_10": gain10, "goal_met": met,
            "pretrain_steps": result.step,
            "pretrain_loss_curve": loss_curve(result.losses),
            "cpu_s": {"data": cpu_data, "pretraining": cpu_pre, "distillation": cpu_dis, "probes": cpu_probe,
                      "total": cpu_total},
            "wall_s": wall, "load": [load0, load1], "settings": {k: str(v) for k, v in vars(args).items()},
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
