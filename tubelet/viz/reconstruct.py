"""The VideoMAE reconstruction picture: original / masked input / reconstruction / reconstruction with the
visible patches pasted back, one column per frame.

Predictions of a model trained with norm_pix_loss live in per-patch normalised space; they are shown in pixels
by giving each predicted patch the mean and standard deviation of the original patch (as the papers' figures do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from tubelet.atomic import atomic_open
from tubelet.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from tubelet.data.decode import VideoInput, read_clip
from tubelet.data.transforms import test_views
from tubelet.errors import TubeletError
from tubelet.model.masking import Masking
from tubelet.model.videomae import VideoMAE
from tubelet.model.vit import patchify, unpatchify

GREY = 0.5  # the colour of hidden patches


@dataclass
class Reconstruction:
    """Rows of the picture as frames [T, H, W, 3] in [0, 1], and the masked-patch loss."""

    original: Tensor
    masked: Tensor
    reconstruction: Tensor
    pasted: Tensor
    mask_ratio: float
    loss: float


def to_pixels(video: Tensor) -> Tensor:
    """ImageNet-normalised [B, 3, T, H, W] → RGB in [0, 1]."""
    mean = video.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = video.new_tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return video * std + mean


def predicted_pixels(pred: Tensor, target_patches: Tensor, norm_pix: bool, channels: int = 3) -> Tensor:
    """Predictions [n, t·p·p·C] back in pixel space, using the originals' per-patch, per-channel statistics
    (unbiased std + 1e-6, as the loss normalises) when the model was trained with norm_pix_loss."""
    if not norm_pix:
        return pred
    x = target_patches.reshape(*target_patches.shape[:-1], -1, channels)  # [n, t·p·p, C]
    mean = x.mean(dim=-2, keepdim=True)
    std = x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
    return (pred.reshape(x.shape) * std + mean).flatten(-2)


@torch.no_grad()
def reconstruct(model: VideoMAE, video: Tensor, mask: Tensor) -> Reconstruction:
    """One clip [3, T, H, W] (ImageNet-normalised) and its mask [N] (True = hidden) → the picture's rows."""
    cfg = model.config
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        out = model(video[None].to(param.device, param.dtype), mask=mask[None].to(param.device))
    finally:
        model.train(was_training)
    frames = to_pixels(video[None].float())  # [1, 3, T, H, W]
    patches = patchify(frames, cfg.tubelet_size, cfg.patch_size, channel_last=True)[0]  # [N, t·p·p·3]
    pred = predicted_pixels(out.pred[0].float().cpu(), patches[mask], cfg.norm_pix_loss, cfg.in_chans)

    def image(tokens: Tensor) -> Tensor:  # [N, t·p·p·3] → [T, H, W, 3]
        x = unpatchify(tokens[None], cfg.grid, cfg.tubelet_size, cfg.patch_size, cfg.in_chans)[0]
        return x.permute(1, 2, 3, 0).clamp(0, 1)

    grey = torch.full_like(patches, GREY)
    masked, recon, pasted = patches.clone(), grey.clone(), patches.clone()
    masked[mask] = GREY
    recon[mask] = pred
    pasted[mask] = pred
    return Reconstruction(image(patches), image(masked), image(recon), image(pasted),
                          mask_ratio=mask.float().mean().item(), loss=out.loss.item())


def load_clip(src: VideoInput, cfg: ModelConfig, stride: int = 4, start_s: float | None = None) -> Tensor:
    """A clip for `cfg`'s (square) geometry as evaluation sees it: short side resized, centre crop, normalised.
    `src` is a path or a video's bytes → [3, T, H, W]; start_s None takes the middle of the video."""
    size = cfg.image_size[0]
    if cfg.image_size[1] != size:
        raise TubeletError(f"reconstruct draws square clips; the model's image_size is {cfg.image_size}")
    frames, _ = read_clip(src, cfg.num_frames, stride, start_s, size=size)  # uint8 [T, H', W', 3]
    return test_views(frames, size)[0]


# ---- the picture ----------------------------------------------------------------------------------

def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _to_image(frame: Tensor, height: int) -> Image.Image:
    img = Image.fromarray((frame.numpy() * 255).round().astype("uint8"))
    if img.height != height:
        width = round(img.width * height / img.height)
        resample = Image.NEAREST if height > img.height else Image.BILINEAR
        img = img.resize((width, height), resample)
    return img


def figure(rec: Reconstruction, title: str = "", max_columns: int = 8, cell_height: int = 0) -> Image.Image:
    """Rows original / masked / reconstruction / reconstruction + visible over up to `max_columns` frames.

    cell_height 0: the frame height, enlarged (nearest) to at least 96 px and reduced to at most 224 px.
    """
    T, H, W, _ = rec.original.shape
    columns = torch.linspace(0, T - 1, min(T, max_columns)).round().long().tolist()
    height = cell_height or min(224, H * max(1, 96 // H))
    rows = [("original", rec.original), (f"masked {rec.mask_ratio:.0%}", rec.masked),
            ("reconstruction", rec.reconstruction), ("+ visible patches", rec.pasted)]
    font = _font(14)
    gap, label_w, title_h = 4, 150, 26 if title else 0
    width = round(W * height / H)
    canvas = Image.new("RGB", (label_w + len(columns) * (width + gap), title_h + len(rows) * (height + gap)),
                       "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((6, 5), title, fill="black", font=font)
    for r, (label, frames) in enumerate(rows):
        y = title_h + r * (height + gap)
        draw.text((6, y + height // 2 - 8), label, fill="black", font=font)
        for c, t in enumerate(columns):
            canvas.paste(_to_image(frames[t], height), (label_w + c * (width + gap), y))
    return canvas


def save_figure(rec: Reconstruction, path: str | Path, title: str = "", max_columns: int = 8) -> Path:
    """Write the picture as PNG (parent folders created)."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        figure(rec, title, max_columns).save(f, format="PNG")
    return path


def reconstruct_video(net: VideoMAE, video: str | Path, out: str | Path, mask_ratio: float = 0.9,
                      mask_type: str = "tube", start_s: float | None = None, stride: int = 4,
                      seed: int = 0) -> Reconstruction:
    """`tubelet reconstruct`: one clip of `video` through a pretraining model, drawn to `out`."""
    if not net.config.is_pretraining:
        raise TubeletError(f"{net.config.name}: has no decoder; reconstruct needs a pretraining checkpoint")
    masking = Masking(net.config.grid, mask_type, mask_ratio).require_hidden()
    clip = load_clip(video, net.config, stride, start_s)
    rec = reconstruct(net, clip, masking.fixed(seed))
    save_figure(rec, out, f"{Path(video).name}  ·  {net.config.name}  ·  loss {rec.loss:.3f}")
    return rec


__all__ = ["Reconstruction", "figure", "load_clip", "predicted_pixels", "reconstruct", "reconstruct_video",
           "save_figure", "to_pixels"]
