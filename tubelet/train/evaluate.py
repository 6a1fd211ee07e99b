"""Multi-view testing of a classifier: every clip seen as `clips` windows × `crops` crops, softmax averaged.

Works with any checkpoint `load_model` reads, including released VideoMAE fine-tuned .pth files (weights under
'module'); files without a config take their geometry from overrides (num_frames, image_size).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tubelet.atomic import atomic_write
from tubelet.data import ClipDataset, make_loader
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE
from tubelet.train import distributed as D
from tubelet.train.accuracy import ClassificationReport, classification_report, format_report, save_confusion_png
from tubelet.train.engine import DTYPES
from tubelet.train.labels import LabelSet, load_labels, read_class_list

CONFUSION_FILE = "confusion.png"
REPORT_FILE = "evaluation.json"


def eval_dataset(labels: LabelSet, model: VideoMAE, stride: int, clips: int = 1, crops: int = 1,
                 seed: int = 0) -> ClipDataset:
    """Evaluation views (uniform windows × centre or three crops) at the model's geometry."""
    cfg = model.config
    if cfg.image_size[0] != cfg.image_size[1]:
        raise TubeletError(f"evaluation crops are square; the model takes {cfg.image_size[0]}×{cfg.image_size[1]}")
    return ClipDataset(labels.examples, classes=labels.classes, num_frames=cfg.num_frames, stride=stride,
                       image_size=cfg.image_size[0], train=False, num_clips=clips, num_crops=crops, seed=seed)


@torch.no_grad()
def predict(model: torch.nn.Module, batches: Iterable[dict[str, Any]], device: torch.device,
            dtype: torch.dtype | None = None, chunk: int = 64) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """Softmax averaged over each item's views → (item index [N], probabilities [N, K], labels [N], skipped).

    Batches are the data layer's collated samples (video [B·V, …], label and index [B·V]); forward passes run
    `chunk` views at a time.
    """
    model.eval()
    sums: dict[int, Tensor] = {}
    counts: dict[int, int] = {}
    truth: dict[int, int] = {}
    skipped: list[str] = []
    for batch in batches:
        skipped += batch.get("skipped", [])
        video = batch["video"]
        for s in range(0, video.shape[0], chunk):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(video[s:s + chunk].to(device, non_blocking=True)).logits
            probs = logits.float().softmax(dim=-1).cpu()
            for p, i, y in zip(probs, batch["index"][s:s + chunk].tolist(), batch["label"][s:s + chunk].tolist(),
                               strict=True):
                sums[i] = sums[i] + p if i in sums else p.clone()
                counts[i] = counts.get(i, 0) + 1
                truth[i] = y
    order = sorted(sums)
    if not order:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), skipped
    probs = torch.stack([sums[i] / counts[i] for i in order])
    return torch.tensor(order), probs, torch.tensor([truth[i] for i in order]), skipped


def evaluate_dataset(model: torch.nn.Module, dataset: ClipDataset, info: D.DistInfo, batch_size: int = 4,
                     workers: int = 0, precision: str = "fp32") -> tuple[ClassificationReport | None, list[str]]:
    """Predictions of every rank on its share of the items, gathered and scored (the same report on all ranks);
    None when no item could be decoded."""
    loader = make_loader(dataset, batch_size, workers=workers, shuffle=False, drop_last=False, rank=info.rank,
                         world_size=info.world_size)
    index, probs, labels, skipped = predict(model, loader, info.device, DTYPES[precision])
    parts = D.gather((index, probs, labels, skipped), info)
    merged: dict[int, tuple[Tensor, int]] = {}
    for idx, p, y, _ in parts:  # padding repeats items on some ranks: keep each item once
        for i, row, label in zip(idx.tolist(), p, y.tolist(), strict=True):
            merged.setdefault(i, (row, label))
    skipped = sorted({s for *_, sk in parts for s in sk})
    if not merged:
        return None, skipped
    keys = sorted(merged)
    scores = torch.stack([merged[i][0] for i in keys])
    truth = torch.tensor([merged[i][1] for i in keys])
    return classification_report(scores, truth, dataset.classes), skipped


