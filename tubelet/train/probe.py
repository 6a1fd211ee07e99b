"""Linear probe: frozen features from one encoder layer, mean-pooled over tokens, then a linear classifier.

The classifier is batch norm without affine parameters (statistics of the training features, as in MAE's probe)
followed by a linear layer trained to the optimum of an L2-regularised softmax cross-entropy with full-batch
L-BFGS: a multinomial logistic regression. Features are cached once, so fitting takes a second; the L2 strength
is picked on a held-out fifth of the training features (never on the evaluation set) and the probe is then refit
on all of them. This is torch only, works on GPU features, and needs no learning-rate schedule to tune.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tubelet.errors import TubeletError
from tubelet.model.videomae import VideoMAE

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


@torch.no_grad()
def clip_features(model: VideoMAE, video: Tensor, layer: int | None = None) -> Tensor:
    """Mean over tokens of encoder layer `layer` (None = the final, normed output): [B, C, T, H, W] → [B, D]."""
    return model.encode(video, layer=layer).float().mean(dim=1)


@torch.no_grad()
def extract_features(model: VideoMAE, batches: Iterable[tuple[Tensor, Tensor]], layer: int | None = None,
                     device: torch.device | str = "cpu",
                     dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """Features [N, D] and labels [N] of (video, label) batches; `dtype` runs the encoder under autocast."""
    model.eval()
    device = torch.device(device)
    feats, labels = [], []
    for video, label in batches:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            feats.append(clip_features(model, video.to(device), layer).cpu())
        labels.append(label.cpu())
    if not feats:
        raise TubeletError("no clips to extract features from")
    return torch.cat(feats), torch.cat(labels).long()


class LinearProbe(nn.Module):
    """BatchNorm1d (no affine) → Linear."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.norm(x))


def _fit(x: Tensor, y: Tensor, num_classes: int, l2: float, max_iter: int) -> LinearProbe:
    probe = LinearProbe(x.shape[1], num_classes)
    probe.norm.train()
    probe.norm.momentum = None  # cumulative average: one pass gives the exact training statistics
    with torch.no_grad():
        probe.norm(x)
    probe.eval()
    z = probe.norm(x).detach()
    nn.init.zeros_(probe.linear.weight)
    nn.init.zeros_(probe.linear.bias)
    opt = torch.optim.LBFGS(probe.linear.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(probe.linear(z), y) + 0.5 * l2 * probe.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return probe


def _accuracy(probe: LinearProbe, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (probe(x).argmax(1) == y).float().mean().item()


@dataclass
class ProbeFit:
    probe: LinearProbe
    l2: float
    holdout_acc: dict[float, float]  # held-out accuracy of each L2 strength tried


def fit_probe(x: Tensor, y: Tensor, num_classes: int, l2_grid: tuple[float, ...] = L2_GRID,
              max_iter: int = 200, seed: int = 0) -> ProbeFit:
    """Fit a linear probe on features x [N, D] and labels y [N], choosing L2 on a held-out fifth of them."""
    x, y = x.float(), y.long()
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
        raise TubeletError(f"a probe needs features [N>=2, D] and labels [N]; got {list(x.shape)}, {list(y.shape)}")
    if int(y.max()) >= num_classes or int(y.min()) < 0:
        raise TubeletError(f"labels must be in 0..{num_classes - 1}")
    scores: dict[float, float] = {}
    if len(l2_grid) > 1 and x.shape[0] >= 10:
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
        n_val = max(1, x.shape[0] // 5)
        val, train = perm[:n_val], perm[n_val:]
        for l2 in l2_grid:
            scores[l2] = _accuracy(_fit(x[train], y[train], num_classes, l2, max_iter), x[val], y[val])
        best = max(l2_grid, key=lambda l2: (scores[l2], l2))  # ties go to the stronger regulariser
    else:
        best = l2_grid[len(l2_grid) // 2]
    return ProbeFit(_fit(x, y, num_classes, best, max_iter), best, scores)


__all__ = ["L2_GRID", "LinearProbe", "ProbeFit", "clip_features", "extract_features", "fit_probe"]
