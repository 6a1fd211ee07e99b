"""Fine-tuning a classifier on labelled clips with the papers' recipe, on the pretraining engine.

Recipe defaults (VideoMAE fine-tuning): AdamW β=(0.9, 0.999), weight decay 0.05, base lr 1e-3 × total batch / 256
with layer-wise decay 0.75, warmup then cosine, drop path 0.1, label smoothing 0.1, mixup 0.8 / cutmix 1.0,
RandAugment n4 m7 std .5 applied identically to every frame. Position tables are resampled by `load_model` when
frames or resolution differ from the initial checkpoint. Engine features come from the pretraining trainer:
AMP, gradient accumulation and clipping, atomic checkpoints with exact resume, torchrun DDP/FSDP, JSONL metrics,
a progress bar, a NaN guard.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from tubelet.config import PRESETS
from tubelet.data import ClipDataset, make_loader
from tubelet.data import transforms as T
from tubelet.data.decode import VideoReader
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE
from tubelet.train import distributed as D
from tubelet.train.accuracy import ClassificationReport, save_confusion_png
from tubelet.train.config import RunConfig, save_config
from tubelet.train.evaluate import eval_dataset, evaluate_dataset
from tubelet.train.labels import (
    LabelSet,
    load_labels,
    read_class_list,
    read_labels,
    split_train_val,
    write_class_list,
)
from tubelet.train.layer_decay import ScaledWarmupCosine, layer_decay_groups
from tubelet.train.metrics import MetricsLog
from tubelet.train.mixup import MixupCutmix, soft_cross_entropy
from tubelet.train.pretrain import (
    RunResult,
    Trainer,
    _deterministic,
    prepare_run_dir,
    seed_everything,
    train_loop,
)
from tubelet.train.randaugment import RandAugment

CONFIG_FILE = "finetune.yaml"
CLASSES_FILE = "classes.txt"


@dataclass
class FinetuneConfig(RunConfig):
    """Everything a fine-tuning run needs; saved resolved as RUN_DIR/finetune.yaml.

    `data` is the folder the manifest's relative paths start from (or labelled videos in class sub-folders);
    `init` may also name a preset, for random init.
    """

    kind: ClassVar[str] = "fine-tuning"

    labels: str = ""  # manifest path,label[,start_s,end_s,split]; "" = labels of `data` itself
    classes: str = ""  # class list file (names in id order); "" = from the labels
    val: str = ""  # a validation manifest; "" = the manifest's split column, else val_frac of each class
    val_frac: float = 0.1
    flip: bool = True  # random horizontal flip (turn off when left/right carries the label)
    # the fine-tuning recipe's optimisation
    base_lr: float = 1e-3
    min_lr: float = 1e-6
    warmup_frac: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    layer_decay: float = 0.75
    drop_path: float = 0.1
    head_dropout: float = 0.0
    # regularisation
    smoothing: float = 0.1
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    randaug_ops: int = 4
    randaug_magnitude: float = 7.0
    randaug_std: float = 0.5
    # validation during training (the `evaluate` command does full multi-view testing)
    eval_clips: int = 1
    eval_crops: int = 1

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (0.0 <= self.val_frac < 1.0, f"val_frac must be in [0, 1), got {self.val_frac}"),
            (0.0 < self.layer_decay <= 1.0, f"layer_decay must be in (0, 1], got {self.layer_decay}"),
            (0.0 <= self.smoothing < 1.0, "smoothing must be in [0, 1)"),
            (self.mixup >= 0 and self.cutmix >= 0 and 0 <= self.mixup_prob <= 1 and 0 <= self.mixup_switch_prob <= 1,
             "mixup/cutmix alphas must be >= 0 and their probabilities in [0, 1]"),
            (self.randaug_ops >= 0 and 0 <= self.randaug_magnitude <= 10 and self.randaug_std >= 0,
             "randaug_ops >= 0, randaug_magnitude in [0, 10], randaug_std >= 0"),
            (self.eval_clips >= 1 and self.eval_crops in (1, 3), "eval_clips >= 1 and eval_crops 1 or 3"),
            *super().checks(),
        ]


config_from_dict = FinetuneConfig.from_dict
resolve_config = FinetuneConfig.resolve


# ---- data -----------------------------------------------------------------------------------------

def train_val_labels(cfg: FinetuneConfig) -> tuple[LabelSet, LabelSet]:
    """(train, val) label sets from the manifest (or the labelled folder/shards), class list and split."""
    classes = read_class_list(cfg.classes) if cfg.classes else None
    labels = load_labels(cfg.data, cfg.labels, classes)
    if labels.missing:
        print(f"warning: {len(labels.missing)} listed file(s) not found, e.g. {labels.missing[0]}", file=sys.stderr)
    if cfg.val:
        val = read_labels(cfg.val, cfg.data or None, labels.classes)
        return labels, LabelSet(labels.classes, val.examples, val.missing)
    return split_train_val(labels, cfg.val_frac, cfg.seed)


class AugmentedClipDataset(ClipDataset):
    """Training clips with RandAugment on the decoded uint8 window, before the random resized crop and flip."""

    def __init__(self, *args: Any, augment: RandAugment | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augment = augment

    def _make(self, item: Any, generator: torch.Generator) -> dict[str, Any]:
        if not self.train or self.augment is None:
            return super()._make(item, generator)
        with VideoReader(item.input(), self.threads, name=item.name) as reader:
            clip = self._window(reader, item, generator, self.short_side)  # [T, H, W, 3] uint8
        clip = self.augment(clip, generator)
        views = [T.train_view(clip, self.image_size, generator, self.flip, self.scale) for _ in range(self.repeats)]
        return {"video": torch.stack(views)}


def train_dataset(cfg: FinetuneConfig, labels: LabelSet, model: VideoMAE) -> ClipDataset:
    mcfg = model.config
    if mcfg.image_size[0] != mcfg.image_size[1]:
        raise TubeletError(f"training crops are square; the model takes {mcfg.image_size[0]}×{mcfg.image_size[1]}")
    augment = (RandAugment(cfg.randaug_ops, cfg.randaug_magnitude, cfg.randaug_std) if cfg.randaug_ops else None)
    return AugmentedClipDataset(labels.examples, classes=labels.classes, num_frames=mcfg.num_frames,
                                stride=cfg.stride, image_size=mcfg.image_size[0], train=True, flip=cfg.flip,
                                seed=cfg.seed, augment=augment)


# ---- model ----------------------------------------------------------------------------------------

def build_classifier(cfg: FinetuneConfig, classes: list[str], start: Path | None) -> VideoMAE:
    """The classifier to train: the checkpoint resumed, or cfg.init (a checkpoint or preset) with a head for
    these classes, drop path and the model overrides."""
    if start is not None:
        return load_model(start)
    if not cfg.init:
        raise TubeletError(f"give the weights to start from: --init CKPT (or a preset: {', '.join(PRESETS)})")
    overrides = {"drop_path": cfg.drop_path, "head_dropout": cfg.head_dropout, **cfg.model,
                 "num_classes": len(classes), "class_names": list(classes), "decoder_depth": 0}
    return load_model(cfg.init, **overrides)


# ---- the trainer ----------------------------------------------------------------------------------

class FinetuneTrainer(Trainer):
    """The pretraining trainer with layer-wise lr decay groups and a mixup + soft cross-entropy loss."""

    schedule = ScaledWarmupCosine

    def __init__(self, cfg: FinetuneConfig, info: D.DistInfo, model: VideoMAE, total_steps: int,
                 run_dir: Path) -> None:
        super().__init__(cfg, info, model, total_steps, run_dir)
        self.mix = MixupCutmix(model.config.num_classes, cfg.mixup, cfg.cutmix, cfg.mixup_prob,
                               cfg.mixup_switch_prob, cfg.smoothing)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW with a group per (layer, decayed or not), each lr scaled by layer_decay ** depth-to-go."""
        cfg = self.cfg
        groups = layer_decay_groups(self.module, cfg.weight_decay, cfg.layer_decay, self.module.config.depth)
        return torch.optim.AdamW(groups, lr=self.lr, betas=cfg.betas)

    def batch_loss(self, batch: dict[str, Any]) -> Tensor:
        """Mixed clips and soft targets → soft cross-entropy of the classifier's logits."""
        dev = self.info.device
        video, targets = self.mix(batch["video"].to(dev, non_blocking=True), batch["label"].to(dev))
        with self.autocast():
            logits = self.model(video).logits
        return soft_cross_entropy(logits, targets)


