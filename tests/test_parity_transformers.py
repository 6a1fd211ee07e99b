"""Numerical parity with transformers' VideoMAE (the reference), through every checkpoint route.

Random-init small models, fp32, tolerance 1e-4: tubelet → transformers directory → transformers model, and
transformers save_pretrained → load_model → tubelet; official .pth files are built here by renaming the
transformers weights to the official key names, so the official reader is checked against the same oracle.
transformers' video layout is [B, T, C, H, W]; tubelet's is [B, C, T, H, W].
"""

import math

import pytest
import torch
from conftest import small_config

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    VideoMAEConfig,
    VideoMAEForPreTraining,
    VideoMAEForVideoClassification,
    VideoMAEModel,
)

from tubelet import CheckpointError, VideoMAE, load_model, save_model, tube_mask  # noqa: E402

TOL = 1e-4
GEOMETRY = dict(num_frames=4, image_size=32)


def hf_config(**kw):
    base = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=48, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=96, decoder_hidden_size=32, decoder_num_hidden_layers=2,
                decoder_num_attention_heads=2, decoder_intermediate_size=64, layer_norm_eps=1e-6,
                use_mean_pooling=False)
    base.update(kw)
    return VideoMAEConfig(**base)


def randomise(module, seed=0):
    """Weights far from the default init, so that every parameter matters: norms ≈ 1 ± 0.2, biases ±0.2,
    matrices with std 1/√fan_in."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            elif name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return module.eval()


def clip(batch=2, seed=1):
    return torch.randn(batch, 3, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


def mask_for(batch=2, ratio=0.75, seed=2):
    return tube_mask((2, 4, 4), ratio, batch, torch.Generator().manual_seed(seed))


def hf_in(video):
    return video.transpose(1, 2)  # [B, C, T, H, W] → [B, T, C, H, W]


def close(a, b):
    diff = (a - b).abs().max().item()
    assert a.shape == b.shape and diff <= TOL, f"max abs diff {diff:.3g}"
    return diff


def same_pretraining(ours, hf, ratio=0.75):
    """Both pretraining models give the same predictions and loss on one clip and mask."""
    video, mask = clip(), mask_for(ratio=ratio)
    with torch.no_grad():
        want = hf(hf_in(video), bool_masked_pos=mask)
        got = ours(video, mask=mask)
    close(got.pred, want.logits)
    close(got.loss, want.loss)


def hf_from_dir(cls, path):
    model, info = cls.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


def hf_round_trip(hf, tmp_path):
    hf.save_pretrained(tmp_path / "hf")
    return load_model(tmp_path / "hf").eval()


# ---- pretraining ------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_pix_loss", [True, False])
@pytest.mark.parametrize("eps,qv_bias", [(1e-6, True), (1e-12, False)])
def test_pretraining_from_transformers(tmp_path, norm_pix_loss, eps, qv_bias):
    hf = randomise(VideoMAEForPreTraining(hf_config(norm_pix_loss=norm_pix_loss, layer_norm_eps=eps,
                                                    qv_bias=qv_bias)))
    ours = hf_round_trip(hf, tmp_path)
    assert ours.config.norm_pix_loss == norm_pix_loss and ours.config.qkv_bias == qv_bias
    same_pretraining(ours, hf)


@pytest.mark.parametrize("norm_pix_loss,qkv_bias", [(True, True), (False, True), (True, False)])
def test_pretraining_to_transformers(tmp_path, norm_pix_loss, qkv_bias):
    ours = randomise(VideoMAE(small_config(norm_pix_loss=norm_pix_loss, qkv_bias=qkv_bias)))
    save_model(ours, tmp_path / "hf", format="transformers")
    hf = hf_from_dir(VideoMAEForPreTraining, tmp_path / "hf")
    assert hf.config.norm_pix_loss == norm_pix_loss and hf.config.qv_bias == qkv_bias
    same_pretraining(ours, hf, ratio=0.5)


def test_decoder_norm_eps_difference_is_within_tolerance(tmp_path):
    """transformers' decoder norm uses LayerNorm's default eps 1e-5, tubelet (like the official code) norm_eps;
    the gap it leaves is measured here against a transformers model patched to the same eps."""
    ours = randomise(VideoMAE(small_config()))
    save_model(ours, tmp_path / "hf", format="transformers")
    hf = hf_from_dir(VideoMAEForPreTraining, tmp_path / "hf")
    video, mask = clip(), mask_for()
    with torch.no_grad():
        as_is = hf(hf_in(video), bool_masked_pos=mask).logits
        hf.decoder.norm.eps = ours.config.norm_eps
        patched = hf(hf_in(video), bool_masked_pos=mask).logits
        got = ours(video, mask=mask).pred
    as_is_diff, patched_diff = close(got, as_is), close(got, patched)
    assert patched_diff < as_is_diff  # the eps accounts for part of the (tolerable) gap


# ---- encoder features -------------------------------------------------------------------------------

def test_encoder_features_from_transformers(tmp_path):
    hf = randomise(VideoMAEModel(hf_config()))
    ours = hf_round_trip(hf, tmp_path)
    assert not ours.config.is_pretraining and not ours.config.is_classifier
    video, mask = clip(), mask_for()
    with torch.no_grad():
        close(ours.encode(video), hf(hf_in(video)).last_hidden_state)
        close(ours.encode(video, mask), hf(hf_in(video), bool_masked_pos=mask).last_hidden_state)


def test_encoder_features_to_transformers(tmp_path):
    ours = randomise(VideoMAE(small_config(decoder_depth=0)))
    save_model(ours, tmp_path / "hf", format="transformers")
    hf = hf_from_dir(VideoMAEModel, tmp_path / "hf")
    video = clip()
    with torch.no_grad():
        close(ours.encode(video), hf(hf_in(video)).last_hidden_state)


def test_pretraining_encoder_matches_transformers_model_features(tmp_path):
    hf = randomise(VideoMAEForPreTraining(hf_config()))
    ours = hf_round_trip(hf, tmp_path)
    video = clip()
    with torch.no_grad():
        close(ours.encode(video), hf.videomae(hf_in(video)).last_hidden_state)


# ---- classification ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mean_pooling", [True, False])
def test_classification_from_transformers(tmp_path, mean_pooling):
    names = ["run", "jump", "swim"]
    hf = randomise(VideoMAEForVideoClassification(hf_config(
        use_mean_pooling=mean_pooling, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})))
    ours = hf_round_trip(hf, tmp_path)
    assert ours.config.num_classes == 3 and ours.config.class_names == names
    assert ours.config.use_mean_pooling == mean_pooling
    video = clip()
    with torch.no_grad():
        close(ours(video).logits, hf(hf_in(video)).logits)


@pytest.mark.parametrize("mean_pooling", [True, False])
def test_classification_to_transformers(tmp_path, mean_pooling):
    ours = randomise(VideoMAE(small_config(decoder_depth=0, num_classes=5, use_mean_pooling=mean_pooling)))
    save_model(ours, tmp_path / "hf", format="transformers")
    hf = hf_from_dir(VideoMAEForVideoClassification, tmp_path / "hf")
    video = clip()
    with torch.no_grad():
        close(ours(video).logits, hf(hf_in(video)).logits)
    # and back: transformers directory → tubelet gives the same model
    again = load_model(tmp_path / "hf")
    for k, v in ours.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


# ---- transformers file variants ---------------------------------------------------------------------

def _legacy(sd):
    return {k.replace("attention.attention.query.bias", "attention.attention.q_bias")
            .replace("attention.attention.value.bias", "attention.attention.v_bias"): v for k, v in sd.items()}


@pytest.mark.parametrize("weights", ["legacy-safetensors", "pytorch_model.bin", "key-bias"])
def test_transformers_directory_variants(tmp_path, weights):
    """Legacy q_bias/v_bias names, a pickled .bin, and a key projection with a bias (saved by some transformers 5
    releases): a random key bias shifts each query's scores alike, so the outputs still match."""
    from safetensors.torch import save_file

    hf = randomise(VideoMAEForPreTraining(hf_config()))
    hf.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").unlink()
    sd = {k: v.contiguous() for k, v in hf.state_dict().items()}
    if weights == "pytorch_model.bin":
        torch.save(sd, tmp_path / "hf" / "pytorch_model.bin")
    elif weights == "key-bias":
        g = torch.Generator().manual_seed(3)
        biases = {k.replace("key.weight", "key.bias"): torch.randn(v.shape[0], generator=g)
                  for k, v in sd.items() if k.endswith("attention.attention.key.weight")}
        assert len(biases) == 4
        save_file({**sd, **biases}, str(tmp_path / "hf" / "model.safetensors"))
    else:
        legacy = _legacy(sd)
        assert any(k.endswith("q_bias") for k in legacy)
        save_file(legacy, str(tmp_path / "hf" / "model.safetensors"))
    ours = load_model(tmp_path / "hf").eval()
    video, mask = clip(), mask_for()
    with torch.no_grad():
        close(ours(video, mask=mask).pred, hf(hf_in(video), bool_masked_pos=mask).logits)