# ---- the `tubelet evaluate` job -------------------------------------------------------------------

@dataclass
class EvalResult:
    report: ClassificationReport
    model: str
    clips: int
    crops: int
    skipped: list[str]
    missing: list[str]
    confusion_png: Path | None
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "clips": self.clips, "crops": self.crops, **self.report.to_dict(),
                "confusion_png": str(self.confusion_png) if self.confusion_png else None,
                "skipped": self.skipped, "missing": self.missing, "seconds": round(self.seconds, 2)}


def model_classes(model: VideoMAE, class_list: str | None) -> list[str] | None:
    """The class names to score with: a given class list, else the model's own, else None (ids)."""
    k = model.config.num_classes
    if class_list:
        names = read_class_list(class_list)
        if len(names) != k:
            raise TubeletError(f"{class_list}: {len(names)} classes, but the model has {k} outputs")
        return names
    return list(model.config.class_names) or None


def load_classifier(src: str, overrides: dict[str, Any]) -> VideoMAE:
    model = load_model(src, **overrides)
    if not model.config.is_classifier:
        raise TubeletError(f"{src}: not a classifier (no head); fine-tune it first or use `tubelet probe`")
    return model


def evaluate(data: str | None, labels_path: str | None, model_src: str, clips: int = 5, crops: int = 3,
             stride: int = 4, class_list: str | None = None, overrides: dict[str, Any] | None = None,
             batch_size: int = 2, workers: int = 0, device: str = "auto", precision: str = "fp32",
             out_dir: str | Path | None = None) -> EvalResult:
    """Score `model_src` on the clips of a labelled manifest with multi-view testing; with `out_dir`, write the
    report (evaluation.json) and the confusion-matrix picture there."""
    started = time.perf_counter()
    if precision not in DTYPES:
        raise TubeletError(f"precision must be one of {', '.join(DTYPES)}")
    info = D.setup(device)
    try:
        model = load_classifier(model_src, overrides or {}).to(info.device)
        names = model_classes(model, class_list)
        labels = load_labels(data, labels_path, names)
        if names is None and labels.classes != [str(i) for i in range(labels.num_classes)]:
            raise TubeletError(f"{model_src}: the model has no class names, so the labels must be class ids "
                               "or come with a class list (--classes FILE)")
        if names is None and labels.num_classes > model.config.num_classes:
            raise TubeletError(f"{labels_path or data}: label ids up to {labels.num_classes - 1}, but the model has "
                               f"{model.config.num_classes} outputs")
        labels.classes = names or [str(i) for i in range(model.config.num_classes)]
        if labels.missing and info.is_main:
            print(f"warning: {len(labels.missing)} listed file(s) not found, e.g. {labels.missing[0]}",
                  file=sys.stderr)
        dataset = eval_dataset(labels, model, stride, clips, crops)
        report, skipped = evaluate_dataset(model, dataset, info, batch_size, workers, precision)
    finally:
        D.teardown()
    if report is None:
        raise TubeletError(f"{labels_path or data}: none of the videos could be decoded")
    png = None
    if out_dir is not None and info.is_main:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        png = save_confusion_png(report, out / CONFUSION_FILE, f"{Path(model_src).name}: top-1 {report.top1:.3f}")
    result = EvalResult(report, str(model_src), clips, crops, skipped, labels.missing, png,
                        time.perf_counter() - started)
    if out_dir is not None and info.is_main:
        atomic_write(Path(out_dir) / REPORT_FILE, json.dumps(result.summary(), indent=2) + "\n")
    return result


__all__ = ["EvalResult", "evaluate", "evaluate_dataset", "format_report", "load_classifier", "model_classes",
           "eval_dataset", "predict"]
