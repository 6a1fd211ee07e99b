"""`anomaly fit`: learn a camera's normal from its normal footage — one pass over the footage for frame
features and a sample of MAE windows, then the frame detectors' banks, the MAE's adaptation to this camera, the
window detectors, and the calibration of every score on normal footage the banks did not see (cross-fitting)."""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tubelet.anomaly.calibrate import ENOUGH, too_few
from tubelet.anomaly.config import AnomalyConfig
from tubelet.anomaly.detectors import Ticks
from tubelet.anomaly.features import FeatureExtractor, TickFeatures
from tubelet.anomaly.frames import ticks
from tubelet.anomaly.mae import WindowScores, adapt
from tubelet.anomaly.normal import NormalModel
from tubelet.anomaly.score import clip_of
from tubelet.catalog.embed import file_sha256, model_identity
from tubelet.config import PRESETS
from tubelet.data import VideoReader, probe
from tubelet.data.sources import Source, list_sources
from tubelet.errors import TubeletError
from tubelet.model.checkpoints import load_model
from tubelet.model.videomae import VideoMAE

LUMA_TICKS = 2000  # frames kept for the reference picture and the shift detector's calibration

Progress = Callable[[str, float, float], None]  # (stage, done, total)


@dataclass
class Footage:
    """The normal footage, read once: every tick's features, a sample of MAE windows with their segment ids."""

    feats: list[TickFeatures] = field(default_factory=list)
    tick_segment: list[int] = field(default_factory=list)  # global segment id of each tick
    luma: list[np.ndarray] = field(default_factory=list)
    luma_at: list[int] = field(default_factory=list)
    windows: list[np.ndarray] = field(default_factory=list)
    window_segment: list[int] = field(default_factory=list)
    seen_windows: int = 0
    segments: int = 0  # segments so far (ids are global over files)


def _keep_window(fo: Footage, clip: np.ndarray, segment: int, cap: int, rng: np.random.Generator) -> None:
    """Reservoir sampling: every normal window has the same chance to be among the `cap` kept."""
    i, fo.seen_windows = fo.seen_windows, fo.seen_windows + 1
    if i < cap:
        fo.windows.append(clip)
        fo.window_segment.append(segment)
        return
    j = int(rng.integers(0, i + 1))
    if j < cap:
        fo.windows[j], fo.window_segment[j] = clip, segment


