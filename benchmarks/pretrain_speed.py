"""Full pretraining steps, data included: tubelet's engine vs transformers' VideoMAEForPreTraining.

Both read the same clips through tubelet's loader (same order, same tube masks), start from the same weights and
take AdamW steps under the same autocast. A step is: wait for the next batch, forward, backward, optimizer step.
The table gives clips/s (clips through the model per second of step time), the ratio to transformers, and the
share of step time spent waiting for data. Cases alternate step by step so that load from other processes
hits both alike; times are medians after warm-up steps.

    .venv/bin/python benchmarks/pretrain_speed.py                 # ViT-S, 16×224², fp32, a few minutes
    .venv/bin/python benchmarks/pretrain_speed.py --precision bf16  # both under bf16 autocast
    .venv/bin/python benchmarks/pretrain_speed.py --quick         # smoke run
    python benchmarks/pretrain_speed.py --device cuda --preset vit_base --batch 32 --workers 12  # a GPU, bf16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from transformers import VideoMAEConfig, VideoMAEForPreTraining

from tubelet import VideoMAE
from tubelet.data import make_loader
from tubelet.model.transformers_ckpt import to_transformers
from tubelet.train import distributed as D
from tubelet.train.config import PretrainConfig
from tubelet.train.engine import DTYPES, Trainer, clips_per_video
from tubelet.train.optim import build_optimizer
from tubelet.train.pretrain import Pretraining

console = Console()
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def peer(model: VideoMAE) -> VideoMAEForPreTraining:
    """transformers' pretraining model with our weights."""
    meta, weights = to_transformers(model.config, model.state_dict())
    meta.pop("architectures"), meta.pop("model_type"), meta.pop("torch_dtype")
    net = VideoMAEForPreTraining(VideoMAEConfig(**meta))
    net.load_state_dict(weights, strict=False)  # its fixed sinusoid tables are buffers it builds itself
    net.decoder.norm.eps = model.config.norm_eps  # transformers' decoder norm defaults to 1e-5
    return net


def batches(recipe: Pretraining, model: VideoMAE) -> Iterator[dict]:
    """The loader's batches with their masks, epoch after epoch (a full pass moves the loader to the next
    epoch)."""
    cfg = recipe.cfg
    ds = recipe.dataset(model)
    ds.repeat(clips_per_video(ds.num_videos, cfg.batch_size))  # as the engine does: a full batch from few videos
    loader = make_loader(ds, cfg.batch_size, workers=cfg.workers, seed=cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    while True:
        for batch in loader:
            yield {**batch, **recipe.masking.draw(batch["video"].shape[0], generator)}


def timed(data: Iterator[dict], step: Callable[[dict], None]) -> Callable[[], tuple[float, float]]:
    """One step → (seconds waiting for data, seconds in all)."""
    def run() -> tuple[float, float]:
        t0 = time.perf_counter()
        batch = next(data)
        t1 = time.perf_counter()
        step(batch)
        return t1 - t0, time.perf_counter() - t0
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--preset", default="vit_small")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                    help="auto: the engine's default for the device (bf16 on a GPU, fp32 on this CPU)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per case")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="vit_tiny, 8×112², 2 timed steps")
    args = ap.parse_args()
    if args.quick:
        args.preset, args.frames, args.size, args.steps, args.warmup = "vit_tiny", 8, 112, 2, 1

    cfg = PretrainConfig(data=args.data, preset=args.preset, model={"num_frames": args.frames,
                         "image_size": args.size}, batch_size=args.batch, workers=args.workers,
                         precision=args.precision, steps=args.warmup + args.steps)
    info = D.setup(args.device)
    torch.manual_seed(0)
    recipe = Pretraining(cfg)
    model = recipe.build_model(None)
    theirs = peer(model).to(info.device)

    trainer = Trainer(recipe, info, model, cfg.steps, Path(tempfile.mkdtemp()))
    dtype = DTYPES[trainer.precision]
    ours = timed(batches(recipe, model), lambda b: trainer.train_step([b]))

    opt = build_optimizer(theirs, trainer.lr, cfg.weight_decay, cfg.betas)

    def peer_step(batch: dict) -> None:
        video = batch["video"].to(info.device, non_blocking=True).transpose(1, 2)  # transformers: [B, T, C, H, W]
        with torch.autocast(info.device.type, dtype=dtype, enabled=dtype is not None):
            loss = theirs(pixel_values=video, bool_masked_pos=batch["mask"].to(info.device)).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # waits for the device, as the engine's loss logging does

    peer_run = timed(batches(recipe, model), peer_step)
    cases = {"tubelet": ours, "transformers": peer_run}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    clips = args.batch * cfg.repeats
    console.print(f"{args.preset} {args.frames}×{args.size}², batch {args.batch}, {trainer.precision} on "
                  f"{info.device}, {args.workers} workers, {torch.get_num_threads()} threads, data {args.data}")
    peaks = dict.fromkeys(cases, 0)
    on_gpu = info.device.type == "cuda"
    for i in range(args.warmup + args.steps):
        last = {}
        for name, run in cases.items():
            if on_gpu:
                torch.cuda.reset_peak_memory_stats(info.device)
            last[name] = run()
            if i >= args.warmup:
                times[name].append(last[name])
            if on_gpu:
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated(info.device))
        console.print(f"step {i + 1}/{args.warmup + args.steps}{'' if i >= args.warmup else ' (warm-up)'}: "
                      + ", ".join(f"{name} {t:.3f} s (data {w:.3f})" for name, (w, t) in last.items()),
                      highlight=False)

    table = Table(title="pretraining step, data included")
    for col in ("impl", "clips/s", "vs transformers", "step s (median)", "compute s (median)", "data wait share",
                "peak device GiB"):
        table.add_column(col, justify="right")
    peer_s = statistics.median(t for _, t in times["transformers"])
    for name, ts in times.items():
        step_s = statistics.median(t for _, t in ts)
        compute_s = statistics.median(t - w for w, t in ts)
        wait = sum(w for w, _ in ts) / sum(t for _, t in ts)
        peak = f"{peaks[name] / 2**30:.1f}" if on_gpu else "-"
        table.add_row(name, f"{clips / step_s:.2f}", f"{peer_s / step_s:.2f}×", f"{step_s:.3f}", f"{compute_s:.3f}",
                      f"{wait:.1%}", peak)
    console.print(table)


if __name__ == "__main__":
    main()
