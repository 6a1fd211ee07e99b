"""The catalog's own normalisation of its two spaces, fitted on its contents at every commit and stored with it.

A barely trained encoder puts every segment in a narrow cone (unrelated videos at cosine 0.97+), so raw cosines
mean nothing on their own. From the catalog's segment vectors we keep their mean and a shrunk whitening
(ZCA: U·diag(1/√(λ + α·λ̄))·Uᵀ, α = SHRINK): centred and whitened, unrelated segments spread around 0 and a
copy stands out whatever the model. And for each channel a *chance level*: the CHANCE_QUANTILE of catalog
items' similarity to their nearest item of another video (segments in the whitened space; fingerprints in both
orientations, as queries are matched), which a match must exceed to count as evidence. The crop views of a source's
thumbnails (fingerprint.py `crop_views`) are compared with a query only for a few sources (those its fingerprints
saw or resemble most), so their level is what a fingerprint reaches against the crop views of *one* other video: the
CHANCE_QUANTILE over a sample of catalog fingerprints × CROP_VIDEOS other videos (CROP_FRAMES frames each) of the
best similarity.

The fit depends only on what the catalog holds, not on the order it was added in (rows are sorted by video id
before sampling), so `index add` then `index rm` gives the normalisation of a catalog built without the removed
videos.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tubelet.atomic import atomic_write
from tubelet.catalog.fingerprint import crop_views, mirrored
from tubelet.catalog.rows import Frames, Segments
from tubelet.errors import TubeletError

SHRINK = 0.1  # whitening shrinkage, as a fraction of the mean eigenvalue
CHANCE_QUANTILE = 0.99
SAMPLE = 2000  # items whose nearest other-video neighbour sets a chance level
FIT_MAX = 50_000  # segments the mean and whitening are fitted on
CROP_VIDEOS = 16  # videos whose crop views set the crop chance level
CROP_FRAMES = 64  # frames of each, evenly spread
ALONE_FRAME_CHANCE = 0.8  # fingerprint chance level of a one-video catalog, which has no other video to measure it
# on: above every level measured on small real catalogs (0.66–0.79 with 8–10 clips)


@dataclass
class Normalisation:
    """Centring + whitening of the segment space, and each channel's chance level."""

    videos: int
    mean: np.ndarray  # [D]
    whiten: np.ndarray  # [D, D]
    segment_chance: float  # whitened cosine
    raw_segment_chance: float  # raw cosine (the copy threshold `originality` reports and `analyze` uses)
    frame_chance: float  # fingerprint cosine
    crop_chance: float = 1.0  # fingerprint cosine against one video's crop views (1: none to compare with)

    @classmethod
    def alone(cls, dim: int, segment_chance: float) -> Normalisation:
        """The stand-in for a catalog of one video: no centring or whitening, fixed chance levels, no crop views."""
        return cls(1, np.zeros(dim, np.float32), np.eye(dim, dtype=np.float32), segment_chance, segment_chance,
                   ALONE_FRAME_CHANCE)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Segment vectors [N, D] → centred, whitened, unit vectors."""
        z = (np.asarray(vectors, np.float32) - self.mean) @ self.whiten
        return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)

    def save(self, path: str | os.PathLike) -> None:
        buf = io.BytesIO()
        np.savez(buf, videos=self.videos, mean=self.mean, whiten=self.whiten, segment_chance=self.segment_chance,
                 raw_segment_chance=self.raw_segment_chance, frame_chance=self.frame_chance,
                 crop_chance=self.crop_chance)
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalisation:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(int(z["videos"]), z["mean"], z["whiten"], float(z["segment_chance"]),
                           float(z["raw_segment_chance"]), float(z["frame_chance"]),
                           float(z["crop_chance"]) if "crop_chance" in z.files else 1.0)  # saved before crops
        except FileNotFoundError:
            raise  # a writer replaced it: the reader retries on the newer manifest
        except (OSError, KeyError, ValueError) as e:
            raise TubeletError(f"{path}: unreadable catalog normalisation ({e})") from None


def _sorted_rows(ids: list[str], video: np.ndarray) -> np.ndarray:
    """Row indices ordered by video id (then position in the video): independent of insertion order."""
    rank = np.argsort(np.argsort(np.asarray(ids, dtype=object)))
    return np.lexsort((np.arange(len(video)), rank[video]))


def chance_level(vectors: np.ndarray, video: np.ndarray, mirror: bool = False, seed: int = 0) -> float:
    """CHANCE_QUANTILE of a sample of rows' best similarity to a row of another video (with `mirror`, the best
    of the row and its mirror image, as fingerprint queries are matched). Needs two videos or more."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(vectors))[:SAMPLE])
    best = np.full(len(rows), -np.inf, np.float32)
    for view in [vectors[rows], mirrored(vectors[rows])] if mirror else [vectors[rows]]:
        for lo in range(0, len(vectors), 65536):
            sim = view @ vectors[lo:lo + 65536].T
            sim[video[rows][:, None] == video[lo:lo + 65536][None]] = -np.inf
            best = np.maximum(best, sim.max(1))
    return float(np.quantile(best, CHANCE_QUANTILE))


