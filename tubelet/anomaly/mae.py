"""The VideoMAE as an anomaly detector: how badly it reconstructs the masked tubes of a window (per position),
and how far the window's embedding lies from the nearest normal windows; plus a short adaptation of the model to
the camera's own normal footage (the same masked-reconstruction loss as pretraining)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tubelet.anomaly.detectors import APPEARANCE, MOTION, top_mean
from tubelet.config import IMAGENET_MEAN, IMAGENET_STD
from tubelet.model.masking import tube_mask
from tubelet.model.videomae import VideoMAE
from tubelet.train.optim import WarmupCosine, build_optimizer


def to_input(clips: np.ndarray) -> torch.Tensor:
    """uint8 [B, T, h, w, 3] → ImageNet-normalised float [B, 3, T, h, w]."""
    x = torch.from_numpy(clips).float().div_(255)
    x = (x - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    return x.permute(0, 4, 1, 2, 3).contiguous()


def complementary_masks(model: VideoMAE, count: int, seed: int) -> torch.Tensor:
    """[count, N] tube masks: mask k shows only the k-th of `count` disjoint random groups of positions, so every
    position is hidden in at least count − 1 of them."""
    t, h, w = model.config.grid
    s = h * w
    perm = torch.randperm(s, generator=torch.Generator().manual_seed(seed))
    groups = perm[: s // count * count].reshape(count, s // count)
    spatial = torch.ones(count, s, dtype=torch.bool)
    spatial[torch.arange(count)[:, None], groups] = False
    return spatial[:, None, :].expand(count, t, s).reshape(count, t * s)


@dataclass
class WindowScores:
    errors: np.ndarray  # [B, h'·w'] log reconstruction error per spatial position (mean over masks and time)
    embeddings: np.ndarray  # [B, D] unit vectors


class MAEScorer:
    """Runs windows through the model under the complementary masks."""

    def __init__(self, model: VideoMAE, masks: int, seed: int) -> None:
        self.model = model.eval()
        self.masks = complementary_masks(model, masks, seed)

    @torch.inference_mode()
    def __call__(self, clips: np.ndarray) -> WindowScores:
        b, k = len(clips), len(self.masks)
        video = to_input(clips).repeat_interleave(k, 0)  # [B·K, 3, T, h, w]
        mask = self.masks.repeat(b, 1)  # [B·K, N]
        x_vis = self.model.encode(video, mask)
        pred = self.model.decode(x_vis, mask)
        err = (pred.float() - self.model.targets(video, mask)).pow(2).mean(-1)  # [B·K, n_masked]
        full = torch.full(mask.shape, float("nan"))
        full[mask] = err.reshape(-1)
        t, h, w = self.model.config.grid
        per_pos = full.reshape(b, k * t, h * w).nanmean(1)  # [B, h'·w']
        emb = torch.nn.functional.normalize(x_vis.float().mean(1).reshape(b, k, -1).mean(1), dim=-1)
        return WindowScores(per_pos.clamp_min(1e-6).log().numpy(), emb.numpy())


def adapt(model: VideoMAE, windows: np.ndarray, steps: int, batch: int, lr: float, mask_ratio: float, seed: int,
          on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Pretrain `model` further on normal windows (uint8 [W, T, h, w, 3]) for `steps` AdamW steps with tube
    masking; returns the losses."""
    gen = torch.Generator().manual_seed(seed)
    opt = build_optimizer(model, lr, 0.05, (0.9, 0.95))
    sched = WarmupCosine(opt, steps, max(1, steps // 10), lr, 0.0, lr * 0.01)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(windows), (batch,), generator=gen).numpy()
        mask = tube_mask(model.config.grid, mask_ratio, batch, gen)
        loss = model(to_input(windows[idx]), mask=mask).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
    model.eval()
    return losses


class Reconstruction:
    """Windows the adapted MAE reconstructs worse than normal: per position, the log error's z-score against
    normal windows the model was not adapted on; a window's score is the mean of its `top` worst positions."""

    name, kind, floor = "mae_reconstruction", MOTION, 1e-3

    def __init__(self, top: int = 3) -> None:
        self.top = top
        self.mean = np.zeros(0, np.float32)
        self.std = np.ones(0, np.float32)

    def _set(self, errors: np.ndarray) -> None:
        self.mean, self.std = errors.mean(0).astype(np.float32), (errors.std(0) + 0.05).astype(np.float32)

    def _score(self, errors: np.ndarray) -> np.ndarray:
        z = (errors - self.mean) / self.std
        return top_mean(z, self.top)

    def fit(self, errors: np.ndarray, held: np.ndarray) -> np.ndarray:
        """Statistics from the held-out windows (their two halves cross-fitted) → their raw scores."""
        x = errors[held]
        half = np.arange(len(x)) < len(x) // 2
        out = np.empty(len(x))
        for part in (half, ~half):
            self._set(x[~part] if (~part).any() else x)
            out[part] = self._score(x[part])
        self._set(x)
        return out

    def score(self, w: WindowScores) -> np.ndarray:
        return self._score(w.errors)

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.mean, self.std = state["mean"], state["std"]


class EmbeddingKNN:
    """Cosine distance of a window's embedding to its nearest normal window (the windows the model was adapted
    on; calibrated on the held-out ones)."""

    name, kind, floor = "mae_embedding", APPEARANCE, 1e-4

    def __init__(self, cap: int, seed: int) -> None:
        self.cap, self.seed = cap, seed
        self.bank = np.zeros((0, 0), np.float32)

    def fit(self, emb: np.ndarray, held: np.ndarray) -> np.ndarray:
        keep = np.flatnonzero(~held) if (~held).any() else np.arange(len(emb))
        if len(keep) > self.cap:
            keep = np.sort(np.random.default_rng(self.seed).choice(keep, self.cap, replace=False))
        self.bank = emb[keep].astype(np.float32)
        return self._score(emb[held])

    def _score(self, emb: np.ndarray) -> np.ndarray:
        return 1 - (emb @ self.bank.T).max(1)

    def score(self, w: WindowScores) -> np.ndarray:
        return self._score(w.embeddings)

    def state(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.bank = state["bank"]
