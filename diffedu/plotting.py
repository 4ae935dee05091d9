"""Plotting: samples as image grids and 2-D scatter plots, on a matplotlib Axes or into a PNG file.

Shared by the CLI, the training loop's preview grids, the notebooks and the widgets.
Imports: numpy, torch, matplotlib (Figure, never pyplot) and PIL only; nothing from diffedu.
"""
from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image


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


def show_points(ax, x: torch.Tensor, title: str | None = None) -> None:
    """Draw 2-D points (N, 2) as a scatter plot on a matplotlib Axes, with equal axes."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"show_points wants 2-D points (N, 2), got {shape}")
    x = x.detach().float().cpu()
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5)
    ax.set(aspect="equal", xlabel="x_1", ylabel="x_2", title=f"{len(x)} samples" if title is None else title)


def save_grid(x: torch.Tensor, path, ncol: int | None = None, scale: int | None = None) -> Path:
    """Samples -> one PNG: images (N, C, H, W) in [-1, 1] as an `image_grid` of `ncol` tiles per row,
    every pixel drawn `scale` x `scale` (default: tiles of at least 32 px); 2-D points (N, 2) as a scatter plot.

    Returns the path written (its folder is created if needed).
    """
    path = Path(path)
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 4):
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"save_grid wants images (N, C, H, W) or 2-D points (N, 2), got {shape}")
    for name, value in (("ncol", ncol), ("scale", scale)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if x.dim() == 2:
        fig = Figure(figsize=(4, 4), dpi=100)   # not pyplot: leaves a notebook's backend alone
        show_points(fig.subplots(), x)
        fig.savefig(path, bbox_inches="tight")
        return path
    scale = scale or max(1, -(-32 // x.shape[-2]))
    im = Image.fromarray((image_grid(x, ncol, pad_value=0.0) * 255).round().astype("uint8"))
    im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST).save(path)
    return path
