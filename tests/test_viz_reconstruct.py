"""The reconstruction picture: pixel-space predictions, the four rows, the PNG, a real clip."""

from __future__ import annotations

import pytest
import torch
from conftest import micro_model
from PIL import Image

from tubelet import VideoMAE, load_model, preset, save_model
from tubelet.demo import bundled_clips
from tubelet.errors import TubeletError
from tubelet.model.masking import Masking
from tubelet.model.vit import patchify
from tubelet.viz.reconstruct import (
    GREY,
    figure,
    load_clip,
    predicted_pixels,
    reconstruct,
    reconstruct_video,
    to_pixels,
)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_a_perfect_prediction_gives_back_the_original_pixels(norm_pix):
    model = micro_model(image_size=64, norm_pix_loss=norm_pix)
    video = torch.randn(1, 3, 4, 64, 64)
    mask = Masking(model.config.grid, "tube", 0.75).fixed(seed=1)[None]
    target = model.targets(video, mask)[0]  # what the loss asks the decoder to output
    patches = patchify(to_pixels(video), 2, 16, channel_last=True)[0][mask[0]]
    assert torch.allclose(predicted_pixels(target, patches, norm_pix), patches, atol=1e-5)


def test_rows_show_original_masked_prediction_and_pasted():
    model = micro_model(image_size=64)
    video = torch.randn(3, 4, 64, 64)
    mask = Masking(model.config.grid, "tube", 0.75).fixed(seed=0)
    rec = reconstruct(model, video, mask)
    original = to_pixels(video[None])[0].permute(1, 2, 3, 0).clamp(0, 1)  # [T, H, W, 3]
    assert torch.allclose(rec.original, original)
    hidden = mask.view(2, 4, 4)[0].repeat_interleave(16, 0).repeat_interleave(16, 1)  # [H, W] for every frame
    assert torch.all(rec.masked[:, hidden] == GREY)
    assert torch.allclose(rec.masked[:, ~hidden], original[:, ~hidden])
    assert torch.allclose(rec.pasted[:, ~hidden], original[:, ~hidden])  # visible patches pasted back
    assert torch.equal(rec.pasted[:, hidden], rec.reconstruction[:, hidden])
    assert torch.all(rec.reconstruction[:, ~hidden] == GREY)
    assert rec.mask_ratio == 0.75 and rec.loss > 0
    assert model.training  # the train/eval mode is restored


def test_figure_has_four_rows_and_a_column_per_frame():
    model = micro_model(image_size=64)
    rec = reconstruct(model, torch.randn(3, 4, 64, 64), Masking(model.config.grid, "tube", 0.9).fixed(0))
    img = figure(rec, title="t", cell_height=64)
    assert img.size == (150 + 4 * (64 + 4), 26 + 4 * (64 + 4))
    assert figure(rec, max_columns=2, cell_height=64).size[0] == 150 + 2 * 68


def test_reconstruct_video_on_a_real_clip(tmp_path):
    model = micro_model(image_size=64)
    save_model(model, tmp_path / "ckpt")
    clip = bundled_clips() / "flower_timelapse.mp4"
    rec = reconstruct_video(load_model(tmp_path / "ckpt"), clip, tmp_path / "pic.png", mask_ratio=0.75)
    assert Image.open(tmp_path / "pic.png").size[0] > 4 * 64
    assert rec.mask_ratio == 0.75 and rec.loss > 0
    x = load_clip(clip, model.config)
    assert x.shape == (3, 4, 64, 64) and -2.2 < x.min() < x.max() < 2.7  # ImageNet-normalised pixels


def test_reconstruct_needs_a_decoder(tmp_path):
    save_model(VideoMAE(preset("vit_tiny", num_frames=4, image_size=64, depth=2, decoder_depth=0)), tmp_path / "enc")
    with pytest.raises(TubeletError, match="no decoder"):
        reconstruct_video(load_model(tmp_path / "enc"), bundled_clips() / "flower_timelapse.mp4", tmp_path / "x.png")