def fit_normalisation(seg: Segments, frames: Frames, thumbs: Mapping[str, np.ndarray]) -> Normalisation | None:
    """The normalisation of a catalog's contents: every segment, every frame fingerprint and the videos' fingerprint
    thumbnails (None when it holds fewer than two videos)."""
    if len(seg.ids) < 2:
        return None
    order = _sorted_rows(seg.ids, seg.video)
    vecs, video = np.asarray(seg.vectors[order], np.float32), seg.video[order]
    fit = vecs[np.sort(np.random.default_rng(0).permutation(len(vecs))[:FIT_MAX])]
    mean = fit.mean(0)
    lam, u = np.linalg.eigh(np.cov(fit - mean, rowvar=False, bias=True).astype(np.float64))
    lam = np.clip(lam, 0, None)
    whiten = ((u / np.sqrt(lam + SHRINK * max(lam.mean(), 1e-12))) @ u.T).astype(np.float32)
    norm = Normalisation(len(seg.ids), mean.astype(np.float32), whiten, 0.0, 0.0, 0.0)
    norm.segment_chance = chance_level(norm.transform(vecs), video)
    norm.raw_segment_chance = chance_level(vecs, video)
    if len(frames.times) and len(np.unique(frames.video)) >= 2:
        forder = _sorted_rows(frames.ids, frames.video)
        norm.frame_chance = chance_level(np.asarray(frames.vectors[forder], np.float32), frames.video[forder],
                                         mirror=True)
        norm.crop_chance = crop_chance_level(thumbs, np.asarray(frames.vectors[forder], np.float32),
                                             np.asarray(frames.ids, dtype=object)[frames.video[forder]])
    else:
        norm.frame_chance = 1.0
    return norm


def crop_chance_level(thumbs: Mapping[str, np.ndarray], vectors: np.ndarray, owner: np.ndarray,
                      seed: int = 0) -> float:
    """CHANCE_QUANTILE of the best similarity of a sample of fingerprint rows [N, DIM] (both orientations; `owner`:
    each row's video id) to the crop views of one other video, over CROP_VIDEOS videos with thumbnails (1.0 when
    fewer than two have them)."""
    thumbs = {v: thumbs[v] for v in set(owner) if v in thumbs}
    if len(thumbs) < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    chosen = sorted(thumbs)
    chosen = [chosen[i] for i in np.sort(rng.permutation(len(chosen))[:CROP_VIDEOS])]
    rows = np.sort(rng.permutation(len(vectors))[:SAMPLE])
    views = [vectors[rows], mirrored(vectors[rows])]
    best = []
    for vid in chosen:
        t = thumbs[vid]
        crops = crop_views(t[np.unique(np.linspace(0, len(t) - 1, min(len(t), CROP_FRAMES)).astype(int))])
        crops = crops.reshape(-1, crops.shape[-1])
        other = owner[rows] != vid
        best.append(np.maximum(*(np.max(v[other] @ crops.T, axis=1) for v in views)))
    return float(np.quantile(np.concatenate(best), CHANCE_QUANTILE))
