"""A training run's saved state: RUN_DIR/checkpoints/step_NNNNNNNN/ = a model directory (config.json +
model.safetensors) plus trainer.pt (optimizer, scheduler, scaler, RNG states, step and data position).

Each checkpoint appears whole (written in a temp directory, then renamed); the last K are kept. trainer.pt
holds only tensors and plain containers so it loads with torch.load(weights_only=True).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tubelet.atomic import atomic_dir, atomic_open
from tubelet.errors import CheckpointError
from tubelet.model.checkpoints import RUN_CHECKPOINTS, run_checkpoints, save_model
from tubelet.model.videomae import VideoMAE

TRAINER_FILE = "trainer.pt"


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / RUN_CHECKPOINTS / f"step_{step:08d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """A run's checkpoints that can be resumed (model and trainer state), oldest first."""
    return [p for p in run_checkpoints(run_dir) if (p / TRAINER_FILE).is_file()]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(run_dir: str | Path, step: int, model: VideoMAE, trainer: dict[str, Any],
                    keep_last: int) -> Path:
    """Write model + trainer state for `step` as one directory that appears whole (the same step saved again
    replaces it), then delete all but the last `keep_last` checkpoints."""
    final = checkpoint_path(run_dir, step)
    with atomic_dir(final) as tmp:
        save_model(model, tmp)
        with atomic_open(tmp / TRAINER_FILE, "wb") as f:
            torch.save(trainer, f)
    for stale in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(stale)
    return final


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """trainer.pt of a checkpoint directory, read without unpickling code."""
    file = Path(path) / TRAINER_FILE
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing (not a resumable checkpoint)") from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{file}: cannot read trainer state ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{file}: not a tubelet trainer state")
    return state


# ---- RNG states as tensors and plain values -------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states in a weights_only-loadable form."""
    version, keys, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": [version, list(keys), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss),
                  float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


__all__ = ["TRAINER_FILE", "checkpoint_path", "latest_checkpoint",
           "list_checkpoints", "load_trainer_state", "rng_state", "save_checkpoint", "set_rng_state"]
