"""Unit tests of the downstream building blocks: label manifests, mixup/cutmix, RandAugment, layer-wise lr decay."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tubelet import preset
from tubelet.errors import TubeletError
from tubelet.model import VideoMAE
from tubelet.train.labels import (
    LabelSet,
    read_class_list,
    read_labels,
    split_train_val,
    write_class_list,
    write_manifest,
)
from tubelet.train.layer_decay import layer_decay_groups, layer_id
from tubelet.train.mixup import MixupCutmix, cutmix_box, smooth_one_hot, soft_cross_entropy
from tubelet.train.optim import WarmupCosine
from tubelet.train.randaugment import OPS, RandAugment

# ---- labels ---------------------------------------------------------------------------------------


def _files(tmp_path, names):
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    return names


def test_manifest_csv_with_header_names_and_class_list(tmp_path):
    _files(tmp_path, ["a.mp4", "b.mp4", "c.mp4"])
    (tmp_path / "m.csv").write_text("path,label,start_s,end_s\na.mp4,run,1.5,3\nb.mp4,jump,,\nc.mp4,run,,\n")
    labels = read_labels(tmp_path / "m.csv")
    assert labels.classes == ["jump", "run"]  # sorted distinct names without a class list
    assert labels.ids() == [1, 0, 1] and [e.label for e in labels.examples] == ["run", "jump", "run"]
    assert labels.examples[0].start_s == 1.5 and labels.examples[0].end_s == 3.0
    assert labels.examples[1].start_s is None
    (tmp_path / "classes.txt").write_text("run\njump\nsit\n")
    labels = read_labels(tmp_path / "m.csv", classes=read_class_list(tmp_path / "classes.txt"))
    assert labels.num_classes == 3 and labels.ids() == [0, 1, 0]
    assert labels.counts() == [2, 1, 0]


def test_manifest_official_space_separated_ids_and_root(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    _files(root, ["x.avi", "y.avi"])
    (tmp_path / "list.txt").write_text("x.avi 3\ny.avi 0\n")
    labels = read_labels(tmp_path / "list.txt", root=root)
    assert labels.classes == ["0", "1", "2", "3"] and labels.ids() == [3, 0]
    assert labels.examples[0].path == str(root / "x.avi")


def test_manifest_jsonl_ids_with_names_missing_files_reported(tmp_path):
    _files(tmp_path, ["a.mp4"])
    rows = [{"path": "a.mp4", "label": 1}, {"path": "gone.mp4", "label": "left"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = read_labels(tmp_path / "m.jsonl", classes=["left", "right"])
    assert labels.ids() == [1] and labels.examples[0].label == "right"
    assert labels.missing == [str(tmp_path / "gone.mp4")]


@pytest.mark.parametrize("text, match", [
    ("path,label\na.mp4,fly\n", "not in the class list"),
    ("path,label\n", "lists no videos"),
    ("path,label,split\na.mp4,run,holdout\n", "split 'holdout'"),
    ("path,label,start_s,end_s\na.mp4,run,3,1\n", "not after start_s"),
    ("a.mp4\n", "without a label"),
    ("path,label\ngone.mp4,run\n", "none of the 1 listed files exist"),
])
def test_manifest_errors_name_the_file(tmp_path, text, match):
    _files(tmp_path, ["a.mp4"])
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(TubeletError, match=match) as e:
        read_labels(tmp_path / "m.csv", classes=["run", "jump"])
    assert "m.csv" in str(e.value)


def test_class_list_formats(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"b": 1, "a": 0}))
    assert read_class_list(tmp_path / "c.json") == ["a", "b"]
    (tmp_path / "l.json").write_text(json.dumps(["x", "y"]))
    assert read_class_list(tmp_path / "l.json") == ["x", "y"]
    write_class_list(["p", "q"], tmp_path / "c.txt")
    assert read_class_list(tmp_path / "c.txt") == ["p", "q"]
    (tmp_path / "dup.txt").write_text("a\na\n")
    with pytest.raises(TubeletError, match="listed twice"):
        read_class_list(tmp_path / "dup.txt")
    (tmp_path / "gap.json").write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(TubeletError, match="class ids"):
        read_class_list(tmp_path / "gap.json")


def test_stratified_split_is_deterministic_and_covers_every_class(tmp_path):
    names = _files(tmp_path, [f"{i}.mp4" for i in range(30)])
    rows = "".join(f"{n},{'abc'[i % 3]}\n" for i, n in enumerate(names))
    (tmp_path / "m.csv").write_text("path,label\n" + rows)
    labels = read_labels(tmp_path / "m.csv")
    train, val = split_train_val(labels, 0.2, seed=1)
    assert len(val.examples) == 6 and len(train.examples) == 24
    assert val.counts() == [2, 2, 2]
    assert {e.path for e in train.examples}.isdisjoint(e.path for e in val.examples)
    again, _ = split_train_val(labels, 0.2, seed=1)
    assert [e.path for e in again.examples] == [e.path for e in train.examples]
    other, _ = split_train_val(labels, 0.2, seed=2)
    assert [e.path for e in other.examples] != [e.path for e in train.examples]


def test_split_column_wins_and_manifest_round_trips(tmp_path):
    _files(tmp_path, ["a.mp4", "b.mp4", "c.mp4"])
    (tmp_path / "m.csv").write_text("path,label,split\na.mp4,x,train\nb.mp4,y,val\nc.mp4,x,test\n")
    labels = read_labels(tmp_path / "m.csv")
    train, val = split_train_val(labels, 0.5)
    assert [e.path.endswith("a.mp4") for e in train.examples] == [True]
    assert [e.path.endswith("b.mp4") for e in val.examples] == [True]
    write_manifest(labels.examples, tmp_path / "out.csv")
    back = read_labels(tmp_path / "out.csv", classes=labels.classes)
    assert back.examples == labels.examples
    assert isinstance(back, LabelSet)


# ---- mixup / cutmix -------------------------------------------------------------------------------


def test_smooth_one_hot_rows_sum_to_one():
    y = smooth_one_hot(torch.tensor([0, 2]), 4, 0.1)
    assert torch.allclose(y.sum(1), torch.ones(2))
    assert y[0, 0] == pytest.approx(0.9 + 0.025) and y[0, 1] == pytest.approx(0.025)


def test_cutmix_box_is_identical_across_frames_and_targets_match_area():
    torch.manual_seed(0)
    mix = MixupCutmix(num_classes=3, mixup_alpha=0.0, cutmix_alpha=1.0, smoothing=0.0)
    B, T, H, W = 4, 6, 16, 20
    video = torch.arange(B, dtype=torch.float32).view(B, 1, 1, 1, 1).expand(B, 3, T, H, W).clone()
    labels = torch.tensor([0, 1, 2, 0])
    out, targets = mix(video, labels)
    for b in range(B):
        from_partner = out[b, 0] == B - 1 - b  # [T, H, W]: where clip b now shows its mirror partner
        assert (from_partner == from_partner[0]).all()  # the same box in every frame
        area = from_partner[0].float().mean().item()
        partner = labels[B - 1 - b]
        if partner != labels[b]:
            assert targets[b, partner].item() == pytest.approx(area, abs=1e-6)
        assert targets[b].sum().item() == pytest.approx(1.0)


def test_mixup_blends_clips_and_labels_with_one_weight():
    torch.manual_seed(3)
    mix = MixupCutmix(num_classes=2, mixup_alpha=0.8, cutmix_alpha=0.0, smoothing=0.0)
    video = torch.stack([torch.zeros(3, 2, 4, 4), torch.ones(3, 2, 4, 4)])
    out, targets = mix(video.clone(), torch.tensor([0, 1]))
    lam = targets[0, 0].item()
    assert torch.allclose(out[0], torch.full_like(out[0], 1 - lam))  # clip 0 is zeros mixed with ones
    assert torch.allclose(out[1], torch.full_like(out[1], lam))
    assert 0 < lam < 1


def test_no_mixing_gives_smoothed_labels_and_unchanged_video():
    mix = MixupCutmix(num_classes=5, prob=0.0, smoothing=0.1)
    video = torch.randn(2, 3, 2, 8, 8)
    out, targets = mix(video.clone(), torch.tensor([1, 4]))
    assert torch.equal(out, video)
    assert torch.allclose(targets, smooth_one_hot(torch.tensor([1, 4]), 5, 0.1))
    with pytest.raises(TubeletError):
        mix(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))


def test_cutmix_box_area_and_soft_ce():
    torch.manual_seed(0)
    y0, y1, x0, x1 = cutmix_box(100, 100, 0.75)
    assert 0 <= y0 <= y1 <= 100 and 0 <= x0 <= x1 <= 100
    logits = torch.tensor([[10.0, -10.0]])
    assert soft_cross_entropy(logits, torch.tensor([[1.0, 0.0]])).item() < 1e-6
    assert soft_cross_entropy(logits, torch.tensor([[0.5, 0.5]])).item() == pytest.approx(10.0, abs=1e-3)


# ---- RandAugment ----------------------------------------------------------------------------------


def _clip(T=4, H=24, W=32):
    g = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (H, W, 3), generator=g, dtype=torch.uint8)
    return frame.expand(T, H, W, 3).contiguous()  # identical frames: any per-frame difference is a bug


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_keeps_shape_dtype_and_treats_frames_alike(op):
    torch.manual_seed(1)
    aug = RandAugment(num_ops=1, magnitude=9, magnitude_std=0, prob=1.0, ops=(op,))
    clip = _clip()
    out = aug(clip)
    assert out.dtype == torch.uint8 and out.shape == clip.shape
    assert (out == out[0]).all()
    if op not in ("auto_contrast", "equalize"):  # the random frame already spans the full range
        assert not torch.equal(out, clip), op


def test_randaugment_identity_settings_and_bad_input():
    clip = _clip()
    assert torch.equal(RandAugment(num_ops=0)(clip), clip)
    assert torch.equal(RandAugment(num_ops=3, prob=0.0)(clip), clip)
    with pytest.raises(TubeletError, match="uint8"):
        RandAugment()(clip.float())
    with pytest.raises(TubeletError, match="unknown RandAugment op"):
        RandAugment(ops=("blur",))


def test_translate_moves_content_by_the_magnitude():
    clip = torch.zeros(2, 20, 40, 3, dtype=torch.uint8)
    clip[:, 8:12, 18:22] = 255
    torch.manual_seed(0)
    out = RandAugment(num_ops=1, magnitude=10, magnitude_std=0, prob=1.0, ops=("translate_x",))(clip)
    cols = (out[0, 10, :, 0] == 255).nonzero().flatten()
    assert len(cols) == 4 and abs(cols[0].item() - 18) == 18  # 0.45 × 40 = 18 pixels, either direction
    assert torch.equal(out[0], out[1])


# ---- layer-wise lr decay --------------------------------------------------------------------------


def test_layer_ids_and_scales_follow_the_official_recipe():
    cfg = preset("vit_tiny", depth=3, decoder_depth=0, num_classes=5, num_frames=4, image_size=32,
                 learnable_pos_emb=True)
    model = VideoMAE(cfg)
    assert layer_id("encoder.patch_embed.proj.weight", 3) == 0
    assert layer_id("encoder.pos_embed", 3) == 0
    assert layer_id("encoder.blocks.2.mlp.fc1.weight", 3) == 3
    assert layer_id("head.weight", 3) == 4 and layer_id("fc_norm.bias", 3) == 4
    groups = layer_decay_groups(model, 0.05, 0.75, cfg.depth)
    n = sum(len(g["params"]) for g in groups)
    assert n == len(list(model.parameters()))
    by_layer = {(g["layer_id"], g["weight_decay"] > 0): g for g in groups}
    assert by_layer[(4, True)]["lr_scale"] == 1.0
    assert by_layer[(0, True)]["lr_scale"] == pytest.approx(0.75 ** 4)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["encoder.pos_embed"]) in no_decay and id(named["head.bias"]) in no_decay
    assert id(named["head.weight"]) not in no_decay


def test_scaled_schedule_multiplies_each_group():
    model = VideoMAE(preset("vit_tiny", depth=2, decoder_depth=0, num_classes=3, num_frames=4, image_size=32))
    groups = layer_decay_groups(model, 0.05, 0.5, 2)
    opt = torch.optim.AdamW(groups, lr=1.0)
    sched = WarmupCosine(opt, total_steps=10, warmup_steps=0, peak=1e-3, start=0.0, final=0.0)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(1e-3 * g["lr_scale"])
    for _ in range(5):
        opt.step()
        sched.step()
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(0.5e-3 * g["lr_scale"])
    assert math.isclose(max(g["lr_scale"] for g in groups), 1.0)
    again = WarmupCosine(torch.optim.AdamW(layer_decay_groups(model, 0.05, 0.5, 2), lr=1.0), total_steps=10,
                               warmup_steps=0, peak=1e-3, start=0.0, final=0.0)
    again.load_state_dict(sched.state_dict())  # resume: each group back at its own scaled lr
    for g in again.optimizer.param_groups:
        assert g["lr"] == pytest.approx(0.5e-3 * g["lr_scale"])


def test_randaugment_is_fixed_by_its_generator():
    clip, aug = _clip(), RandAugment(num_ops=4, magnitude=9)
    a = aug(clip, torch.Generator().manual_seed(5))
    b = aug(clip, torch.Generator().manual_seed(5))
    outs = {aug(clip, torch.Generator().manual_seed(s)).sum().item() for s in range(6)}
    assert torch.equal(a, b) and len(outs) > 1
