"""The fine-tuning recipe: a classifier trained on labelled clips with the papers' recipe, on the engine.

Recipe defaults (VideoMAE fine-tuning): AdamW β=(0.9, 0.999), weight decay 0.05, base lr 1e-3 × total batch / 256
with layer-wise decay 0.75, warmup then cosine, drop path 0.1, label smoothing 0.1, mixup 0.8 / cutmix 1.0,
RandAugment n4 m7 std .5 applied identically to every frame. Position tables are resampled by `load_model` when
frames or resolution differ from the initial checkpoint. Engine features (train/engine.py): AMP, gradient
accumulation and clipping, atomic checkpoints with exact resume, torchrun DDP/FSDP, JSONL metrics, a progress
bar, a NaN guard, repeated sampling of small datasets. Each checkpoint is scored on the validation clips.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from tubelet.config import PRESETS
from tubelet.data import ClipDataset
from tubelet.data import transforms as T
from tubelet.data.decode import VideoReader
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE
from tubelet.train.accuracy import ClassificationReport, save_confusion_png
from tubelet.train.config import RunConfig
from tubelet.train.engine import Recipe, RunResult, Trainer, note_skipped, run
from tubelet.train.evaluate import eval_dataset, evaluate_dataset
from tubelet.train.labels import (
    LabelSet,
    load_labels,
    read_class_list,
    read_labels,
    split_train_val,
    write_class_list,
)
from tubelet.train.layer_decay import layer_decay_groups
from tubelet.train.metrics import MetricsLog
from tubelet.train.mixup import MixupCutmix, soft_cross_entropy
from tubelet.train.randaugment import RandAugment

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


# ---- the recipe -----------------------------------------------------------------------------------

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


class Finetuning(Recipe):
    """Mixup/cutmix soft cross-entropy under layer-wise lr decay; every checkpoint scored on the validation clips."""

    name = "finetune"
    config_file = "finetune.yaml"
    result_type = FinetuneResult

    def __init__(self, cfg: FinetuneConfig) -> None:
        super().__init__(cfg)
        self.cfg: FinetuneConfig = cfg
        self.train_labels, self.val_labels = train_val_labels(cfg)
        self.mix: MixupCutmix | None = None
        self.val_ds: ClipDataset | None = None

    def build_model(self, start: Path | None) -> VideoMAE:
        model = build_classifier(self.cfg, self.train_labels.classes, start)
        if list(model.config.class_names) != self.train_labels.classes:
            raise TubeletError(f"{start}: its classes differ from the labels' ({len(model.config.class_names)} vs "
                               f"{self.train_labels.num_classes})")
        cfg = self.cfg
        self.mix = MixupCutmix(model.config.num_classes, cfg.mixup, cfg.cutmix, cfg.mixup_prob,
                               cfg.mixup_switch_prob, cfg.smoothing)
        return model

    def dataset(self, model: VideoMAE) -> ClipDataset:
        return train_dataset(self.cfg, self.train_labels, model)

    def optimizer(self, module: VideoMAE, lr: float) -> torch.optim.Optimizer:
        """AdamW with a group per (layer, decayed or not), each lr scaled by layer_decay ** depth-to-go."""
        groups = layer_decay_groups(module, self.cfg.weight_decay, self.cfg.layer_decay, module.config.depth)
        return torch.optim.AdamW(groups, lr=lr, betas=self.cfg.betas)

    def batch_loss(self, trainer: Trainer, batch: dict[str, Any]) -> Tensor:
        """Mixed clips and soft targets → soft cross-entropy of the classifier's logits."""
        dev = trainer.info.device
        video, targets = self.mix(batch["video"].to(dev, non_blocking=True), batch["label"].to(dev))  # type: ignore
        with trainer.autocast():
            logits = trainer.model(video).logits
        return soft_cross_entropy(logits, targets)

    def start(self, trainer: Trainer, result: RunResult) -> None:
        """The class list beside the config, and the validation clips."""
        result.classes = self.train_labels.classes  # type: ignore[attr-defined]
        if trainer.info.is_main:
            write_class_list(self.train_labels.classes, trainer.run_dir / CLASSES_FILE)
        if self.val_labels.examples:
            self.val_ds = eval_dataset(self.val_labels, trainer.module, self.cfg.stride, self.cfg.eval_clips,
                                       self.cfg.eval_crops)

    def on_checkpoint(self, trainer: Trainer, path: Path | None, result: RunResult, log: MetricsLog | None) -> None:
        """Score the validation clips (all ranks); log the scores and the confusion picture (rank 0)."""
        if self.val_ds is None:
            return
        report, skipped = evaluate_dataset(trainer.model, self.val_ds, trainer.info, self.cfg.batch_size, 0,
                                           trainer.precision)
        note_skipped(skipped, result, log, trainer.step)
        if report is None or log is None:
            return
        result.val = report  # type: ignore[attr-defined]
        log.log({"step": trainer.step, "val_top1": report.top1, "val_top5": report.top5,
                 "val_mean_class_acc": report.mean_class_acc})
        if path is not None:
            result.confusion_png = save_confusion_png(  # type: ignore[attr-defined]
                report, path / "confusion.png", f"step {trainer.step}: val top-1 {report.top1:.3f}")


def finetune(cfg: FinetuneConfig, run_dir: str | Path, resume: bool = False, stop_after: int = 0,
             progress: bool = True) -> FinetuneResult:
    """Fine-tune into `run_dir` on the engine (see `engine.run`)."""
    return run(Finetuning(cfg), run_dir, resume, stop_after, progress)  # type: ignore[return-value]


__all__ = ["CLASSES_FILE", "FinetuneConfig", "FinetuneResult", "Finetuning", "build_classifier", "config_from_dict",
           "finetune", "resolve_config", "train_val_labels"]
