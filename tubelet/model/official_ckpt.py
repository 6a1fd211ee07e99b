"""Official VideoMAE v1 (MCG-NJU) and v2 (OpenGVLab) .pth checkpoints: key mapping and architecture inference
(pure functions; checkpoints.py does the file I/O).

Pretraining checkpoints keep their weights under 'model' with tubelet's own key layout (encoder.*, decoder.*);
fine-tuned ones under 'module' with the encoder at the top level (patch_embed.*, blocks.*, norm.*, fc_norm.*,
head.*). The files carry no config, so the architecture is read off the weight shapes.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from tubelet.config import PRESETS, ModelConfig
from tubelet.errors import CheckpointError, TubeletError

StateDict = dict[str, Tensor]

# Attention heads by width, as in the official model definitions (encoders and decoders).
HEADS_BY_WIDTH = {96: 3, 192: 3, 384: 6, 512: 8, 640: 8, 768: 12, 1024: 16, 1280: 16, 1408: 16}
STATE_KEYS = ("model", "module")
STRIP_PREFIXES = ("_orig_mod.", "module.", "backbone.")
FINETUNE_ENCODER_PARTS = ("patch_embed.", "blocks.", "norm.", "pos_embed")


def state_dict_of(obj: Any, where: str) -> StateDict:
    """The weights inside a loaded .pth: under 'model' (pretraining) or 'module' (fine-tuned), or the object itself."""
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{where}: holds no state dict of tensors (looked under {', '.join(STATE_KEYS)})")
    return {_strip(str(k)): v for k, v in obj.items()}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in STRIP_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def to_tubelet_keys(sd: StateDict) -> StateDict:
    """Fine-tune layout (patch_embed.*, blocks.*, norm.*) → tubelet's (encoder.patch_embed.*, …)."""
    if any(k.startswith("encoder.") for k in sd):
        return dict(sd)
    return {("encoder." + k if k.startswith(FINETUNE_ENCODER_PARTS) else k): v for k, v in sd.items()}


def preset_name(dim: int, depth: int, patch: int) -> str:
    """The preset with this encoder shape, or 'custom'."""
    return next((name for name, p in PRESETS.items() if (p.embed_dim, p.depth, p.patch_size) == (dim, depth, patch)),
                "custom")


def _heads(width: int, given: int | None, what: str, where: str) -> int:
    if given:
        return given
    if width not in HEADS_BY_WIDTH:
        raise CheckpointError(f"{where}: cannot infer the {what} heads for width {width}; pass "
                              f"{'num_heads' if what == 'encoder' else 'decoder_heads'}=…")
    return HEADS_BY_WIDTH[width]


def _depth(sd: StateDict, prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd if (m := pat.match(k))}
    return max(found) + 1 if found else 0


def _fit_pos_table(rows: int, cfg: ModelConfig, where: str) -> ModelConfig:
    """The geometry a learnable position table of `rows` entries (or rows − 1, with a class-token slot) was trained
    at: cfg's own if it fits, else a square grid at cfg's frame count (as official fine-tuning assumes)."""
    t = cfg.num_frames // cfg.tubelet_size
    for n in (rows, rows - 1):
        side = round((n / t) ** 0.5)
        if n == cfg.num_patches:
            return cfg
        if t * side * side == n:
            return cfg.replace(image_size=side * cfg.patch_size)
    raise CheckpointError(f"{where}: a position table of {rows} rows fits no square grid at {cfg.num_frames} frames; "
                          f"pass num_frames=…")


