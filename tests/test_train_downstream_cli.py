"""End to end: `tubelet finetune`, `tubelet probe`, `tubelet evaluate` on synthetic and real clips, including a
checkpoint in the official fine-tuned .pth layout evaluated as-is."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import clip
from typer.testing import CliRunner

from tubelet import load_model
from tubelet.cli import app
from tubelet.data.synthetic import write_video
from tubelet.train.metrics import read_metrics

REAL = ["arm_wrestling.mp4", "carphone_talking_head_qcif.mp4", "eye_makeup_ucf101.avi", "tennis_practice.mp4",
        "cleaning_pool.mp4", "basketball_gym.mp4"]  # small frames: cheap to decode
MICRO = ["model.num_frames=4", "model.image_size=32", "model.depth=2"]
GEOMETRY = ["num_frames=4", "image_size=32", "depth=2"]
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def run(*args: str) -> tuple[int, str]:
    """Invoke the CLI in-process; (exit code, stdout + stderr)."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def run_main(*args: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Through the console entry point, which turns TubeletError into `error: …` and exit 1."""
    import sys

    from tubelet.cli import main

    old = sys.argv
    sys.argv = ["tubelet", *map(str, args)]
    try:
        with pytest.raises(SystemExit) as e:
            main()
            raise SystemExit(0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return int(e.value.code or 0), captured.out + captured.err


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory) -> Path:
    """An easy task: 36 short clips whose class is their dominant colour (noise, brightness varying per clip)."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(36):
        name = list(COLOURS)[i % 3]
        base = np.array(COLOURS[name], dtype=np.float64) * rng.uniform(0.7, 1.2)
        frames = base + rng.normal(0, 25, size=(8, 32, 40, 3))
        path = root / f"clip{i:02d}.mp4"
        write_video(path, frames.clip(0, 255).astype(np.uint8))
        rows.append((path.name, name))
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return root


@pytest.fixture(scope="module")
def trained(colour_data, tmp_path_factory) -> Path:
    """A micro classifier fine-tuned on the colour task (regularisers that fight colour labels turned off)."""
    out = tmp_path_factory.mktemp("ft") / "run"
    code, output = run("finetune", colour_data, "--labels", colour_data / "labels.csv", "--init", "vit_tiny",
                       "--out", out, "--steps", "30", "--batch-size", "6", "--lr", "0.05", "--stride", "2",
                       "--mixup", "0", "--cutmix", "0", "--set", "randaug_ops=0", "--precision", "fp32",
                       "--workers", "0", "--val-frac", "0.25", "--save-every", "30", *sum([["--set", s] for s in MICRO],
                                                                                            []), "--json")
    assert code == 0, output
    summary = json.loads(output[output.index("{"):])
    assert summary["finished"] and summary["step"] == 30
    assert summary["val_clips"] == 9 and summary["val_top1"] > 0.6  # chance is 1/3
    assert summary["last_loss"] < summary["first_loss"]
    return Path(summary["checkpoint"])


def test_finetune_writes_run_dir(trained):
    run_dir = trained.parent.parent
    assert (run_dir / "classes.txt").read_text().split() == ["blue", "green", "red"]
    assert "layer_decay: 0.75" in (run_dir / "finetune.yaml").read_text()
    records = read_metrics(run_dir)
    assert any("val_top1" in r for r in records) and records[0]["step"] == 10
    model = load_model(trained)
    assert model.config.num_classes == 3 and model.config.class_names == ["blue", "green", "red"]
    assert (trained / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_multi_view_and_official_finetuned_pth(trained, colour_data, tmp_path):
    code, output = run("evaluate", colour_data, "--labels", colour_data / "labels.csv", "--model", trained,
                       "--clips", "2", "--crops", "3", "--stride", "2", "--out", tmp_path / "eval", "--json")
    assert code == 0, output
    ours = json.loads(output)
    assert ours["num_examples"] == 36 and ours["clips"] == 2 and ours["crops"] == 3
    assert ours["top1"] > 0.6 and ours["top5"] == 1.0
    assert [c["class"] for c in ours["per_class"]] == ["blue", "green", "red"]
    assert (tmp_path / "eval" / "confusion.png").is_file()
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["top1"] == ours["top1"]

    # the same weights as a released VideoMAE fine-tuned file: top-level encoder keys under 'module', no config
    sd = load_model(trained).state_dict()
    official = {k.removeprefix("encoder."): v for k, v in sd.items()}
    assert {"patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "fc_norm.weight", "head.weight"} <= set(official)
    pth = tmp_path / "videomae_ft.pth"
    torch.save({"module": official, "epoch": 29}, pth)
    ids = tmp_path / "ids.csv"  # an official file has no class names: labels as ids, in the model's order
    names = ["blue", "green", "red"]
    rows = list(csv.reader(open(colour_data / "labels.csv")))[1:]
    ids.write_text("".join(f"{colour_data / p} {names.index(label)}\n" for p, label in rows))
    code, output = run("evaluate", "--labels", ids, "--model", pth, "--clips", "2", "--crops", "3",
                       "--stride", "2", *sum([["--set", s] for s in GEOMETRY[:2]], []), "--json")
    assert code == 0, output
    theirs = json.loads(output)
    assert theirs["top1"] == ours["top1"] and theirs["confusion"] == ours["confusion"]
    # or with names, given the class list
    (tmp_path / "classes.txt").write_text("blue\ngreen\nred\n")
    code, output = run("evaluate", colour_data, "--labels", colour_data / "labels.csv", "--model", pth,
                       "--classes", tmp_path / "classes.txt", "--clips", "1", "--crops", "1", "--stride", "2",
                       "--set", "num_frames=4", "--set", "image_size=32")
    assert code == 0, output
    assert "top-1" in output and "blue" in output


def test_probe_random_encoder_reads_colour(colour_data):
    code, output = run("probe", colour_data, "--labels", colour_data / "labels.csv", "--init", "vit_tiny",
                       "--stride", "2", "--val-frac", "0.34", *sum([["--set", s] for s in GEOMETRY], []), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["num_examples"] == 12 and report["train_clips"] == 24 and report["feature_dim"] == 192
    assert report["top1"] > 0.6 and report["layer"] == "last"
    code, output = run("probe", colour_data, "--labels", colour_data / "labels.csv", "--init", "vit_tiny",
                       "--layer", "0", "--stride", "2", *sum([["--set", s] for s in GEOMETRY], []))
    assert code == 0 and "linear probe on block 0" in output


def test_real_clips_finetune_resume_evaluate_probe(tmp_path):
    """Mixup/cutmix, RandAugment, layer decay, drop path and bf16 on real clips in class folders; a stopped and
    resumed run; its checkpoint evaluated and a probe on the same clips."""
    data = tmp_path / "real"
    for i, name in enumerate(REAL):
        folder = data / ("sports" if i % 2 else "other")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip(name), folder / name)
    out = tmp_path / "run"
    code, output = run("finetune", data, "--init", "vit_tiny", "--out", out, "--steps", "2", "--batch-size", "2",
                       "--val-frac", "0.34", "--workers", "1", "--save-every", "1", "--set", "log_every=1",
                       *sum([["--set", s] for s in MICRO], []), "--stop-after", "1")
    assert code == 0, output
    code, output = run("finetune", "--out", out, "--resume", "--json")
    assert code == 0, output
    summary = json.loads(output[output.index("{"):])
    assert summary["step"] == 2 and summary["finished"] and summary["val_clips"] == 2
    assert [r["step"] for r in read_metrics(out) if "loss" in r] == [1, 2]
    # the run directory, as README writes it, means its latest checkpoint
    assert Path(summary["checkpoint"]).parent.parent == out and Path(summary["checkpoint"]).name == "step_00000002"
    code, output = run("evaluate", data, "--model", out, "--clips", "2", "--crops", "1", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["num_examples"] == len(REAL) and report["skipped"] == []
    assert sum(c["support"] for c in report["per_class"]) == len(REAL)
    code, output = run("probe", data, "--init", summary["checkpoint"], "--val-frac", "0.34", "--json")
    assert code == 0, output
    assert json.loads(output)["num_examples"] == 2


def test_errors_are_one_line(colour_data, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nclip00.mp4,purple\n")
    (tmp_path / "classes.txt").write_text("red\ngreen\nblue\n")
    code, output = run_main("finetune", colour_data, "--labels", bad, "--classes", tmp_path / "classes.txt",
                            "--init", "vit_tiny", "--out", tmp_path / "r", "--steps", "1", capsys=capsys)
    assert code == 1 and "error:" in output and "purple" in output and "Traceback" not in output
    code, output = run_main("finetune", colour_data, "--labels", colour_data / "labels.csv", "--out",
                            tmp_path / "r2", "--steps", "1", capsys=capsys)
    assert code == 1 and "--init" in output
    code, output = run_main("evaluate", colour_data, "--labels", colour_data / "labels.csv", "--model", "vit_tiny",
                            capsys=capsys)
    assert code == 1 and "not a classifier" in output
    code, output = run_main("probe", colour_data, "--labels", colour_data / "labels.csv", "--init", "vit_tiny",
                            "--layer", "12", "--set", "depth=2", capsys=capsys)
    assert code == 1 and "outside the encoder" in output
    code, output = run_main("finetune", "--out", tmp_path / "nothing", "--resume", capsys=capsys)
    assert code == 1 and "nothing to resume" in output


@pytest.mark.parametrize("command", ["finetune", "probe", "evaluate"])
def test_help(command):
    code, output = run(command, "--help")
    assert code == 0 and "--labels" in output


def test_torchrun_two_processes(colour_data, tmp_path):
    """DDP fine-tuning: rank 0 alone reports; validation clips are split over ranks and gathered once each."""
    import subprocess
    import sys

    out = tmp_path / "run"
    exe = Path(sys.executable).parent / "tubelet"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(exe),
           "finetune", str(colour_data), "--labels", str(colour_data / "labels.csv"), "--init", "vit_tiny",
           "--out", str(out), "--steps", "2", "--batch-size", "2", "--stride", "2", "--workers", "0",
           "--precision", "fp32", "--val-frac", "0.25", "--json", *sum([["--set", s] for s in MICRO], [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["step"] == 2 and summary["finished"] and summary["val_clips"] == 9
    from tubelet.train.run_state import latest_checkpoint, load_trainer_state

    assert load_trainer_state(latest_checkpoint(out))["world_size"] == 2
