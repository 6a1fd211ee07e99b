"""The distillation recipe: a small student learns to reproduce a big teacher on unlabelled clips, on the engine.

What VideoMAE v2 documents (OpenGVLab/VideoMAEv2 MODEL_ZOO, paper §4): the deployable ViT-S/ViT-B are distilled
from the fine-tuned ViT-g on the fine-tuning clips (K710, 16 frames), the student starting from the post-pre-trained
weights, and are fine-tuned a few epochs afterwards; the repository does not ship the distillation code. This
recipe follows that setting with the feature + logit distillation that the same group's masked-distillation work
uses (MVD, AMD: student tokens through a learned linear projection regress the teacher's layer-normed tokens) and
Hinton's soft targets for classifiers:

    loss = feature_weight · MSE(interp(P · student tokens), LN(teacher tokens))
         + logit_weight · τ² · KL(softmax(teacher logits / τ) ‖ softmax(student logits / τ))   (classifier teacher)
         + label_weight · CE(student logits, label)                                            (with --labels)

Teacher and student may differ in width, depth, frames and size: clips are decoded at the teacher's geometry and
resampled (trilinear) to the student's; the projected student token map is interpolated to the teacher's token
grid. The student is an encoder (no decoder), with the teacher's head classes when the teacher is a classifier.
Checkpoints hold the student as a model directory; the projection travels in trainer.pt for resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tubelet.data import ClipDataset, PretrainDataset, list_sources
from tubelet.data.datasets import VideoDataset
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE
from tubelet.train.config import RunConfig
from tubelet.train.engine import Recipe, RunResult, Trainer, run
from tubelet.train.labels import load_labels
from tubelet.train.run_state import load_trainer_state

PROJECTOR = "projector"  # trainer.pt key of the projection's weights


@dataclass
class DistillConfig(RunConfig):
    """Everything a distillation run needs; saved resolved as RUN_DIR/distill.yaml. `model` overrides apply to
    the student."""

    kind: ClassVar[str] = "distillation"

    teacher: str = ""  # any model load_model reads
    student: str = "vit_small"  # a preset (random init) or a model to start from
    labels: str = ""  # optional manifest path,label[,…]: adds the cross-entropy on labels
    feature_weight: float = 1.0
    logit_weight: float = 1.0  # used when the teacher is a classifier
    label_weight: float = 1.0  # used with labels
    temperature: float = 1.0
    flip: bool = True
    # optimisation: AdamW (0.9, 0.999) at 5e-4 × total batch / 256, 5 % warmup then cosine
    base_lr: float = 5e-4
    min_lr: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (bool(self.teacher), "give the teacher: --teacher MODEL"),
            (min(self.feature_weight, self.logit_weight, self.label_weight) >= 0
             and self.feature_weight + self.logit_weight > 0, "loss weights must be >= 0, feature or logit > 0"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            *super().checks(),
        ]


class Distiller(nn.Module):
    """The trained module: the student and the projection of its tokens into the teacher's feature space."""

    def __init__(self, student: VideoMAE, teacher_dim: int, teacher_grid: tuple[int, int, int]) -> None:
        super().__init__()
        self.student = student
        self.projector = nn.Linear(student.config.embed_dim, teacher_dim)
        self.teacher_grid = teacher_grid

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor | None]:
        """Student clip [B, 3, T, H, W] → (projected tokens on the teacher's grid [B, N_t, D_t], logits or None)."""
        tokens = self.student.encode(video)  # [B, N_s, D_s]
        cfg = self.student.config
        logits = self.student.logits(tokens) if cfg.is_classifier else None
        x = self.projector(tokens)  # [B, N_s, D_t]
        B, _, D = x.shape
        x = x.transpose(1, 2).reshape(B, D, *cfg.grid)
        if cfg.grid != self.teacher_grid:
            x = F.interpolate(x, size=self.teacher_grid, mode="trilinear", align_corners=False)
        return x.flatten(2).transpose(1, 2), logits


def resample(video: Tensor, frames: int, size: int) -> Tensor:
    """Clips [B, 3, T, H, W] resampled (trilinear) to [B, 3, frames, size, size]; unchanged when they fit."""
    if video.shape[2:] == (frames, size, size):
        return video
    return F.interpolate(video, size=(frames, size, size), mode="trilinear", align_corners=False)


