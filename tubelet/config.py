"""Model configuration: one validated dataclass and the presets from tiny to giant."""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass, field
from typing import Any

from tubelet.errors import TubeletError

# Sane ranges of the architecture's numbers (vit_giant: dim 1408, depth 40, ~1e9 parameters, 2048 tokens).
LIMITS: dict[str, tuple[float, float]] = {
    "num_frames": (1, 1024), "image_size": (1, 8192), "tubelet_size": (1, 64), "patch_size": (1, 1024),
    "in_chans": (1, 64), "embed_dim": (1, 16384), "depth": (1, 256), "num_heads": (1, 1024), "mlp_dim": (1, 131072),
    "norm_eps": (1e-20, 1.0), "layer_scale_init": (0.0, 10.0), "drop_path": (0.0, 0.999), "decoder_dim": (1, 16384),
    "decoder_depth": (0, 256), "decoder_heads": (1, 1024), "decoder_mlp_dim": (1, 131072),
    "num_classes": (0, 1_000_000), "head_dropout": (0.0, 0.999),
}
MAX_TOKENS = 200_000
MAX_PARAMS = 4_000_000_000  # 16 GB of fp32 weights; vit_giant has 1e9


def coerce(name: str, value: Any, kind: Any, what: str) -> Any:
    """`value` as type `kind` (int, float, bool, str, tuple[int, int] also from one int, list[str]), numbers finite;
    TubeletError("<what>: <name> must be …") otherwise. Integral floats (JSON's 1e3) count as ints."""
    def fail(expected: str) -> TubeletError:
        return TubeletError(f"{what}: {name} must be {expected}, got {value!r}"[:300])

    if kind is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if kind is int:
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):  # numpy's ints count
            raise fail("an integer")
        return int(value)
    if kind is float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            raise fail("a finite number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if kind == tuple[int, int]:
        pair = [value, value] if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise fail("an integer or a pair of integers")
        return tuple(coerce(name, v, int, what) for v in pair)
    if kind == list[str]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise fail("a list of strings")
        return list(value)
    raise TypeError(f"coerce: no rule for {kind}")


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
        hints = typing.get_type_hints(ModelConfig)
        for f in dataclasses.fields(self):
            setattr(self, f.name, coerce(f.name, getattr(self, f.name), hints[f.name], "invalid model config"))
        self.validate()

    def validate(self) -> None:
        """Raise TubeletError naming the first field that makes no sense: each number within its sane range (so
        that nothing is allocated for an absurd architecture), then the relations between fields."""
        for name, (lo, hi) in LIMITS.items():
            values = self.image_size if name == "image_size" else (getattr(self, name),)
            for value in values:
                if not lo <= value <= hi:
                    shown = f"{value:.3g}" if abs(value) > 1e12 else value
                    raise TubeletError(f"invalid model config: {name}={shown} is out of range ({lo}–{hi:,})")
        h, w = self.image_size
        size = [(self.num_patches, MAX_TOKENS, "tokens"), (self.approx_params, MAX_PARAMS, "parameters")]
        for value, limit, what in size:
            if value > limit:
                raise TubeletError(f"invalid model config: {value:,} {what} is more than {limit:,}")
        checks = [
            (self.num_frames % self.tubelet_size == 0,
             f"num_frames={self.num_frames} is not a multiple of tubelet_size={self.tubelet_size}"),
            (h % self.patch_size == 0 and w % self.patch_size == 0,
             f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}"),
            (self.embed_dim % self.num_heads == 0,
             f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}"),
            (self.decoder_depth == 0 or self.decoder_dim % self.decoder_heads == 0,
             f"decoder_dim={self.decoder_dim} is not divisible by decoder_heads={self.decoder_heads}"),
            (not (self.decoder_depth > 0 and self.num_classes > 0),
             "a model is either a pretraining model (decoder_depth > 0) or a classifier (num_classes > 0)"),
            (not self.class_names or len(self.class_names) == self.num_classes,
             f"{len(self.class_names)} class names for num_classes={self.num_classes}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TubeletError(f"invalid model config: {message}")

    @property
    def approx_params(self) -> int:
        """Weights the model would hold (blocks, embeddings, head), computed without building it."""
        d, m, dd, dm = self.embed_dim, self.mlp_dim, self.decoder_dim, self.decoder_mlp_dim
        return (self.depth * (4 * d * d + 2 * d * m) + self.decoder_depth * (4 * dd * dd + 2 * dd * dm)
                + self.patch_dim * (d + dd) + self.num_patches * (d + dd) + d * self.num_classes)

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
