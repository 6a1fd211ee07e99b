"""The content view (catalog.embed.content_view): what the encoder sees of a frame. A landscape picture gives the
classic centre square; bars are cut away; a portrait re-frame keeps the original's scale and its padding never
reaches the encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from serve_helpers import clip

from tubelet.catalog.embed import clips_of, content_view, load_embedder
from tubelet.data import read_frames_at
from tubelet.data.transforms import center_crop_box, crop, resize_short

SIZE, PATCH = 64, 16  # a 4 × 4 token grid
TINY = dict(depth=2, num_frames=4, image_size=SIZE)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """Real landscape frames [4, 64, W, 3] (short side 64)."""
    out, _ = read_frames_at(clip("soccer_juggling.mp4"), [0.5, 0.75, 1.0, 1.25], size=SIZE)
    assert out.shape[2] > out.shape[1]
    return out


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().mean())


def test_a_landscape_picture_gives_the_centre_square(frames):
    view, columns = content_view(frames, SIZE, PATCH)
    assert columns == SIZE // PATCH
    assert torch.equal(view, crop(resize_short(frames, SIZE), center_crop_box(*frames.shape[1:3], SIZE)))


def test_black_bars_are_cut_away(frames):
    """The landscape picture letterboxed in a square frame (bars above and below, as a square re-post) is seen
    as the bare picture, not shrunk between bars."""
    h, w = frames.shape[1:3]
    boxed = torch.zeros(len(frames), w, w, 3, dtype=torch.uint8)
    boxed[:, (w - h) // 2:(w - h) // 2 + h] = frames
    bare, _ = content_view(frames, SIZE, PATCH)
    view, columns = content_view(boxed, SIZE, PATCH)
    assert columns == SIZE // PATCH
    old = resize_short(boxed, SIZE)  # what the centre square (the whole square frame) would show
    assert _diff(view, bare) < _diff(old, bare) / 3  # (the box keeps a row of bar on each side: edges)


def test_a_portrait_reframe_keeps_the_original_scale(frames):
    """A full-height 9:16 column of the picture fills the middle token columns at the scale of the original's
    view, where it sits in the original (the centre square of the column would be a 1.8× zoom)."""
    h, w = frames.shape[1:3]
    cw = round(h * 9 / 16)
    x0 = (w - cw) // 2
    view, columns = content_view(frames[:, :, x0:x0 + cw], SIZE, PATCH)
    assert columns == round(cw / PATCH) < SIZE // PATCH
    lo = (SIZE // PATCH - columns) // 2 * PATCH
    picture = view[:, :, lo:lo + columns * PATCH]
    original, _ = content_view(frames, SIZE, PATCH)
    at = x0 - (w - SIZE) // 2  # the column's left edge in the original's view
    same = original[:, :, at:at + columns * PATCH]
    shifted = original[:, :, at + PATCH // 2:at + PATCH // 2 + columns * PATCH]
    column = resize_short(frames[:, :, x0:x0 + cw], SIZE)
    zoomed = crop(column, center_crop_box(*column.shape[1:3], SIZE))[:, :, lo:lo + columns * PATCH]
    assert _diff(picture, same) < min(_diff(picture, shifted), _diff(zoomed, same))


def test_padding_never_reaches_the_encoder(frames):
    """The hidden columns' pixels do not change the vector; the visible ones do; a full picture takes the
    ordinary path."""
    emb = load_embedder("vit_tiny", **TINY)
    h = frames.shape[1]
    view, columns = content_view(frames[:, :, :round(h * 9 / 16)], SIZE, PATCH)
    lo, hi = (SIZE // PATCH - columns) // 2 * PATCH, ((SIZE // PATCH - columns) // 2 + columns) * PATCH
    a = emb(clips_of(view[None]), columns)
    other = view.clone()
    other[:, :, :lo] = 0
    other[:, :, hi:] = 255
    assert np.allclose(a, emb(clips_of(other[None]), columns), atol=1e-6)
    other[:, :, lo:lo + PATCH] = 255 - other[:, :, lo:lo + PATCH]
    assert not np.allclose(a, emb(clips_of(other[None]), columns), atol=1e-3)
    full, n = content_view(frames, SIZE, PATCH)
    assert np.array_equal(emb(clips_of(full[None]), n), emb(clips_of(full[None])))
