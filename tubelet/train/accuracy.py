"""Classification metrics: top-1 / top-5, per-class accuracy, the confusion matrix and its picture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tubelet.atomic import atomic_open
from tubelet.errors import TubeletError


@dataclass
class ClassificationReport:
    """Scores of N predictions over K classes; per-class accuracy is None for classes with no examples."""

    classes: list[str]
    top1: float
    top5: float
    mean_class_acc: float  # the mean over classes that have examples
    per_class: list[float | None]
    support: list[int]
    confusion: list[list[int]]  # [true][predicted]
    num_examples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_examples": self.num_examples, "num_classes": len(self.classes), "top1": self.top1, "top5": self.top5,
            "mean_class_acc": self.mean_class_acc,
            "per_class": [{"class": c, "accuracy": a, "support": n}
                          for c, a, n in zip(self.classes, self.per_class, self.support, strict=True)],
            "confusion": self.confusion,
        }


def classification_report(scores: Tensor, labels: Tensor, classes: list[str]) -> ClassificationReport:
    """scores [N, K] (logits or probabilities), labels [N] → the report (top-5 is top-K when K < 5)."""
    if scores.ndim != 2 or labels.shape != (scores.shape[0],) or scores.shape[0] == 0:
        raise TubeletError(f"expected scores [N>0, K] and labels [N], got {list(scores.shape)}, {list(labels.shape)}")
    n, k = scores.shape
    if k != len(classes):
        raise TubeletError(f"{k} scores per example for {len(classes)} classes")
    labels = labels.long().cpu()
    scores = scores.float().cpu()
    ranked = scores.topk(min(5, k), dim=1).indices  # [N, 5]
    pred = ranked[:, 0]
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, pred), torch.ones(n, dtype=torch.long), accumulate=True)
    support = confusion.sum(1)
    per_class = [None if support[c] == 0 else (confusion[c, c] / support[c]).item() for c in range(k)]
    seen = [a for a in per_class if a is not None]
    return ClassificationReport(
        classes=list(classes), top1=(pred == labels).float().mean().item(),
        top5=(ranked == labels[:, None]).any(1).float().mean().item(),
        mean_class_acc=sum(seen) / len(seen), per_class=per_class, support=support.tolist(),
        confusion=confusion.tolist(), num_examples=n,
    )


def save_confusion_png(report: ClassificationReport, path: str | Path, title: str = "") -> Path:
    """The row-normalised confusion matrix as a PNG (class names on the axes up to 40 classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = torch.tensor(report.confusion, dtype=torch.float64)
    rows = m.sum(1, keepdim=True).clamp(min=1)
    k = m.shape[0]
    side = min(16.0, max(4.0, 0.35 * k + 2))
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    im = ax.imshow((m / rows).numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 40:
        ax.set_xticks(range(k), report.classes, rotation=90, fontsize=8)
        ax.set_yticks(range(k), report.classes, fontsize=8)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if m[i, j] / rows[i, 0] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"top-1 {report.top1:.3f} · top-5 {report.top5:.3f} · n={report.num_examples}")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, dpi=100, format="png")
    plt.close(fig)
    return path


def format_report(report: ClassificationReport, max_rows: int = 20) -> str:
    """A plain-text summary: overall scores, then the classes with the lowest accuracy."""
    lines = [f"top-1 {report.top1:.4f}   top-5 {report.top5:.4f}   mean class acc {report.mean_class_acc:.4f}   "
             f"({report.num_examples} clips, {len(report.classes)} classes)"]
    rows = [(a, c, s) for c, a, s in zip(report.classes, report.per_class, report.support, strict=True)
            if a is not None]
    rows.sort(key=lambda r: (r[0], r[1]))
    width = max((len(c) for _, c, _ in rows), default=5)
    shown = rows[:max_rows]
    lines.append(f"{'class':<{width}}  accuracy  support" + ("  (lowest first)" if len(rows) > max_rows else ""))
    lines += [f"{c:<{width}}  {a:8.3f}  {s:7d}" for a, c, s in shown]
    return "\n".join(lines)


__all__ = ["ClassificationReport", "classification_report", "format_report", "save_confusion_png"]
