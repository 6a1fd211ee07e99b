"""End to end on real clips: `tubelet pretrain` (one process and torchrun), resume, learning, NaN, corrupt clips,
and `tubelet reconstruct`."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TRAIN_CLIPS, run_cli
from PIL import Image
from safetensors.torch import load_file

from tubelet import load_model
from tubelet.demo import bundled_clips
from tubelet.train.config import PretrainConfig
from tubelet.train.engine import DivergedError
from tubelet.train.metrics import read_metrics
from tubelet.train.pretrain import Pretraining, pretrain
from tubelet.train.run_state import latest_checkpoint, list_checkpoints, load_trainer_state

EXE = Path(sys.executable).parent / "tubelet"
MICRO = {"num_frames": 4, "image_size": 64, "depth": 2, "decoder_depth": 1}
MICRO_SET = [f"model.{k}={v}" for k, v in MICRO.items()]


def micro_cfg(data: Path, **kw) -> PretrainConfig:
    base = dict(data=str(data), preset="vit_tiny", model=dict(MICRO), batch_size=2, workers=0, mask_ratio=0.75,
                precision="fp32", deterministic=True, save_every=2, keep_last=5, log_every=1, base_lr=1e-3)
    return PretrainConfig(**{**base, **kw})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def step_losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir) if "loss" in r]


# ---- one process ----------------------------------------------------------------------------------

def test_pretrain_cli_end_to_end_with_a_corrupt_clip(videos, tmp_path, monkeypatch, capsys):
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "pretrain", videos, "--preset", "vit_tiny", "--out", run,
                             "--steps", 4, "--save-every", 2, "--batch-size", 2, "--workers", 0, "--precision",
                             "fp32", "--keep", 1, "--json", *sum((["--set", s] for s in MICRO_SET), []),
                             "--set", "log_every=1")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["step"] == 4 and summary["finished"] and math.isfinite(summary["last_loss"])
    assert summary["device"] == "cpu" and summary["precision"] == "fp32"
    assert any("broken.mp4" in s for s in summary["skipped"])  # reported, and the run went on
    assert [p.name for p in list_checkpoints(run)] == ["step_00000004"]  # keep 1
    ckpt = Path(summary["checkpoint"])
    model = load_model(ckpt)
    assert model.config.depth == 2 and model.config.num_frames == 4
    state = load_trainer_state(ckpt)  # weights_only load
    assert state["step"] == 4 and state["optimizer"]["state"]
    records = [r for r in read_metrics(run) if "loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["clips_per_s"] > 0 and 0 <= r["data_wait"] <= 1 for r in records)
    assert Image.open(summary["reconstruction"]).size[0] > 0
    assert sorted(p.name for p in (run / "reconstructions").iterdir()) == ["step_00000002.png",
                                                                           "step_00000004.png"]
    saved = (run / "pretrain.yaml").read_text()
    assert "mask_ratio: 0.9" in saved and "depth: 2" in saved and "base_lr: 0.00015" in saved


@pytest.mark.parametrize("args, fragment", [
    (["nowhere/at/all", "--steps", "2"], "nowhere"),
    (["{videos}", "--steps", "2", "--set", "colour=blue"], "colour"),
    (["{videos}", "--steps", "2", "--preset", "vit_colossal"], "vit_colossal"),
    (["{videos}"], "--steps N or --epochs N"),
    (["{videos}", "--steps", "2", "--resume"], "nothing to resume"),
    (["{videos}", "--steps", "2", "--set", "mask_ratio=1.5"], "mask ratio must be in [0, 1)"),
    (["{videos}", "--steps", "2", "--decoder-mask-ratio", "1e308"], "decoder mask ratio must be in [0, 1)"),
])
def test_bad_pretrain_input_is_one_error_line(videos, tmp_path, monkeypatch, capsys, args, fragment):
    args = [a.format(videos=videos) for a in args]
    code, out, err = run_cli(monkeypatch, capsys, "pretrain", *args, "--out", tmp_path / "run", "--workers", 0,
                             *sum((["--set", s] for s in MICRO_SET), []))
    assert code == 1 and err.startswith("error:") and fragment in err, err
    assert "Traceback" not in err and out == ""


def test_an_existing_run_needs_resume(videos, tmp_path):
    pretrain(micro_cfg(videos, steps=2), tmp_path / "run", progress=False)
    with pytest.raises(Exception, match="--resume"):
        pretrain(micro_cfg(videos, steps=2), tmp_path / "run", progress=False)


def test_resume_continues_as_if_never_stopped(videos, tmp_path):
    full = pretrain(micro_cfg(videos, steps=6), tmp_path / "full", progress=False)
    first = pretrain(micro_cfg(videos, steps=6), tmp_path / "split", stop_after=3, progress=False)
    assert first.step == 3 and not first.finished
    second = pretrain(micro_cfg(videos, steps=6), tmp_path / "split", resume=True, progress=False)
    assert second.finished and first.losses + second.losses == full.losses
    assert step_losses(tmp_path / "split") == full.losses  # the metrics file reads as one run
    ours, theirs = weights(second.checkpoint), weights(full.checkpoint)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    a, b = load_trainer_state(second.checkpoint), load_trainer_state(full.checkpoint)
    assert all(torch.equal(a["optimizer"]["state"][k]["exp_avg_sq"], b["optimizer"]["state"][k]["exp_avg_sq"])
               for k in b["optimizer"]["state"])


@pytest.mark.slow
def test_resume_after_a_real_kill(videos, tmp_path):
    """SIGKILL a CLI run right after its first checkpoint, resume it; losses and weights match an unkilled run."""
    common = [videos, "--preset", "vit_tiny", "--steps", "10", "--save-every", "2", "--keep", "10",
              "--batch-size", "2", "--workers", "0", "--precision", "fp32", "--deterministic",
              "--set", "log_every=1", "--set", "mask_ratio=0.75", *sum((["--set", s] for s in MICRO_SET), [])]
    subprocess.run([EXE, "pretrain", *map(str, common), "--out", tmp_path / "full"], check=True,
                   capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([EXE, "pretrain", *map(str, common), "--out", killed], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while latest_checkpoint(killed) is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed mid-run, not finished
    assert latest_checkpoint(killed).name != "step_00000010"
    subprocess.run([EXE, "pretrain", "--out", killed, "--resume"], check=True, capture_output=True)
    assert step_losses(killed) == step_losses(tmp_path / "full")
    ours, theirs = weights(latest_checkpoint(killed)), weights(latest_checkpoint(tmp_path / "full"))
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_the_model_learns(videos, tmp_path):
    """On a fixed small set (two clips), the loss on fixed masked views falls clearly below where it started."""
    two = tmp_path / "two"
    two.mkdir()
    for name in ("flower_timelapse.mp4", "highway_dashcam.mp4"):
        (two / name).symlink_to(videos / name)
    cfg = micro_cfg(two, steps=40, batch_size=2, repeats=4, base_lr=2e-3 * 256 / 2, warmup_frac=0.1,
                    save_every=40)
    result = pretrain(cfg, tmp_path / "run", progress=False)
    recipe = Pretraining(cfg)
    ds = recipe.dataset(recipe.build_model(None))
    video = torch.cat([ds[i]["video"] for i in range(2)])  # [8, 3, T, H, W]: epoch-0 views, fixed
    mask = recipe.masking.draw(8, torch.Generator().manual_seed(0))["mask"]

    def loss(model) -> float:
        with torch.no_grad():
            return model.eval()(video, mask=mask).loss.item()

    torch.manual_seed(cfg.seed)
    before = loss(load_model("vit_tiny", **MICRO))  # the same initial weights as the run
    after = loss(load_model(result.checkpoint))
    assert after < 0.95 and before - after > 0.12, (before, after)


def test_fp16_with_accumulation_and_clipping_saves_the_scaler(videos, tmp_path):
    cfg = micro_cfg(videos, steps=2, precision="fp16", accum_steps=2, clip_grad=1.0, deterministic=False)
    result = pretrain(cfg, tmp_path / "run", progress=False)
    assert result.finished and all(math.isfinite(x) for x in result.losses)
    scaler = load_trainer_state(result.checkpoint)["scaler"]
    assert scaler["scale"] > 0 and scaler["_growth_tracker"] == 2  # two unskipped steps


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(videos, tmp_path, monkeypatch):
    from tubelet.model.videomae import VideoMAE

    real = VideoMAE.loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):  # the 4th training step's loss is NaN (pictures run in eval mode)
        calls["n"] += self.training
        out = real(self, *args, **kwargs)
        return out * float("nan") if self.training and calls["n"] == 4 else out

    monkeypatch.setattr(VideoMAE, "loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(DivergedError, match=r"loss became nan at step 4 .*step_00000002"):
        pretrain(micro_cfg(videos, steps=6), run, progress=False)
    assert latest_checkpoint(run).name == "step_00000002"
    assert load_trainer_state(latest_checkpoint(run))["step"] == 2
    load_model(latest_checkpoint(run))  # intact
    assert max(r["step"] for r in read_metrics(run)) == 3


# ---- torchrun -------------------------------------------------------------------------------------

TWO_GPUS = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL takes one GPU per process: needs two")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, TWO_GPUS])])
@pytest.mark.parametrize("fsdp", [False, True])
def test_torchrun_two_processes(videos, tmp_path, fsdp, device):
    """gloo on the CPU; NCCL with `--device cuda` on a machine with two GPUs (`pytest -m cuda`)."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(EXE), "pretrain", str(videos), "--preset", "vit_tiny", "--out", str(run), "--steps", "3",
           "--save-every", "2", "--batch-size", "1", "--workers", "0", "--precision", "fp32", "--device", device,
           "--json",
           *sum((["--set", s] for s in MICRO_SET), []), "--set", "log_every=1"] + (["--fsdp"] if fsdp else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # rank 0 alone prints, logs, checkpoints and draws
    assert summary["step"] == 3 and summary["finished"] and summary["device"].startswith(device)
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == [1, 2, 3]
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002", "step_00000003"]
    state = load_trainer_state(latest_checkpoint(run))
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    model = load_model(latest_checkpoint(run))
    assert model.config.depth == 2
    assert (run / "reconstructions" / "step_00000003.png").exists()


# ---- reconstruct CLI ------------------------------------------------------------------------------

def test_reconstruct_cli_from_a_run_dir(videos, tmp_path, monkeypatch, capsys):
    result = pretrain(micro_cfg(videos, steps=2), tmp_path / "run", progress=False)
    out = tmp_path / "pic.png"
    code, stdout, err = run_cli(monkeypatch, capsys, "reconstruct", videos / TRAIN_CLIPS[1], "--model",
                                tmp_path / "run", "--out", out, "--mask-ratio", "0.5", "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["model"] == str(result.checkpoint) and info["mask_ratio"] == 0.5 and out.exists()
    code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "missing.mp4", "--model",
                           result.checkpoint, "--out", out)
    assert code == 1 and err.startswith("error:") and "missing.mp4" in err


def test_default_settings_train_on_a_folder_of_three_short_clips(tmp_path, monkeypatch, capsys):
    """The default batch of 8 on 3 clips: each video gives several clips per epoch (repeated sampling), instead of
    a refusal."""
    three = tmp_path / "three"
    three.mkdir()
    for name in ("houseplant_static_short.mp4", "flower_timelapse.mp4", "bw_film_dialogue.mp4"):
        (three / name).symlink_to(bundled_clips() / name)
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "pretrain", three, "--out", run, "--epochs", "2", "--json",
                             *sum((["--set", s] for s in MICRO_SET), []))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["finished"] and summary["step"] == 2 and summary["skipped"] == []  # 3 videos × 3 clips: 1 step
    assert "batch_size: 8" in (run / "pretrain.yaml").read_text()
