"""The 2-D explorer: particle paths from noise to data, the final cloud on the true density, its distance.

Imports: numpy, torch, matplotlib, diffedu.assets (io), diffedu.metrics (apps), diffedu.models.analytic,
diffedu.samplers.registry, diffedu.schedules, and .base beside it.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection

from .. import assets
from ..metrics import sliced_wasserstein
from ..models.analytic import GaussianMixture
from ..samplers.registry import Target
from ..schedules import Schedule, linear_betas
from .base import Explorer, as_target

METRIC_LABELS = {"sliced_wasserstein": "SW to exact samples", "per_mode_frechet": "per-mode Fréchet"}


class Explorer2D(Explorer):
    """Sample 2-D points with any package sampler and watch where they go.

    data       a GaussianMixture (its exact eps-model and denoiser are used; default: the course's
               eight Gaussians), a trained eps-model eps(x_t, t) on `sched` (e.g. the 2-D MLP), or a
               `Target` (e.g. `Trained.target()`; it brings its schedule and denoiser)
    sched      the discrete schedule (default: linear betas, T = 1000)
    reference  the true data: a GaussianMixture (density contours, per-mode Fréchet) or an (N, 2)
               tensor of samples; defaults to `data` when that is a mixture, else eight Gaussians
    n          points sampled; n_paths of them are drawn as paths
    denoiser   D(x, sigma) for the EDM samplers (default: the mixture's exact one, or derived from eps)

    Other keywords: see `Explorer`.  `set(sampler=, eta=, steps=, seed=)` returns the Figure; `last` holds the Result
    (`.traj`, `.x_T`, `.metrics` = sliced Wasserstein to exact samples and per-mode Fréchet).
    The EDM samplers' Karras grid spans the target's sigma range (the schedule's sigma_1..sigma_T).
    """

    figsize = (9.0, 4.4)

    def __init__(self, data=None, sched: Schedule | None = None, reference=None, n: int = 2000, n_paths: int = 64,
                 *, denoiser=None, n_projections: int = 128, **settings):
        data = data if data is not None else GaussianMixture.eight_gaussians()
        if not isinstance(data, Target):
            sched = sched if sched is not None else Schedule(linear_betas(1000))
        if isinstance(data, GaussianMixture):
            target = Target.from_eps(data.eps_model(sched), sched, denoiser if denoiser is not None else data.denoiser)
            reference = data if reference is None else reference
        elif isinstance(data, Target) or callable(data):
            target = as_target(data, sched, denoiser)
            reference = GaussianMixture.eight_gaussians() if reference is None else reference
        else:
            raise ValueError(f"data must be a GaussianMixture or an eps-model eps(x_t, t) (or a Target), "
                             f"got {type(data).__name__}")
        dim = reference.D if isinstance(reference, GaussianMixture) else torch.as_tensor(reference).shape[-1]
        if dim != 2:
            raise ValueError(f"Explorer2D draws 2-D data; the reference has dimension {dim}")
        super().__init__(target, (2,), n, **settings)
        self.n_paths = min(n, n_paths)
        self.n_projections = n_projections
        self.reference = reference
        if isinstance(reference, GaussianMixture):
            self.exact = reference.sample(self.n, torch.Generator().manual_seed(10**6))
            self.floor = self._metrics(reference.sample(self.n, torch.Generator().manual_seed(10**6 + 1)))
        else:
            self.exact, self.floor = torch.as_tensor(reference, dtype=torch.float64), None

    @classmethod
    def from_assets(cls, **kwargs):
        """The explorer on the shipped 2-D MLP (diffedu.assets.load_mlp())."""
        return cls(assets.load_mlp().target(), **kwargs)

    def options(self) -> dict:
        return dict(super().options(), reference=self.reference, n=self.n, n_paths=self.n_paths,
                    n_projections=self.n_projections)

    def _metrics(self, x: torch.Tensor) -> dict:
        x = x.double()
        m = {"sliced_wasserstein": sliced_wasserstein(x, self.exact, self.n_projections,
                                                      torch.Generator().manual_seed(0))}
        if isinstance(self.reference, GaussianMixture):
            m["per_mode_frechet"] = float(self.reference.per_mode_frechet(x))
        return m

    def measure(self, res) -> dict:
        x = res.traj.x
        return self._metrics(x) if bool(torch.isfinite(x).all()) else {"sliced_wasserstein": float("inf")}

    def status_metrics(self) -> str:
        m, f = self.last.metrics, self.floor or {}
        parts = [f"{METRIC_LABELS[name]} {v:.4f}" + (f" (exact samples: {f[name]:.4f})" if name in f else "")
                 for name, v in m.items()]
        return " · ".join(parts)

    # -- figure ---------------------------------------------------------------------------------
    def build_figure(self) -> list:
        fig, ref = self.fig, self.reference
        if isinstance(ref, GaussianMixture):
            half = float((ref.means.abs().max() + 4 * ref.stds.max()).item())
        else:
            half = float(self.exact.abs().quantile(0.995).item()) * 1.2
        lim = max(3.2, 1.15 * half)
        self.ax_paths, self.ax_cloud = fig.subplots(1, 2)
        for ax in (self.ax_paths, self.ax_cloud):
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
            ax.tick_params(labelsize=7)
            if isinstance(ref, GaussianMixture):
                g = torch.linspace(-lim, lim, 160, dtype=torch.float64)
                X, Y = torch.meshgrid(g, g, indexing="xy")
                p = ref.log_prob(torch.stack([X.reshape(-1), Y.reshape(-1)], 1)).exp().reshape(X.shape)
                ax.contour(X.numpy(), Y.numpy(), p.numpy(), levels=5, colors="0.55", linewidths=0.6)
            else:
                ax.scatter(*self.exact[:2000].T.numpy(), s=1, c="0.7")
        self.ax_paths.set_title(f"{self.n_paths} paths: x_T (grey) to x_0 (red)", fontsize=9)
        self.ax_cloud.set_title(f"{self.n} samples vs the true density", fontsize=9)
        self._paths = LineCollection([], linewidths=0.5, alpha=0.6)
        self.ax_paths.add_collection(self._paths)
        self._starts = self.ax_paths.scatter([], [], s=5, c="0.5", zorder=3)
        self._ends = self.ax_paths.scatter([], [], s=7, c="C3", zorder=4)
        self._cloud = self.ax_cloud.scatter([], [], s=2, c="C3", alpha=0.5, linewidths=0)
        self._title = fig.suptitle("", fontsize=9)
        fig.subplots_adjust(left=0.05, right=0.98, bottom=0.07, top=0.82, wspace=0.15)
        return [self._paths, self._starts, self._ends, self._cloud, self._title]

    def draw(self, res):
        P = self.n_paths
        paths = res.display_xs[:, :P].transpose(0, 1).float().numpy()        # (P, steps + 1, 2)
        self._paths.set_segments(list(paths))
        ends = res.traj.x[:P]
        if isinstance(self.reference, GaussianMixture) and bool(torch.isfinite(ends).all()):
            k = self.reference.responsibilities(ends.double(), 0.0).argmax(1).numpy()
            self._paths.set_color(self._palette[k % len(self._palette)])
        self._starts.set_offsets(paths[:, 0])
        self._ends.set_offsets(paths[:, -1])
        self._cloud.set_offsets(res.traj.x.float().numpy())
        m = res.metrics
        line2 = "   ".join(f"{METRIC_LABELS[k]} = {v:.4f}" for k, v in m.items())
        if self.floor:
            line2 += "   (exact samples: " + ", ".join(f"{v:.4f}" for v in self.floor.values()) + ")"
        self._title.set_text(f"{self.title()}\n{line2}")

    _palette = np.array([[0.12, 0.47, 0.71, 1], [1.0, 0.5, 0.05, 1], [0.17, 0.63, 0.17, 1], [0.84, 0.15, 0.16, 1],
                         [0.58, 0.4, 0.74, 1], [0.55, 0.34, 0.29, 1], [0.89, 0.47, 0.76, 1], [0.5, 0.5, 0.5, 1]])

