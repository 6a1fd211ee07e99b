"""The pretraining recipe: masked-video reconstruction (VideoMAE v1 tube masking, v2 dual masking) on the engine.

Masks are drawn here, per micro-batch, from the step's generator: an input of a pretraining sample that the
loader never carries. At each checkpoint rank 0 draws the reconstruction picture of a fixed clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from tubelet.data import PretrainDataset, Source, list_sources
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.masking import Masking
from tubelet.model.videomae import VideoMAE
from tubelet.train.config import PretrainConfig
from tubelet.train.engine import Recipe, RunResult, Trainer, run
from tubelet.train.metrics import MetricsLog
from tubelet.viz.reconstruct import load_clip, reconstruct, save_figure

PICTURES = "reconstructions"


@dataclass
class PretrainResult(RunResult):
    picture: Path | None = None  # the last reconstruction picture

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "reconstruction": str(self.picture) if self.picture else None}


class Pretraining(Recipe):
    """Masked reconstruction of normalised pixels; the model's own loss."""

    name = "pretrain"
    config_file = "pretrain.yaml"
    result_type = PretrainResult

    def __init__(self, cfg: PretrainConfig) -> None:
        super().__init__(cfg)
        self.cfg: PretrainConfig = cfg
        self.sources: list[Source] = []
        self.masking: Masking | None = None
        self.sample: tuple[Tensor, Tensor] | None = None

    def build_model(self, start: Path | None) -> VideoMAE:
        """From the checkpoint resumed, from cfg.init weights (model overrides applied), or fresh."""
        cfg = self.cfg
        if start is not None:
            model = load_model(start)
        elif not cfg.init:
            model = VideoMAE(cfg.model_config())
        else:
            overrides = {**cfg.model, **({"grad_checkpointing": True} if cfg.grad_checkpointing else {})}
            model = load_model(cfg.init, **overrides)
            if not model.config.is_pretraining:
                raise TubeletError(f"{cfg.init}: has no decoder, so it cannot be pretrained further")
        self.masking = cfg.masking(model.config.grid)
        return model

    def dataset(self, model: VideoMAE) -> PretrainDataset:
        cfg, mcfg = self.cfg, model.config
        h, w = mcfg.image_size
        if h != w:
            raise TubeletError(f"pretraining crops square clips; image_size {h}×{w} is not square")
        self.sources = list_sources(cfg.data)
        return PretrainDataset(self.sources, num_frames=mcfg.num_frames, stride=cfg.stride, image_size=h,
                               repeats=cfg.repeats, seed=cfg.seed)

    def views_per_sample(self) -> int:
        return self.cfg.repeats

    def batch_loss(self, trainer: Trainer, batch: dict[str, Any]) -> Tensor:
        """Masked reconstruction of one micro-batch, with masks drawn from the step's generator."""
        dev = trainer.info.device
        video = batch["video"].to(dev, non_blocking=True)
        masks = self.masking.draw(video.shape[0], trainer.generator)  # type: ignore[union-attr]
        with trainer.autocast():
            return trainer.model(video, **{k: m.to(dev, non_blocking=True) for k, m in masks.items()}).loss

    def start(self, trainer: Trainer, result: RunResult) -> None:
        """The fixed clip and mask drawn at every checkpoint: the first readable clip of the data."""
        for source in self.sources[:8]:
            try:
                clip = load_clip(source.input(), trainer.module.config, self.cfg.stride, source.start_s)
            except TubeletError:
                continue
            self.sample = clip, self.masking.fixed(self.cfg.seed)  # type: ignore[union-attr]
            return

    def on_checkpoint(self, trainer: Trainer, path: Path | None, result: RunResult, log: MetricsLog | None) -> None:
        """The reconstruction picture of the fixed sample (all ranks run FSDP's forward; rank 0 draws)."""
        info = trainer.info
        if self.sample is None or not (info.is_main or self.cfg.fsdp):
            return
        rec = reconstruct(trainer.module, *self.sample)
        if info.is_main:
            title = f"step {trainer.step}  ·  {trainer.module.config.name}"
            result.picture = save_figure(rec, trainer.run_dir / PICTURES / f"step_{trainer.step:08d}.png", title)


def pretrain(cfg: PretrainConfig, run_dir: str | Path, resume: bool = False, stop_after: int = 0,
             progress: bool = True) -> PretrainResult:
    """Pretrain `cfg` into `run_dir` on the engine (see `engine.run`)."""
    return run(Pretraining(cfg), run_dir, resume, stop_after, progress)  # type: ignore[return-value]


__all__ = ["PICTURES", "PretrainResult", "Pretraining", "pretrain"]