def infer_config(sd: StateDict, where: str, hints: dict[str, Any]) -> tuple[ModelConfig, StateDict]:
    """Architecture from weight shapes (tubelet key layout). Geometry: `hints` num_frames / image_size, else 16×224²,
    with the image size read off a learnable position table when there is one.

    Returns the config and the weights with a learnable position table's extra leading row (a class-token slot
    in some official pretraining files) removed.
    """
    if "encoder.patch_embed.proj.weight" not in sd:
        raise CheckpointError(f"{where}: not a VideoMAE checkpoint (no patch_embed.proj.weight)")
    if any(k.endswith("attn.scale") for k in sd):
        raise CheckpointError(f"{where}: cosine attention (attn.scale) is not supported")
    w = sd["encoder.patch_embed.proj.weight"]
    if w.ndim != 5:
        raise CheckpointError(f"{where}: patch_embed.proj.weight has shape {list(w.shape)}, expected a Conv3d weight")
    dim, chans, tubelet, patch = w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    depth = _depth(sd, "encoder.blocks.")
    if depth == 0:
        raise CheckpointError(f"{where}: no encoder blocks found")
    fields: dict[str, Any] = dict(
        embed_dim=dim, in_chans=chans, tubelet_size=tubelet, patch_size=patch, depth=depth,
        num_heads=_heads(dim, hints.get("num_heads"), "encoder", where),
        mlp_dim=_shape0(sd, "encoder.blocks.0.mlp.fc1.weight", 4 * dim),
        qkv_bias="encoder.blocks.0.attn.q_bias" in sd,
        # the init value is not stored; any positive value creates gamma_1/gamma_2, which are then loaded
        layer_scale_init=0.1 if "encoder.blocks.0.gamma_1" in sd else 0.0,
        learnable_pos_emb="encoder.pos_embed" in sd,
        decoder_depth=_depth(sd, "decoder.blocks."),
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
        use_mean_pooling="fc_norm.weight" in sd,
        norm_after_pool="fc_norm.weight" in sd and "head.weight" not in sd,
        num_frames=hints.get("num_frames", 16), image_size=hints.get("image_size", 224),
    )
    if fields["decoder_depth"]:
        dd = sd["encoder_to_decoder.weight"].shape[0] if "encoder_to_decoder.weight" in sd else 0
        fields.update(decoder_dim=dd, decoder_heads=_heads(dd, hints.get("decoder_heads"), "decoder", where),
                      decoder_mlp_dim=_shape0(sd, "decoder.blocks.0.mlp.fc1.weight", 4 * dd))
    fields["name"] = preset_name(dim, depth, patch)
    try:
        cfg = ModelConfig(**fields)
    except TubeletError as e:
        raise CheckpointError(f"{where}: cannot build the inferred architecture ({e})") from None
    sd = dict(sd)
    if cfg.learnable_pos_emb:
        pos = sd["encoder.pos_embed"]
        if pos.ndim == 2:
            pos = pos[None]
        cfg = _fit_pos_table(pos.shape[1], cfg, where)
        if pos.shape[1] == cfg.num_patches + 1:
            pos = pos[:, 1:]
        sd["encoder.pos_embed"] = pos
    return cfg, sd


def _shape0(sd: StateDict, key: str, default: int) -> int:
    return sd[key].shape[0] if key in sd else default


def from_official(obj: Any, where: str, hints: dict[str, Any]) -> tuple[ModelConfig, StateDict]:
    """A loaded official .pth (or bare state dict) → (inferred config, weights in tubelet's layout)."""
    return infer_config(to_tubelet_keys(state_dict_of(obj, where)), where, hints)


# OpenGVLab's VideoMAE v2 Hub repositories (custom transformers code, never run here): config.json holds the
# official VisionTransformer's constructor arguments under "model_config", and the weights are that model's
# fine-tune layout under a "model." prefix (model.patch_embed.*, model.blocks.*, model.fc_norm.*, model.head.*).
V2_HUB_PREFIX = "model."
V2_UNSUPPORTED = {"cos_attn": "cosine attention", "use_learnable_pos_emb": "a learnable position table declared "
                  "in the config"}


def from_hub_v2(model_config: dict[str, Any], sd: StateDict, where: str) -> tuple[ModelConfig, StateDict]:
    """A VideoMAE v2 Hub checkpoint (its config.json "model_config" and its weights) → (config, tubelet weights).

    The architecture is read off the weights as for official files, with the geometry, heads and norm eps taken
    from the config, and every width and depth the config states checked against the weights."""
    for key, what in V2_UNSUPPORTED.items():
        if model_config.get(key) and not (key == "use_learnable_pos_emb" and any("pos_embed" in k for k in sd)):
            raise CheckpointError(f"{where}: {what} is not supported")
    if not all(k.startswith(V2_HUB_PREFIX) for k in sd):
        raise CheckpointError(f"{where}: not the VideoMAE v2 Hub layout (weights outside {V2_HUB_PREFIX}*)")
    sd = {k[len(V2_HUB_PREFIX):]: v for k, v in sd.items()}
    hints = {"num_heads": model_config.get("num_heads"), "num_frames": int(model_config.get("num_frames", 16)),
             "image_size": int(model_config.get("img_size", 224))}
    cfg, sd = infer_config(to_tubelet_keys(sd), where, hints)
    stated = {"embed_dim": model_config.get("embed_dim"), "depth": model_config.get("depth"),
              "patch_size": model_config.get("patch_size"), "tubelet_size": model_config.get("tubelet_size"),
              "in_chans": model_config.get("in_chans")}
    for field, value in stated.items():
        if value is not None and int(value) != getattr(cfg, field):
            raise CheckpointError(f"{where}: config.json says {field}={value}, the weights have "
                                  f"{getattr(cfg, field)}")
    try:
        cfg = cfg.replace(norm_eps=float(model_config.get("layer_norm_eps", cfg.norm_eps)))
    except TubeletError as e:
        raise CheckpointError(f"{where}: {e}") from None
    return cfg, sd
