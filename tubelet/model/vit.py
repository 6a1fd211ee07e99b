"""ViT parts on 3D tubelets: patchify, position embeddings, attention, blocks."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def patchify(video: Tensor, tubelet: int, patch: int, channel_last: bool = False, keep: Tensor | None = None) -> Tensor:
    """[B, C, T, H, W] → [B, N, t·p·p·C], tokens in raster order over (t', h', w').

    Values inside a token are ordered (C, t, p, p) — the Conv3d weight layout — or, with
    channel_last, (t, p, p, C) — the layout of the official reconstruction targets.
    keep [B, N] bool (same count per row) returns only those tokens, [B, N_keep, t·p·p·C].
    """
    B, C, T, H, W = video.shape
    t, h, w = T // tubelet, H // patch, W // patch
    x = video.reshape(B, C, t, tubelet, h, patch, w, patch)
    if channel_last:
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # [B, t, h, w, tubelet, p, p, C]
    else:
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # [B, t, h, w, C, tubelet, p, p]
    if keep is not None:  # gather from the strided view: one copy of the kept tokens, not of the whole clip
        x = x[keep.view(B, t, h, w)]
    return x.reshape(B, -1, C * tubelet * patch * patch)


def unpatchify(tokens: Tensor, grid: tuple[int, int, int], tubelet: int, patch: int, channels: int = 3) -> Tensor:
    """Inverse of patchify(channel_last=True): [B, N, t·p·p·C] → [B, C, T, H, W]."""
    B = tokens.shape[0]
    t, h, w = grid
    x = tokens.reshape(B, t, h, w, tubelet, patch, patch, channels)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # [B, C, t, tubelet, h, p, w, p]
    return x.reshape(B, channels, t * tubelet, h * patch, w * patch)


def sinusoid_table(n_position: int, dim: int) -> Tensor:
    """VideoMAE's fixed 1-D sinusoid table over the flattened token index: [1, N, D], float32.

    Float64 math, sin on even and cos on odd channels; the same operations as the reference so the
    float32 table is bit-identical.
    """
    # per-channel denominators as scalar float64 powers, exactly as the reference computes them
    denom = np.array([np.power(10000, 2 * (j // 2) / dim) for j in range(dim)])
    angles = np.arange(n_position, dtype=np.float64)[:, None] / denom[None, :]
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float32).unsqueeze(0)


def interpolate_pos_embed(table: Tensor, old_grid: tuple[int, int, int], new_grid: tuple[int, int, int]) -> Tensor:
    """Resample a [1, N, D] position table to another token grid: linear in t, bicubic in h and w."""
    if tuple(old_grid) == tuple(new_grid):
        return table
    D = table.shape[-1]
    t0, h0, w0 = old_grid
    t1, h1, w1 = new_grid
    x = table.reshape(t0, h0, w0, D).float()
    if (h0, w0) != (h1, w1):
        x = x.permute(0, 3, 1, 2)  # [t0, D, h0, w0]
        x = F.interpolate(x, size=(h1, w1), mode="bicubic", align_corners=False)
        x = x.permute(0, 2, 3, 1)  # [t0, h1, w1, D]
    if t0 != t1:
        x = x.permute(1, 2, 3, 0).reshape(1, h1 * w1 * D, t0)
        x = F.interpolate(x, size=t1, mode="linear", align_corners=False)
        x = x.reshape(h1, w1, D, t1).permute(3, 0, 1, 2)
    return x.reshape(1, t1 * h1 * w1, D).to(table.dtype)


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: drop the whole residual branch per sample with probability p."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv matmul; q and v biases, k bias fixed at zero."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias)  # [B, N, 3D]
        q, k, v = qkv.view(B, N, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # [B, h, N, d]
        # SDPA at every length: on this CPU it matches or beats matmul-softmax from 160 tokens up, forward and
        # backward, and takes the strided q/k/v views without copies (benchmarks/model_speed.py --attention).
        x = F.scaled_dot_product_attention(q, k, v)  # [B, h, N, d]
        return self.proj(x.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with optional layer scale (gamma_1, gamma_2) and drop path."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, qkv_bias: bool = True, eps: float = 1e-6,
                 layer_scale_init: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim)
        self.drop_path = drop_path
        self.gamma_1 = nn.Parameter(torch.full((dim,), layer_scale_init)) if layer_scale_init > 0 else None
        self.gamma_2 = nn.Parameter(torch.full((dim,), layer_scale_init)) if layer_scale_init > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        a = self.attn(self.norm1(x))
        if self.gamma_1 is not None:
            a = self.gamma_1 * a
        x = x + drop_path(a, self.drop_path, self.training)
        m = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            m = self.gamma_2 * m
        return x + drop_path(m, self.drop_path, self.training)


class TubeletEmbed(nn.Module):
    """Conv3d with kernel = stride = (t, p, p), applied as one matmul on the tokens that are kept."""

    def __init__(self, in_chans: int, dim: int, tubelet: int, patch: int) -> None:
        super().__init__()
        self.tubelet, self.patch = tubelet, patch
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, video: Tensor, keep: Tensor | None = None) -> Tensor:
        """video [B, C, T, H, W], keep [B, N] bool (same count per row) → tokens [B, N_keep, D]."""
        x = patchify(video, self.tubelet, self.patch, keep=keep)  # [B, N_keep, C·t·p·p]
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)


def init_linear_and_norm(module: nn.Module, kind: str = "xavier") -> None:
    """The official initialisation: xavier-uniform (pretrain) or trunc-normal .02 (fine-tune) Linear, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            if kind == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.trunc_normal_(m.weight, std=0.02)  # timm default bounds (±2), as official fine-tuning
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
