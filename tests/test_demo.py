"""`tubelet demo` end to end through the console script, with a tiny step budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from PIL import Image

from tubelet import load_model
from tubelet.demo import bundled_clips
from tubelet.train.run_state import load_trainer_state

EXE = Path(sys.executable).parent / "tubelet"


def test_bundled_clips_have_attribution():
    clips = sorted(p.name for p in bundled_clips().iterdir() if p.suffix == ".mp4")
    attribution = (bundled_clips() / "ATTRIBUTION.md").read_text()
    assert len(clips) >= 8 and all(name in attribution for name in clips)
    assert sum((bundled_clips() / name).stat().st_size for name in clips) < 5_000_000


def test_demo_trains_and_draws(tmp_path):
    for stale in ("run/pretrain.yaml", "catalog/catalog.json", ".calibration/pretrain.yaml"):  # an earlier demo's
        (tmp_path / "demo" / stale).parent.mkdir(parents=True)
        (tmp_path / "demo" / stale).write_text("stale")
    proc = subprocess.run([EXE, "demo", "--out", tmp_path / "demo", "--steps", "3", "--json"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["step"] == 3 and summary["finished"] and len(summary["clips"]) >= 8
    assert summary["skipped"] == []
    assert "checkpoint:" in proc.stderr and "reconstruction:" in proc.stderr  # told where things are
    ckpt = Path(summary["checkpoint"])
    assert ckpt.is_relative_to(tmp_path / "demo")
    model = load_model(ckpt)
    assert model.config.name == "vit_tiny" and model.config.num_frames == 16
    assert load_trainer_state(ckpt)["step"] == 3
    picture = Image.open(summary["reconstruction"])
    assert picture.width > 8 * 112 and picture.height > 4 * 112  # 8 frame columns, 4 rows


def test_demo_rejects_an_empty_budget(tmp_path):
    proc = subprocess.run([EXE, "demo", "--out", tmp_path / "demo", "--minutes", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("theirs", ["run", "catalog", ".calibration"])
def test_demo_never_replaces_what_it_did_not_make(tmp_path, monkeypatch, capsys, theirs):
    """`tubelet demo --out ~` must not wipe a ~/run or ~/catalog of the user's."""
    (tmp_path / theirs).mkdir()
    (tmp_path / theirs / "thesis.tex").write_text("mine")
    code, _, err = run_cli(monkeypatch, capsys, "demo", "--out", tmp_path, "--steps", "1")
    assert code == 1 and err.count("\n") == 1 and "is not what an earlier demo left" in err, err
    assert err.startswith(f"error: {tmp_path / theirs}: exists")
    assert (tmp_path / theirs / "thesis.tex").read_text() == "mine"