def test_transformers_encoder_without_final_norm_is_refused(tmp_path):
    """A mean-pooling VideoMAEModel has no final encoder norm; tubelet's encoder always ends with one."""
    VideoMAEModel(hf_config(use_mean_pooling=True)).save_pretrained(tmp_path / "hf")
    with pytest.raises(CheckpointError, match="no final norm"):
        load_model(tmp_path / "hf")


# ---- official .pth files ----------------------------------------------------------------------------

OFFICIAL_PARTS = [  # transformers name → official name, applied in order
    ("embeddings.patch_embeddings.projection.", "patch_embed.proj."),
    ("decoder.decoder_layers.", "decoder.blocks."),
    ("encoder.layer.", "blocks."),
    ("layernorm_before.", "norm1."),
    ("layernorm_after.", "norm2."),
    ("attention.attention.query.bias", "attn.q_bias"),
    ("attention.attention.value.bias", "attn.v_bias"),
    ("attention.output.dense.", "attn.proj."),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
    ("classifier.", "head."),
]


def official_state_dict(hf, pretraining):
    """transformers weights renamed to the official layout: pretraining under encoder./decoder., fine-tuned
    encoder at the top level; query/key/value weights fused into attn.qkv.weight."""
    out, qkv = {}, {}
    for key, value in hf.state_dict().items():
        key = key.removeprefix("videomae.")
        if key.startswith("layernorm."):
            key = "norm." + key.removeprefix("layernorm.")
        for old, new in OFFICIAL_PARTS:
            key = key.replace(old, new)
        head, sep, part = key.rpartition(".attention.attention.")
        if sep:
            qkv.setdefault(head, {})[part] = value
            continue
        out[key] = value
    for head, parts in qkv.items():
        out[head + ".attn.qkv.weight"] = torch.cat([parts["query.weight"], parts["key.weight"], parts["value.weight"]])
    if pretraining:
        out = {("encoder." + k if k.startswith(("patch_embed.", "blocks.", "norm.")) else k): v for k, v in out.items()}
    return out


