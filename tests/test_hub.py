"""Models by Hub id, against the stand-in Hub on 127.0.0.1: each layout, the cache, offline mode, revision pins,
the one-line errors, corrupt cache entries, and `tubelet models` / `tubelet info` on a Hub id."""

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from hub_stub import seeded, transformers_files, videomae_v2_files

from tubelet import preset
from tubelet.errors import CheckpointError
from tubelet.model.checkpoints import load_model, read_checkpoint
from tubelet.model.videomae import VideoMAE

GEOMETRY = dict(num_frames=4, image_size=32, depth=2)


def pretraining() -> VideoMAE:
    return VideoMAE(preset("vit_tiny", decoder_depth=1, **GEOMETRY))


def classifier() -> VideoMAE:
    return VideoMAE(preset("vit_tiny", decoder_depth=0, num_classes=5, **GEOMETRY))


def v2_encoder() -> VideoMAE:
    return VideoMAE(preset("vit_tiny", decoder_depth=0, norm_after_pool=True, **GEOMETRY))


def clip() -> torch.Tensor:
    return torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))


def same_function(a: VideoMAE, b: VideoMAE) -> bool:
    with torch.no_grad():
        return torch.allclose(a.eval().embed(clip()), b.eval().embed(clip()), atol=1e-6)


def snapshot_files(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("snapshots/*/*")}


@pytest.mark.parametrize("layout", ["transformers-pretraining", "transformers-classifier", "videomae-v2"])
def test_each_hub_layout_loads_by_id(hub, tmp_path, layout):
    make, files = {"transformers-pretraining": (pretraining, lambda m: transformers_files(m, tmp_path)),
                   "transformers-classifier": (classifier, lambda m: transformers_files(m, tmp_path)),
                   "videomae-v2": (v2_encoder, videomae_v2_files)}[layout]
    source = seeded(make, 3)
    hub.publish("OpenGVLab/VideoMAEv2-Base" if layout == "videomae-v2" else "MCG-NJU/videomae-base",
                files(source))
    repo = "OpenGVLab/VideoMAEv2-Base" if layout == "videomae-v2" else "MCG-NJU/videomae-base"
    ckpt = read_checkpoint(repo)
    assert ckpt.source_format == ("videomae-v2" if layout == "videomae-v2" else "transformers")
    model = load_model(repo)
    assert model.config.grid == source.config.grid and model.config.num_classes == source.config.num_classes
    assert same_function(model, source)
    cache = tmp_path / "hf-cache"
    assert (cache / f"models--{repo.replace('/', '--')}" / "refs" / "main").is_file()
    assert "modeling_videomaev2.py" not in snapshot_files(cache)  # the repository's code is never fetched
    if layout == "videomae-v2":
        assert model.config.norm_after_pool and not model.config.has_encoder_norm


def test_revision_pin_offline_cache_and_unreachable_hub(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    old, new = seeded(pretraining, 1), seeded(pretraining, 2)
    first = hub.publish("MCG-NJU/videomae-base", transformers_files(old, tmp_path))
    hub.publish("MCG-NJU/videomae-base", transformers_files(new, tmp_path))
    assert same_function(load_model(f"MCG-NJU/videomae-base@{first}"), old)
    assert same_function(load_model("MCG-NJU/videomae-base"), new)
    assert same_function(load_model("MCG-NJU/videomae-base@main"), new)
    # offline: the cache answers, no request is made
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    before = len(hub.requests)
    assert same_function(load_model("MCG-NJU/videomae-base"), new)
    assert same_function(load_model(f"MCG-NJU/videomae-base@{first}"), old)
    assert len(hub.requests) == before
    # no network at all (offline mode off): the cache answers too
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.stop()
    assert same_function(load_model("MCG-NJU/videomae-base"), new)
    # neither cached nor reachable: one line saying so
    for offline in (False, True):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
        with pytest.raises(CheckpointError) as e:
            load_model("MCG-NJU/videomae-large")
        assert "\n" not in str(e.value) and "not in the Hugging Face cache" in str(e.value)


def test_unknown_repo_revision_and_corrupt_cache(hub, tmp_path):
    hub.publish("MCG-NJU/videomae-base", transformers_files(seeded(pretraining, 1), tmp_path))
    with pytest.raises(CheckpointError, match="no such model on the Hub"):
        load_model("nobody/nothing")
    with pytest.raises(CheckpointError, match="no revision 'v9'"):
        load_model("MCG-NJU/videomae-base@v9")
    with pytest.raises(CheckpointError, match="runs/missing: no such file or directory, and no such model on the Hub"):
        load_model("runs/missing")
    load_model("MCG-NJU/videomae-base")
    blob = next(p for p in (tmp_path / "hf-cache").rglob("blobs/*") if p.stat().st_size > 10_000)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        load_model("MCG-NJU/videomae-base")


def test_cli_models_and_info_by_hub_id(hub, tmp_path, monkeypatch, capsys):
    hub.publish("OpenGVLab/VideoMAEv2-Base", videomae_v2_files(seeded(v2_encoder, 4)))
    code, out, err = run_cli(monkeypatch, capsys, "info", "OpenGVLab/VideoMAEv2-Base", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["format"] == "videomae-v2" and info["kind"] == "encoder" and info["grid"] == [2, 2, 2]
    code, out, err = run_cli(monkeypatch, capsys, "models", "--json")
    assert code == 0, err
    rows = {r["repo"]: r for r in json.loads(out)}
    assert rows["OpenGVLab/VideoMAEv2-Base"]["cached"] and not rows["MCG-NJU/videomae-base"]["cached"]
    assert rows["OpenGVLab/VideoMAEv2-Base"]["parameters"] == pytest.approx(86.2e6, rel=0.01)
    assert {r["job"] for r in rows.values()} == {"embed", "classify"}
    code, out, err = run_cli(monkeypatch, capsys, "models")
    assert code == 0 and "VideoMAEv2-Base" in out and "cached" in out


def test_catalog_by_hub_id_records_the_commit_and_searches_offline(hub, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    clip_path = Path(__file__).resolve().parents[1] / "tubelet" / "assets" / "clips" / "houseplant_static_short.mp4"
    sha = hub.publish("OpenGVLab/VideoMAEv2-Base", videomae_v2_files(seeded(v2_encoder, 4)))
    cat = tmp_path / "cat"
    code, out, err = run_cli(monkeypatch, capsys, "index", "add", clip_path, "--catalog", cat, "--model",
                             "OpenGVLab/VideoMAEv2-Base", "--json")
    assert code == 0, err
    manifest = json.loads((cat / "catalog.json").read_text())
    assert manifest["model"]["source"] == f"OpenGVLab/VideoMAEv2-Base@{sha}"
    hub.publish("OpenGVLab/VideoMAEv2-Base", videomae_v2_files(seeded(v2_encoder, 5)))  # main moves on
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    code, out, err = run_cli(monkeypatch, capsys, "search", clip_path, "--catalog", cat, "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