# ---- the loop -------------------------------------------------------------------------------------

@dataclass
class FinetuneResult(RunResult):
    classes: list[str] = field(default_factory=list)
    val: ClassificationReport | None = None  # on the last checkpoint
    confusion_png: Path | None = None

    def summary(self) -> dict[str, Any]:
        val = self.val
        return {
            **super().summary(), "num_classes": len(self.classes),
            "val_top1": val.top1 if val else None, "val_top5": val.top5 if val else None,
            "val_mean_class_acc": val.mean_class_acc if val else None,
            "val_clips": val.num_examples if val else 0,
            "confusion_png": str(self.confusion_png) if self.confusion_png else None,
        }


def finetune(cfg: FinetuneConfig, run_dir: str | Path, resume: bool = False, stop_after: int = 0,
             progress: bool = True) -> FinetuneResult:
    """Fine-tune into `run_dir`; with `resume`, continue from its last checkpoint as if never stopped."""
    info = D.setup(cfg.device)
    try:
        return _finetune(cfg, Path(run_dir), info, resume, stop_after, progress)
    finally:
        D.teardown()


def _finetune(cfg: FinetuneConfig, run_dir: Path, info: D.DistInfo, resume: bool, stop_after: int,
              progress: bool) -> FinetuneResult:
    started = time.perf_counter()
    start = prepare_run_dir(cfg, run_dir, resume)
    if cfg.deterministic:
        _deterministic()
    seed_everything(cfg.seed)
    train_labels, val_labels = train_val_labels(cfg)
    model = build_classifier(cfg, train_labels.classes, start)
    if list(model.config.class_names) != train_labels.classes:
        raise TubeletError(f"{start}: its classes differ from the labels' ({len(model.config.class_names)} vs "
                           f"{train_labels.num_classes})")
    ds = train_dataset(cfg, train_labels, model)
    val_ds = eval_dataset(val_labels, model, cfg.stride, cfg.eval_clips, cfg.eval_crops) if val_labels.examples \
        else None
    loader = make_loader(ds, cfg.batch_size, workers=cfg.workers, seed=cfg.seed, rank=info.rank,
                         world_size=info.world_size)
    steps_per_epoch = len(loader) // cfg.accum_steps
    if steps_per_epoch == 0:
        raise TubeletError(f"{len(train_labels.examples)} training clip(s) make no full step of batch "
                           f"{cfg.batch_size} × {cfg.accum_steps} × {info.world_size} process(es); lower --batch-size")
    total = cfg.steps or cfg.epochs * steps_per_epoch
    if total == 0:
        raise TubeletError("say how long to train: --steps N or --epochs N")
    trainer = FinetuneTrainer(cfg, info, model, total, run_dir)
    seed_everything(cfg.seed + info.rank)
    if start is not None:
        trainer.load(start)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / CONFIG_FILE)
        write_class_list(train_labels.classes, run_dir / CLASSES_FILE)
    log = MetricsLog(run_dir, trainer.step if start is not None else None) if info.is_main else None
    result = FinetuneResult(run_dir, start, trainer.step, total, classes=train_labels.classes, rank=info.rank)
    train_loop(trainer, loader, steps_per_epoch, result, log, "finetune",
               cfg.batch_size * cfg.accum_steps * info.world_size, stop_after, progress, started,
               lambda messages: _note_skipped(messages, result),
               lambda: _checkpoint(trainer, run_dir, val_ds, result, log))
    return result


