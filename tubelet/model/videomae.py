"""VideoMAE: encoder on visible tubelets, light decoder, masked-pixel loss; the same model classifies.

A model built from a config with `decoder_depth > 0` pretrains (v1 tube masking, v2 dual masking);
one with `num_classes > 0` classifies; both encode and embed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from tubelet.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from tubelet.errors import TubeletError
from tubelet.model.vit import Block, TubeletEmbed, init_linear_and_norm, patchify, sinusoid_table


@dataclass
class VideoMAEOutput:
    loss: Tensor | None = None
    pred: Tensor | None = None  # [B, N_pred, t·p·p·3] at the decoded positions, raster order
    logits: Tensor | None = None  # [B, num_classes]


def _blocks(n: int, dim: int, heads: int, mlp: int, cfg: ModelConfig, drop_path: float) -> nn.ModuleList:
    rates = torch.linspace(0, drop_path, n, device="cpu").tolist()  # grows with depth; cpu so meta builds work
    return nn.ModuleList(
        Block(dim, heads, mlp, cfg.qkv_bias, cfg.norm_eps, cfg.layer_scale_init, r) for r in rates
    )


def _select(x: Tensor, rows: Tensor) -> Tensor:
    """x [B, N, D], rows [B, N] bool with equal counts → [B, n, D] in raster order."""
    return x[rows].reshape(x.shape[0], -1, x.shape[-1])


class Encoder(nn.Module):
    """ViT over tubelet tokens; runs on the visible tokens only when given a mask."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = TubeletEmbed(cfg.in_chans, cfg.embed_dim, cfg.tubelet_size, cfg.patch_size)
        table = sinusoid_table(cfg.num_patches, cfg.embed_dim)
        if cfg.learnable_pos_emb:
            self.pos_embed = nn.Parameter(torch.zeros_like(table))
            nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.02, b=0.02)
        else:
            self.register_buffer("pos_embed", table, persistent=False)
        self.blocks = _blocks(cfg.depth, cfg.embed_dim, cfg.num_heads, cfg.mlp_dim, cfg, cfg.drop_path)
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps) if cfg.has_encoder_norm else nn.Identity()

    def forward(self, video: Tensor, mask: Tensor | None = None, layer: int | None = None) -> Tensor:
        """video [B, C, T, H, W], mask [B, N] (True = hidden) → features [B, N_visible, D].

        `layer` (negative counts from the end) returns that block's output instead of the normed last one.
        """
        keep = None if mask is None else ~mask
        x = self.patch_embed(video, keep)  # [B, N_vis, D]
        pos = self.pos_embed.to(x.dtype)
        x = x + (pos if keep is None else _select(pos.expand(x.shape[0], -1, -1), keep))
        stop = len(self.blocks) if layer is None else layer % len(self.blocks) + 1
        for blk in self.blocks[:stop]:
            if self.cfg.grad_checkpointing and self.training:
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return self.norm(x) if stop == len(self.blocks) else x


