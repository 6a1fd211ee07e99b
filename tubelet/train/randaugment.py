"""RandAugment for clips: N random image operations with one drawn magnitude each, applied identically to every
frame of a uint8 clip [T, H, W, 3] (the recipe's `rand-m7-n4-mstd0.5-inc1`: stronger magnitude = stronger change
for every operation).

Colour statistics (auto-contrast range, equalisation histogram, contrast mean) are taken over the whole clip so
that every frame gets the same mapping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tubelet.errors import TubeletError

MAX_LEVEL = 10.0
FILL = (124.0, 116.0, 104.0)  # ImageNet mean in 0..255: what geometric operations reveal at the borders

# Frames are float [T, 3, H, W] in 0..255 inside this module. `level` is the magnitude in [-1, 1]: its size sets
# the strength, its sign the direction for operations that have one (rotation, shear, translation, enhancement).
Op = Callable[[Tensor, float], Tensor]


def _gray(x: Tensor) -> Tensor:
    """Luma (ITU-R 601-2, as PIL's "L" mode): [T, 3, H, W] → [T, 1, H, W]."""
    return (x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114)


def _blend(x: Tensor, other: Tensor, factor: float) -> Tensor:
    """other + factor · (x − other): factor 1 = x, 0 = other, > 1 extrapolates away from other."""
    return (other + factor * (x - other)).clamp(0, 255)


def _enhance_factor(level: float) -> float:
    return 1.0 + 0.9 * level


# ---- colour operations ----------------------------------------------------------------------------

def auto_contrast(x: Tensor, level: float) -> Tensor:
    lo = x.amin(dim=(0, 2, 3), keepdim=True)
    hi = x.amax(dim=(0, 2, 3), keepdim=True)
    scale = torch.where(hi > lo, 255.0 / (hi - lo).clamp(min=1e-6), torch.ones_like(hi))
    return torch.where(hi > lo, (x - lo) * scale, x).clamp(0, 255)


def equalize(x: Tensor, level: float) -> Tensor:
    """Histogram equalisation per channel with one lookup table for the whole clip."""
    q = x.round().long().clamp(0, 255)
    out = torch.empty_like(x)
    for c in range(3):
        hist = torch.bincount(q[:, c].flatten(), minlength=256).double()
        cdf = hist.cumsum(0)
        lo = cdf[hist > 0][0]
        total = cdf[-1]
        lut = ((cdf - lo) / (total - lo).clamp(min=1) * 255).clamp(0, 255) if total > lo else torch.arange(256.0)
        out[:, c] = lut.to(x.dtype)[q[:, c]]
    return out


def invert(x: Tensor, level: float) -> Tensor:
    return 255.0 - x


def posterize(x: Tensor, level: float) -> Tensor:
    bits = max(1, 4 - int(4 * abs(level)))  # increasing strength: fewer bits kept
    drop = 8 - bits
    return ((x.round().long() >> drop) << drop).to(x.dtype)


def solarize(x: Tensor, level: float) -> Tensor:
    threshold = 256.0 - 256.0 * abs(level)  # increasing strength: more of the range inverted
    return torch.where(x >= threshold, 255.0 - x, x)


def solarize_add(x: Tensor, level: float) -> Tensor:
    return torch.where(x < 128, (x + 110.0 * abs(level)).clamp(max=255), x)


def color(x: Tensor, level: float) -> Tensor:
    return _blend(x, _gray(x).expand_as(x), _enhance_factor(level))


def contrast(x: Tensor, level: float) -> Tensor:
    return _blend(x, _gray(x).mean().expand_as(x), _enhance_factor(level))


def brightness(x: Tensor, level: float) -> Tensor:
    return _blend(x, torch.zeros_like(x), _enhance_factor(level))


def sharpness(x: Tensor, level: float) -> Tensor:
    """Blend with a smoothed copy (PIL's 3×3 smooth kernel); the one-pixel border stays as it is."""
    kernel = x.new_tensor([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13.0
    T, C, H, W = x.shape
    if H < 3 or W < 3:
        return x
    smooth = F.conv2d(x.reshape(T * C, 1, H, W), kernel[None, None]).reshape(T, C, H - 2, W - 2)
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    return _blend(x, degenerate, _enhance_factor(level))


# ---- geometric operations -------------------------------------------------------------------------

def _affine(x: Tensor, inverse: list[list[float]]) -> Tensor:
    """Warp every frame by one affine map given as its inverse on pixel offsets from the centre
    (output → input), nearest-neighbour, revealed area filled with FILL."""
    T, C, H, W = x.shape
    s = torch.tensor([[2.0 / W, 0, 0], [0, 2.0 / H, 0], [0, 0, 1]], dtype=torch.float64)
    m = torch.tensor(inverse + [[0, 0, 1]], dtype=torch.float64)
    theta = (s @ m @ torch.linalg.inv(s))[:2].to(x.dtype)  # the same map in grid_sample's [-1, 1] coordinates
    grid = F.affine_grid(theta.expand(T, 2, 3), [T, C, H, W], align_corners=False)
    ones = torch.ones_like(x[:, :1])
    out = F.grid_sample(torch.cat([x, ones], 1), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    inside = out[:, 3:]
    fill = x.new_tensor(FILL).view(1, 3, 1, 1)
    return out[:, :3] * inside + fill * (1 - inside)


def rotate(x: Tensor, level: float) -> Tensor:
    a = math.radians(30.0 * level)
    return _affine(x, [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])


def shear_x(x: Tensor, level: float) -> Tensor:
    return _affine(x, [[1.0, 0.3 * level, 0.0], [0.0, 1.0, 0.0]])


def shear_y(x: Tensor, level: float) -> Tensor:
    return _affine(x, [[1.0, 0.0, 0.0], [0.3 * level, 1.0, 0.0]])


def translate_x(x: Tensor, level: float) -> Tensor:
    return _affine(x, [[1.0, 0.0, 0.45 * level * x.shape[-1]], [0.0, 1.0, 0.0]])


def translate_y(x: Tensor, level: float) -> Tensor:
    return _affine(x, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.45 * level * x.shape[-2]]])


OPS: dict[str, Op] = {
    "auto_contrast": auto_contrast, "equalize": equalize, "invert": invert, "rotate": rotate,
    "posterize": posterize, "solarize": solarize, "solarize_add": solarize_add, "color": color,
    "contrast": contrast, "brightness": brightness, "sharpness": sharpness, "shear_x": shear_x,
    "shear_y": shear_y, "translate_x": translate_x, "translate_y": translate_y,
}


@dataclass
class RandAugment:
    """`num_ops` operations drawn with replacement, each applied with probability `prob` at a magnitude drawn
    from N(magnitude, magnitude_std) clipped to [0, 10]. Defaults: the VideoMAE fine-tuning recipe (n4, m7, std .5)."""

    num_ops: int = 4
    magnitude: float = 7.0
    magnitude_std: float = 0.5
    prob: float = 0.5
    ops: tuple[str, ...] = tuple(OPS)

    def __post_init__(self) -> None:
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise TubeletError(f"unknown RandAugment op(s): {', '.join(unknown)}; choose from {', '.join(OPS)}")
        if self.num_ops < 0 or not 0 <= self.magnitude <= MAX_LEVEL or self.magnitude_std < 0 or not self.ops:
            raise TubeletError("RandAugment needs num_ops >= 0, magnitude in [0, 10], magnitude_std >= 0, some ops")

    def __call__(self, clip: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """uint8 [T, H, W, 3] → uint8 [T, H, W, 3], every frame changed the same way (random choices from
        `generator`, else torch's global one)."""
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise TubeletError(f"RandAugment expects a uint8 clip [T, H, W, 3], got {clip.dtype} {list(clip.shape)}")
        if self.num_ops == 0:
            return clip
        x = clip.permute(0, 3, 1, 2).float()  # [T, 3, H, W]
        for i in torch.randint(0, len(self.ops), (self.num_ops,), generator=generator).tolist():
            apply, flip = torch.rand(2, generator=generator).tolist()
            noise = float(torch.randn((), generator=generator))
            if apply >= self.prob:
                continue
            m = min(max(self.magnitude + self.magnitude_std * noise, 0.0), MAX_LEVEL) / MAX_LEVEL
            x = OPS[self.ops[i]](x, m if flip < 0.5 else -m)
        return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


__all__ = ["OPS", "RandAugment"]
