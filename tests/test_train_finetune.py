"""Fine-tuning pieces: config resolution, the classifier built from a pretraining checkpoint (head, position table
resampled to a new geometry), the augmented training dataset, and labels read off class folders."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import BUNDLED_VIDEOS, run_cli

from tubelet import VideoMAE, preset, save_model
from tubelet.data.synthetic import write_synthetic_videos
from tubelet.errors import TubeletError
from tubelet.train.finetune import FinetuneConfig, build_classifier, resolve_config, train_dataset, train_val_labels
from tubelet.train.labels import read_labels


def test_config_defaults_are_the_recipe_and_overrides_apply(tmp_path):
    cfg = FinetuneConfig()
    assert (cfg.betas, cfg.layer_decay, cfg.smoothing, cfg.mixup, cfg.cutmix) == ((0.9, 0.999), 0.75, 0.1, 0.8, 1.0)
    assert (cfg.drop_path, cfg.randaug_ops, cfg.randaug_magnitude, cfg.weight_decay) == (0.1, 4, 7.0, 0.05)
    (tmp_path / "ft.toml").write_text('base_lr = 5e-4\n[model]\nnum_frames = 8\n')
    cfg = resolve_config({"steps": 3, "batch_size": None}, tmp_path / "ft.toml",
                         ["layer_decay=0.9", "model.image_size=112", "flip=false"])
    assert cfg.base_lr == 5e-4 and cfg.steps == 3 and cfg.batch_size == 8 and cfg.layer_decay == 0.9
    assert cfg.model == {"num_frames": 8, "image_size": 112} and cfg.flip is False
    for bad, match in [(["lr=1"], "unknown fine-tuning config"), (["layer_decay=0"], "layer_decay"),
                       (["steps=2", "epochs=1"], "steps or epochs"), (["model.depht=2"], "unknown model setting"),
                       (["batch_size=two"], "batch_size")]:
        with pytest.raises(TubeletError, match=match):
            resolve_config({}, None, bad)


def test_classifier_from_pretraining_checkpoint_resamples_positions(tmp_path):
    torch.manual_seed(0)
    pre = VideoMAE(preset("vit_tiny", depth=2, num_frames=4, image_size=32, decoder_depth=1,
                          learnable_pos_emb=True))
    save_model(pre, tmp_path / "pre")
    cfg = FinetuneConfig(init=str(tmp_path / "pre"), model={"num_frames": 8}, drop_path=0.2)
    model = build_classifier(cfg, ["a", "b", "c"], None)
    c = model.config
    assert c.num_classes == 3 and c.class_names == ["a", "b", "c"] and c.decoder_depth == 0
    assert c.drop_path == 0.2 and c.num_frames == 8
    assert model.encoder.pos_embed.shape == (1, 4 * 2 * 2, 192)  # 2 → 4 tubelets in time
    assert torch.equal(model.encoder.blocks[1].mlp.fc2.weight, pre.encoder.blocks[1].mlp.fc2.weight)
    with pytest.raises(TubeletError, match="--init"):
        build_classifier(FinetuneConfig(), ["a"], None)


def test_training_dataset_augments_every_frame_alike_and_is_seeded(tmp_path):
    write_synthetic_videos(tmp_path / "v", 4, num_frames=12, size=32, seed=0)
    cfg = FinetuneConfig(data=str(tmp_path / "v"), labels=str(tmp_path / "v" / "labels.csv"), stride=2,
                         val_frac=0.0, randaug_magnitude=9)
    train, val = train_val_labels(cfg)
    assert len(train.examples) == 4 and not val.examples and train.classes == ["down", "left", "right", "up"]
    model = VideoMAE(preset("vit_tiny", depth=1, num_frames=4, image_size=32, decoder_depth=0, num_classes=4))
    ds = train_dataset(cfg, train, model)
    a, b = ds[(0, 0)], ds[(0, 0)]
    assert a["video"].shape == (1, 3, 4, 32, 32) and torch.equal(a["video"], b["video"])
    assert not torch.equal(a["video"], ds[(0, 1)]["video"])  # another epoch, another augmentation
    plain = train_dataset(cfg.__class__(**{**cfg.to_dict(), "randaug_ops": 0}), train, model)
    assert plain.augment is None and plain[(0, 0)]["video"].shape == a["video"].shape


def test_labels_from_class_folders(tmp_path):
    write_synthetic_videos(tmp_path / "v", 4, num_frames=8, size=16, seed=0)
    (tmp_path / "v" / "labels.csv").unlink()
    labels = read_labels(str(tmp_path / "v"))
    assert labels.classes == ["down", "left", "right", "up"] and labels.counts() == [1, 1, 1, 1]
    with pytest.raises(TubeletError, match="not in the class list"):
        read_labels(str(tmp_path / "v"), classes=["left", "right"])


def test_default_settings_fine_tune_a_folder_of_three_short_clips(tmp_path, monkeypatch, capsys):
    """Three labelled clips (class sub-folders) and the default batch of 8: repeated sampling fills the step."""
    for label, name in (("plant", "houseplant_static_short.mp4"), ("flower", "flower_timelapse.mp4"),
                        ("film", "bw_film_dialogue.mp4")):
        (tmp_path / "clips" / label).mkdir(parents=True)
        (tmp_path / "clips" / label / name).symlink_to(BUNDLED_VIDEOS / name)
    code, out, err = run_cli(monkeypatch, capsys, "finetune", tmp_path / "clips", "--init", "vit_tiny", "--out",
                             tmp_path / "run", "--epochs", "1", "--json", "--set", "model.num_frames=4",
                             "--set", "model.image_size=32", "--set", "model.depth=2")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["finished"] and summary["step"] == 1 and summary["num_classes"] == 3
    assert (tmp_path / "run" / "classes.txt").read_text().split() == ["film", "flower", "plant"]
