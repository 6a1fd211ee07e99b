"""Pretraining-step and encode throughput: tubelet vs transformers' VideoMAE on this CPU.

Both models have the same config (ViT-S, 16×224², 90% tube masking, decoder depth 4) and the same weights,
and run on the same clips and masks. For each case it prints clips/s, the ratio to transformers at the same
precision, and the achieved matmul FLOP/s as a share of the same-dtype matmul peak measured in this run.

FLOPs are the algorithm's useful matmul work, counted once and identically for both implementations:
patch embedding and encoder on the visible tokens, encoder_to_decoder, decoder on its input sequence, head on
the decoded tokens (×3 for forward + backward of a step); attention counts QKᵀ and AV. Work an
implementation does beyond that (transformers embeds all 1568 tokens) is not credited.

Cases are timed interleaved (one iteration of each in turn) so that load from other processes hits all of
them alike; the per-case time is the median iteration.

    .venv/bin/python benchmarks/model_speed.py            # full run, a few minutes
    .venv/bin/python benchmarks/model_speed.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table
from transformers import VideoMAEConfig, VideoMAEForPreTraining

from tubelet import ModelConfig, VideoMAE, preset, running_cell_mask, tube_mask
from tubelet.model.transformers_ckpt import to_transformers

console = Console(width=150)


# ---- the peer: transformers' VideoMAE with our weights -----------------------------------------------------
def build_peer(model: VideoMAE, attn: str) -> VideoMAEForPreTraining:
    """VideoMAEForPreTraining with `model`'s weights, through tubelet's own transformers converter."""
    meta, sd = to_transformers(model.config, model.state_dict())
    peer = VideoMAEForPreTraining(VideoMAEConfig(**meta, attn_implementation=attn))
    if any(k.endswith("query.bias") for k in peer.state_dict()):  # newer transformers: q_bias → query.bias
        sd = {k.replace(".q_bias", ".query.bias").replace(".v_bias", ".value.bias"): v for k, v in sd.items()}
    peer.load_state_dict(sd, strict=True)
    # transformers builds the decoder norm with LayerNorm's default eps (1e-5); the official model (and ours)
    # uses 1e-6. Same eps → same function, which the parity check below confirms.
    peer.decoder.norm.eps = model.config.norm_eps
    return peer


# ---- FLOPs -------------------------------------------------------------------------------------------------
def block_flops(n: int, dim: int, mlp: int) -> int:
    """Matmul FLOPs of one transformer block on n tokens: qkv + proj + mlp, and QKᵀ + AV."""
    return 2 * n * (4 * dim * dim + 2 * dim * mlp) + 4 * n * n * dim


def encode_flops(cfg: ModelConfig, n: int) -> int:
    return 2 * n * cfg.patch_dim * cfg.embed_dim + cfg.depth * block_flops(n, cfg.embed_dim, cfg.mlp_dim)


def step_flops(cfg: ModelConfig, n_vis: int, n_dec: int) -> int:
    """Forward + backward (3× forward) of a pretraining step: encoder on n_vis tokens, decoder on n_vis + n_dec,
    head on the n_dec decoded tokens."""
    dec = cfg.decoder_depth * block_flops(n_vis + n_dec, cfg.decoder_dim, cfg.decoder_mlp_dim)
    fwd = (encode_flops(cfg, n_vis) + 2 * n_vis * cfg.embed_dim * cfg.decoder_dim + dec
           + 2 * n_dec * cfg.decoder_dim * cfg.patch_dim)
    return 3 * fwd


def matmul_peak(dtype: torch.dtype, seconds: float, clock: Callable[[], float]) -> float:
    """Best FLOP/s of a square matmul, grown until one call takes ≥50 ms (at most 4096²), over the two layouts
    the models use: `a @ b` and `F.linear(a, b)` (= a @ bᵀ, the Linear layer's; oneDNN may serve only one of
    them with a fast kernel — emulated bf16 here runs 15× faster through F.linear)."""
    layouts = [torch.matmul, torch.nn.functional.linear]
    n = 512
    while True:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        dts = []
        for f in layouts:
            t0 = clock()
            f(a, b)
            dts.append(clock() - t0)
        if min(dts) >= 0.05 or n >= 4096:
            break
        n *= 2
    best, stop = min(dts), time.perf_counter() + seconds
    while time.perf_counter() < stop:
        for f in layouts:
            t0 = clock()
            f(a, b)
            best = min(best, clock() - t0)
    return 2 * n**3 / best


# ---- cases -------------------------------------------------------------------------------------------------
@dataclass
class Case:
    group: str  # "step v1", "step v2 dual", "encode"
    impl: str
    precision: str
    batch: int
    flops_per_clip: int
    fn: Callable[[], None]
    ref_group: str = ""  # which transformers row the ratio is taken against (default: own group)
    times: list[float] | None = None

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)

    @property
    def clips_per_s(self) -> float:
        return self.batch / self.seconds


def autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(model: torch.nn.Module, kind: str) -> torch.optim.Optimizer:
    opts = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.AdamW(model.parameters(), lr=1.5e-4, weight_decay=0.05, **opts)


def step_fn(loss_fn: Callable[[], torch.Tensor], opt: torch.optim.Optimizer, precision: str) -> Callable[[], None]:
    def run() -> None:
        with autocast(precision):
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run


def encode_fn(forward: Callable[[], torch.Tensor], precision: str) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode(), autocast(precision):
            forward()
    return run


def time_interleaved(cases: list[Case], warmup: int, iters: int, clock: Callable[[], float]) -> None:
    for case in cases:
        case.times = []
        for _ in range(warmup):
            case.fn()
    for _ in range(iters):
        for case in cases:
            t0 = clock()
            case.fn()
            case.times.append(clock() - t0)


def parity(model: VideoMAE, peers: dict[str, VideoMAEForPreTraining], video: torch.Tensor,
           video_hf: torch.Tensor, mask: torch.Tensor) -> str:
    """fp32 loss of both implementations on the same clip: they must compute the same function."""
    with torch.no_grad():
        ours = model(video[:1], mask=mask[:1]).loss.item()
        theirs = {k: p(pixel_values=video_hf[:1], bool_masked_pos=mask[:1]).loss.item() for k, p in peers.items()}
    worst = max(abs(ours - t) for t in theirs.values())
    return f"parity (fp32 loss, 1 clip): tubelet {ours:.6f}, transformers {theirs}; max |Δ| {worst:.1e}"


# ---- attention kernels: why vit.Attention always calls SDPA ------------------------------------------------
def matmul_softmax(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v


def attention_table(cfg: ModelConfig, n_vis: int, n_masked: int, n_kept: int, precisions: list[str], batch: int,
                    iters: int, clock: Callable[[], float]) -> None:
    """SDPA vs plain matmul-softmax at the sequence lengths the model runs (q/k/v as strided views of qkv)."""
    table = Table(title=f"attention, batch {batch}: median ms per call (q, k, v strided views of one qkv tensor)")
    for col in ("tokens × heads×dim", "where", "pass", "precision", "SDPA", "matmul-softmax", "SDPA speed-up"):
        table.add_column(col, justify="left" if col in ("tokens × heads×dim", "where") else "right")
    enc = (cfg.num_heads, cfg.embed_dim // cfg.num_heads)
    dec = (cfg.decoder_heads, cfg.decoder_dim // cfg.decoder_heads)
    shapes = [(n_vis, *enc, "encoder, visible"), (n_vis + n_kept, *dec, "decoder, v2 dual"),
              (n_vis + n_masked, *dec, "decoder, v1"), (cfg.num_patches, *enc, "encoder, all tokens")]
    kernels = {"sdpa": torch.nn.functional.scaled_dot_product_attention, "matmul": matmul_softmax}
    for n, heads, head_dim, where in shapes:
        for backward in (False, True):
            for precision in precisions:
                dtype = torch.bfloat16 if precision == "bf16" else torch.float32
                qkv = torch.randn(batch, n, 3, heads, head_dim, dtype=dtype, requires_grad=backward)
                times: dict[str, list[float]] = {k: [] for k in kernels}
                for i in range(iters + 1):  # the first round warms up
                    for name, f in kernels.items():
                        q, k, v = qkv.permute(2, 0, 3, 1, 4)
                        t0 = clock()
                        with torch.set_grad_enabled(backward):
                            out = f(q, k, v)
                            if backward:
                                out.sum().backward()
                        if i:
                            times[name].append(clock() - t0)
                sdpa, mm = (1e3 * statistics.median(times[k]) for k in kernels)
                table.add_row(f"{n} × {heads}×{head_dim}", where, "fwd+bwd" if backward else "fwd", precision,
                              f"{sdpa:.1f}", f"{mm:.1f}", f"{mm / sdpa:.2f}×")
    console.print(table)


# ---- main --------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 1, 1 warm-up + 2 timed iterations")
    ap.add_argument("--batch", type=int, default=2, help="clips per step / encode call")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--precision", default="auto",
                    help="comma list of fp32,bf16; 'auto' = fp32, plus bf16 when its matmul peak beats fp32's")
    ap.add_argument("--peer-attn", default="sdpa,eager", help="transformers attention implementation(s) to time")
    ap.add_argument("--adamw", default="fused", choices=["default", "foreach", "fused"],
                    help="AdamW implementation, the same for both; fused is transformers' Trainer default (torch>=2.8)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="cpu: process CPU time, for comparing variants on a busy machine with --threads 1")
    ap.add_argument("--preset", default="vit_small")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--no-attention", action="store_true", help="skip the SDPA vs matmul-softmax table")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.quick:
        args.batch, args.warmup, args.iters, args.peer_attn = 1, 1, 2, "sdpa"
    torch.manual_seed(0)

    load0 = os.getloadavg()[0]
    console.print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, clock {args.clock}, "
                  f"CPU capability {torch.backends.cpu.get_cpu_capability()}, load average {load0:.2f}")
    peaks = {"fp32": matmul_peak(torch.float32, 1.0 if args.quick else 3.0, clock),
             "bf16": matmul_peak(torch.bfloat16, 1.0 if args.quick else 3.0, clock)}
    console.print("matmul peak: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    precisions = args.precision.split(",") if args.precision != "auto" else ["fp32"]
    if args.precision == "auto":
        if peaks["bf16"] > peaks["fp32"]:
            precisions.append("bf16")
        else:
            console.print(f"[yellow]bf16 skipped: this CPU has no fast bf16 matmul "
                          f"({peaks['bf16'] / peaks['fp32']:.2f}× fp32); force it with --precision fp32,bf16")

    cfg = preset(args.preset, num_frames=args.frames, image_size=args.size)
    B, gen = args.batch, torch.Generator().manual_seed(0)
    video = torch.randn(B, 3, cfg.num_frames, *cfg.image_size, generator=gen)  # [B, C, T, H, W]
    video_hf = video.permute(0, 2, 1, 3, 4).contiguous()  # transformers takes [B, T, C, H, W]
    mask = tube_mask(cfg.grid, 0.9, B, gen)
    dmask = running_cell_mask(cfg.grid, 0.5, B, gen)
    n_vis = int((~mask[0]).sum())
    n_masked, n_kept = cfg.num_patches - n_vis, int((~dmask[0]).sum())

    model = VideoMAE(cfg)
    peers = {attn: build_peer(model, attn) for attn in args.peer_attn.split(",")}
    console.print(parity(model, peers, video, video_hf, mask))
    console.print(f"{cfg.name} {cfg.num_frames}×{cfg.image_size[0]}², {cfg.num_patches} tokens, {n_vis} visible; "
                  f"batch {B}; decoder v1 {n_vis}+{n_masked} tokens, v2 dual {n_vis}+{n_kept}; "
                  f"AdamW {args.adamw}; {args.warmup} warm-up + {args.iters} timed iterations per case")

    opt = make_optimizer(model, args.adamw)
    peer_opts = {attn: make_optimizer(p, args.adamw) for attn, p in peers.items()}
    v1, v2, enc = step_flops(cfg, n_vis, n_masked), step_flops(cfg, n_vis, n_kept), encode_flops(cfg, cfg.num_patches)
    rows: list[Case] = []
    for precision in precisions:
        steps = [Case("step v1", "tubelet", precision, B, v1,
                      step_fn(lambda: model(video, mask=mask).loss, opt, precision))]
        steps += [Case("step v1", f"transformers ({attn})", precision, B, v1,
                       step_fn(lambda p=p: p(pixel_values=video_hf, bool_masked_pos=mask).loss,
                               peer_opts[attn], precision)) for attn, p in peers.items()]
        steps.append(Case("step v2 dual", "tubelet", precision, B, v2,
                          step_fn(lambda: model(video, mask=mask, decoder_mask=dmask).loss, opt, precision),
                          ref_group="step v1"))
        encodes = [Case("encode", "tubelet", precision, B, enc, encode_fn(lambda: model.encode(video), precision))]
        encodes += [Case("encode", f"transformers ({attn})", precision, B, enc,
                         encode_fn(lambda p=p: p.videomae(pixel_values=video_hf), precision))
                    for attn, p in peers.items()]
        for group in (steps, encodes):
            for m in [model, *peers.values()]:
                m.train(group is steps)
            time_interleaved(group, args.warmup, args.iters, clock)
            rows += group

    print_table(rows, peaks, f"VideoMAE {cfg.name} {cfg.num_frames}×{cfg.image_size[0]}², 90% tube mask")
    if not (args.quick or args.no_attention):
        attention_table(cfg, n_vis, n_masked, n_kept, precisions, B, args.iters, clock)
    load1 = os.getloadavg()[0]
    console.print(f"load average {load0:.2f} → {load1:.2f} on {os.cpu_count()} CPUs"
                  + (" [yellow](busy machine: wall-clock numbers are unreliable, multi-threaded ones most; rerun when "
                     "quiet, or compare with --threads 1 --clock cpu)" if max(load0, load1) > 1.5 else ""))


def print_table(rows: list[Case], peaks: dict[str, float], title: str) -> None:
    """Ratios are against the fastest transformers row of the same group and precision."""
    def peer_best(group: str, precision: str) -> float:
        return max(c.clips_per_s for c in rows
                   if c.group == group and c.precision == precision and c.impl.startswith("transformers"))

    table = Table(title=f"{title} — pretraining step and encode")
    for col in ("config", "impl", "precision", "clips/s", "s/iter", "vs transformers", "GFLOP/s", "% of peak"):
        table.add_column(col, justify="left" if col in ("config", "impl") else "right")
    for c in rows:
        achieved = c.flops_per_clip * c.clips_per_s
        ref = c.ref_group or c.group
        ratio = c.clips_per_s / peer_best(ref, c.precision)
        table.add_row(c.group if ref == c.group else f"{c.group} (vs {ref})", c.impl, c.precision,
                      f"{c.clips_per_s:.3f}", f"{c.seconds:.2f}", f"{ratio:.2f}×", f"{achieved / 1e9:.1f}",
                      f"{100 * achieved / peaks[c.precision]:.0f}%")
    console.print(table)
    console.print("vs transformers: clips/s over the fastest transformers attention implementation at the same "
                  "precision; % of peak: matmul FLOP/s over the same-dtype square-matmul peak of this run "
                  "(the faster of a @ b and F.linear).")


if __name__ == "__main__":
    main()
