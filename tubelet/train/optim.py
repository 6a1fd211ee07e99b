"""AdamW with the papers' parameter groups, and the per-step warmup-then-cosine learning rate."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

# Parameters never decayed besides biases and 1-D tensors (norms, layer scales, q/v biases).
NO_DECAY_NAMES = ("mask_token", "pos_embed")


def decays(name: str, param: torch.Tensor) -> bool:
    """True when weight decay applies: matrices and conv kernels, not biases, norms, mask token or positions."""
    leaf = name.rsplit(".", 1)[-1]
    return param.ndim > 1 and not name.endswith(".bias") and leaf not in NO_DECAY_NAMES


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed and not decayed (trainable parameters only)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def scaled_lr(base_lr: float, total_batch: int) -> float:
    """The linear scaling rule of the papers: lr = base_lr × total batch / 256."""
    return base_lr * total_batch / 256


def build_optimizer(model: nn.Module, lr: float, weight_decay: float,
                    betas: tuple[float, float]) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas)


def warmup_cosine(step: int, total: int, warmup: int, peak: float, start: float, final: float) -> float:
    """lr at `step`: linear from `start` to `peak` over `warmup` steps, then cosine from `peak` to `final`."""
    if step < warmup:
        return start + (peak - start) * step / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * progress))


class WarmupCosine(LRScheduler):
    """Sets every group's lr to warmup_cosine(step) — call step() once per optimizer step."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, peak: float,
                 start: float, final: float) -> None:
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.peak, self.start, self.final = peak, start, final
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, self.warmup_steps, self.peak, self.start, self.final)

    def get_lr(self) -> list[float]:
        """Every group's lr, times its `lr_scale` when it has one (layer-wise lr decay)."""
        lr = self.lr_at(self.last_epoch)
        return [lr * g.get("lr_scale", 1.0) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Only the position: a resumed run with a longer schedule follows its own total_steps."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count, "_last_lr": self._last_lr}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr


__all__ = ["WarmupCosine", "build_optimizer", "decays", "param_groups", "scaled_lr", "warmup_cosine"]
