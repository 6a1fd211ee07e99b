"""Run metrics: JSONL in RUN_DIR (TensorBoard too when installed) and a progress bar on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tubelet.atomic import atomic_write

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends one JSON object per line to RUN_DIR/metrics.jsonl.

    On resume, lines a killed session wrote after the checkpoint it resumes from are dropped, so the file reads
    as one uninterrupted run.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= resume_step]
            atomic_write(self.path, "".join(line + "\n" for line in kept))
        elif resume_step is None:
            atomic_write(self.path, "")
        self._file = self.path.open("a")
        self._tb = _tensorboard(Path(run_dir) / "tensorboard")

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None and "step" in record:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self._tb.add_scalar(f"pretrain/{key}", value, record["step"])

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # a torn last line from a kill: dropped


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def progress_bar(enabled: bool) -> Progress:
    """Steps with loss, lr, clips/s and ETA, drawn on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("lr {task.fields[lr]:.2e}"),
        TextColumn("{task.fields[clips_per_s]:.1f} clips/s"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
    )


__all__ = ["METRICS_FILE", "MetricsLog", "progress_bar", "read_metrics"]
