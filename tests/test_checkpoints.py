"""Checkpoint I/O: own format round trips, overrides, official and transformers files, malformed input."""

import json

import pytest
import torch
from conftest import run_cli, small_config

import tubelet
from tubelet import CheckpointError, VideoMAE, load_model, save_model, tube_mask
from tubelet.model.vit import interpolate_pos_embed


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
    cfg = small_config(layer_scale_init=0.1, learnable_pos_emb=True)
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
    cfg = small_config(decoder_depth=0, num_classes=3, class_names=["a", "b", "c"])
    model = VideoMAE(cfg)
    loaded = load_model(save_model(model, tmp_path / "c"))
    assert loaded.config.class_names == ["a", "b", "c"]
    same_weights(model, loaded)


def test_save_leaves_no_temp_files_and_overwrites_in_place(tmp_path):
    first, second = VideoMAE(small_config()), VideoMAE(small_config())
    save_model(first, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "trainer.pt").write_bytes(b"x")  # a trainer state beside the model survives
    save_model(second, tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert (tmp_path / "ckpt" / "trainer.pt").exists()
    same_weights(second, load_model(tmp_path / "ckpt"))


def test_save_refuses_unknown_format_and_file_target(tmp_path):
    model = VideoMAE(small_config())
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
    pre = VideoMAE(small_config())
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
    clf = VideoMAE(small_config(decoder_depth=0, num_classes=3, class_names=["a", "b", "c"]))
    save_model(clf, tmp_path / "c")
    other = load_model(tmp_path / "c", num_classes=7)
    assert other.head.weight.shape == (7, 48) and other.config.class_names == []
    assert torch.equal(other.fc_norm.weight, clf.fc_norm.weight)  # only the head is new
    assert torch.equal(other.encoder.blocks[0].mlp.fc1.weight, clf.encoder.blocks[0].mlp.fc1.weight)


def test_geometry_override_recomputes_sinusoid_and_resamples_learnable_pos(tmp_path):
    fixed = VideoMAE(small_config())
    save_model(fixed, tmp_path / "fixed")
    bigger = load_model(tmp_path / "fixed", num_frames=8, image_size=48)
    assert bigger.config.grid == (4, 6, 6) and bigger.encoder.pos_embed.shape == (1, 144, 48)
    bigger.eval()
    assert bigger.encode(video(bigger.config, 1)).shape == (1, 144, 48)

    learn = VideoMAE(small_config(learnable_pos_emb=True))
    save_model(learn, tmp_path / "learn")
    moved = load_model(tmp_path / "learn", num_frames=8, image_size=48)
    want = interpolate_pos_embed(learn.encoder.pos_embed.detach(), (2, 4, 4), (4, 6, 6))
    assert torch.equal(moved.encoder.pos_embed.detach(), want)


# ---- official and transformers specifics --------------------------------------------------------------

def official_pretrain_sd(model):
    """tubelet's pretraining keys are the official pretraining keys."""
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_official_checkpoint_with_training_state_and_namespace(tmp_path):
    import argparse

    model = VideoMAE(small_config(embed_dim=192, num_heads=3, mlp_dim=384, decoder_dim=96, decoder_heads=3,
                               decoder_mlp_dim=192))
    torch.save({"model": official_pretrain_sd(model), "epoch": 799, "args": argparse.Namespace(lr=1e-3, model="x"),
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}, tmp_path / "checkpoint-799.pth")
    loaded = load_model(tmp_path / "checkpoint-799.pth", num_frames=4, image_size=32)
    same_weights(model, loaded)
    assert loaded.config.decoder_heads == 3 and loaded.config.norm_eps == 1e-6


def test_official_default_geometry_and_preset_name(tmp_path):
    pre = VideoMAE(small_config(embed_dim=192, num_heads=3, mlp_dim=768, depth=12, patch_size=16))
    sd = {k.removeprefix("encoder."): v for k, v in pre.state_dict().items()
          if k.startswith("encoder.") and not k.startswith("encoder.norm.")}
    sd.update({"fc_norm.weight": torch.ones(192), "fc_norm.bias": torch.zeros(192),
               "head.weight": torch.zeros(4, 192), "head.bias": torch.zeros(4)})
    torch.save({"module": sd}, tmp_path / "ft.pth")
    cfg = tubelet.model.checkpoints.read_checkpoint(tmp_path / "ft.pth").config
    assert (cfg.num_frames, cfg.image_size, cfg.name, cfg.num_classes) == (16, (224, 224), "vit_tiny", 4)
    assert cfg.use_mean_pooling and cfg.mlp_dim == 768 and cfg.num_heads == 3


@pytest.mark.parametrize("extra_row", [False, True])
def test_official_learnable_table_is_resampled_to_requested_geometry(tmp_path, extra_row):
    """A fine-tuned file with a learnable table at 16×224² (1568 rows, or 1569 with a class-token slot),
    loaded at 112²: the table is read at its own grid (8, 14, 14) and resampled to (8, 7, 7)."""
    pre = VideoMAE(small_config(num_frames=16, image_size=224, patch_size=16, embed_dim=192, num_heads=3, mlp_dim=64,
                             depth=1, learnable_pos_emb=True))
    sd = {k.removeprefix("encoder."): v for k, v in pre.state_dict().items()
          if k.startswith("encoder.") and not k.startswith("encoder.norm.")}
    table = sd["pos_embed"]
    if extra_row:
        sd["pos_embed"] = torch.cat([torch.zeros(1, 1, 192), table], dim=1)
    sd.update({"fc_norm.weight": torch.ones(192), "fc_norm.bias": torch.zeros(192),
               "head.weight": torch.zeros(4, 192), "head.bias": torch.zeros(4)})
    torch.save({"module": sd}, tmp_path / "ft.pth")
    native = load_model(tmp_path / "ft.pth")
    assert native.config.image_size == (224, 224) and torch.equal(native.encoder.pos_embed.detach(), table)
    small = load_model(tmp_path / "ft.pth", image_size=112)
    want = interpolate_pos_embed(table, (8, 14, 14), (8, 7, 7))
    assert small.config.grid == (8, 7, 7) and torch.equal(small.encoder.pos_embed.detach(), want)


def test_unknown_width_needs_heads_hint(tmp_path):
    model = VideoMAE(small_config())  # width 48 is not an official width
    torch.save(official_pretrain_sd(model), tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="num_heads="):
        load_model(tmp_path / "w.pth", num_frames=4, image_size=32)
    same_weights(model, load_model(tmp_path / "w.pth", num_frames=4, image_size=32, num_heads=4, decoder_heads=2))


def test_bare_safetensors_state_dict(tmp_path):
    from safetensors.torch import save_file

    model = VideoMAE(small_config())
    save_file(model.state_dict(), str(tmp_path / "weights.safetensors"))
    loaded = load_model(tmp_path / "weights.safetensors", num_frames=4, image_size=32, num_heads=4, decoder_heads=2)
    same_weights(model, loaded)


def test_transformers_format_refuses_what_transformers_cannot_hold(tmp_path):
    model = VideoMAE(small_config(layer_scale_init=0.1))
    with pytest.raises(CheckpointError, match="no transformers equivalent"):
        save_model(model, tmp_path / "hf", format="transformers")
    assert not (tmp_path / "hf").exists() and list(tmp_path.iterdir()) == []


# ---- malformed input: one-line CheckpointError naming the file ------------------------------------

def _side_effect(path):
    open(path, "w").close()


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return _side_effect, (self.marker,)


def make_mp4(path):
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _tubelet_dir(tmp_path, edit):
    from safetensors.torch import load_file, save_file

    path = save_model(VideoMAE(small_config()), tmp_path / "ckpt")
    sd = load_file(str(path / "model.safetensors"))
    edit(sd)
    save_file(sd, str(path / "model.safetensors"))
    return path


def _bad(tmp_path, case):
    """Build one malformed checkpoint; returns (path, expected message fragment)."""
    if case == "missing path":
        return tmp_path / "nope.pth", "no such file"
    if case == "empty file":
        (tmp_path / "e.pth").write_bytes(b"")
        return tmp_path / "e.pth", "empty file"
    if case == "text file":
        (tmp_path / "notes.txt").write_text("hello, not a checkpoint\n")
        return tmp_path / "notes.txt", "not a PyTorch checkpoint"
    if case == "mp4":
        make_mp4(tmp_path / "clip.mp4")
        return tmp_path / "clip.mp4", "not a PyTorch checkpoint"
    if case == "pickled code":
        torch.save({"model": Evil(str(tmp_path / "pwned"))}, tmp_path / "evil.pth")
        return tmp_path / "evil.pth", "holds code and was not loaded"
    if case == "no tensors":
        torch.save({"model": {"a": 1}}, tmp_path / "n.pth")
        return tmp_path / "n.pth", "no state dict of tensors"
    if case == "not videomae":
        torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "o.pth")
        return tmp_path / "o.pth", "not a VideoMAE checkpoint"
    if case == "wrong shape":
        return _tubelet_dir(tmp_path, lambda sd: sd.update({"encoder.blocks.0.mlp.fc1.weight": torch.zeros(3, 48)})), \
            "has shape [3, 48]"
    if case == "missing key":
        return _tubelet_dir(tmp_path, lambda sd: sd.pop("encoder.blocks.1.norm2.bias")), "missing key"
    if case == "unexpected key":
        return _tubelet_dir(tmp_path, lambda sd: sd.update({"encoder.extra": torch.zeros(1)})), "unexpected key"
    if case == "official wrong shape":
        sd = official_pretrain_sd(VideoMAE(small_config()))
        sd["encoder.blocks.1.attn.proj.weight"] = torch.zeros(48, 47)
        torch.save({"model": sd}, tmp_path / "s.pth")
        return tmp_path / "s.pth", "has shape [48, 47]"
    if case == "truncated safetensors":
        path = save_model(VideoMAE(small_config()), tmp_path / "ckpt")
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[: len(data) // 2])
        return path, "not a readable safetensors file"
    if case == "bad config json":
        path = save_model(VideoMAE(small_config()), tmp_path / "ckpt")
        (path / "config.json").write_text("{not json")
        return path, "cannot read config"
    if case == "unknown config field":
        path = save_model(VideoMAE(small_config()), tmp_path / "ckpt")
        meta = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**meta, "wings": 2}))
        return path, "unknown model config field"
    if case == "directory without config":
        (tmp_path / "d").mkdir()
        return tmp_path / "d", "config.json: missing"
    raise AssertionError(case)


