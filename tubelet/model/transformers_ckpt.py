"""transformers' VideoMAE layout: config translation and key mapping, both ways (pure functions, no file I/O).

transformers itself is never imported. Reads VideoMAEForPreTraining, VideoMAEModel and
VideoMAEForVideoClassification weights with either the legacy q_bias/v_bias keys or the newer
query.bias/value.bias; writes the legacy names, which every transformers version loads (newer ones rename
them on load). Some transformers 5 releases (5.17 among them) gave the key projection a bias too and save it: it is
dropped on load, exactly, since a key bias b adds q·b to all of a query's scores alike, which softmax ignores.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from tubelet.config import ModelConfig
from tubelet.errors import CheckpointError, TubeletError
from tubelet.model.official_ckpt import preset_name

StateDict = dict[str, Tensor]

PRETRAINING, ENCODER, CLASSIFICATION = "VideoMAEForPreTraining", "VideoMAEModel", "VideoMAEForVideoClassification"
QKV = ("query", "key", "value")
# (tubelet name, transformers name) inside one transformer block
BLOCK_PARTS = [
    ("norm1.", "layernorm_before."),
    ("attn.q_bias", "attention.attention.q_bias"),
    ("attn.v_bias", "attention.attention.v_bias"),
    ("attn.proj.", "attention.output.dense."),
    ("norm2.", "layernorm_after."),
    ("mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "output.dense."),
]
NEW_BIAS_NAMES = {"query.bias": "q_bias", "value.bias": "v_bias"}


def _top_parts(base: str) -> list[tuple[str, str]]:
    """(tubelet prefix, transformers prefix) outside the blocks; `base` is 'videomae.' or '' (VideoMAEModel)."""
    return [
        ("encoder.patch_embed.proj.", base + "embeddings.patch_embeddings.projection."),
        ("encoder.norm.", base + "layernorm."),
        ("decoder.norm.", "decoder.norm."),
        ("decoder.head.", "decoder.head."),
        ("encoder_to_decoder.", "encoder_to_decoder."),
        ("mask_token", "mask_token"),
        ("fc_norm.", "fc_norm."),
        ("head.", "classifier."),
    ]


def hf_names(key: str, base: str) -> list[str]:
    """The transformers key(s) holding tubelet weight `key`: qkv.weight → query, key and value weights."""
    m = re.match(r"(en|de)coder\.blocks\.(\d+)\.(.+)$", key)
    if m:
        stem = f"{base}encoder.layer.{m[2]}." if m[1] == "en" else f"decoder.decoder_layers.{m[2]}."
        if m[3] == "attn.qkv.weight":
            return [f"{stem}attention.attention.{n}.weight" for n in QKV]
        parts, rest = BLOCK_PARTS, m[3]
    else:
        parts, rest, stem = _top_parts(base), key, ""
    for ours, theirs in parts:
        if rest.startswith(ours):
            return [stem + theirs + rest[len(ours):]]
    raise CheckpointError(f"weight {key} has no transformers equivalent (transformers' VideoMAE has no layer scale "
                          f"and no learnable position table)")


def kind_of(model_cfg: ModelConfig) -> str:
    if model_cfg.is_pretraining:
        return PRETRAINING
    return CLASSIFICATION if model_cfg.is_classifier else ENCODER


def to_transformers(cfg: ModelConfig, sd: StateDict) -> tuple[dict[str, Any], StateDict]:
    """tubelet config + weights → (transformers config.json dict, transformers weights)."""
    if cfg.norm_after_pool and not cfg.is_classifier:
        raise CheckpointError("transformers' VideoMAEModel has no norm after pooling (a VideoMAE v2 Hub encoder); "
                              "keep it in tubelet's format")
    kind = kind_of(cfg)
    base = "" if kind == ENCODER else "videomae."
    out: StateDict = {}
    for key, value in sd.items():
        names = hf_names(key, base)
        for name, part in zip(names, value.chunk(len(names)), strict=True):
            out[name] = part.contiguous()
    h, w = cfg.image_size
    meta: dict[str, Any] = {
        "architectures": [kind], "model_type": "videomae",
        "image_size": h if h == w else [h, w], "patch_size": cfg.patch_size, "num_channels": cfg.in_chans,
        "num_frames": cfg.num_frames, "tubelet_size": cfg.tubelet_size,
        "hidden_size": cfg.embed_dim, "num_hidden_layers": cfg.depth, "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.mlp_dim, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02, "layer_norm_eps": cfg.norm_eps,
        "qkv_bias": cfg.qkv_bias,  # the constructor argument in every transformers version
        # transformers drops the final encoder norm exactly when it mean-pools
        "use_mean_pooling": cfg.is_classifier and cfg.use_mean_pooling,
        "norm_pix_loss": cfg.norm_pix_loss, "torch_dtype": "float32",
    }
    if cfg.is_pretraining:
        meta.update(decoder_hidden_size=cfg.decoder_dim, decoder_num_hidden_layers=cfg.decoder_depth,
                    decoder_num_attention_heads=cfg.decoder_heads, decoder_intermediate_size=cfg.decoder_mlp_dim)
    if cfg.is_classifier:
        names = cfg.class_names or [f"LABEL_{i}" for i in range(cfg.num_classes)]
        meta.update(id2label={str(i): n for i, n in enumerate(names)}, label2id={n: i for i, n in enumerate(names)})
    return meta, out


def _normalise_bias_names(sd: StateDict) -> StateDict:
    """Newer q/v bias names → the legacy ones; a key bias dropped (it changes no attention output)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("attention.attention.key.bias"):
            continue
        for new, old in NEW_BIAS_NAMES.items():
            if k.endswith("attention.attention." + new):
                k = k[: -len(new)] + old
        out[k] = v
    return out


