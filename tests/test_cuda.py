"""On a CUDA GPU (skipped without one; run them there with `pytest -m cuda`): the model gives on the GPU what it gives
on the CPU and what transformers gives on the GPU, bf16 autocast stays near fp32, and pretraining runs there end to
end, with a resume and a fine-tune from its checkpoint. torchrun over NCCL (DDP and FSDP, two GPUs or more) is the
CPU's torchrun test with `--device cuda` (test_train_pretrain.py)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import BUNDLED_VIDEOS, TRAIN_CLIPS, run_cli, small_config
from test_parity_transformers import VideoMAEForPreTraining, clip, close, hf_config, hf_in, mask_for, randomise
from test_train_pretrain import MICRO_SET

from tubelet import VideoMAE, load_model
from tubelet.train.metrics import read_metrics
from tubelet.train.run_state import latest_checkpoint, load_trainer_state

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]

MICRO = [arg for s in (*MICRO_SET, "log_every=1") for arg in ("--set", s)]


@pytest.fixture(autouse=True)
def exact_fp32():
    """TF32 off for matmuls and convolutions (cuDNN's default is on), so fp32 means fp32."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_pretraining_on_gpu_matches_cpu(norm_pix_loss):
    torch.manual_seed(0)
    model = randomise(VideoMAE(small_config(norm_pix_loss=norm_pix_loss)))
    video, mask = clip(), mask_for()
    with torch.no_grad():
        want = model(video, mask=mask)
        got = model.cuda()(video.cuda(), mask=mask.cuda())
    close(got.pred.cpu(), want.pred)  # within the parity tests' TOL: fp32 on both sides, TF32 off
    close(got.loss.cpu(), want.loss)


def test_pretraining_on_gpu_matches_transformers_on_gpu(tmp_path):
    hf = randomise(VideoMAEForPreTraining(hf_config()))
    hf.save_pretrained(tmp_path / "hf")
    ours = load_model(tmp_path / "hf").eval().cuda()
    hf = hf.cuda()
    video, mask = clip().cuda(), mask_for().cuda()
    with torch.no_grad():
        want = hf(hf_in(video), bool_masked_pos=mask)
        got = ours(video, mask=mask)
    close(got.pred, want.logits)
    close(got.loss, want.loss)


def test_bf16_autocast_stays_near_fp32():
    """The engine's default on a GPU: features within cosine 0.99 of fp32's, the loss within 2 % (the final norm
    gives fp32 under autocast either way)."""
    torch.manual_seed(0)
    model = VideoMAE(small_config()).cuda().eval()
    video, mask = clip().cuda(), mask_for().cuda()
    with torch.no_grad():
        fp32_loss, fp32_feat = model(video, mask=mask).loss, model.encoder(video)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16_loss, bf16_feat = model(video, mask=mask).loss, model.encoder(video)
    assert torch.isfinite(bf16_feat).all() and torch.isfinite(bf16_loss)
    cos = F.cosine_similarity(bf16_feat.float().flatten(1), fp32_feat.flatten(1)).min().item()
    assert cos > 0.99 and abs(bf16_loss.item() - fp32_loss.item()) <= 0.02 * fp32_loss.item()


def test_pretrain_cli_on_gpu_resumes_and_fine_tunes(videos, tmp_path, monkeypatch, capsys):
    """`--device cuda` with the default precision (bf16 there): 4 steps, a resume to 6, checkpoints that load on
    the CPU, then a fine-tune from them on the GPU."""
    run = tmp_path / "run"
    args = ["pretrain", videos, "--preset", "vit_tiny", "--out", run, "--save-every", 2, "--batch-size", 2,
            "--workers", 2, "--device", "cuda", "--json", *MICRO]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--steps", 4)
    assert code == 0, err
    first = json.loads(out)
    assert first["step"] == 4 and first["precision"] == "bf16" and first["device"] == "cuda:0"
    code, out, err = run_cli(monkeypatch, capsys, *args, "--steps", 6, "--resume")
    assert code == 0, err
    assert json.loads(out)["step"] == 6
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == [1, 2, 3, 4, 5, 6]
    state = load_trainer_state(latest_checkpoint(run))
    assert state["step"] == 6 and "cuda" in state["rng"][0]
    model = load_model(latest_checkpoint(run))  # onto the CPU
    assert next(model.parameters()).device.type == "cpu"

    for label, name in (("flower", TRAIN_CLIPS[0]), ("film", TRAIN_CLIPS[1])):
        (tmp_path / "labelled" / label).mkdir(parents=True)
        (tmp_path / "labelled" / label / name).symlink_to(BUNDLED_VIDEOS / name)
    code, out, err = run_cli(monkeypatch, capsys, "finetune", tmp_path / "labelled", "--init",
                             latest_checkpoint(run), "--out", tmp_path / "ft", "--steps", 2, "--batch-size", 2,
                             "--workers", 0, "--device", "cuda", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["finished"] and summary["num_classes"] == 2
