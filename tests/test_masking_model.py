import torch

from tubelet import ModelConfig, VideoMAE, tube_mask


def tiny_cfg(**kw):
    base = dict(num_frames=4, image_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_dim=128,
                decoder_dim=32, decoder_depth=2, decoder_heads=2, decoder_mlp_dim=64)
    base.update(kw)
    return ModelConfig(**base)


def test_pretrain_forward_shapes_and_finite_loss():
    cfg = tiny_cfg()
    model = VideoMAE(cfg)
    video = torch.randn(2, 3, 4, 32, 32)
    mask = tube_mask(cfg.grid, 0.75, batch=2, generator=torch.Generator().manual_seed(0))
    out = model(video, mask=mask)
    assert out.pred.shape == (2, int(mask[0].sum()), cfg.patch_dim)
    assert torch.isfinite(out.loss)