def read_footage(files: Sequence[Source], cfg: AnomalyConfig, size: tuple[int, int], luma_every: int,
                 progress: Progress | None, total_s: float) -> Footage:
    fo = Footage()
    rng = np.random.default_rng(cfg.seed)
    tpb, done_s = cfg.ticks_per_bin, 0.0
    for src in files:
        fx = FeatureExtractor(cfg.cell, 2 * tpb)
        frames: deque[tuple[int, np.ndarray]] = deque(maxlen=cfg.window_ticks + 2 * tpb)
        next_window = 0  # this file's first segment whose window is not yet taken
        k = -1
        with VideoReader(src.input(), name=src.name) as reader:
            for k, tick in enumerate(ticks(reader, lambda *_: size, cfg.rate_hz)):
                f = fx(tick.rgb)
                if len(fo.feats) % luma_every == 0 and len(fo.luma) < LUMA_TICKS:
                    fo.luma.append(f.luma.astype(np.float16))
                    fo.luma_at.append(len(fo.feats))
                f.luma = None  # the frame itself is not kept
                fo.feats.append(f)
                fo.tick_segment.append(fo.segments + k // tpb)
                frames.append((k, tick.rgb))
                while cfg.window_of(next_window)[-1] <= k:
                    _keep_window(fo, clip_of(frames, cfg.window_of(next_window)), fo.segments + next_window,
                                 cfg.max_windows, rng)
                    next_window += 1
                if progress and k % 50 == 0:
                    progress("reading", done_s + tick.t, total_s)
        if k < 0:
            raise TubeletError(f"{src.name}: no decodable video frames")
        last = k // tpb
        while next_window <= last:
            _keep_window(fo, clip_of(frames, cfg.window_of(next_window)), fo.segments + next_window,
                         cfg.max_windows, rng)
            next_window += 1
        fo.segments += last + 1
        done_s += (k + 1) / cfg.rate_hz
    return fo


def _by_segment(values: np.ndarray, segment: np.ndarray, reduce: Callable[[np.ndarray], float]) -> np.ndarray:
    """Per-tick values → one value per segment id (0..max), by `reduce` over the segment's ticks."""
    bounds = np.flatnonzero(np.diff(segment)) + 1
    return np.array([reduce(chunk) for chunk in np.split(values, bounds)])


def _sha256(source: Source) -> str:
    if source.member is None:
        return file_sha256(source.path)
    return hashlib.sha256(source.input()).hexdigest()


def load_mae(source: str, cfg: AnomalyConfig, size: tuple[int, int]) -> VideoMAE:
    """The MAE to adapt, at the analysis geometry: a preset (its fixed seed-0 initialisation, as `embed` uses) or
    a pretraining checkpoint."""
    overrides = {"num_frames": cfg.num_frames, "image_size": size}
    if source in PRESETS and not Path(source).exists():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return load_model(source, **overrides)
    model = load_model(source, **overrides)
    if not model.config.is_pretraining:
        raise TubeletError(f"{source}: has no decoder, so it cannot reconstruct: give a pretraining checkpoint")
    return model


def calibration_warnings(where: str, segments: int | None, held_windows: int | None, bin_s: float) -> list[str]:
    """One line per calibration that normal footage this short cannot support: the frame detectors' (`segments`;
    under ENOUGH their 99th percentile is extrapolated from the largest) and the MAE's (`held_windows`),
    its held-out quarter's (on 6 s of parking lot, 3 windows: later ordinary footage read 5–8× its normal range)."""
    out = []
    if segments is not None and too_few(segments):
        out.append(f"{where}: too short to calibrate, a 99th percentile is extrapolated from the largest of "
                   f"{segments} normal segments: give at least {ENOUGH * bin_s:.1f} s")
    if held_windows is not None and too_few(held_windows):
        out.append(f"{where}: the MAE detectors are calibrated on its last quarter, {held_windows} windows, too few "
                   f"to read a 99th percentile off (ordinary later footage can score many times its normal range): "
                   f"give at least {4 * ENOUGH * bin_s:.0f} s")
    return out


def fit_normal(paths: Sequence[str | os.PathLike], model_source: str | None = None,
               cfg: AnomalyConfig | None = None, progress: Progress | None = None) -> NormalModel:
    """Learn normal from the footage at `paths` (files or folders); the MAE from `model_source` (a preset or
    checkpoint, default cfg.model; None-like 'none' skips the MAE detectors)."""
    cfg = cfg or AnomalyConfig()
    started = time.perf_counter()
    files = list_sources(list(paths))
    if not files:
        raise TubeletError(f"no video files in {', '.join(map(str, paths))}")
    infos = [probe(f.input()) for f in files]
    first = infos[0]
    if not first.has_video:
        raise TubeletError(f"{files[0].name}: no video stream")
    size = cfg.frame_size(first.height, first.width)
    total_s = sum(i.duration_s for i in infos)
    luma_every = max(1, int(total_s * cfg.rate_hz / LUMA_TICKS) + 1)
    fo = read_footage(files, cfg, size, luma_every, progress, total_s)
    n = len(fo.feats)
    if fo.segments < 2 * cfg.folds:
        raise TubeletError(f"normal footage too short: {n / cfg.rate_hz:.1f} s; give at least "
                           f"{2 * cfg.folds * cfg.bin_s:.0f} s")
    fold = np.minimum(np.arange(n) * cfg.folds // n, cfg.folds - 1)
    ticks_ = Ticks(np.stack([f.appearance for f in fo.feats]), np.stack([f.motion for f in fo.feats]),
                   np.array([f.brightness for f in fo.feats]), np.array([f.grain for f in fo.feats]),
                   np.array([f.change for f in fo.feats]), np.stack(fo.luma), np.array(fo.luma_at), fold,
                   np.stack([f.residual for f in fo.feats]), np.stack([f.recent for f in fo.feats]),
                   np.stack([f.jump for f in fo.feats]))
    segment = np.array(fo.tick_segment)
    source = model_source or cfg.model
    mae = load_mae(source, cfg, size) if source != "none" else None
    normal = NormalModel.fresh(cfg, size, mae)
    cal = normal.calibration
    z_cols = []
    for det in normal.detectors:
        if progress:
            progress(f"fitting {det.name}", 0, 1)
        per_segment = _by_segment(det.fit(ticks_), segment, det.reduce)
        z_cols.append(cal.fit_detector(det.name, per_segment, det.floor, det.gate, det.tail_count, det.short))
    zs = np.stack(z_cols, 1)  # [segments, D_frame]
    rows = np.arange(len(zs))  # the segment ids of zs's rows
    where = f"normal footage {', '.join(f.name for f in files)} ({n / cfg.rate_hz:.1f} s, {fo.segments} segments)"
    warnings = calibration_warnings(where, int(fo.segments), None, cfg.bin_s)
    fit_info = {"ticks": n, "segments": int(fo.segments), "windows": len(fo.windows), "frame_size": list(size)}
    cal.fit_combined(zs, rows, lasting=normal.lasting[:zs.shape[1]])
    if mae is not None:
        windows = np.stack(fo.windows)
        wseg = np.array(fo.window_segment)
        held = fold[np.searchsorted(segment, wseg)] == cfg.folds - 1  # the last part: calibration only
        losses = []
        if cfg.adapt_steps > 0:
            torch.manual_seed(cfg.seed)
            losses = adapt(mae, windows[~held], cfg.adapt_steps, cfg.adapt_batch, cfg.adapt_lr,
                           cfg.adapt_mask_ratio, cfg.seed,
                           (lambda s, _loss: progress("adapting the MAE", s, cfg.adapt_steps)) if progress else None)
        scorer = normal.scorer()
        parts = []
        for lo in range(0, len(windows), 8):
            parts.append(scorer(windows[lo:lo + 8]))
            if progress:
                progress("scoring normal windows", min(lo + 8, len(windows)), len(windows))
        w = WindowScores(np.concatenate([p.errors for p in parts]), np.concatenate([p.embeddings for p in parts]))
        fits = {"mae_reconstruction": w.errors, "mae_embedding": w.embeddings}
        wz = [cal.fit_detector(det.name, det.fit(fits[det.name], held), det.floor) for det in normal.window_detectors]
        # calibrated on the held-out part only (a quarter of the segments, the MAE adapted on the rest), but not
        # below the frame detectors' p99 over all segments: more detectors only add evidence to each segment
        cal.fit_combined(np.concatenate([zs[wseg[held]], np.stack(wz, 1)], 1), wseg[held], cal.combined_p99,
                         normal.lasting)
        warnings += calibration_warnings(where, None, int(held.sum()), cfg.bin_s)
        fit_info.update(adapt_steps=cfg.adapt_steps, adapt_windows=int((~held).sum()),
                        calibration_windows=int(held.sum()), first_loss=losses[0] if losses else None,
                        last_loss=float(np.mean(losses[-10:])) if losses else None)
    normal.info = {
        "model": {"source": source, "identity": model_identity(mae, -1, "mean") if mae is not None else None},
        "normal": [{"path": f.name, "sha256": _sha256(f), "duration_s": round(i.duration_s, 3)}
                   for f, i in zip(files, infos, strict=True)],
        "fit": {**fit_info, "warnings": warnings, "seconds": round(time.perf_counter() - started, 1)},
    }
    return normal
