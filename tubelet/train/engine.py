"""The training engine every run kind plugs into: seeding, the run directory, the Trainer (AMP, accumulation,
clipping, DDP/FSDP, checkpoints with exact resume), the step loop with progress and metrics, and `run`.

A kind of run is a `Recipe` (pretraining, fine-tuning, distillation): it builds the model and the dataset, gives
the loss of one micro-batch, and says what a checkpoint adds (a picture, validation scores). Everything else —
how long to train, how the data is repeated and sharded, when to log and save, how skipped files are reported —
is the engine's, the same for every recipe.
"""

from __future__ import annotations

import abc
import gc
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from tubelet.data import Loader, make_loader
from tubelet.data.datasets import VideoDataset
from tubelet.errors import TubeletError
from tubelet.model.videomae import VideoMAE
from tubelet.train import distributed as D
from tubelet.train.config import RunConfig, save_config
from tubelet.train.metrics import MetricsLog, progress_bar
from tubelet.train.optim import WarmupCosine, build_optimizer, scaled_lr
from tubelet.train.run_state import latest_checkpoint, load_trainer_state, rng_state, save_checkpoint, set_rng_state

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
UNTIL_BUDGET = 10**9  # the provisional length of a run that only a CPU budget ends
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


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
    """What a training session did; recipes extend it with what their checkpoints add."""

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
    device: str = "cpu"  # this process's, as torch names it
    precision: str = "fp32"  # resolved: bf16 | fp16 | fp32

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly summary the CLI prints."""
        return {
            "run_dir": str(self.run_dir), "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "step": self.step, "total_steps": self.total_steps, "finished": self.finished,
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None, "clips_per_s": round(self.clips_per_s, 3),
            "data_wait": round(self.data_wait, 4), "skipped": self.skipped, "seconds": round(self.seconds, 2),
            "device": self.device, "precision": self.precision,
        }


# ---- set-up ---------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def deterministic_algorithms() -> None:
    """Deterministic kernels (bit-identical reruns and resumes)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The generator of one optimizer step on one rank (masks, teacher views): fixed by (seed, step, rank), so a
    resumed run draws what an uninterrupted one would."""
    state = np.random.SeedSequence([seed, step, rank, 7]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def prepare_run_dir(run_dir: Path, resume: bool) -> Path | None:
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


def clips_per_video(videos: int, clips_per_step: int) -> int:
    """Clips drawn from each video per epoch: one, or as many as make one full step (repeated sampling), so a
    handful of long videos trains with the default batch size."""
    if videos <= 0:
        raise TubeletError("the dataset has no videos")
    return max(1, math.ceil(clips_per_step / videos))


# ---- the recipe interface -------------------------------------------------------------------------

class Recipe(abc.ABC):
    """A kind of training run: its model, data and loss; the engine does the rest.

    The trained module is usually the VideoMAE itself; a recipe that trains more (distillation's projection)
    returns a module holding it and says, in `checkpoint_parts`, which VideoMAE a checkpoint holds.
    """

    name: ClassVar[str]  # the progress bar's label
    config_file: ClassVar[str]  # the resolved config in RUN_DIR
    result_type: ClassVar[type[RunResult]] = RunResult

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    @abc.abstractmethod
    def build_model(self, start: Path | None) -> nn.Module:
        """The module to train: restored from `start` (a checkpoint being resumed) or new."""

    @abc.abstractmethod
    def dataset(self, model: nn.Module) -> VideoDataset:
        """The training samples for this model's geometry."""

    @abc.abstractmethod
    def batch_loss(self, trainer: Trainer, batch: dict[str, Any]) -> Tensor:
        """The loss of one micro-batch (forward under `trainer.autocast()`, random draws from trainer.generator)."""

    def views_per_sample(self) -> int:
        """Clips a sample holds (repeated augmentation), for the clips/s figure."""
        return 1

    def optimizer(self, module: nn.Module, lr: float) -> torch.optim.Optimizer:
        """AdamW over decayed and not-decayed parameters at the scaled lr."""
        return build_optimizer(module, lr, self.cfg.weight_decay, self.cfg.betas)

    def start(self, trainer: Trainer, result: RunResult) -> None:
        """Before the first step (every rank): files beside the config, fixed samples, validation data."""
        return

    def on_checkpoint(self, trainer: Trainer, path: Path | None, result: RunResult, log: MetricsLog | None) -> None:
        """After a checkpoint is written (every rank; `path` and `log` on rank 0 only)."""
        return

    def empty_like(self, module: nn.Module) -> nn.Module:
        """A module of the same architecture, for gathering FSDP shards into."""
        return VideoMAE(module.config)

    def checkpoint_parts(self, module: nn.Module) -> tuple[VideoMAE, dict[str, Any]]:
        """The model a checkpoint holds, and any other trained state for trainer.pt."""
        return module, {}  # type: ignore[return-value]


# ---- the trainer ----------------------------------------------------------------------------------

class Trainer:
    """Model, optimizer, schedule and scaler of one run, with checkpoint save/restore; the recipe gives the loss."""

    def __init__(self, recipe: Recipe, info: D.DistInfo, model: nn.Module, total_steps: int, run_dir: Path) -> None:
        cfg = recipe.cfg
        self.recipe, self.cfg, self.info, self.total_steps, self.run_dir = recipe, cfg, info, total_steps, run_dir
        self.module = model.to(info.device)
        self.model: nn.Module = D.wrap(self.module, info, cfg.fsdp)
        total_batch = cfg.batch_size * cfg.accum_steps * info.world_size
        self.lr = scaled_lr(cfg.base_lr, total_batch)
        self.optimizer = recipe.optimizer(self.module, self.lr)
        self.scheduler = WarmupCosine(self.optimizer, total_steps, int(cfg.warmup_frac * total_steps), self.lr,
                                      scaled_lr(cfg.warmup_lr, total_batch), scaled_lr(cfg.min_lr, total_batch))
        self.precision = resolve_precision(cfg.precision, info.device)
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=self.precision == "fp16")
        self.step = self.epoch = self.batch = 0
        self.generator = step_generator(cfg.seed, 0, info.rank)
        if cfg.compile:
            self.model = torch.compile(self.model)

    def release(self) -> None:
        """Drop the DDP wrapper while the process group still exists. Freed after `destroy_process_group`, a DDP
        reducer holds the group's last reference and destroys it with the GIL held, joining gloo worker threads
        that may need the GIL to free a finished collective's tensors: a deadlock (seen 1 run in 4 under load)."""
        self.model = self.module
        gc.collect()  # DDP's hooks keep it in reference cycles

    def fit_length(self, total_steps: int) -> None:
        """Change the run's length (a CPU budget's estimate): the schedule's warmup and cosine follow it."""
        self.total_steps = self.scheduler.total_steps = total_steps
        self.scheduler.warmup_steps = int(self.cfg.warmup_frac * total_steps)

    def autocast(self) -> torch.autocast:
        """The run's mixed precision for forward passes (off for fp32)."""
        dtype = DTYPES[self.precision]
        return torch.autocast(self.info.device.type, dtype=dtype, enabled=dtype is not None)

    def train_step(self, batches: list[dict[str, Any]]) -> tuple[float, float]:
        """Forward/backward over the micro-batches and one optimizer step → (mean loss over ranks, peak lr used)."""
        lr = max(g["lr"] for g in self.optimizer.param_groups)
        losses = []
        self.generator = step_generator(self.cfg.seed, self.step, self.info.rank)
        self.model.train()  # checkpoints may have evaluated it
        for k, batch in enumerate(batches):
            with D.no_grad_sync(self.model, skip=k < len(batches) - 1):
                loss = self.recipe.batch_loss(self, batch)
                value = D.across_ranks(loss.detach().float().item(), self.info)
                if not math.isfinite(value):
                    raise DivergedError(self._diverged_message(value))
                losses.append(value)
                self.scaler.scale(loss / len(batches)).backward()
        if self.cfg.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
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

    def full_module(self) -> nn.Module:
        """The trained module with full weights on rank 0 (gathers FSDP shards: collective)."""
        if not self.cfg.fsdp:
            return self.module
        weights = get_model_state_dict(self.module, options=_FULL)
        if not self.info.is_main:
            return self.module
        full = self.recipe.empty_like(self.module)
        full.load_state_dict(weights)
        return full

    def save(self) -> Path | None:
        """Write a checkpoint for the current step (collective; rank 0 writes)."""
        state, module = self.trainer_state(), self.full_module()
        path = None
        if self.info.is_main:
            model, extra = self.recipe.checkpoint_parts(module)
            path = save_checkpoint(self.run_dir, self.step, model, {**state, **extra}, self.cfg.keep_last)
        D.barrier(self.info)
        return path