BAD_CASES = ["missing path", "empty file", "text file", "mp4", "pickled code", "no tensors", "not videomae",
             "wrong shape", "missing key", "unexpected key", "official wrong shape", "truncated safetensors",
             "bad config json", "unknown config field", "directory without config"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_malformed_checkpoint_gives_one_line_error(tmp_path, case):
    path, fragment = _bad(tmp_path, case)
    with pytest.raises(CheckpointError) as info:
        load_model(path, **({"num_heads": 4, "decoder_heads": 2} if case == "official wrong shape" else {}))
    message = str(info.value)
    assert fragment in message and path.name in message and "\n" not in message
    assert not (tmp_path / "pwned").exists()  # the pickled call never ran


# ---- CLI --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing path", "empty file", "mp4", "pickled code", "wrong shape", "missing key"])
@pytest.mark.parametrize("command", ["info", "convert"])
def test_cli_reports_malformed_checkpoint(tmp_path, monkeypatch, capsys, case, command):
    path, fragment = _bad(tmp_path, case)
    args = [command, path] + ([tmp_path / "out"] if command == "convert" else [])
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1 and err.startswith("error:") and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""
    assert not (tmp_path / "out").exists()


def test_cli_convert_and_info_round_trip(tmp_path, monkeypatch, capsys):
    model = VideoMAE(small_config(decoder_depth=0, num_classes=3, class_names=["a", "b", "c"]))
    save_model(model, tmp_path / "src")
    code, out, _ = run_cli(monkeypatch, capsys, "convert", tmp_path / "src", tmp_path / "hf", "--to", "transformers",
                           "--json")
    assert code == 0 and json.loads(out)["format"] == "transformers"
    code, out, _ = run_cli(monkeypatch, capsys, "info", tmp_path / "hf", "--json")
    info = json.loads(out)
    assert code == 0 and info["format"] == "transformers" and info["kind"] == "classifier"
    assert info["parameters"] == model.num_params() and info["config"]["class_names"] == ["a", "b", "c"]
    assert info["parameters_by_part"]["head"] == 3 * 48 + 3 + 2 * 48
    code, out, _ = run_cli(monkeypatch, capsys, "convert", tmp_path / "hf", tmp_path / "back")
    assert code == 0
    same_weights(model, load_model(tmp_path / "back"))
    code, out, _ = run_cli(monkeypatch, capsys, "info", tmp_path / "back")
    assert code == 0 and "classifier" in out and "3 classes" in out


def test_cli_convert_with_overrides(tmp_path, monkeypatch, capsys):
    torch.save(VideoMAE(small_config()).state_dict(), tmp_path / "w.pth")  # width 48: heads must be given
    code, _, err = run_cli(monkeypatch, capsys, "convert", tmp_path / "w.pth", tmp_path / "out")
    assert code == 1 and err.startswith("error:") and "num_heads=" in err
    code, out, _ = run_cli(monkeypatch, capsys, "convert", tmp_path / "w.pth", tmp_path / "out", "--set",
                           "num_heads=4", "--set", "decoder_heads=2", "--set", "num_frames=4", "--set", "image_size=32",
                           "--json")
    assert code == 0 and load_model(tmp_path / "out").config.num_heads == 4
    code, _, err = run_cli(monkeypatch, capsys, "convert", tmp_path / "w.pth", tmp_path / "o2", "--set", "wings")
    assert code == 1 and "--set expects key=value" in err  # the one --set parser every command uses


def test_cli_entry_point_subprocess(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "notes.txt").write_text("not a model")
    bad = subprocess.run([Path(sys.executable).parent / "tubelet", "info", tmp_path / "notes.txt"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and "notes.txt" in bad.stderr


def test_cli_info_preset_counts_parameters_on_meta(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "info", "vit_base", "--json")
    info = json.loads(out)
    assert code == 0 and info["format"] == "preset" and info["parameters"] == 94_210_944
    assert info["tokens"] == 1568 and info["parameters_by_part"]["decoder"] == 94_210_944 - 86_227_200


@pytest.mark.timeout(120)
@pytest.mark.parametrize("change,message", [
    ({"depth": 100000}, "depth=100000 is out of range"),
    ({"embed_dim": 1e9}, "embed_dim=1000000000 is out of range"),
    ({"image_size": [160000, 160000]}, "image_size=160000 is out of range"),
    ({"num_heads": 0}, "num_heads=0 is out of range"),
    ({"patch_size": 0}, "patch_size=0 is out of range"),
    ({"mlp_dim": -8}, "mlp_dim=-8 is out of range"),
    ({"image_size": "abc"}, "image_size must be an integer or a pair"),
    ({"depth": 2.5}, "depth must be an integer"),
    ({"norm_eps": None}, "norm_eps must be a finite number"),
    ({"embed_dim": 4096, "num_heads": 4096 // 64, "mlp_dim": 131072, "depth": 256}, "parameters is more than"),
    ({"depth": 3}, r"config.json does not match model.safetensors: missing key\(s\) encoder.blocks.2"),
    ({"embed_dim": 96, "num_heads": 4}, "config.json does not match model.safetensors: .* has shape"),
])
def test_config_json_is_checked_before_anything_is_allocated(tmp_path, monkeypatch, capsys, change, message):
    save_model(VideoMAE(small_config()), tmp_path / "ckpt")
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(CheckpointError, match=message) as e:
        load_model(tmp_path / "ckpt")
    assert "\n" not in str(e.value)
    code, out, err = run_cli(monkeypatch, capsys, "info", tmp_path / "ckpt")  # info checks as much as loading
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and out == "", err


@pytest.mark.parametrize("sets,message", [
    (["num_heads=0"], "num_heads=0 is out of range"), (["patch_size=0"], "patch_size=0 is out of range"),
    (["image_size=abc"], "image_size must be an integer or a pair"), (["embed_dim=-192"], "embed_dim=-192"),
    (["num_frames=nan"], "num_frames must be an integer"), (["depth=1e300"], "depth must be an integer"),
    (["depth=10000000000000000000000"], "depth=1e+22 is out"),
    (["drop_path=inf"], "drop_path must be a finite number"), (["num_classes=true"], "num_classes must be an int"),
])
def test_absurd_set_values_are_one_line(tmp_path, monkeypatch, capsys, sets, message):
    args = [a for s in sets for a in ("--set", s)]
    code, _, err = run_cli(monkeypatch, capsys, "convert", "vit_tiny", tmp_path / "out", *args)
    assert code == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_pickle_that_holds_code_is_named_not_run(tmp_path, monkeypatch, capsys):
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    files = {"zip.pth": lambda p: torch.save({"model": Payload()}, p),
             "legacy.pth": lambda p: torch.save({"model": Payload()}, p, _use_new_zipfile_serialization=False),
             "bare.pth": lambda p: p.write_bytes(pickle.dumps({"model": Payload()}, protocol=4))}
    for name, write in files.items():
        write(tmp_path / name)
        with pytest.raises(CheckpointError) as e:
            load_model(tmp_path / name)
        assert "holds code and was not loaded (it tries to call posix.system)" in str(e.value), str(e.value)
        assert "weights_only" not in str(e.value)
        code, _, err = run_cli(monkeypatch, capsys, "info", tmp_path / name)
        assert code == 1 and "holds code and was not loaded" in err and err.count("\n") == 1, err
    assert not marker.exists()


def test_a_run_directory_means_its_latest_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="run directory without a complete checkpoint"):
        load_model(run)
    save_model(VideoMAE(small_config(depth=1)), run / "checkpoints" / "step_00000010")
    save_model(VideoMAE(small_config(depth=2)), run / "checkpoints" / "step_00000020")
    (run / "checkpoints" / ".step_00000030.tmp").mkdir()  # an interrupted save
    assert load_model(run).config.depth == 2
    code, out, err = run_cli(monkeypatch, capsys, "info", run, "--json")
    assert code == 0 and json.loads(out)["config"]["depth"] == 2, err
