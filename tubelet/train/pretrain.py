"""The pretraining loop: masked-video reconstruction with AMP, accumulation, clipping, checkpoints and resume.

One process by default; under torchrun every rank trains its shard of each batch (DDP, or FSDP with
cfg.fsdp) and rank 0 logs, checkpoints and draws the reconstruction picture.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from tubelet.config import ModelConfig
from tubelet.data import Loader, PretrainDataset, Source, list_sources, make_loader
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE
from tubelet.train import distributed as D
from tubelet.train.checkpoint import latest_checkpoint, load_trainer_state, rng_state, save_checkpoint, set_rng_state
from tubelet.train.config import PretrainConfig, RunConfig, save_config
from tubelet.train.metrics import MetricsLog, progress_bar
from tubelet.train.optim import WarmupCosine, build_optimizer, scaled_lr
from tubelet.viz.reconstruct import clip_mask, load_clip, reconstruct, save_figure

CONFIG_FILE = "pretrain.yaml"
PICTURES = "reconstructions"
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def resolve_precision(precision: str, device: torch.device, cpu_bf16: bool | None = None) -> str:
    """'auto' → bf16 autocast on CUDA, and on CPUs with native bf16 matmuls (AVX512-BF16 or AMX, ~2.5× fp32);
    fp32 on other CPUs, where bf16 is emulated and made whole steps 3–4× slower. `cpu_bf16` overrides detection."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    if cpu_bf16 is None:
        cpu_bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if cpu_bf16 else "fp32"


