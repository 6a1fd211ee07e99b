"""Sources, datasets, loaders, transforms, sampling, synthetic videos and the probe CLI."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tubelet.cli import app
from tubelet.data import (
    ClipDataset,
    EpochBatchSampler,
    PretrainDataset,
    SegmentDataset,
    Source,
    list_sources,
    make_loader,
    read_clip,
    sampling,
    sliding_windows,
    transforms,
    write_shards,
)
from tubelet.data.synthetic import write_synthetic_videos
from tubelet.errors import TubeletError

KW = {"num_frames": 4, "stride": 2, "image_size": 32}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_videos(out, 8, num_frames=24, size=48, seed=3)
    return out


def test_synthetic_videos_are_real_and_labelled(synth: Path) -> None:
    items = list_sources(synth / "labels.csv")
    assert [it.label for it in items] == ["left", "right", "up", "down"] * 2
    assert list_sources(synth) == sorted(list_sources(synth), key=lambda it: it.path)  # folder: label = subfolder
    assert {it.label for it in list_sources(synth)} == {"left", "right", "up", "down"}
    clip, ts = read_clip(items[1].path, 24, 1, start_s=0)  # "right": the object's column moves right
    diff = (clip[:, :, :, :].float() - clip.float().median(0).values).abs().sum(-1)  # [T, H, W] foreground
    cols = torch.arange(48).float()
    centre = [(d.sum(0) * cols).sum() / d.sum() for d in diff]
    assert centre[-1] > centre[0] + 3


def test_manifests(tmp_path: Path, synth: Path) -> None:
    video = next((synth / "left").glob("*.mp4"))
    (tmp_path / "a.csv").write_text(f"{video},walk,1.0,2.5\n{video}\n")
    (tmp_path / "b.csv").write_text(f"path,label\n{video},run\n")
    (tmp_path / "c.txt").write_text(f"{video} 7\n")  # official `path label` lists
    (tmp_path / "d.jsonl").write_text(json.dumps({"path": str(video), "label": "x", "start_s": 0.5}) + "\n")
    assert list_sources(tmp_path / "a.csv")[0] == Source(str(video), "walk", 1.0, 2.5)
    assert list_sources(tmp_path / "a.csv")[1].label is None
    assert list_sources(tmp_path / "b.csv")[0].label == "run"
    assert list_sources(tmp_path / "c.txt")[0].label == "7"
    assert list_sources(tmp_path / "d.jsonl")[0].start_s == 0.5
    (tmp_path / "bad.csv").write_text(f"{video},a,3,1\n")
    with pytest.raises(TubeletError, match="bad.csv:1"):
        list_sources(tmp_path / "bad.csv")
    with pytest.raises(TubeletError, match="no such file"):
        list_sources(tmp_path / "nope")


def test_tar_shards_read_in_place(tmp_path: Path, synth: Path) -> None:
    items = list_sources(synth / "labels.csv")
    write_shards(items, tmp_path / "shards", per_shard=3)
    sharded = list_sources(tmp_path / "shards")
    assert len(sharded) == 8 and [it.label for it in sharded] == [it.label for it in items]
    assert sharded[0].member and sharded[0].name.endswith(".mp4")
    a, _ = read_clip(items[5].path, 4, 2, start_s=0)
    b, _ = read_clip(sharded[5].input(), 4, 2, start_s=0)
    assert torch.equal(a, b)
    assert len(list_sources(str(tmp_path / "shards" / "*.tar"))) == 8


def test_pretrain_sample_shapes_and_determinism(synth: Path) -> None:
    ds = PretrainDataset(synth, repeats=3, seed=5, **KW)
    s = ds[2]
    assert s["video"].shape == (3, 3, 4, 32, 32) and s["video"].dtype == torch.float32
    assert set(s) == {"video", "index", "skipped"} and s["index"] == 2 and s["skipped"] == []  # no masks
    assert not torch.equal(s["video"][0], s["video"][1])  # repeated augmentation: distinct views, one decode
    assert torch.equal(ds[2]["video"], s["video"]) and torch.equal(ds[(2, 0)]["video"], s["video"])
    assert not torch.equal(ds[(2, 1)]["video"], s["video"])  # a new epoch draws new windows and crops
    assert abs(float(s["video"].mean())) < 2.5  # normalised


def test_bad_files_are_skipped_deterministically(tmp_path: Path, synth: Path, caplog) -> None:
    good = list_sources(synth)[:3]
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("hello")
    bad = [Source(str(tmp_path / "zero.mp4")), Source(str(tmp_path / "text.mp4"))]
    ds = PretrainDataset(bad + good, **KW)
    with caplog.at_level(logging.WARNING, logger="tubelet.data"):
        s0 = ds[0]
    assert s0["index"] >= 2 and s0["skipped"] and s0["skipped"][0].startswith(str(tmp_path / "zero.mp4"))
    assert "empty file" in s0["skipped"][0]
    assert torch.equal(PretrainDataset(bad + good, **KW)[0]["video"], s0["video"])  # same replacement each time
    loader = make_loader(ds, batch_size=5, workers=0, drop_last=False, shuffle=False)
    batches = list(loader)
    assert sum(b["video"].shape[0] for b in batches) == 5
    assert {m.split(":")[0] for m in loader.skipped} == {str(tmp_path / "zero.mp4"), str(tmp_path / "text.mp4")}
    with pytest.raises(TubeletError, match="no video in the dataset"):
        PretrainDataset(bad, **KW)[0]


def test_loader_order_resume_shards_and_workers(synth: Path) -> None:
    ds = PretrainDataset(synth, **KW)
    loader = make_loader(ds, batch_size=2, workers=2, seed=7)
    assert len(loader) == 4
    first = list(loader)
    assert loader.epoch == 1  # a full pass moves on
    second = list(loader)
    assert not torch.equal(torch.cat([b["index"] for b in first]), torch.cat([b["index"] for b in second]))
    loader.set_epoch(0, start_batch=2)
    resumed = list(loader)
    assert len(resumed) == 2
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(first[2:], resumed, strict=True))
    single = list(make_loader(ds, batch_size=2, workers=0, seed=7))  # same batches without worker processes
    assert all(torch.equal(a["video"], b["video"]) and torch.equal(a["index"], b["index"]) for a, b in
               zip(first, single, strict=True))
    ranks = [EpochBatchSampler(10, 2, seed=1, rank=r, world_size=3, drop_last=False).indices() for r in range(3)]
    assert {i for r in ranks for i in r} == set(range(10)) and [len(r) for r in ranks] == [4, 4, 4]
    dist = torch.utils.data.DistributedSampler(range(10), num_replicas=3, rank=1, seed=1, shuffle=True)
    assert list(dist) == ranks[1]


def test_clip_datasets_train_and_test_views(synth: Path) -> None:
    train = ClipDataset(synth, num_frames=4, stride=2, image_size=32, repeats=2, flip=False)
    s = train[1]
    assert train.classes == ["down", "left", "right", "up"]
    label = train.classes.index(train.items[1].label)
    assert s["video"].shape == (2, 3, 4, 32, 32) and s["label"].tolist() == [label, label]
    test = ClipDataset(synth, num_frames=4, stride=2, image_size=32, train=False, num_clips=2, num_crops=3)
    t = test[0]
    assert t["video"].shape == (6, 3, 4, 32, 32) and t["index"].tolist() == [0] * 6
    seg = SegmentDataset(synth, num_frames=4, image_size=32, train=False)
    assert seg[0]["video"].shape == (1, 3, 4, 32, 32)
    batch = next(iter(make_loader(test, batch_size=2, workers=0, shuffle=False)))
    assert batch["video"].shape[0] == 12 and batch["label"].shape == (12,)


def test_transforms_and_sampling() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        top, left, h, w = transforms.multi_scale_crop_box(256, 320, 224, g)
        assert h in (256, 224, 192, 168) and w in (256, 224, 192, 168) and top + h <= 256 and left + w <= 320
        top, left, h, w = transforms.random_resized_crop_box(100, 200, g)
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 200
    video = torch.randint(0, 256, (4, 50, 80, 3), dtype=torch.uint8)
    assert transforms.resize_short(video, 25).shape == (4, 25, 40, 3)
    assert transforms.resize_short(video, 25).dtype == torch.uint8
    views = transforms.test_views(video, 40, num_crops=3)
    assert [v.shape for v in views] == [(3, 4, 40, 40)] * 3
    assert torch.equal(transforms.hflip(transforms.hflip(video)), video)
    x = transforms.normalize(torch.tensor([124, 116, 104], dtype=torch.uint8).expand(1, 2, 2, 3))
    assert x.shape == (3, 1, 2, 2) and x.abs().max() < 0.02  # the ImageNet mean colour maps to ≈ 0
    assert sliding_windows(10.0, 4.0, 3.0) == [(0.0, 4.0), (3.0, 7.0), (6.0, 10.0)]
    assert sliding_windows(2.0, 4.0) == [(0.0, 2.0)]
    assert sampling.uniform_starts(10.0, 2.0, 3) == [0.0, 4.0, 8.0]
    assert sampling.segment_times(8.0, 4) == [1.0, 3.0, 5.0, 7.0]
    t = sampling.segment_times(8.0, 4, torch.Generator().manual_seed(1))
    assert all(2 * i <= v < 2 * i + 2 for i, v in enumerate(t))
    assert 0 <= sampling.random_start(10.0, 2.0, g) <= 8.0


def test_probe_cli(synth: Path, tmp_path: Path) -> None:
    import typer.main

    command = typer.main.get_command(app).commands["probe"]  # type: ignore[attr-defined]
    assert "VIDEO" in command.get_usage(command.make_context("probe", ["x"], resilient_parsing=True)), \
        "another module re-registered `tubelet probe` over the video probe (issue #3's `tubelet probe VIDEO`)"
    runner = CliRunner()
    video = next((synth / "up").glob("*.mp4"))
    r = runner.invoke(app, ["probe", str(video), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert (info["width"], info["height"], info["num_frames"], info["codec"]) == (48, 48, 24, "h264")
    r = runner.invoke(app, ["probe", str(video), "--exact"])
    assert r.exit_code == 0 and "24" in r.stdout
    (tmp_path / "t.mp4").write_text("nope")
    exe = shutil.which("tubelet", path=str(Path(__file__).resolve().parents[1] / ".venv" / "bin"))
    if exe:  # the console entry point turns the VideoError into one line and exit 1
        import subprocess

        p = subprocess.run([exe, "probe", str(tmp_path / "t.mp4")], capture_output=True, text=True)
        assert p.returncode == 1 and p.stderr.strip().startswith("error: ") and p.stderr.count("\n") == 1


def test_repeated_sampling_draws_several_clips_of_each_video(synth: Path) -> None:
    three = list_sources(synth)[:3]
    ds = PretrainDataset(three, **KW)
    ds.repeat(3)
    assert len(ds) == 9 and ds.num_videos == 3
    samples = [ds[i] for i in (0, 3, 6)]  # the same video, three draws
    assert {s["index"] for s in samples} == {0}
    assert not torch.equal(samples[0]["video"], samples[1]["video"])  # each repeat its own window and crop
    loader = make_loader(ds, batch_size=8, workers=0, seed=1)
    assert len(loader) == 1 and sorted(next(iter(loader))["index"].tolist()) in ([0, 0, 0, 1, 1, 1, 2, 2],
                                                                                [0, 0, 0, 1, 1, 2, 2, 2],
                                                                                [0, 0, 1, 1, 1, 2, 2, 2])
