import torch
from conftest import small_config

from tubelet import VideoMAE, tube_mask


def test_pretrain_forward_shapes_and_finite_loss():
    cfg = small_config()
    model = VideoMAE(cfg)
    video = torch.randn(2, 3, 4, 32, 32)
    mask = tube_mask(cfg.grid, 0.75, batch=2, generator=torch.Generator().manual_seed(0))
    out = model(video, mask=mask)
    assert out.pred.shape == (2, int(mask[0].sum()), cfg.patch_dim)
    assert torch.isfinite(out.loss)