def _checkpoint(trainer: FinetuneTrainer, run_dir: Path, val_ds: ClipDataset | None, result: FinetuneResult,
                log: MetricsLog | None) -> None:
    """Save, then score the validation clips (all ranks) and log the scores and confusion picture (rank 0)."""
    path = trainer.save(run_dir)
    result.checkpoint = path or result.checkpoint
    if val_ds is None:
        return
    cfg = trainer.cfg
    report, skipped = evaluate_dataset(trainer.model, val_ds, trainer.info, cfg.batch_size, 0, trainer.precision)
    for s in skipped:
        _note_skipped([s], result)
    if report is None or log is None:
        return
    result.val = report
    log.log({"step": trainer.step, "val_top1": report.top1, "val_top5": report.top5,
             "val_mean_class_acc": report.mean_class_acc})
    if path is not None:
        result.confusion_png = save_confusion_png(report, path / "confusion.png",
                                                  f"step {trainer.step}: val top-1 {report.top1:.3f}")


def _note_skipped(messages: list[str], result: FinetuneResult) -> None:
    for m in messages:
        if m not in result.skipped:
            result.skipped.append(m)
            print(f"warning: skipped {m}", file=sys.stderr)


__all__ = ["CONFIG_FILE", "FinetuneConfig", "FinetuneResult", "FinetuneTrainer", "build_classifier",
           "config_from_dict", "finetune", "resolve_config", "train_val_labels"]