class DivergedError(TubeletError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    """What a training session did (filled by `train_loop`)."""

    run_dir: Path
    checkpoint: Path | None  # the last checkpoint written
    step: int  # optimizer steps done, over all sessions
    total_steps: int
    losses: list[float] = field(default_factory=list)  # per step, this session
    clips_per_s: float = 0.0
    data_wait: float = 0.0  # share of step time spent waiting for data
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = False  # reached total_steps (not stopped by stop_after)
    rank: int = 0  # of this process under torchrun (only rank 0 reports)

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly summary the CLI prints."""
        return {
            "run_dir": str(self.run_dir), "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "step": self.step, "total_steps": self.total_steps, "finished": self.finished,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None, "clips_per_s": round(self.clips_per_s, 3),
            "data_wait": round(self.data_wait, 4), "skipped": self.skipped, "seconds": round(self.seconds, 2),
        }


@dataclass
class PretrainResult(RunResult):
    picture: Path | None = None  # the last reconstruction picture

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "reconstruction": str(self.picture) if self.picture else None}


# ---- set-up ---------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _deterministic() -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def _dataset(cfg: PretrainConfig, mcfg: ModelConfig) -> tuple[list[Source], PretrainDataset]:
    h, w = mcfg.image_size
    if h != w:
        raise TubeletError(f"pretraining crops square clips; image_size {h}×{w} is not square")
    items = list_sources(cfg.data)
    if not items:
        raise TubeletError(f"{cfg.data}: no videos found")
    ds = PretrainDataset(items, num_frames=mcfg.num_frames, stride=cfg.stride, image_size=h,
                         tubelet_size=mcfg.tubelet_size, patch_size=mcfg.patch_size, mask_type=cfg.mask_type,
                         mask_ratio=cfg.mask_ratio, decoder_mask_ratio=cfg.decoder_mask_ratio, repeats=cfg.repeats,
                         seed=cfg.seed)
    return items, ds


def _loader(cfg: PretrainConfig, ds: PretrainDataset, info: D.DistInfo) -> Loader:
    """One loader for the whole run (persistent workers); the loop sets its epoch and start batch."""
    return make_loader(ds, cfg.batch_size, workers=cfg.workers, seed=cfg.seed, rank=info.rank,
                       world_size=info.world_size, shuffle=True, drop_last=True)


def _total_steps(cfg: PretrainConfig, steps_per_epoch: int) -> int:
    return cfg.steps or cfg.epochs * steps_per_epoch


def build_model(cfg: PretrainConfig, start: Path | None) -> VideoMAE:
    """The model to train: from the checkpoint resumed, from cfg.init weights (model overrides applied), or fresh."""
    if start is not None:
        return load_model(start)
    if not cfg.init:
        return VideoMAE(cfg.model_config())
    overrides = {**cfg.model, **({"grad_checkpointing": True} if cfg.grad_checkpointing else {})}
    model = load_model(cfg.init, **overrides)
    if not model.config.is_pretraining:
        raise TubeletError(f"{cfg.init}: has no decoder, so it cannot be pretrained further")
    return model


# ---- the trainer ----------------------------------------------------------------------------------

class Trainer:
    """Model, optimizer, schedule and scaler of one run, with checkpoint save/restore.

    A subclass trains something else by overriding `batch_loss`, and its optimizer by `make_optimizer` and
    `schedule`."""

    schedule: type[WarmupCosine] = WarmupCosine  # the per-step learning rate

    def __init__(self, cfg: RunConfig, info: D.DistInfo, model: VideoMAE, total_steps: int,
                 run_dir: Path) -> None:
        self.cfg, self.info, self.total_steps, self.run_dir = cfg, info, total_steps, run_dir
        self.module = model.to(info.device)
        self.model: nn.Module = D.wrap(self.module, info, cfg.fsdp)
        total_batch = cfg.batch_size * cfg.accum_steps * info.world_size
        self.lr = scaled_lr(cfg.base_lr, total_batch)
        self.optimizer = self.make_optimizer()
        self.scheduler = self.schedule(self.optimizer, total_steps, int(cfg.warmup_frac * total_steps), self.lr,
                                       scaled_lr(cfg.warmup_lr, total_batch), scaled_lr(cfg.min_lr, total_batch))
        self.precision = resolve_precision(cfg.precision, info.device)
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=self.precision == "fp16")
        self.step = self.epoch = self.batch = 0
        if cfg.compile:
            self.model = torch.compile(self.model)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over decayed and not-decayed parameters at the scaled lr."""
        return build_optimizer(self.module, self.lr, self.cfg.weight_decay, self.cfg.betas)

    def autocast(self) -> torch.autocast:
        """The run's mixed precision for forward passes (off for fp32)."""
        dtype = _DTYPES[self.precision]
        return torch.autocast(self.info.device.type, dtype=dtype, enabled=dtype is not None)

    # -- one optimizer step over accum_steps micro-batches
    def batch_loss(self, batch: dict[str, Any]) -> Tensor:
        """Forward one micro-batch → its loss: masked reconstruction (subclasses change what is trained here)."""
        dev = self.info.device
        dmask = batch.get("decoder_mask")
        with self.autocast():
            return self.model(batch["video"].to(dev, non_blocking=True), mask=batch["mask"].to(dev, non_blocking=True),
                              decoder_mask=None if dmask is None else dmask.to(dev, non_blocking=True)).loss

    def train_step(self, batches: list[dict[str, Any]]) -> tuple[float, float]:
        """Forward/backward over the micro-batches and one optimizer step → (mean loss over ranks, peak lr used)."""
        cfg = self.cfg
        lr = max(g["lr"] for g in self.optimizer.param_groups)
        losses = []
        self.model.train()  # checkpoints may have evaluated it
        for k, batch in enumerate(batches):
            with D.no_grad_sync(self.model, skip=k < len(batches) - 1):
                loss = self.batch_loss(batch)
                value = D.mean_across(loss.detach().float().item(), self.info)
                if not math.isfinite(value):
                    raise DivergedError(self._diverged_message(value))
                losses.append(value)
                self.scaler.scale(loss / len(batches)).backward()
        if cfg.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        self.batch += len(batches)
        return sum(losses) / len(losses), lr

    def _diverged_message(self, value: float) -> str:
        last = latest_checkpoint(self.run_dir)
        keep = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        return (f"loss became {value} at step {self.step + 1} (epoch {self.epoch}); training stopped and {keep}; "
                f"try a lower --lr, --set clip_grad=1.0 or --precision fp32")

    # -- checkpoints
    def trainer_state(self) -> dict[str, Any]:
        """Everything but the weights, as tensors and plain containers (collective: call on every rank)."""
        return {
            "format": 1, "step": self.step, "epoch": self.epoch, "batch": self.batch,
            "world_size": self.info.world_size,
            "optimizer": get_optimizer_state_dict(self.module, self.optimizer, options=_FULL),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": D.gather(rng_state(), self.info),
        }

    def load(self, ckpt: Path) -> None:
        """Restore optimizer, schedule, scaler, RNG and data position (weights were loaded at construction)."""
        state = load_trainer_state(ckpt)
        set_optimizer_state_dict(self.module, self.optimizer, state["optimizer"],
                                 options=StateDictOptions(full_state_dict=True))
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        set_rng_state(rngs[self.info.rank] if len(rngs) == self.info.world_size else rngs[0])
        self.step, self.epoch, self.batch = state["step"], state["epoch"], state["batch"]
        if state["world_size"] != self.info.world_size and self.info.is_main:
            print(f"warning: {ckpt} was written by {state['world_size']} process(es), resuming with "
                  f"{self.info.world_size}: the data order differs from an uninterrupted run", file=sys.stderr)

    def savable_model(self) -> VideoMAE:
        """A VideoMAE holding the full weights on rank 0 (gathers FSDP shards: collective)."""
        if not self.cfg.fsdp:
            return self.module
        weights = get_model_state_dict(self.module, options=_FULL)
        if not self.info.is_main:
            return self.module
        full = VideoMAE(self.module.config)
        full.load_state_dict(weights)
        return full

    def save(self, run_dir: Path) -> Path | None:
        """Write a checkpoint for the current step (collective; rank 0 writes)."""
        state, model = self.trainer_state(), self.savable_model()
        path = save_checkpoint(run_dir, self.step, model, state, self.cfg.keep_last) if self.info.is_main else None
        D.barrier(self.info)
        return path

    def picture(self, clip: Tensor, mask: Tensor, path: Path, title: str) -> Path | None:
        """The reconstruction picture of the fixed sample (all ranks run FSDP's forward; rank 0 draws)."""
        if not (self.info.is_main or self.cfg.fsdp):
            return None
        rec = reconstruct(self.module, clip, mask)
        return save_figure(rec, path, title) if self.info.is_main else None


# ---- the loop -------------------------------------------------------------------------------------

def _fixed_sample(items: list[Source], cfg: PretrainConfig, model: VideoMAE) -> tuple[Tensor, Tensor] | None:
    """The first readable clip of the data and a fixed mask: the sample drawn at every checkpoint."""
    for item in items[:8]:
        try:
            clip = load_clip(item.input(), model.config, cfg.stride, item.start_s)
        except TubeletError:
            continue
        return clip, clip_mask(model, cfg.mask_type, cfg.mask_ratio, cfg.seed)
    return None


def prepare_run_dir(cfg: RunConfig, run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (None: a fresh run); a fresh run never overwrites another's checkpoints."""
    if resume:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise TubeletError(f"{run_dir}: no checkpoint to resume from")
        return ckpt
    if run_dir.exists() and latest_checkpoint(run_dir) is not None:
        raise TubeletError(f"{run_dir}: already holds checkpoints; pass --resume to continue that run "
                           "or choose another --out")
    return None


def pretrain(cfg: PretrainConfig, run_dir: str | Path, resume: bool = False, stop_after: int = 0,
             progress: bool = True) -> PretrainResult:
    """Train `cfg` into `run_dir`; with `resume`, continue from its last checkpoint as if never stopped.

    stop_after > 0 ends this session after that many steps (with a checkpoint), as a time-sliced job would.
    """
    run_dir = Path(run_dir)
    info = D.setup(cfg.device)
    try:
        return _pretrain(cfg, run_dir, info, resume, stop_after, progress)
    finally:
        D.teardown()


def _pretrain(cfg: PretrainConfig, run_dir: Path, info: D.DistInfo, resume: bool, stop_after: int,
              progress: bool) -> PretrainResult:
    started = time.perf_counter()
    if not (cfg.steps or cfg.epochs):
        raise TubeletError("say how long to train: --steps N or --epochs N")
    start = prepare_run_dir(cfg, run_dir, resume)
    if cfg.deterministic:
        _deterministic()
    seed_everything(cfg.seed)
    model = build_model(cfg, start)
    items, ds = _dataset(cfg, model.config)
    loader = _loader(cfg, ds, info)
    steps_per_epoch = len(loader) // cfg.accum_steps
    if steps_per_epoch == 0:
        raise TubeletError(f"{cfg.data}: {len(items)} clip(s) make no full step of batch {cfg.batch_size} × "
                           f"{cfg.accum_steps} accumulation × {info.world_size} process(es); lower --batch-size")
    total = _total_steps(cfg, steps_per_epoch)
    trainer = Trainer(cfg, info, model, total, run_dir)
    seed_everything(cfg.seed + info.rank)  # per-rank streams (drop path); replaced by the saved ones on resume
    if start is not None:
        trainer.load(start)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / CONFIG_FILE)
    sample = _fixed_sample(items, cfg, trainer.module)
    log = MetricsLog(run_dir, trainer.step if start is not None else None) if info.is_main else None
    result = PretrainResult(run_dir, start, trainer.step, total, rank=info.rank)
    clips_per_step = cfg.batch_size * cfg.repeats * cfg.accum_steps * info.world_size
    train_loop(trainer, loader, steps_per_epoch, result, log, "pretrain", clips_per_step, stop_after, progress,
               started, lambda paths: _note_skipped(paths, result, log, trainer.step),
               lambda: _checkpoint(trainer, run_dir, sample, result))
    return result


def train_loop(trainer: Trainer, loader: Loader, steps_per_epoch: int, result: RunResult, log: MetricsLog | None,
               name: str, clips_per_step: int, stop_after: int, progress: bool, started: float,
               note_skipped: Callable[[list[str]], None], checkpoint: Callable[[], None]) -> None:
    """Optimizer steps to the end of the run, or `stop_after` steps into this session: a progress bar, metrics
    (loss averaged since the last record) every log_every steps, `checkpoint()` every save_every steps and at the
    end; `result` gets the losses, timing and step reached (skipped files gathered from every rank)."""
    cfg, total, info = trainer.cfg, trainer.total_steps, trainer.info
    busy = waited = 0.0
    interval: list[float] = []
    try:
        with progress_bar(progress and info.is_main) as bar:
            task = bar.add_task(name, total=total, completed=trainer.step, loss=float("nan"),
                                lr=max(g["lr"] for g in trainer.optimizer.param_groups), clips_per_s=0.0)
            tick = time.perf_counter()
            for batches, wait in step_batches(loader, trainer, steps_per_epoch):
                for b in batches:
                    note_skipped(b.get("skipped", []))
                loss, lr = trainer.train_step(batches)
                dt = time.perf_counter() - tick
                busy, waited = busy + dt, waited + wait
                result.losses.append(loss)
                interval.append(loss)
                bar.update(task, completed=trainer.step, loss=loss, lr=lr, clips_per_s=clips_per_step / dt)
                if log is not None and (trainer.step % cfg.log_every == 0 or trainer.step == total):
                    log.log({"step": trainer.step, "epoch": trainer.epoch, "loss": sum(interval) / len(interval),
                             "lr": lr, "clips_per_s": clips_per_step / dt, "data_wait": wait / dt, "step_s": dt,
                             "elapsed_s": time.perf_counter() - started})
                    interval = []
                last = trainer.step >= total or len(result.losses) == stop_after
                if trainer.step % cfg.save_every == 0 or last:
                    checkpoint()
                if last:
                    break
                tick = time.perf_counter()
    finally:
        if log is not None:
            log.close()
    result.step = trainer.step
    result.finished = trainer.step >= total
    result.clips_per_s = clips_per_step * len(result.losses) / busy if busy else 0.0
    result.data_wait = waited / busy if busy else 0.0
    result.skipped = sorted({p for rank in D.gather(result.skipped, info) for p in rank})
    result.seconds = time.perf_counter() - started


def step_batches(loader: Loader, trainer: Trainer, steps_per_epoch: int) -> Iterator[tuple[list[dict], float]]:
    """The micro-batches of each optimizer step from the trainer's data position on, epoch after epoch (none when
    the run is complete), and the seconds spent waiting for them. Batches left over at an epoch's end (fewer
    than accum_steps) are dropped."""
    accum = trainer.cfg.accum_steps
    while trainer.step < trainer.total_steps:
        loader.set_epoch(trainer.epoch, trainer.batch)
        it = iter(loader)
        while trainer.batch + accum <= steps_per_epoch * accum:  # train_step advances trainer.batch
            t0 = time.perf_counter()
            batches = [next(it) for _ in range(accum)]
            yield batches, time.perf_counter() - t0
        trainer.epoch, trainer.batch = trainer.epoch + 1, 0


def _checkpoint(trainer: Trainer, run_dir: Path, sample: tuple[Tensor, Tensor] | None,
                result: PretrainResult) -> None:
    path = trainer.save(run_dir)
    if path is not None:
        result.checkpoint = path
    if sample is not None:
        title = f"step {trainer.step}  ·  {trainer.module.config.name}"
        picture = trainer.picture(*sample, run_dir / PICTURES / f"step_{trainer.step:08d}.png", title)
        result.picture = picture or result.picture


def _note_skipped(paths: list[str], result: PretrainResult, log: MetricsLog | None, step: int) -> None:
    for path in paths:
        if path not in result.skipped:
            result.skipped.append(path)
            if log is not None:
                log.log({"step": step, "event": "skipped", "path": path})


__all__ = ["CONFIG_FILE", "DivergedError", "PretrainResult", "RunResult", "Trainer", "prepare_run_dir", "pretrain",
           "train_loop"]
