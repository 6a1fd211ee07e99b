"""Pretraining recipe config, optimizer groups, LR schedule, checkpoint files and RNG state."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from conftest import micro_model

from tubelet.errors import CheckpointError, TubeletError
from tubelet.settings import parse_set
from tubelet.train.config import PretrainConfig, from_dict, read_config_file, resolve, save_config
from tubelet.train.optim import WarmupCosine, build_optimizer, decays, param_groups, scaled_lr, warmup_cosine
from tubelet.train.run_state import (
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

# ---- config ---------------------------------------------------------------------------------------

def test_defaults_are_the_v1_recipe():
    cfg = resolve({"data": "x", "steps": 1})
    assert cfg.preset == "vit_small"
    assert cfg.betas == (0.9, 0.95) and cfg.weight_decay == 0.05 and cfg.base_lr == 1.5e-4
    assert cfg.mask_type == "tube" and cfg.mask_ratio == 0.9 and cfg.decoder_mask_ratio == 0.0
    assert cfg.warmup_frac == 0.05


def test_v2_presets_bring_dual_masking_and_repeats():
    cfg = resolve({"data": "x", "steps": 1, "preset": "vit_giant"})
    assert cfg.decoder_mask_ratio == 0.5 and cfg.repeats == 4 and cfg.clip_grad == 0.02
    assert cfg.grad_checkpointing and cfg.model_config().grad_checkpointing


def test_layers_file_then_cli_then_set(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "vit_tiny"\nmask_ratio = 0.75\nbatch_size = 4\n[model]\nnum_frames = 8\n')
    cfg = resolve({"data": "videos", "batch_size": 2, "steps": 10}, toml,
                  ["mask_ratio=0.8", "model.image_size=112", "betas=[0.9, 0.99]", "deterministic=true"])
    assert cfg.preset == "vit_tiny" and cfg.batch_size == 2 and cfg.mask_ratio == 0.8
    assert cfg.model == {"num_frames": 8, "image_size": 112}
    assert cfg.model_config().grid == (4, 7, 7)
    assert cfg.betas == (0.9, 0.99) and cfg.deterministic is True


def test_yaml_file_and_saved_config_round_trip(tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("preset: vit_tiny\nsteps: 5\nmodel:\n  depth: 2\n")
    cfg = resolve({"data": "v"}, yml)
    save_config(cfg, tmp_path / "saved.yaml")
    again = from_dict(read_config_file(tmp_path / "saved.yaml"))
    assert again == cfg and again.model_config().depth == 2


@pytest.mark.parametrize("bad", [
    {"data": "x", "steps": 1, "nope": 1},
    {"data": "x", "steps": 1, "model": {"depthh": 2}},
    {"data": "x", "steps": 1, "mask_ratio": 1.0},
    {"data": "x", "steps": 1, "epochs": 2},
    {"data": "x", "steps": 1, "preset": "vit_enormous"},
    {"data": "x", "steps": 1, "precision": "fp8"},
    {"data": "x", "steps": "many"},
    {"data": "x", "steps": 1, "model": {"decoder_depth": 0}},
])
def test_bad_settings_name_the_problem(bad):
    with pytest.raises(TubeletError):
        resolve(bad)


def test_set_syntax_and_bad_files(tmp_path):
    assert parse_set(["clip_grad=0.5", "model.depth=2"]) == {"clip_grad": 0.5, "model": {"depth": 2}}
    assert resolve({"data": "x", "steps": 1}, sets=["base_lr=1e-3"]).base_lr == 1e-3  # YAML reads 1e-3 as text
    with pytest.raises(TubeletError, match="key=value"):
        parse_set(["lr"])
    with pytest.raises(TubeletError, match="only model"):
        parse_set(["optim.lr=1"])
    broken = tmp_path / "b.toml"
    broken.write_text("steps = = 3")
    with pytest.raises(TubeletError, match="not valid TOML"):
        read_config_file(broken)
    with pytest.raises(TubeletError, match="cannot read"):
        read_config_file(tmp_path / "missing.yaml")


# ---- optimizer and schedule -----------------------------------------------------------------------

def test_no_weight_decay_on_biases_norms_mask_token_positions():
    model = micro_model(learnable_pos_emb=True)
    names = dict(model.named_parameters())
    for name in ["encoder.blocks.0.attn.qkv.weight", "encoder.patch_embed.proj.weight", "decoder.head.weight",
                 "encoder_to_decoder.weight"]:
        assert decays(name, names[name]), name
    for name in ["encoder.blocks.0.attn.q_bias", "encoder.blocks.0.norm1.weight", "mask_token",
                 "encoder.pos_embed", "decoder.head.bias", "encoder.norm.bias"]:
        assert not decays(name, names[name]), name
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)


def test_lr_scaling_and_warmup_cosine_shape():
    assert scaled_lr(1.5e-4, 512) == pytest.approx(3e-4)
    lrs = [warmup_cosine(s, 100, 10, 1e-3, 1e-6, 1e-5) for s in range(100)]
    assert lrs[0] == 1e-6 and lrs[10] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # warmup rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # cosine falls
    assert lrs[55] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 0.5)))
    assert 1e-5 < lrs[-1] < 2e-5


def test_scheduler_state_resumes_the_sequence():
    def run(n, state=None):
        opt = build_optimizer(torch.nn.Linear(2, 2), 1e-3, 0.05, (0.9, 0.95))
        sched = WarmupCosine(opt, 20, 4, 1e-3, 1e-6, 1e-5)
        if state:
            sched.load_state_dict(state)
        seen = []
        for _ in range(n):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return seen, sched.state_dict()

    full, _ = run(12)
    first, state = run(6)
    second, _ = run(6, state)
    assert first + second == full


# ---- checkpoints ----------------------------------------------------------------------------------

def test_checkpoints_are_complete_pruned_and_weights_only(tmp_path):
    model = micro_model()
    opt = build_optimizer(model, 1e-3, 0.05, (0.9, 0.95))
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, {"step": step, "optimizer": opt.state_dict(), "rng": rng_state()},
                        keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002", "step_00000003"]
    (tmp_path / "checkpoints" / ".step_00000004.tmp").mkdir()  # a save killed half-way
    (tmp_path / "checkpoints" / "step_00000005").mkdir()  # no trainer.pt: incomplete
    last = latest_checkpoint(tmp_path)
    assert last.name == "step_00000003"
    state = load_trainer_state(last)
    assert state["step"] == 3 and "torch" in state["rng"]
    save_checkpoint(tmp_path, 3, model, {"step": 3}, keep_last=2)  # the same step again replaces it
    assert load_trainer_state(last) == {"step": 3}


def test_unreadable_trainer_state_is_a_checkpoint_error(tmp_path):
    (tmp_path / "trainer.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="trainer.pt"):
        load_trainer_state(tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        load_trainer_state(tmp_path / "nowhere")


def test_rng_state_round_trips_through_weights_only_load(tmp_path):
    torch.save(rng_state(), tmp_path / "rng.pt")
    before = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    after = (random.random(), np.random.rand(), torch.rand(3))
    assert before[0] == after[0] and before[1] == after[1] and torch.equal(before[2], after[2])


def test_auto_precision_is_bf16_where_bf16_matmuls_are_native():
    from tubelet.train.engine import resolve_precision

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", torch.device("cpu"), cpu_bf16=False) == "fp32"
    assert resolve_precision("auto", torch.device("cpu"), cpu_bf16=True) == "bf16"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    assert resolve_precision("fp16", torch.device("cpu")) == "fp16"


def test_config_dataclass_is_validated_directly():
    with pytest.raises(TubeletError, match="warmup_frac"):
        PretrainConfig(data="x", steps=1, warmup_frac=1.5)
