"""Clip transforms on uint8 [T, H, W, 3] tensors: crop is a view, resize stays uint8, float only at the end.

Random choices take a torch.Generator so a sample's augmentation is fixed by its seed, not by the process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from tubelet.config import IMAGENET_MEAN, IMAGENET_STD
from tubelet.errors import TubeletError

Box = tuple[int, int, int, int]  # top, left, height, width
VIDEOMAE_SCALES = (1.0, 0.875, 0.75, 0.66)


def _uniform(generator: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _choice(n: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(n, (), generator=generator))


def resize(video: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of uint8 [T, H, W, 3] to (h, w); stays uint8 (torch's fast uint8 path)."""
    if tuple(video.shape[1:3]) == tuple(size):
        return video
    x = video.permute(0, 3, 1, 2)  # [T, 3, H, W] view in channels-last memory
    y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1)  # [T, h, w, 3]


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(h, w) scaled so that min(h, w) == short."""
    scale = short / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_short(video: Tensor, short: int) -> Tensor:
    """Resize so the short side is `short`, aspect kept."""
    return resize(video, short_side_size(video.shape[1], video.shape[2], short))


def crop(video: Tensor, box: Box) -> Tensor:
    top, left, h, w = box
    return video[:, top:top + h, left:left + w]


def hflip(video: Tensor) -> Tensor:
    return video.flip(2)


def multi_scale_crop_box(h: int, w: int, out: int, generator: torch.Generator | None = None,
                         scales: Sequence[float] = VIDEOMAE_SCALES, max_distort: int = 1) -> Box:
    """VideoMAE's GroupMultiScaleCrop: crop sides from scales × short side (sides within 3 px of `out` snap to
    it; the two sides differ by at most `max_distort` scale steps), placed at one of 13 fixed offsets."""
    base = min(h, w)
    sides = [int(base * s) for s in scales]
    crop_h = [out if abs(x - out) < 3 else x for x in sides]
    crop_w = [out if abs(x - out) < 3 else x for x in sides]
    pairs = [(ch, cw) for i, ch in enumerate(crop_h) for j, cw in enumerate(crop_w) if abs(i - j) <= max_distort]
    ch, cw = pairs[_choice(len(pairs), generator)]
    ch, cw = min(ch, h), min(cw, w)
    hs, ws = (h - ch) // 4, (w - cw) // 4
    offsets = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2),  # corners, centre
               (2, 0), (2, 4), (4, 2), (0, 2),  # edge centres
               (1, 1), (1, 3), (3, 1), (3, 3)]  # quarter points
    oy, ox = offsets[_choice(len(offsets), generator)]
    return oy * hs, ox * ws, ch, cw


def random_resized_crop_box(h: int, w: int, generator: torch.Generator | None = None,
                            scale: tuple[float, float] = (0.08, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Box:
    """Inception-style crop: area fraction in `scale`, aspect (w/h) log-uniform in `ratio`; centre crop fallback."""
    area = h * w
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(generator, *scale)
        aspect = math.exp(_uniform(generator, log_lo, log_hi))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return _choice(h - ch + 1, generator), _choice(w - cw + 1, generator), ch, cw
    aspect = w / h
    if aspect < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif aspect > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        ch, cw = h, w
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def center_crop_box(h: int, w: int, size: int) -> Box:
    ch, cw = min(size, h), min(size, w)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def three_crop_boxes(h: int, w: int, size: int) -> list[Box]:
    """Three square crops along the long side (start, centre, end): the official VideoMAE test views."""
    ch, cw = min(size, h), min(size, w)
    if w >= h:
        return [((h - ch) // 2, left, ch, cw) for left in (0, (w - cw) // 2, w - cw)]
    return [(top, (w - cw) // 2, ch, cw) for top in (0, (h - ch) // 2, h - ch)]


def normalize(video: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """uint8 [T, H, W, 3] → float32 [3, T, H, W], (x/255 − mean)/std: the model's input layout."""
    m = torch.tensor(mean, dtype=torch.float32) * 255
    s = torch.tensor(std, dtype=torch.float32) * 255
    x = (video.to(torch.float32) - m) / s  # [T, H, W, 3]
    return x.permute(3, 0, 1, 2).contiguous()


def pretrain_view(video: Tensor, size: int, generator: torch.Generator | None, flip: bool = True) -> Tensor:
    """VideoMAE pretraining augmentation: multi-scale crop → size×size, optional random flip, normalise."""
    box = multi_scale_crop_box(video.shape[1], video.shape[2], size, generator)
    out = resize(crop(video, box), (size, size))
    if flip and _uniform(generator) < 0.5:
        out = hflip(out)
    return normalize(out)


def train_view(video: Tensor, size: int, generator: torch.Generator | None, flip: bool = True,
               scale: tuple[float, float] = (0.08, 1.0)) -> Tensor:
    """Fine-tuning augmentation: random resized crop → size×size, optional random flip, normalise."""
    box = random_resized_crop_box(video.shape[1], video.shape[2], generator, scale)
    out = resize(crop(video, box), (size, size))
    if flip and _uniform(generator) < 0.5:
        out = hflip(out)
    return normalize(out)


def test_views(video: Tensor, size: int, num_crops: int = 1) -> list[Tensor]:
    """Evaluation views: short side → size, then the centre crop (num_crops=1) or three crops (num_crops=3)."""
    if num_crops not in (1, 3):
        raise TubeletError(f"num_crops must be 1 or 3, got {num_crops}")
    video = resize_short(video, size)
    h, w = video.shape[1:3]
    boxes = [center_crop_box(h, w, size)] if num_crops == 1 else three_crop_boxes(h, w, size)
    return [normalize(crop(video, box)) for box in boxes]