def official_width_config(**kw):
    """Widths from the official table so that heads are inferred: 192 → 3 heads, decoder 96 → 3 heads."""
    return hf_config(hidden_size=192, num_attention_heads=3, intermediate_size=384, decoder_hidden_size=96,
                     decoder_num_attention_heads=3, decoder_intermediate_size=192, **kw)


@pytest.mark.parametrize("variant", ["v1", "v2-compiled"])
def test_official_pretraining_checkpoint(tmp_path, variant):
    hf = randomise(VideoMAEForPreTraining(official_width_config()))
    sd = official_state_dict(hf, pretraining=True)
    if variant == "v2-compiled":
        sd = {"_orig_mod." + k: v for k, v in sd.items()}
    torch.save({"model": sd, "epoch": 3}, tmp_path / "checkpoint-799.pth")
    ours = load_model(tmp_path / "checkpoint-799.pth", **GEOMETRY).eval()
    c = ours.config
    assert (c.embed_dim, c.num_heads, c.mlp_dim, c.decoder_dim, c.decoder_heads, c.decoder_mlp_dim) == \
        (192, 3, 384, 96, 3, 192)
    same_pretraining(ours, hf)


@pytest.mark.parametrize("mean_pooling", [True, False])
def test_official_finetuned_checkpoint(tmp_path, mean_pooling):
    hf = randomise(VideoMAEForVideoClassification(official_width_config(use_mean_pooling=mean_pooling,
                                                                        num_labels=7)))
    sd = official_state_dict(hf, pretraining=False)
    assert ("fc_norm.weight" in sd) == mean_pooling and ("norm.weight" in sd) != mean_pooling
    torch.save({"module": sd}, tmp_path / "ft.pth")
    ours = load_model(tmp_path / "ft.pth", **GEOMETRY).eval()
    assert ours.config.num_classes == 7 and ours.config.use_mean_pooling == mean_pooling
    video = clip()
    with torch.no_grad():
        close(ours(video).logits, hf(hf_in(video)).logits)


def test_official_bare_state_dict_with_prefixes_layer_scale_and_learnable_pos(tmp_path):
    """A bare state dict with 'module.backbone.' prefixes, layer scale of ones and a learnable position table
    holding the sinusoid values: the same function as the fixed-table transformers model."""
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    hf = randomise(VideoMAEForVideoClassification(official_width_config(use_mean_pooling=True, num_labels=4)))
    sd = official_state_dict(hf, pretraining=False)
    for i in range(2):
        sd[f"blocks.{i}.gamma_1"] = torch.ones(192)
        sd[f"blocks.{i}.gamma_2"] = torch.ones(192)
    sd["pos_embed"] = get_sinusoid_encoding_table(32, 192)
    torch.save({"module." + "backbone." + k: v for k, v in sd.items()}, tmp_path / "bare.pth")
    ours = load_model(tmp_path / "bare.pth", **GEOMETRY).eval()
    assert ours.config.layer_scale_init > 0 and ours.config.learnable_pos_emb
    video = clip()
    with torch.no_grad():
        close(ours(video).logits, hf(hf_in(video)).logits)


def test_official_pretraining_table_with_extra_row(tmp_path):
    """Official pretraining encoders declare a learnable table of N + 1 rows; the leading row is not a position."""
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    hf = randomise(VideoMAEForPreTraining(official_width_config()))
    sd = official_state_dict(hf, pretraining=True)
    sd["encoder.pos_embed"] = torch.cat([torch.full((1, 1, 192), 9.0), get_sinusoid_encoding_table(32, 192)], 1)
    torch.save({"model": sd}, tmp_path / "pre.pth")
    ours = load_model(tmp_path / "pre.pth", **GEOMETRY).eval()
    assert ours.encoder.pos_embed.shape == (1, 32, 192)
    video, mask = clip(), mask_for()
    with torch.no_grad():
        close(ours(video, mask=mask).pred, hf(hf_in(video), bool_masked_pos=mask).logits)
