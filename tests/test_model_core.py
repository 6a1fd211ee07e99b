"""Model core against the references: sinusoid table, tube and running-cell masks, v2 decoder length,
official parameter counts, gradient checkpointing."""

import numpy as np
import pytest
import torch
from conftest import small_config
from hypothesis import given, settings
from hypothesis import strategies as st

from tubelet import VideoMAE, preset, running_cell_mask, tube_mask
from tubelet.model.vit import sinusoid_table

# ---- sinusoid position table ------------------------------------------------------------------------


@pytest.mark.parametrize("n,dim", [(1568, 384), (196, 768), (64, 1408), (4096, 16), (32, 48), (7, 10)])
def test_sinusoid_table_is_bit_identical_to_reference(n, dim):
    reference = pytest.importorskip("transformers.models.videomae.modeling_videomae").get_sinusoid_encoding_table
    ours, ref = sinusoid_table(n, dim), reference(n, dim)
    assert ours.dtype == ref.dtype == torch.float32 and ours.shape == ref.shape == (1, n, dim)
    assert (ours - ref).abs().max().item() == 0.0


# ---- tube masks -------------------------------------------------------------------------------------

grids = st.tuples(st.integers(1, 8), st.integers(1, 14), st.integers(1, 14))
ratios = st.floats(0.0, 0.99)
seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=60, deadline=None)
@given(grid=grids, ratio=ratios, seed=seeds, batch=st.integers(1, 4))
def test_tube_mask_same_spatial_mask_at_every_time_step(grid, ratio, seed, batch):
    t, h, w = grid
    mask = tube_mask(grid, ratio, batch, torch.Generator().manual_seed(seed))
    assert mask.shape == (batch, t * h * w) and mask.dtype == torch.bool
    frames = mask.view(batch, t, h * w)
    assert (frames == frames[:, :1]).all()  # a tube: the same cells at every t'
    assert (frames.sum(-1) == int(ratio * h * w)).all()  # exactly int(ratio·h'·w') per frame


def test_tube_mask_varies_with_seed_and_sample():
    a = tube_mask((8, 14, 14), 0.9, 4, torch.Generator().manual_seed(0))
    b = tube_mask((8, 14, 14), 0.9, 4, torch.Generator().manual_seed(1))
    assert not torch.equal(a, b) and not torch.equal(a[0], a[1])
    assert int(a[0].sum()) == 8 * 176  # 16×224², ViT-B: 176 of 196 cells masked per frame


# ---- running-cell masks -----------------------------------------------------------------------------


