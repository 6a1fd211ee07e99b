"""Checkpoint I/O: own format round trips, overrides, official and transformers files, malformed input."""

import json

import pytest
import torch

import tubelet
from tubelet import CheckpointError, ModelConfig, VideoMAE, load_model, save_model, tube_mask
from tubelet.model.vit import interpolate_pos_embed


def small_cfg(**kw):
    base = dict(num_frames=4, image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, mlp_dim=96,
                decoder_dim=32, decoder_depth=1, decoder_heads=2, decoder_mlp_dim=64)
    base.update(kw)
    return ModelConfig(**base)


def video(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, cfg.in_chans, cfg.num_frames, *cfg.image_size, generator=g)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---- own format ------------------------------------------------------------------------------------

def test_round_trip_pretrain_model(tmp_path):
    cfg = small_cfg(layer_scale_init=0.1, learnable_pos_emb=True)
    model = VideoMAE(cfg)
    out = save_model(model, tmp_path / "ckpt")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((out / "config.json").read_text())
    assert meta["format"] == "tubelet" and meta["format_version"] == 1 and meta["embed_dim"] == 48
    loaded = load_model(out)
    assert loaded.config == cfg
    same_weights(model, loaded)
    x = video(cfg)
    mask = tube_mask(cfg.grid, 0.75, 2, torch.Generator().manual_seed(1))
    model.eval(), loaded.eval()
    assert torch.equal(model(x, mask).loss, loaded(x, mask).loss)


def test_round_trip_classifier_keeps_class_names(tmp_path):
    cfg = small_cfg(decoder_depth=0, num_classes=3, class_names=["a", "b", "c"])
    model = VideoMAE(cfg)
    loaded = load_model(save_model(model, tmp_path / "c"))
    assert loaded.config.class_names == ["a", "b", "c"]
    same_weights(model, loaded)


def test_save_leaves_no_temp_files_and_overwrites_in_place(tmp_path):
    first, second = VideoMAE(small_cfg()), VideoMAE(small_cfg())
    save_model(first, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "trainer.pt").write_bytes(b"x")  # a trainer state beside the model survives
    save_model(second, tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert (tmp_path / "ckpt" / "trainer.pt").exists()
    same_weights(second, load_model(tmp_path / "ckpt"))


def test_save_refuses_unknown_format_and_file_target(tmp_path):
    model = VideoMAE(small_cfg())
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        save_model(model, tmp_path / "x", format="onnx")
    (tmp_path / "file").write_text("hi")
    with pytest.raises(CheckpointError, match="not a directory"):
        save_model(model, tmp_path / "file")


def test_preset_name_builds_random_model_with_overrides():
    model = load_model("vit_tiny", num_frames=4, image_size=32, depth=1, decoder_depth=1)
    assert model.config.name == "vit_tiny" and model.config.grid == (2, 2, 2)
    assert model.config.embed_dim == 192 and model.config.is_pretraining
    assert tubelet.load_model is load_model


def test_classifier_from_pretrain_checkpoint_drops_decoder_and_encoder_norm(tmp_path):
    pre = VideoMAE(small_cfg())
    save_model(pre, tmp_path / "pre")
    clf = load_model(tmp_path / "pre", num_classes=5)
    assert clf.config.is_classifier and not clf.config.is_pretraining
    keys = clf.state_dict().keys()
    assert not any(k.startswith(("decoder.", "encoder_to_decoder", "mask_token", "encoder.norm.")) for k in keys)
    for k, v in clf.state_dict().items():
        if k.startswith("encoder."):
            assert torch.equal(v, pre.state_dict()[k]), k
    # without mean pooling the encoder norm is kept and loaded
    clf_cls = load_model(tmp_path / "pre", num_classes=5, use_mean_pooling=False)
    assert torch.equal(clf_cls.encoder.norm.weight, pre.encoder.norm.weight)


def test_changing_num_classes_gives_fresh_head(tmp_path):
    clf = VideoMAE(small_cfg(decoder_depth=0, num_classes=3, class_names=["a", "b", "c"]))
    save_model(clf, tmp_path / "c")
    other = load_model(tmp_path / "c", num_classes=7)
    assert other.head.weight.shape == (7, 48) and other.config.class_names == []
    assert torch.equal(other.fc_norm.weight, clf.fc_norm.weight)  # only the head is new
    assert torch.equal(other.encoder.blocks[0].mlp.fc1.weight, clf.encoder.blocks[0].mlp.fc1.weight)


def test_geometry_override_recomputes_sinusoid_and_resamples_learnable_pos(tmp_path):
    fixed = VideoMAE(small_cfg())
    save_model(fixed, tmp_path / "fixed")
    bigger = load_model(tmp_path / "fixed", num_frames=8, image_size=48)
    assert bigger.config.grid == (4, 6, 6) and bigger.encoder.pos_embed.shape == (1, 144, 48)
    bigger.eval()
    assert bigger.encode(video(bigger.config, 1)).shape == (1, 144, 48)

    learn = VideoMAE(small_cfg(learnable_pos_emb=True))
    save_model(learn, tmp_path / "learn")
    moved = load_model(tmp_path / "learn", num_frames=8, image_size=48)
    want = interpolate_pos_embed(learn.encoder.pos_embed.detach(), (2, 4, 4), (4, 6, 6))
    assert torch.equal(moved.encoder.pos_embed.detach(), want)
