"""Model configuration: one validated dataclass and the presets from tiny to giant."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tubelet.errors import TubeletError


@dataclass
class ModelConfig:
    """Architecture of a VideoMAE model. `decoder_depth > 0` → pretraining model; `num_classes > 0` → classifier."""

    name: str = "custom"
    # input geometry
    num_frames: int = 16
    image_size: tuple[int, int] = (224, 224)
    tubelet_size: int = 2
    patch_size: int = 16
    in_chans: int = 3
    # encoder
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    layer_scale_init: float = 0.0  # 0 = no layer scale (gamma_1/gamma_2)
    drop_path: float = 0.0
    learnable_pos_emb: bool = False
    grad_checkpointing: bool = False
    # decoder (pretraining model)
    decoder_dim: int = 384
    decoder_depth: int = 4
    decoder_heads: int = 6
    decoder_mlp_dim: int = 1536
    norm_pix_loss: bool = True
    # classification head
    num_classes: int = 0
    use_mean_pooling: bool = True
    norm_after_pool: bool = False  # an encoder without a head that norms its mean-pooled tokens (fc_norm), without
    # a final encoder norm: the VideoMAE v2 Hub encoders
    head_dropout: float = 0.0
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.image_size, int):
            self.image_size = (self.image_size, self.image_size)
        self.image_size = tuple(int(s) for s in self.image_size)  # type: ignore[assignment]
        self.validate()

    def validate(self) -> None:
        """Raise TubeletError naming the first field that makes no sense."""
        h, w = self.image_size
        checks = [
            (self.num_frames > 0 and self.tubelet_size > 0, "num_frames and tubelet_size must be positive"),
            (self.num_frames % self.tubelet_size == 0,
             f"num_frames={self.num_frames} is not a multiple of tubelet_size={self.tubelet_size}"),
            (h % self.patch_size == 0 and w % self.patch_size == 0,
             f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}"),
            (self.embed_dim % self.num_heads == 0,
             f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}"),
            (self.decoder_depth == 0 or self.decoder_dim % self.decoder_heads == 0,
             f"decoder_dim={self.decoder_dim} is not divisible by decoder_heads={self.decoder_heads}"),
            (self.depth > 0 and self.decoder_depth >= 0 and self.num_classes >= 0, "depths and classes must be >= 0"),
            (not (self.decoder_depth > 0 and self.num_classes > 0),
             "a model is either a pretraining model (decoder_depth > 0) or a classifier (num_classes > 0)"),
            (0.0 <= self.drop_path < 1.0 and 0.0 <= self.head_dropout < 1.0, "drop rates must be in [0, 1)"),
            (not self.class_names or len(self.class_names) == self.num_classes,
             f"{len(self.class_names)} class names for num_classes={self.num_classes}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TubeletError(f"invalid model config: {message}")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (t', h', w')."""
        return (self.num_frames // self.tubelet_size,
                self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size)

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @property
    def patch_dim(self) -> int:
        """Pixel values per cube: t·p·p·C."""
        return self.tubelet_size * self.patch_size * self.patch_size * self.in_chans

    @property
    def is_pretraining(self) -> bool:
        return self.decoder_depth > 0

    @property
    def is_classifier(self) -> bool:
        return self.num_classes > 0

    @property
    def has_encoder_norm(self) -> bool:
        """Official layout: a final encoder norm unless a mean-pooling classifier normalises after pooling."""
        pools_then_norms = self.use_mean_pooling and (self.num_classes > 0 or self.norm_after_pool)
        return not pools_then_norms or self.decoder_depth > 0

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with fields changed (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TubeletError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TubeletError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        return cls(**d)


def _vit(name: str, dim: int, depth: int, heads: int, dec_dim: int, dec_heads: int,
         patch: int = 16, mlp_ratio: float = 4.0) -> ModelConfig:
    # official: hidden = int(dim * mlp_ratio) in encoder and decoder blocks alike
    return ModelConfig(name=name, embed_dim=dim, depth=depth, num_heads=heads, mlp_dim=int(dim * mlp_ratio),
                       patch_size=patch, decoder_dim=dec_dim, decoder_depth=4, decoder_heads=dec_heads,
                       decoder_mlp_dim=int(dec_dim * mlp_ratio))


# Decoders as in the official repos: v1 S 192/3, B 384/6, L 512/8, H 640/8; v2 H and g 512/8.
PRESETS: dict[str, ModelConfig] = {
    "vit_tiny": _vit("vit_tiny", 192, 12, 3, 96, 3),
    "vit_small": _vit("vit_small", 384, 12, 6, 192, 3),
    "vit_base": _vit("vit_base", 768, 12, 12, 384, 6),
    "vit_large": _vit("vit_large", 1024, 24, 16, 512, 8),
    "vit_huge": _vit("vit_huge", 1280, 32, 16, 640, 8),
    "vit_huge_v2": _vit("vit_huge_v2", 1280, 32, 16, 512, 8),
    "vit_giant": _vit("vit_giant", 1408, 40, 16, 512, 8, patch=14, mlp_ratio=48 / 11),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """A preset by name with fields overridden, e.g. preset('vit_small', num_frames=8, image_size=112)."""
    if name not in PRESETS:
        raise TubeletError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)


# Input normalisation every VideoMAE checkpoint was trained with (ImageNet statistics, RGB in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