class Distillation(Recipe):
    """Feature (and logit) matching of a frozen teacher; see the module docstring."""

    name = "distill"
    config_file = "distill.yaml"

    def __init__(self, cfg: DistillConfig) -> None:
        super().__init__(cfg)
        self.cfg: DistillConfig = cfg
        self.teacher = load_model(cfg.teacher).eval().requires_grad_(False)
        t = self.teacher.config
        if t.image_size[0] != t.image_size[1]:
            raise TubeletError(f"{cfg.teacher}: distillation crops square clips; the teacher takes {t.image_size}")

    def build_model(self, start: Path | None) -> Distiller:
        """The student from the checkpoint resumed (with its projection), or from cfg.student."""
        cfg, t = self.cfg, self.teacher.config
        if start is not None:
            module = Distiller(load_model(start), t.embed_dim, t.grid)
            module.projector.load_state_dict(load_trainer_state(start)[PROJECTOR])
            return module
        head = {"num_classes": t.num_classes, "class_names": list(t.class_names)} if t.is_classifier else {}
        student = load_model(cfg.student, **{"decoder_depth": 0, **head, **cfg.model})
        if t.is_classifier and student.config.num_classes != t.num_classes:
            raise TubeletError(f"{cfg.student}: {student.config.num_classes} classes, the teacher has {t.num_classes}")
        return Distiller(student, t.embed_dim, t.grid)

    def dataset(self, model: nn.Module) -> VideoDataset:
        """Clips at the teacher's geometry: labelled with --labels, else every video of the data."""
        cfg, t = self.cfg, self.teacher.config
        geometry = {"num_frames": t.num_frames, "stride": cfg.stride, "image_size": t.image_size[0], "seed": cfg.seed,
                    "flip": cfg.flip}
        if not cfg.labels:
            return PretrainDataset(list_sources(cfg.data), **geometry)
        classes = list(t.class_names) or None
        labels = load_labels(cfg.data, cfg.labels, classes)
        if t.is_classifier and labels.num_classes != t.num_classes:
            raise TubeletError(f"{cfg.labels}: {labels.num_classes} classes, the teacher has {t.num_classes}")
        return ClipDataset(labels.examples, classes=labels.classes, train=True, **geometry)

    def start(self, trainer: Trainer, result: RunResult) -> None:
        self.teacher.to(trainer.info.device)

    def batch_loss(self, trainer: Trainer, batch: dict[str, Any]) -> Tensor:
        cfg, s = self.cfg, trainer.module.student.config
        video = batch["video"].to(trainer.info.device, non_blocking=True)
        with trainer.autocast():
            with torch.no_grad():
                t_tokens = self.teacher.encode(video)
                t_logits = self.teacher.logits(t_tokens) if self.teacher.config.is_classifier else None
            features, logits = trainer.model(resample(video, s.num_frames, s.image_size[0]))
        target = F.layer_norm(t_tokens.float(), t_tokens.shape[-1:])
        loss = cfg.feature_weight * F.mse_loss(features.float(), target)
        if t_logits is not None and cfg.logit_weight > 0:
            tau = cfg.temperature
            kl = F.kl_div(F.log_softmax(logits.float() / tau, -1), F.log_softmax(t_logits.float() / tau, -1),
                          reduction="batchmean", log_target=True)
            loss = loss + cfg.logit_weight * tau * tau * kl
        if "label" in batch and logits is not None and cfg.label_weight > 0:
            loss = loss + cfg.label_weight * F.cross_entropy(logits.float(), batch["label"].to(logits.device))
        return loss

    def empty_like(self, module: nn.Module) -> Distiller:
        return Distiller(VideoMAE(module.student.config), module.projector.out_features, module.teacher_grid)

    def checkpoint_parts(self, module: nn.Module) -> tuple[VideoMAE, dict[str, Any]]:
        """The student as the checkpoint's model; the projection in trainer.pt."""
        return module.student, {PROJECTOR: {k: v.detach().cpu() for k, v in module.projector.state_dict().items()}}


def distill(cfg: DistillConfig, run_dir: str | Path, resume: bool = False, stop_after: int = 0,
            progress: bool = True) -> RunResult:
    """Distill `cfg.teacher` into `cfg.student` in `run_dir` on the engine (see `engine.run`)."""
    return run(Distillation(cfg), run_dir, resume, stop_after, progress)


__all__ = ["DistillConfig", "Distillation", "Distiller", "distill", "resample"]