# ---- the loop -------------------------------------------------------------------------------------

def train_loop(trainer: Trainer, loader: Loader, steps_per_epoch: int, result: RunResult, log: MetricsLog | None,
               stop_after: int, progress: bool, started: float) -> None:
    """Optimizer steps to the end of the run, or `stop_after` steps into this session: a progress bar, metrics
    (loss averaged since the last record) every log_every steps, a checkpoint every save_every steps and at the
    end; `result` gets the losses, timing, skipped files (gathered from every rank) and the step reached.

    With cfg.cpu_minutes the session ends once this process has used that much CPU time (user + system; the same
    on every rank, which all stop together), and after each step the run's length is re-estimated from the CPU
    time per step so far, so the learning-rate schedule runs to its end within the budget."""
    cfg, info, recipe = trainer.cfg, trainer.info, trainer.recipe
    budget, cpu0, cap = cfg.cpu_minutes * 60, time.process_time(), trainer.total_steps
    clips_per_step = cfg.batch_size * recipe.views_per_sample() * cfg.accum_steps * info.world_size
    busy = waited = 0.0
    interval: list[float] = []
    try:
        with progress_bar(progress and info.is_main) as bar:
            task = bar.add_task(recipe.name, total=trainer.total_steps, completed=trainer.step, loss=float("nan"),
                                lr=max(g["lr"] for g in trainer.optimizer.param_groups), clips_per_s=0.0)
            tick = time.perf_counter()
            for batches, wait in step_batches(loader, trainer, steps_per_epoch):
                for b in batches:
                    note_skipped(b["skipped"], result, log, trainer.step)
                loss, lr = trainer.train_step(batches)
                dt = time.perf_counter() - tick
                busy, waited = busy + dt, waited + wait
                result.losses.append(loss)
                interval.append(loss)
                if budget:
                    used = D.across_ranks(time.process_time() - cpu0, info, "max")
                    left = int((budget - used) / (used / len(result.losses)))
                    trainer.fit_length(min(cap, trainer.step + left) if left > 0 else trainer.step)
                total = trainer.total_steps
                bar.update(task, completed=trainer.step, total=total, loss=loss, lr=lr,
                           clips_per_s=clips_per_step / dt)
                if log is not None and (trainer.step % cfg.log_every == 0 or trainer.step == total):
                    log.log({"step": trainer.step, "epoch": trainer.epoch, "loss": sum(interval) / len(interval),
                             "lr": lr, "clips_per_s": clips_per_step / dt, "data_wait": wait / dt, "step_s": dt,
                             "elapsed_s": time.perf_counter() - started})
                    interval = []
                last = trainer.step >= total or len(result.losses) == stop_after
                if trainer.step % cfg.save_every == 0 or last:
                    path = trainer.save()
                    result.checkpoint = path or result.checkpoint
                    recipe.on_checkpoint(trainer, path, result, log)
                if last:
                    break
                tick = time.perf_counter()
    finally:
        if log is not None:
            log.close()
    result.step, result.total_steps = trainer.step, trainer.total_steps
    result.finished = trainer.step >= trainer.total_steps
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