class Decoder(nn.Module):
    """Blocks, norm and a head predicting t·p·p·3 pixel values per decoded token."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.blocks = _blocks(cfg.decoder_depth, cfg.decoder_dim, cfg.decoder_heads, cfg.decoder_mlp_dim, cfg, 0.0)
        self.norm = nn.LayerNorm(cfg.decoder_dim, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.decoder_dim, cfg.patch_dim)
        self.grad_checkpointing = cfg.grad_checkpointing

    def forward(self, x: Tensor, n_out: int) -> Tensor:
        """x [B, N_dec, Dd] → predictions for the last n_out tokens [B, n_out, t·p·p·3]."""
        for blk in self.blocks:
            x = checkpoint(blk, x, use_reentrant=False) if self.grad_checkpointing and self.training else blk(x)
        return self.head(self.norm(x[:, -n_out:]))


class VideoMAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        if cfg.is_pretraining:
            self.encoder_to_decoder = nn.Linear(cfg.embed_dim, cfg.decoder_dim, bias=False)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
            self.register_buffer("pos_embed", sinusoid_table(cfg.num_patches, cfg.decoder_dim), persistent=False)
            self.decoder = Decoder(cfg)
        if cfg.is_classifier or cfg.norm_after_pool:
            self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps) if cfg.use_mean_pooling else None
        if cfg.is_classifier:
            self.head_dropout = nn.Dropout(cfg.head_dropout)
            self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official initialisation: xavier Linear for pretraining, trunc-normal .02 for classifiers."""
        init_linear_and_norm(self, "xavier" if self.config.is_pretraining else "trunc_normal")
        if self.config.is_pretraining:
            nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)

    # ---- shapes and checks -------------------------------------------------------------------------
    def _check_video(self, video: Tensor) -> None:
        cfg = self.config
        want = (cfg.in_chans, cfg.num_frames, *cfg.image_size)
        if video.ndim != 5 or tuple(video.shape[1:]) != want:
            raise TubeletError(f"expected video [B, {', '.join(map(str, want))}], got {list(video.shape)}")

    def _check_mask(self, mask: Tensor, name: str = "mask") -> None:
        n = self.config.num_patches
        if mask.dtype != torch.bool or mask.ndim != 2 or mask.shape[1] != n:
            raise TubeletError(f"{name} must be a bool tensor [B, {n}], got {mask.dtype} {list(mask.shape)}")
        counts = mask.sum(1)
        if (counts != counts[0]).any():
            raise TubeletError(f"every sample's {name} must hide the same number of tokens")

    # ---- the model ---------------------------------------------------------------------------------
    def encode(self, video: Tensor, mask: Tensor | None = None, layer: int | None = None) -> Tensor:
        """Features of the visible (all, without mask) tokens: [B, N_visible, D]."""
        self._check_video(video)
        if mask is not None:
            self._check_mask(mask)
        return self.encoder(video, mask, layer)

    def decode(self, x_vis: Tensor, mask: Tensor, decoder_mask: Tensor | None = None) -> Tensor:
        """Reconstruct pixels at the decoded positions: the masked ones, or with a v2 decoder mask
        every position it keeps. x_vis [B, N_vis, D] → pred [B, N_dec, t·p·p·3]."""
        B = x_vis.shape[0]
        x_vis = self.encoder_to_decoder(x_vis)  # [B, N_vis, Dd]
        pos = self.pos_embed.to(x_vis.dtype).expand(B, -1, -1)  # [B, N, Dd]
        query = mask if decoder_mask is None else ~decoder_mask  # positions to reconstruct
        pos_q = _select(pos, query)  # [B, N_dec, Dd]
        x = torch.cat([x_vis + _select(pos, ~mask), self.mask_token.to(x_vis.dtype) + pos_q], dim=1)
        return self.decoder(x, pos_q.shape[1])

    def targets(self, video: Tensor, rows: Tensor) -> Tensor:
        """Reconstruction targets at `rows` [B, N]: pixels un-normalised to [0, 1], optionally normalised
        per token and channel (unbiased std + 1e-6). → [B, n, t·p·p·3] in (t, p, p, C) order."""
        cfg = self.config
        with torch.no_grad():
            # gather the rows first (a fresh tensor), then work in place: no clip-sized temporaries
            x = patchify(video, cfg.tubelet_size, cfg.patch_size, channel_last=True, keep=rows).float()
            x = x.view(*x.shape[:2], x.shape[-1] // cfg.in_chans, cfg.in_chans)  # [B, n, t·p·p, C]
            if cfg.in_chans == 3:
                x.mul_(video.new_tensor(IMAGENET_STD).float()).add_(video.new_tensor(IMAGENET_MEAN).float())
            if cfg.norm_pix_loss:
                mean = x.mean(dim=-2, keepdim=True)
                std = x.var(dim=-2, unbiased=True, keepdim=True).sqrt_().add_(1e-6)
                x.sub_(mean).div_(std)
            return x.flatten(2)

    def loss(self, video: Tensor, pred: Tensor, mask: Tensor, decoder_mask: Tensor | None = None) -> Tensor:
        """MSE on the masked tokens (with a decoder mask: those both masked and decoded)."""
        query = mask if decoder_mask is None else ~decoder_mask
        target = self.targets(video, query)  # [B, N_dec, t·p·p·3]
        if decoder_mask is None:
            return F.mse_loss(pred.float(), target)  # one fused backward instead of pow/mean/expand passes
        err = (pred.float() - target).pow(2).mean(dim=-1)  # [B, N_dec]
        weight = _select(mask[..., None], query).squeeze(-1).float()  # [B, N_dec]: masked among decoded
        return (err * weight).sum() / weight.sum().clamp(min=1)

    def classify(self, video: Tensor) -> Tensor:
        """Logits [B, num_classes]."""
        return self.logits(self.encode(video))

    def logits(self, tokens: Tensor) -> Tensor:
        """Logits [B, num_classes] of last-block tokens [B, N, D] (a classifier's head on its pooled embedding)."""
        return self.head(self.head_dropout(self.pool(tokens)))

    def pool(self, tokens: Tensor) -> Tensor:
        """The model's own clip embedding [B, D] of last-block tokens [B, N, D]: fc_norm(mean) for models that
        norm after pooling (mean-pooling classifiers, VideoMAE v2 Hub encoders), token 0 for classifiers without
        mean pooling, the mean of the normed features otherwise."""
        if self.config.is_classifier and not self.config.use_mean_pooling:
            return tokens[:, 0]
        x = tokens.mean(dim=1)
        fc_norm = getattr(self, "fc_norm", None)
        return fc_norm(x) if fc_norm is not None else x

    def embed(self, video: Tensor, mask: Tensor | None = None, layer: int = -1, pool: str = "mean") -> Tensor:
        """Pooled clip embedding [B, D] of the visible tokens (all without `mask`).

        From the last block with mean pooling it is the model's own (`pool`). Another `layer` (negative counts from
        the end) or `pool="max"` pools that block's tokens as they are.
        """
        x = self.encode(video, mask, layer)  # [B, N_visible, D]
        if layer % self.config.depth != self.config.depth - 1 or pool != "mean":
            return x.mean(dim=1) if pool == "mean" else x.amax(dim=1)
        return self.pool(x)

    def forward(self, video: Tensor, mask: Tensor | None = None,
                decoder_mask: Tensor | None = None) -> VideoMAEOutput:
        """Pretraining model: needs `mask` ([B, N] True = masked); a classifier returns logits."""
        if self.config.is_classifier:
            return VideoMAEOutput(logits=self.classify(video))
        if not self.config.is_pretraining:
            raise TubeletError("this model has neither a decoder nor a head: use encode() or embed()")
        if mask is None:
            raise TubeletError("a pretraining forward needs a mask: [B, N] bool, True = masked")
        if decoder_mask is not None:
            self._check_mask(decoder_mask, "decoder_mask")
        x_vis = self.encode(video, mask)
        pred = self.decode(x_vis, mask, decoder_mask)
        return VideoMAEOutput(loss=self.loss(video, pred, mask, decoder_mask), pred=pred)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


__all__ = ["Decoder", "Encoder", "VideoMAE", "VideoMAEOutput"]
