"""The image explorer: x_t and x0_hat at chosen times for a few fixed-noise samples, and the final grid.

Imports: torch, diffedu.assets and diffedu.sampling (io), diffedu._checks, diffedu.schedules, and .base beside it.
"""
from __future__ import annotations

import torch

from .. import assets
from .._checks import check_choice, check_int
from ..sampling import guided
from ..schedules import Schedule
from .base import Explorer, as_target

SHIPPED_UNETS = {"mnist": "load_mnist_unet", "digits": "load_digits_unet"}   # from_assets(name): the loader


def mosaic(tiles: torch.Tensor, pad: int = 1) -> torch.Tensor:
    """(R, K, C, H, W) images in [-1, 1] -> one (R(H+pad)-pad, K(W+pad)-pad) grey or (..., 3) RGB array, white gaps."""
    R, K, C, H, W = tiles.shape
    t = torch.nn.functional.pad(tiles.clamp(-1, 1), (0, pad, 0, pad), value=1.0)    # white separators
    img = t.permute(0, 3, 1, 4, 2).reshape(R * (H + pad), K * (W + pad), C)[:-pad, :-pad]
    return img[..., 0] if C == 1 else (img + 1) / 2


class ImageExplorer(Explorer):
    """Sample images with any package sampler; see x_t and x0_hat along the way and the final grid.

    model      eps(x_t, t) on `sched` (denoiser= for the EDM samplers: default derived from it), or a
               `Target` (e.g. `Trained.target()`), for images of `shape` = (C, H, W) in [-1, 1]
    n          images sampled (all shown in the final grid); the first n_strip are shown along the
               way, at n_times step indices spread evenly over the trajectory (first and last included)

    `set(sampler=, eta=, steps=, seed=)` returns the Figure; `last.traj` holds the Trajectory.
    """

    figsize = (7.6, 4.4)

    def __init__(self, model, sched: Schedule | None = None, shape=(1, 16, 16), n: int = 8, n_strip: int = 3,
                 n_times: int = 6, *, denoiser=None, **settings):
        shape = tuple(int(v) for v in shape)
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise ValueError(f"shape must be (C, H, W) with C = 1 or 3, got {shape}")
        super().__init__(as_target(model, sched, denoiser), shape, n, **settings)
        self.n_strip, self.n_times = min(n_strip, self.n), max(2, n_times)

    @classmethod
    def from_assets(cls, name: str = "mnist", shape=None, n: int = 8, **kwargs):
        """The explorer on a shipped UNet: "mnist" (28x28, `assets.load_mnist_unet()`) or "digits" (8x8,
        `assets.load_digits_unet()`).  The MNIST UNet is class-conditional: sample i asks for class i mod 10
        at w = 0 (the conditional model, no guidance), which samples its p(x) over the ten classes; its
        null class, the unconditional model, is weaker (`benchmarks/results/mnist_table.md`)."""
        check_choice(name, "name", tuple(SHIPPED_UNETS))
        trained = getattr(assets, SHIPPED_UNETS[name])()
        n = check_int(n, "n", lo=1)
        if trained.num_classes is not None:
            trained = guided(trained, n, labels=torch.arange(n) % trained.num_classes)
        return cls(trained.target(), shape=shape or tuple(trained.shape), n=n, **kwargs)

    def options(self) -> dict:
        return dict(super().options(), shape=self.shape[1:], n=self.n, n_strip=self.n_strip, n_times=self.n_times)

    def columns(self, res) -> list[int]:
        """The step indices shown in the strip: n_times of 0..steps, evenly spread."""
        n = len(res.traj)
        return torch.linspace(0, n, self.n_times).round().long().tolist()

    def grid_shape(self) -> tuple[int, int]:
        """(rows, cols) of the final grid: about as tall as the strip."""
        cols = -(-self.n // (2 * self.n_strip))
        return -(-self.n // cols), cols

    def build_figure(self) -> list:
        C, H, W = self.shape[1:]
        rows, cols = self.grid_shape()
        gs = self.fig.add_gridspec(1, 2, width_ratios=[self.n_times / (2 * self.n_strip), cols / rows])
        self.ax_strip, self.ax_grid = self.fig.add_subplot(gs[0]), self.fig.add_subplot(gs[1])
        kw = dict(cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        strip = mosaic(torch.zeros(2 * self.n_strip, self.n_times, C, H, W))
        grid = mosaic(torch.zeros(rows, cols, C, H, W))
        self._strip = self.ax_strip.imshow(strip.numpy(), **kw)
        self._grid = self.ax_grid.imshow(grid.numpy(), **kw)
        self.ax_strip.set_xticks([(W + 1) * k + W / 2 - 0.5 for k in range(self.n_times)])
        self.ax_strip.set_yticks([(H + 1) * r + H / 2 - 0.5 for r in range(2 * self.n_strip)],
                                 [f"{'x_t' if r % 2 == 0 else 'x0_hat'} #{r // 2 + 1}" for r in range(2 * self.n_strip)])
        self.ax_strip.tick_params(labelsize=7, length=0)
        self.ax_strip.set_title("x_t (DDPM scale) and x0_hat along the path", fontsize=9)
        self.ax_grid.set_axis_off()
        self.ax_grid.set_title(f"final samples ({self.n})", fontsize=9)
        self._title = self.fig.suptitle("", fontsize=9)
        self.fig.subplots_adjust(left=0.09, right=0.99, bottom=0.1, top=0.88, wspace=0.08)
        return []                                   # the tick labels change too: redraw it all

    def draw(self, res):
        C, H, W = self.shape[1:]
        xs, x0s, S = res.display_xs, res.traj.x0_hats, self.n_strip
        cols = self.columns(res)
        x_t = torch.stack([xs[i, :S] for i in cols], 1)                              # (S, K, C, H, W)
        x0 = torch.stack([x0s[min(i, len(x0s) - 1), :S] for i in cols], 1)
        both = torch.stack([x_t, x0], 1).reshape(2 * S, len(cols), C, H, W)
        self._strip.set_data(mosaic(both.float()).numpy())
        rows, gcols = self.grid_shape()
        final = res.traj.x.float()
        final = torch.cat([final, final.new_full((rows * gcols - self.n, C, H, W), 1.0)])
        self._grid.set_data(mosaic(final.reshape(rows, gcols, C, H, W)).numpy())
        ts = res.traj.ts.tolist()
        sym = r"$\sigma$" if res.spec.ve else "t"
        self.ax_strip.set_xticklabels([f"step {i}\n{sym}={ts[i]:.4g}" for i in cols])
        self._title.set_text(self.title())