def note_skipped(messages: list[str], result: RunResult, log: MetricsLog | None, step: int) -> None:
    """Each undecodable file once: in the result, in the metrics log and on stderr (rank 0)."""
    for m in messages:
        if m not in result.skipped:
            result.skipped.append(m)
            if log is not None:
                log.log({"step": step, "event": "skipped", "path": m})
                print(f"warning: skipped {m}", file=sys.stderr)


# ---- one run --------------------------------------------------------------------------------------

def run(recipe: Recipe, run_dir: str | Path, resume: bool = False, stop_after: int = 0,
        progress: bool = True) -> RunResult:
    """Train `recipe` into `run_dir`; with `resume`, continue from its last checkpoint as if never stopped.

    stop_after > 0 ends this session after that many steps (with a checkpoint), as a time-sliced job would.
    Under torchrun every rank trains its shard of each batch; rank 0 logs and writes.
    """
    cfg, run_dir = recipe.cfg, Path(run_dir)
    info = D.setup(cfg.device)
    try:
        started = time.perf_counter()
        if not (cfg.steps or cfg.epochs or cfg.cpu_minutes):
            raise TubeletError("say how long to train: --steps N or --epochs N (or --set cpu_minutes=M)")
        start = prepare_run_dir(run_dir, resume)
        if cfg.deterministic:
            deterministic_algorithms()
        seed_everything(cfg.seed)
        model = recipe.build_model(start)
        ds = recipe.dataset(model)
        ds.repeat(clips_per_video(ds.num_videos, cfg.batch_size * cfg.accum_steps * info.world_size))
        loader = make_loader(ds, cfg.batch_size, workers=cfg.workers, seed=cfg.seed, rank=info.rank,
                             world_size=info.world_size)
        steps_per_epoch = len(loader) // cfg.accum_steps
        total = cfg.steps or cfg.epochs * steps_per_epoch or UNTIL_BUDGET
        trainer = Trainer(recipe, info, model, total, run_dir)
        seed_everything(cfg.seed + info.rank)  # per-rank streams (drop path); replaced by the saved ones on resume
        if start is not None:
            trainer.load(start)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / recipe.config_file)
        result = recipe.result_type(run_dir, start, trainer.step, total, rank=info.rank, device=str(info.device),
                                    precision=trainer.precision)
        recipe.start(trainer, result)
        log = MetricsLog(run_dir, trainer.step if start is not None else None) if info.is_main else None
        try:
            train_loop(trainer, loader, steps_per_epoch, result, log, stop_after, progress, started)
        finally:
            trainer.release()
        return result
    finally:
        D.teardown()


__all__ = ["DTYPES", "DivergedError", "Recipe", "RunResult", "Trainer", "clips_per_video", "deterministic_algorithms",
           "prepare_run_dir", "resolve_precision", "run", "seed_everything", "step_batches", "step_generator",
           "train_loop"]
