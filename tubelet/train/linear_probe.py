"""Linear probe: frozen features from one encoder layer, mean-pooled over tokens (or all tokens side by side),
then a linear classifier.

The classifier is batch norm without affine parameters (statistics of the training features, as in MAE's probe)
followed by a linear layer trained to the optimum of an L2-regularised softmax cross-entropy with full-batch
L-BFGS: a multinomial logistic regression. Features are cached once, so fitting takes a second; the L2 strength
is picked on a held-out fifth of the training features (never on the evaluation set) and the probe is then refit
on all of them. This is torch only, works on GPU features, and needs no learning-rate schedule to tune.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tubelet.data import make_loader
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE
from tubelet.train import distributed as D
from tubelet.train.accuracy import ClassificationReport, classification_report
from tubelet.train.engine import DTYPES
from tubelet.train.evaluate import eval_dataset
from tubelet.train.labels import LabelSet, load_labels, read_class_list, read_labels, split_train_val

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


POOLS = ("mean", "tokens")


@torch.no_grad()
def clip_features(model: VideoMAE, video: Tensor, layer: int | None = None, pool: str = "mean") -> Tensor:
    """Features of encoder layer `layer` (None = the final, normed output) [B, C, T, H, W] → [B, D] with pool
    "mean" (mean over tokens), [B, N·D] with "tokens" (the token map flattened in grid order: keeps where and
    when, for tasks such as motion that the mean over positions hides)."""
    if pool not in POOLS:
        raise TubeletError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    tokens = model.encode(video, layer=layer).float()
    return tokens.mean(dim=1) if pool == "mean" else tokens.flatten(1)


@torch.no_grad()
def extract_features(model: VideoMAE, batches: Iterable[tuple[Tensor, Tensor]], layer: int | None = None,
                     device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                     pool: str = "mean") -> tuple[Tensor, Tensor]:
    """Features [N, D] (see clip_features for `pool`) and labels [N] of (video, label) batches; `dtype` runs the
    encoder under autocast."""
    model.eval()
    device = torch.device(device)
    feats, labels = [], []
    for video, label in batches:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            feats.append(clip_features(model, video.to(device), layer, pool).cpu())
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




# ---- the `tubelet probe DATA --init CKPT` job ----------------------------------------------------------------------

@dataclass
class ProbeResult:
    report: ClassificationReport
    layer: int | None
    l2: float
    holdout_acc: dict[float, float]
    train_clips: int
    feature_dim: int
    skipped: list[str]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"layer": "last" if self.layer is None else self.layer, "l2": self.l2,
                "holdout_acc": {str(k): v for k, v in self.holdout_acc.items()}, "train_clips": self.train_clips,
                "feature_dim": self.feature_dim, **self.report.to_dict(), "skipped": self.skipped,
                "seconds": round(self.seconds, 2)}


def dataset_features(model: VideoMAE, labels: LabelSet, stride: int, layer: int | None, batch_size: int = 8,
                     workers: int = 0, device: torch.device | str = "cpu",
                     dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor, list[str]]:
    """Features [N, D] and labels [N] of the centre clip (centre crop) of every item; and the skipped files."""
    ds = eval_dataset(labels, model, stride)
    loader = make_loader(ds, batch_size, workers=workers, shuffle=False, drop_last=False)
    skipped: list[str] = []

    def batches() -> Iterable[tuple[Tensor, Tensor]]:
        for batch in loader:
            skipped.extend(batch["skipped"])
            yield batch["video"], batch["label"]

    x, y = extract_features(model, batches(), layer, device, dtype)
    return x, y, skipped


def run_linear_probe(data: str | None, labels_path: str | None, init: str, layer: int | None = None,
                     val: str | None = None, val_frac: float = 0.2, class_list: str | None = None, stride: int = 4,
                     overrides: dict[str, Any] | None = None, batch_size: int = 8, workers: int = 0,
                     device: str = "auto", precision: str = "fp32", seed: int = 0) -> ProbeResult:
    """Linear-probe the frozen encoder of `init` on a labelled manifest: features of the training split, a probe
    fit on them, scores on the validation split (a given manifest, its split column, or val_frac per class)."""
    started = time.perf_counter()
    dev = D.pick_device(device)
    model = load_model(init, **(overrides or {})).to(dev).eval()
    if layer is not None and not -model.config.depth <= layer < model.config.depth:
        raise TubeletError(f"layer {layer} outside the encoder's {model.config.depth} blocks")
    classes = read_class_list(class_list) if class_list else None
    labels = load_labels(data, labels_path, classes)
    if val:
        held = read_labels(val, data, labels.classes)
        train, test = labels, LabelSet(labels.classes, held.examples)
    else:
        train, test = split_train_val(labels, val_frac, seed)
    if not test.examples:
        raise TubeletError(f"{labels_path or data}: no clips left to score the probe on; give --val or a larger "
                           "--val-frac")
    dtype = DTYPES[precision]
    x_tr, y_tr, skipped = dataset_features(model, train, stride, layer, batch_size, workers, dev, dtype)
    x_te, y_te, skipped_te = dataset_features(model, test, stride, layer, batch_size, workers, dev, dtype)
    fit = fit_probe(x_tr, y_tr, labels.num_classes, seed=seed)
    with torch.no_grad():
        scores = fit.probe.eval()(x_te)
    report = classification_report(scores, y_te, labels.classes)
    return ProbeResult(report, layer, fit.l2, fit.holdout_acc, len(y_tr), x_tr.shape[1],
                       sorted(set(skipped + skipped_te)), time.perf_counter() - started)


__all__ = ["L2_GRID", "POOLS", "LinearProbe", "ProbeFit", "ProbeResult", "clip_features", "dataset_features",
           "extract_features", "fit_probe", "run_linear_probe"]