def running_cell_oracle(grid, ratio):
    """Every mask the official v2 decoder-mask generator can draw, built from its description: a queue of
    int(4·ratio) ones then zeros; a pointer starting at p ∈ {0..3} advances once before each time step; the
    2×2 cell reads the queue from the pointer on (wrapping) and is tiled over the frame. → [4, t·h·w] bool."""
    t, h, w = grid
    n_drop = int(4 * ratio)
    queue = [1] * n_drop + [0] * (4 - n_drop)
    maps = []
    for start in range(4):
        frames, pointer = [], start
        for _ in range(t):
            pointer += 1
            cell = np.array([queue[(slot + pointer) % 4] for slot in range(4)]).reshape(2, 2)
            frames.append(np.tile(cell, (h // 2, w // 2)).ravel())
        maps.append(np.concatenate(frames))
    return torch.tensor(np.stack(maps), dtype=torch.bool)


even = st.integers(1, 7).map(lambda k: 2 * k)


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 8), h=even, w=even, ratio=st.sampled_from([0.25, 0.5, 0.75, 0.3, 0.6]), seed=seeds,
       batch=st.integers(1, 6))
def test_running_cell_mask_matches_official_construction(t, h, w, ratio, seed, batch):
    grid = (t, h, w)
    mask = running_cell_mask(grid, ratio, batch, torch.Generator().manual_seed(seed))
    candidates = running_cell_oracle(grid, ratio)
    assert mask.shape == (batch, t * h * w)
    for row in mask:
        assert (candidates == row).all(dim=1).any()  # one of the official maps
    per_frame = mask.view(batch, t, h * w).sum(-1)
    assert (per_frame == int(4 * ratio) * h * w // 4).all()


def test_running_cell_mask_draws_every_phase():
    mask = running_cell_mask((8, 14, 14), 0.5, 64, torch.Generator().manual_seed(0))
    candidates = running_cell_oracle((8, 14, 14), 0.5)
    phases = {int((candidates == row).all(dim=1).nonzero()) for row in mask}
    assert phases == {0, 1, 2, 3}


def test_v2_decoder_sees_944_tokens_at_vit_b_geometry():
    """Dual masking at 16×224², ViT-B: 0.9 tube leaves 160 visible tokens; the 0.5 running cell keeps 784
    positions for reconstruction: the decoder runs on 160 + 784 = 944 tokens."""
    cfg = preset("vit_base", depth=1, decoder_depth=1)
    model = VideoMAE(cfg).eval()
    g = torch.Generator().manual_seed(0)
    mask = tube_mask(cfg.grid, 0.9, 1, g)
    decoder_mask = running_cell_mask(cfg.grid, 0.5, 1, g)
    seen = []
    model.decoder.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 224, 224, generator=g), mask=mask, decoder_mask=decoder_mask)
    assert seen == [(1, 944, cfg.decoder_dim)]
    assert out.pred.shape == (1, 784, cfg.patch_dim) and torch.isfinite(out.loss)


# ---- parameter counts and shapes (meta device: no memory, no init) ----------------------------------


def meta_model(cfg):
    with torch.device("meta"):
        return VideoMAE(cfg)


def test_vit_b_parameter_counts_match_official():
    assert meta_model(preset("vit_base")).num_params() == 94_210_944  # pretraining, decoder 384 × 4
    assert meta_model(preset("vit_base", num_classes=400, decoder_depth=0)).num_params() == 86_534_800


def test_v2_giant_preset_shapes():
    model = meta_model(preset("vit_giant"))
    sd = model.state_dict()
    assert sd["encoder.patch_embed.proj.weight"].shape == (1408, 3, 2, 14, 14)
    assert sd["encoder.blocks.0.mlp.fc1.weight"].shape == (6144, 1408)
    assert sd["encoder.blocks.39.attn.qkv.weight"].shape == (3 * 1408, 1408) and "encoder.blocks.40.norm1.weight" \
        not in sd
    assert model.encoder.blocks[0].attn.num_heads == 16
    assert sd["decoder.head.weight"].shape == (2 * 14 * 14 * 3, 512)
    assert model.config.grid == (8, 16, 16)


# ---- gradient checkpointing -------------------------------------------------------------------------


def test_gradient_checkpointing_gives_same_loss_and_grads():
    plain = VideoMAE(small_config()).train()
    ckpt = VideoMAE(small_config(grad_checkpointing=True)).train()
    ckpt.load_state_dict(plain.state_dict())
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, 4, 32, 32, generator=g)
    mask = tube_mask(plain.config.grid, 0.75, 2, g)
    losses = []
    for model in (plain, ckpt):
        loss = model(video, mask=mask).loss
        loss.backward()
        losses.append(loss.detach())
    assert torch.equal(losses[0], losses[1])
    grads = dict(ckpt.named_parameters())
    for name, p in plain.named_parameters():
        assert p.grad is not None and torch.allclose(p.grad, grads[name].grad, rtol=0, atol=1e-7), name


def test_pretrain_forward_shapes_and_finite_loss():
    cfg = small_config()
    model = VideoMAE(cfg)
    video = torch.randn(2, 3, 4, 32, 32)
    mask = tube_mask(cfg.grid, 0.75, batch=2, generator=torch.Generator().manual_seed(0))
    out = model(video, mask=mask)
    assert out.pred.shape == (2, int(mask[0].sum()), cfg.patch_dim)
    assert torch.isfinite(out.loss)
