"""Mixup and CutMix for video batches [B, C, T, H, W], with label smoothing, as in the fine-tuning recipe.

One mixing weight per batch; each clip is mixed with the clip at the mirrored batch position. CutMix pastes
a box cut along H and W, the same box in every frame. Targets are smoothed one-hot vectors mixed with the
weight actually realised (the box area after clipping at the borders).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tubelet.errors import TubeletError


def smooth_one_hot(labels: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    """labels [B] int → [B, K] float: 1 − smoothing + smoothing/K on the label, smoothing/K elsewhere."""
    off = smoothing / num_classes
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return out.scatter_(1, labels.long()[:, None], 1.0 - smoothing + off)


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy against probability targets [B, K]."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def cutmix_box(h: int, w: int, lam: float) -> tuple[int, int, int, int]:
    """A box (y0, y1, x0, x1) covering about 1 − lam of an h × w frame, centred uniformly, clipped at the borders."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(0, h, (1,)))
    cx = int(torch.randint(0, w, (1,)))
    return max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)


def _beta(alpha: float) -> float:
    """A Beta(α, α) draw from torch's global generator (seeded and checkpointed with the run)."""
    return float(torch.distributions.Beta(alpha, alpha).sample())


@dataclass
class MixupCutmix:
    """Mix a batch: with probability `prob`, CutMix (with probability `switch_prob`) or Mixup.

    Defaults are the VideoMAE fine-tuning recipe: mixup α 0.8, cutmix α 1.0, always mix, switch 0.5,
    label smoothing 0.1.
    """

    num_classes: int
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    smoothing: float = 0.1

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise TubeletError("mixup needs num_classes >= 1")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise TubeletError("mixup and cutmix alphas must be >= 0")
        if not (0 <= self.prob <= 1 and 0 <= self.switch_prob <= 1 and 0 <= self.smoothing < 1):
            raise TubeletError("mixup prob, switch_prob must be in [0, 1] and smoothing in [0, 1)")

    @property
    def active(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def _choose(self) -> tuple[str, float]:
        """('none' | 'mixup' | 'cutmix', lam)."""
        if not self.active or float(torch.rand(())) >= self.prob:
            return "none", 1.0
        use_cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha == 0 or float(torch.rand(())) < self.switch_prob)
        if use_cutmix:
            return "cutmix", _beta(self.cutmix_alpha)
        return "mixup", _beta(self.mixup_alpha)

    def __call__(self, video: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """video [B, C, T, H, W], labels [B] → (mixed video, soft targets [B, K]); the video is mixed in place."""
        if video.ndim != 5:
            raise TubeletError(f"mixup expects video [B, C, T, H, W], got {list(video.shape)}")
        kind, lam = self._choose()
        if kind == "mixup":
            partner = video.flip(0).mul_(1.0 - lam)  # a copy, taken before the batch is scaled
            video.mul_(lam).add_(partner)
        elif kind == "cutmix":
            H, W = video.shape[-2:]
            y0, y1, x0, x1 = cutmix_box(H, W, lam)
            video[..., y0:y1, x0:x1] = video.flip(0)[..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (H * W)
        y = smooth_one_hot(labels, self.num_classes, self.smoothing)
        return video, y * lam + y.flip(0) * (1.0 - lam)


__all__ = ["MixupCutmix", "cutmix_box", "smooth_one_hot", "soft_cross_entropy"]
