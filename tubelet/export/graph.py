"""The encoder as used for embedding, as one module: video → unit embedding (and a classifier's logits).

The torch engine runs it as it is; the ONNX exporter traces it, so both compute the same function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tubelet.errors import TubeletError
from tubelet.model.masking import lattice_mask
from tubelet.model.videomae import VideoMAE


class EmbeddingGraph(nn.Module):
    """video [B, 3, T, H, W] (normalised) → (embedding [B, D] unit norm, logits [B, K] for a classifier's own
    embedding), pooled from block `layer` with `pool`, on the `tokens` fraction of the tubes (lattice_mask)."""

    def __init__(self, model: VideoMAE, layer: int = -1, pool: str = "mean", tokens: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < tokens <= 1.0:  # NaN fails this too
            raise TubeletError(f"token fraction must be in (0, 1], got {tokens}")
        self.model, self.layer, self.pool = model.eval(), layer, pool
        hidden = lattice_mask(model.config.grid, tokens) if tokens < 1.0 else None
        self.register_buffer("hidden", hidden, persistent=False)
        self.with_logits = model.config.is_classifier and layer == -1 and pool == "mean"

    @property
    def outputs(self) -> list[str]:
        return ["embedding", "logits"] if self.with_logits else ["embedding"]

    def forward(self, video: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, ...]:
        """`hidden` [N] bool: tokens the encoder does not see besides the token fraction's (padding around a
        narrow picture, catalog.embed.content_view); the torch engine only (the exported graph has no such input)."""
        mask = self.hidden
        if hidden is not None:
            mask = hidden if mask is None or bool((mask | hidden).all()) else mask | hidden
        mask = None if mask is None else mask.expand(video.shape[0], -1)
        pooled = self.model.embed(video, mask, self.layer, self.pool)
        embedding = F.normalize(pooled.float(), dim=-1)
        if self.with_logits:
            return embedding, self.model.head(pooled)
        return (embedding,)


def example_input(model: VideoMAE, batch: int = 2, seed: int = 0) -> Tensor:
    """A normalised-range random clip batch of the model's geometry."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, cfg.in_chans, cfg.num_frames, *cfg.image_size, generator=gen)
