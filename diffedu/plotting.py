"""Small plotting helpers shared by the CLI, the notebooks and the widgets."""
from __future__ import annotations

import numpy as np
import torch


def image_grid(x: torch.Tensor, ncol: int | None = None, pad: int = 1, pad_value: float = 0.0) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] -> one tiled array in [0, 1] for `imshow` or a PNG.

    Tiles fill rows left to right, `ncol` per row (default: a near-square grid), with `pad` pixels
    of `pad_value` (0 black, 1 white) between them.  Returns (rows, cols) for C = 1, else
    (rows, cols, C).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"image_grid wants images (N, C, H, W), got {shape}")
    x = x.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    N, C, H, W = x.shape
    ncol = ncol or max(1, int(N**0.5 + 0.5))
    nrow = -(-N // ncol)
    grid = torch.full((C, nrow * (H + pad) + pad, ncol * (W + pad) + pad), float(pad_value))
    for i in range(N):
        r, c = divmod(i, ncol)
        top, left = pad + r * (H + pad), pad + c * (W + pad)
        grid[:, top:top + H, left:left + W] = x[i]
    grid = grid.permute(1, 2, 0).numpy()
    return grid[:, :, 0] if C == 1 else grid


def show_images(ax, x: torch.Tensor, ncol: int | None = None, title: str | None = None, pad_value: float = 0.5) -> None:
    """Draw images (N, C, H, W) in [-1, 1] as one grid on a matplotlib Axes, without ticks."""
    ax.imshow(image_grid(x, ncol, pad_value=pad_value), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