def _square(value: Any, what: str, where: str) -> int:
    if isinstance(value, list | tuple):
        if len(set(value)) != 1:
            raise CheckpointError(f"{where}: non-square {what} {value} is not supported")
        value = value[0]
    return int(value)


def _class_names(meta: dict[str, Any]) -> list[str]:
    id2label = meta.get("id2label") or {}
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    return [] if all(n == f"LABEL_{i}" for i, n in enumerate(names)) else names


def config_from_transformers(meta: dict[str, Any], sd: StateDict, where: str) -> ModelConfig:
    """transformers config.json dict (+ weights, which decide the model kind) → ModelConfig."""
    if meta.get("hidden_act", "gelu") != "gelu":
        raise CheckpointError(f"{where}: activation {meta['hidden_act']!r} is not supported (only gelu)")
    sd_keys = set(sd)
    pretraining = "decoder.head.weight" in sd_keys
    classifier = "classifier.weight" in sd_keys
    has_norm = any(k.endswith("layernorm.weight") and "layer." not in k for k in sd_keys)
    if not classifier and not has_norm:
        raise CheckpointError(f"{where}: the encoder has no final norm (use_mean_pooling=true), which tubelet's "
                              f"pretraining and encoder models always have")
    image = meta.get("image_size", 224)
    fields: dict[str, Any] = dict(
        num_frames=int(meta.get("num_frames", 16)), tubelet_size=int(meta.get("tubelet_size", 2)),
        image_size=tuple(image) if isinstance(image, list | tuple) else int(image),
        patch_size=_square(meta.get("patch_size", 16), "patch_size", where),
        in_chans=int(meta.get("num_channels", 3)),
        embed_dim=int(meta.get("hidden_size", 768)), depth=int(meta.get("num_hidden_layers", 12)),
        num_heads=int(meta.get("num_attention_heads", 12)), mlp_dim=int(meta.get("intermediate_size", 3072)),
        qkv_bias=bool(meta.get("qv_bias", meta.get("qkv_bias", True))),
        norm_eps=float(meta.get("layer_norm_eps", 1e-12)),
        norm_pix_loss=bool(meta.get("norm_pix_loss", True)),
        use_mean_pooling=bool(meta.get("use_mean_pooling", True)) if classifier else True,
        decoder_depth=int(meta.get("decoder_num_hidden_layers", 4)) if pretraining else 0,
        decoder_dim=int(meta.get("decoder_hidden_size", 384)),
        decoder_heads=int(meta.get("decoder_num_attention_heads", 6)),
        decoder_mlp_dim=int(meta.get("decoder_intermediate_size", 1536)),
    )
    if classifier:
        fields["num_classes"] = int(sd["classifier.weight"].shape[0])
        names = _class_names(meta)
        fields["class_names"] = names if len(names) == fields["num_classes"] else []
    fields["name"] = preset_name(fields["embed_dim"], fields["depth"], fields["patch_size"])
    try:
        return ModelConfig(**fields)
    except (TubeletError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: unusable transformers config ({e})") from None


def from_transformers(sd: StateDict, our_keys: list[str], where: str) -> StateDict:
    """transformers weights → tubelet weights for a model whose state-dict keys are `our_keys`."""
    sd = _normalise_bias_names(sd)
    base = "videomae." if any(k.startswith("videomae.") for k in sd) else ""
    out: StateDict = {}
    used: set[str] = set()
    for key in our_keys:
        names = hf_names(key, base)
        absent = [n for n in names if n not in sd]
        if absent:
            raise CheckpointError(f"{where}: missing transformers key {absent[0]}")
        try:
            out[key] = torch.cat([sd[n] for n in names]) if len(names) > 1 else sd[names[0]]
        except RuntimeError:
            raise CheckpointError(f"{where}: {', '.join(names)} have mismatched shapes") from None
        used.update(names)
    extra = sorted(set(sd) - used)
    if extra:
        raise CheckpointError(f"{where}: unexpected transformers key(s) {', '.join(extra[:4])}")
    return out
