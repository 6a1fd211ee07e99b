"""What `anomaly fit` learns about one camera and saves in MODEL_DIR: settings, the adapted MAE, every
detector's normal state and the calibration. Safetensors and JSON only; the directory is replaced atomically."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from tubelet.anomaly.calibrate import Calibration
from tubelet.anomaly.config import AnomalyConfig
from tubelet.anomaly.detectors import Detector, frame_detectors
from tubelet.anomaly.mae import EmbeddingKNN, MAEScorer, Reconstruction
from tubelet.atomic import atomic_dir
from tubelet.config import coerce
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model, save_model
from tubelet.model.videomae import VideoMAE

FORMAT = "tubelet-anomaly"
VERSION = 11  # 2: DIS optical flow, the speed detector, forward cross-fitting; 3: the shift guard in % of the picture;
# 4: the direction detector, lighting against the whole picture's brightness too; 5: the frozen alarm's bar;
# 6: the residual detector; 7: the stall detector; 8: the jump detector; 9: the cover guard;
# 10: the defocus guard; 11: the grain and tint guards (and the camera-moved guard reads a roll)
READS = (5, 6, 7, 8, 9, 10, VERSION)  # versions this build loads (an older model scores without the detectors added
# since)
MANIFEST, STATES, MAE_DIR = "anomaly.json", "detectors.safetensors", "mae"


@dataclass
class NormalModel:
    """A camera's normal: the analysis geometry, detectors (frame-level and MAE), calibration, provenance."""

    config: AnomalyConfig
    frame_size: tuple[int, int]  # (h, w) of the analysis frames
    detectors: list[Detector]
    mae: VideoMAE | None
    window_detectors: list[Any]  # Reconstruction, EmbeddingKNN (empty without a MAE)
    calibration: Calibration = field(default_factory=Calibration)
    info: dict[str, Any] = field(default_factory=dict)  # model source and identity, normal footage, fit summary

    @classmethod
    def fresh(cls, config: AnomalyConfig, frame_size: tuple[int, int], mae: VideoMAE | None) -> NormalModel:
        windows = [Reconstruction(), EmbeddingKNN(config.bank_windows, config.seed)] if mae is not None else []
        detectors = frame_detectors(config.bank_cells, config.seed, config.ticks_per_bin)
        return cls(config, frame_size, detectors, mae, windows)

    @property
    def names(self) -> list[str]:
        """Detector names in score-column order."""
        return [d.name for d in self.detectors] + [d.name for d in self.window_detectors]

    @property
    def lasting(self) -> np.ndarray:
        """[D] whether each detector's evidence lifts the neighbouring segments (Detector.lasting; MAE windows do)."""
        return np.array([d.lasting for d in self.detectors] + [True] * len(self.window_detectors))

    @property
    def kinds(self) -> list[str]:
        return [d.kind for d in self.detectors] + [d.kind for d in self.window_detectors]

    def scorer(self) -> MAEScorer | None:
        return MAEScorer(self.mae, self.config.masks, self.config.seed) if self.mae is not None else None

    # ---- disk ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write MODEL_DIR whole (a temp directory renamed into place); an existing MODEL_DIR is replaced, anything
        else already at `path` (a file, a folder that is not a model) is refused rather than lost."""
        path = self.check_target(path)

        arrays = {f"{d.name}.{k}": np.ascontiguousarray(v) for d in self.detectors + self.window_detectors
                  for k, v in d.state().items()}
        manifest = {"format": FORMAT, "version": VERSION, "config": self.config.to_dict(),
                    "frame_size": list(self.frame_size), "detectors": self.names, "kinds": self.kinds,
                    "calibration": self.calibration.to_dict(), **self.info}
        with atomic_dir(path) as tmp:
            save_file(arrays, str(tmp / STATES))
            if self.mae is not None:
                save_model(self.mae, tmp / MAE_DIR)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return Path(path)

    @staticmethod
    def check_target(path: str | os.PathLike) -> Path:
        """`path` if a model may be written there: nothing yet, an empty folder or an earlier model directory."""
        path = Path(path)
        if path.exists() and not (path / MANIFEST).is_file() and (not path.is_dir() or any(path.iterdir())):
            raise TubeletError(f"{path}: exists and is not an anomaly model directory; choose a new --out")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NormalModel:
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError:
            raise TubeletError(f"{path}: not an anomaly model directory (no {MANIFEST}; make one with "
                               f"`tubelet anomaly fit`)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TubeletError(f"{path / MANIFEST}: unreadable ({e})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") not in READS:
            raise TubeletError(f"{path}: not a version-{'/'.join(map(str, READS))} {FORMAT} directory (fit it again "
                               f"with this build)")
        try:
            arrays = load_file(str(path / STATES))
        except (OSError, SafetensorError) as e:
            raise TubeletError(f"{path / STATES}: unreadable ({e})") from None
        config, frame_size, calibration = _read_settings(manifest, path / MANIFEST)
        mae = load_model(path / MAE_DIR) if (path / MAE_DIR).is_dir() else None
        model = cls.fresh(config, frame_size, mae)
        model.detectors = [d for d in model.detectors if d.since <= manifest["version"]]  # an older fit's own
        if model.names != manifest.get("detectors"):
            raise TubeletError(f"{path}: detectors {manifest.get('detectors')} do not match this build's "
                               f"{model.names}")
        for d in model.detectors + model.window_detectors:
            d.load({k.split(".", 1)[1]: v for k, v in arrays.items() if k.split(".", 1)[0] == d.name})
        model.calibration = calibration
        model.info = {k: v for k, v in manifest.items() if k in ("model", "normal", "fit")}
        return model


MAX_FRAME_SIDE = 8192


def _read_settings(manifest: dict[str, Any], where: Path) -> tuple[AnomalyConfig, tuple[int, int], Calibration]:
    """The config, analysis frame size and calibration a model directory's manifest holds, each checked (types,
    finite numbers, sane sizes) before anything is built from them; TubeletError naming the file otherwise."""
    for key in ("config", "frame_size", "calibration"):
        if manifest.get(key) is None:
            raise TubeletError(f"{where}: {key} is missing or null")
    if not isinstance(manifest["config"], dict):
        raise TubeletError(f"{where}: config must be an object")
    try:
        config = AnomalyConfig.from_dict(manifest["config"])
    except TubeletError as e:
        raise TubeletError(f"{where}: {e}") from None
    frame_size = coerce("frame_size", manifest["frame_size"], tuple[int, int], str(where))
    if not all(config.patch <= side <= MAX_FRAME_SIDE for side in frame_size):
        raise TubeletError(f"{where}: frame_size {list(frame_size)} must be within {config.patch}–{MAX_FRAME_SIDE} "
                           f"pixels a side")
    return config, frame_size, Calibration.from_dict(manifest["calibration"], str(where))
