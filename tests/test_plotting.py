"""image_grid: tiles land where they should, in [0, 1]; bad shapes are refused."""
import pytest
import torch

from diffedu.plotting import image_grid


def test_tiles_are_placed_row_by_row_with_padding():
    x = torch.stack([torch.full((1, 2, 3), v) for v in (-1.0, 0.0, 1.0)])     # 3 tiles of 2x3
    g = image_grid(x, ncol=2, pad=1, pad_value=0.25)
    assert g.shape == (2 * 3 + 1, 2 * 4 + 1)
    assert (g[1:3, 1:4] == 0.0).all() and (g[1:3, 5:8] == 0.5).all() and (g[4:6, 1:4] == 1.0).all()
    assert (g[0] == 0.25).all() and (g[4:6, 5:8] == 0.25).all()            # padding and the empty slot


def test_colour_images_keep_their_channels_last():
    g = image_grid(torch.zeros(4, 3, 5, 5))
    assert g.shape == (13, 13, 3)


def test_non_images_are_refused():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        image_grid(torch.zeros(10, 2))
