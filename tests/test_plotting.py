"""image_grid and save_grid: tiles land where they should, in [0, 1]; bad shapes are refused."""
import pytest
import torch
from PIL import Image

from diffedu.plotting import image_grid, save_grid


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


def test_save_grid_puts_ncol_tiles_in_a_row(tmp_path):
    x = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 1, 8, 8)      # tile i has the value of i
    path = save_grid(x, tmp_path / "new" / "grid.png", ncol=3, scale=1)
    im = Image.open(path)
    assert im.size == (3 * 9 + 1, 2 * 9 + 1) and im.mode == "L"           # (width, height): 2 rows of 3
    assert im.getpixel((1, 1)) == 0 and im.getpixel((2 * 9 + 1, 9 + 1)) == 255   # tile 0 black, tile 5 white
    save_grid(x, tmp_path / "tall.png", ncol=2, scale=1)
    assert Image.open(tmp_path / "tall.png").size == (2 * 9 + 1, 3 * 9 + 1)
    save_grid(x, tmp_path / "big.png", ncol=3)                              # default: 8 px tiles drawn 4x
    assert Image.open(tmp_path / "big.png").size == (4 * 28, 4 * 19)
    rgb = Image.open(save_grid(torch.zeros(4, 3, 5, 5), tmp_path / "rgb.png", scale=2))
    assert rgb.size == (2 * 13, 2 * 13) and rgb.mode == "RGB"


def test_save_grid_draws_2d_points_as_a_scatter_plot(tmp_path):
    path = save_grid(torch.randn(200, 2, generator=torch.Generator().manual_seed(0)), tmp_path / "points.png")
    w, h = Image.open(path).size
    assert w > 200 and h > 200


def test_save_grid_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or 2-D points \(N, 2\), got \(3, 3, 3\)"):
        save_grid(torch.zeros(3, 3, 3), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(N, 2\), got \(10, 3\)"):
        save_grid(torch.zeros(10, 3), tmp_path / "x.png")
    with pytest.raises(ValueError, match="ncol must be an integer >= 1 or None, got 0"):
        save_grid(torch.zeros(4, 1, 8, 8), tmp_path / "x.png", ncol=0)
    with pytest.raises(ValueError, match="scale must be"):
        save_grid(torch.zeros(4, 1, 8, 8), tmp_path / "x.png", scale=1.5)
    assert not (tmp_path / "x.png").exists()
