"""The probability-flow ODE explorer: EDM's sampler on the exact eight Gaussians, its noise grid and its field.

With s = 1 and sigma(t) = t the PF-ODE is dx/dsigma = (x - D(x; sigma)) / sigma [EDM eq. 3]: going
down in sigma every particle moves along (D - x) / sigma = sigma * score(x; sigma), drawn here as a
field at one chosen sigma.  The sampler takes N Karras levels sigma_i = (sigma_max^(1/rho) + i/(N-1)
(sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, then 0 [EDM eq. 5]: rho decides where the steps are
spent.  Euler or Heun [EDM Alg. 1] walk them; S_churn > 0 adds fresh noise at each level first
[EDM Alg. 2], which leaves the ODE.  The samples are compared with the same noise carried by an
accurate ODE solve (Heun, 256 levels, rho = 7, no churn): with S_churn = 0 that distance is the
solver's discretisation error, with churn it is how far the churn moved the samples.

    ex = PFODEExplorer()                         # the eight Gaussians, exact denoiser
    ex.set(solver="euler", steps=10, rho=3)      # a matplotlib Figure, anywhere
    ex.widget()                                  # in a notebook: solver, steps, rho, S_churn, sigma, seed

Imports: math, torch, matplotlib, ipywidgets (inside `widget`), diffedu.models.analytic,
diffedu.samplers.edm, _checks, and .compute, .ui beside it.
"""
from __future__ import annotations

import math

import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._checks import check_choice, check_int, check_number
from ..models.analytic import GaussianMixture
from ..samplers.edm import METHODS, karras_sigmas, sample_edm
from .compute import torch_threads
from .ui import PanelExplorer, panel

SETTINGS = ("solver", "steps", "rho", "s_churn", "sigma", "seed")
STEPS_MAX, RHO_MAX, CHURN_MAX = 200, 100.0, 50.0     # CHURN_MAX: the slider's; any finite S_churn >= 0 from Python
REFERENCE = dict(method="heun", steps=256, rho=7.0)  # the accurate ODE solve the samples are compared with
GRID = 15                                            # arrows per side of the field
ARROW_MAX = 3.0                                      # arrow colour saturates at |D - x| / sigma = 3


class PFODEExplorer(PanelExplorer):
    """EDM's Euler/Heun sampler on an exact 2-D mixture: paths, the field at one sigma, the Karras grid, the samples.

    `set(solver=, steps=, rho=, s_churn=, sigma=, seed=)` returns the Figure.  x_start = sigma_max * randn(n, 2)
    from `torch.Generator().manual_seed(seed)`; the churn noises come from that generator afterwards.
    Read back: `traj` (the Trajectory), `sigmas` (the grid), `metrics` ("per_mode_frechet",
    "distance_to_ode", "nfe"), `floor` (per-mode Fréchet of n exact samples), `field(sigma)`.
    """

    def __init__(self, mixture: GaussianMixture | None = None, *, solver: str = "heun", steps: int = 18,
                 rho: float = 7.0, s_churn: float = 0.0, sigma: float = 1.0, seed: int = 0, n: int = 1000,
                 n_paths: int = 48, sigma_min: float = 0.002, sigma_max: float = 80.0, threads: int | None = 1,
                 figsize=(10.0, 3.6), dpi: int = 80):
        self.mixture = mixture if mixture is not None else GaussianMixture.eight_gaussians()
        if not isinstance(self.mixture, GaussianMixture) or self.mixture.D != 2:
            raise ValueError(f"mixture must be a 2-D GaussianMixture, got {self.mixture!r}")
        self.n = check_int(n, "n", lo=16)
        self.n_paths = min(self.n, check_int(n_paths, "n_paths", lo=1))
        karras_sigmas(2, sigma_min, sigma_max)                    # ValueError names a bad sigma range
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.threads, self.figsize, self.dpi = threads, tuple(figsize), dpi
        mu, s = self.mixture.means, self.mixture.stds
        self.radius = float(mu.norm(dim=1).max())
        self.lim = max(3.5, 1.2 * float(mu.abs().max() + 4 * s.max()))   # the view of the data
        g = torch.linspace(-self.lim, self.lim, 160, dtype=torch.float64)
        X, Y = torch.meshgrid(g, g, indexing="xy")
        density = self.mixture.log_prob(torch.stack([X.reshape(-1), Y.reshape(-1)], 1)).exp().reshape(X.shape)
        self.contours = (X.numpy(), Y.numpy(), density.numpy())
        exact = self.mixture.sample(self.n, torch.Generator().manual_seed(10**6 + 1))
        self.floor = float(self.mixture.per_mode_frechet(exact))             # what n exact samples score
        self.references: dict[int, torch.Tensor] = {}             # seed -> final samples of the accurate ODE solve
        self.settings: dict = {}
        self.settings = self.validate(solver=solver, steps=steps, rho=rho, s_churn=s_churn, sigma=sigma, seed=seed)
        self.fig: Figure | None = None
        self.traj = self.sigmas = None
        self.metrics: dict = {}
        self.seconds = 0.0
        self.ui = self.controls = None

    def validate(self, **changes) -> dict:
        """The settings `set(**changes)` would make, checked (ValueError names a bad one); changes nothing."""
        s = {**self.settings, **changes}
        unknown = set(s) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; the PF-ODE explorer has {', '.join(SETTINGS)}")
        out = dict(solver=check_choice(s["solver"], "solver", METHODS[::-1]),
                   steps=check_int(s["steps"], "steps", lo=1, hi=STEPS_MAX),
                   rho=check_number(s["rho"], "rho", lo=0, lo_open=True, hi=RHO_MAX),
                   s_churn=check_number(s["s_churn"], "s_churn", lo=0, finite=True),
                   sigma=check_number(s["sigma"], "sigma", lo=self.sigma_min, hi=self.sigma_max),
                   seed=check_int(s["seed"], "seed", lo=0, hi=2**40))
        karras_sigmas(out["steps"], self.sigma_min, self.sigma_max, out["rho"])   # a grid float64 can hold
        return out

    def start(self, seed: int) -> tuple[torch.Tensor, torch.Generator]:
        """x_start = sigma_max * randn(n, 2) (float64) from the seed, and the generator the churn noises come from next."""
        g = torch.Generator().manual_seed(seed)
        return self.sigma_max * torch.randn(self.n, 2, generator=g, dtype=torch.float64), g

    def reference(self, seed: int) -> torch.Tensor:
        """Final samples of the ODE solved accurately (Heun, 256 Karras levels, rho 7, no churn) from the
        seed's start; cached for the last 8 seeds."""
        if seed not in self.references:
            sigmas = karras_sigmas(REFERENCE["steps"], self.sigma_min, self.sigma_max, REFERENCE["rho"])
            self.references = dict(list(self.references.items())[-7:])         # the last 8 seeds
            with torch.no_grad(), torch_threads(self.threads):
                self.references[seed] = sample_edm(self.mixture.denoiser, sigmas, self.start(seed)[0],
                                                   REFERENCE["method"], record=False).x
        return self.references[seed]

    def view(self, sigma: float) -> float:
        """Half-width of the paths panel at a field sigma: the data, and where x ~ x_0 + sigma eps mostly lies."""
        return max(self.lim, self.radius + 2.5 * sigma)

    def field(self, sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The PF-ODE's direction down in sigma on a GRID x GRID grid over the view: X, Y, and (U, V) =
        (D(x; sigma) - x) / sigma = sigma * score(x; sigma) = -dx/dsigma.  [EDM eq. 3]"""
        sigma = check_number(sigma, "sigma", lo=0, lo_open=True, finite=True)
        g = torch.linspace(-self.view(sigma), self.view(sigma), GRID, dtype=torch.float64)
        X, Y = torch.meshgrid(g, g, indexing="xy")
        x = torch.stack([X.reshape(-1), Y.reshape(-1)], 1)
        d = (self.mixture.denoiser(x, sigma) - x) / sigma
        return X, Y, d[:, 0].reshape(X.shape), d[:, 1].reshape(X.shape)

    def compute(self, s: dict) -> None:
        """Sample the Karras grid from the seed's start (churn noise: the seed's too) and measure (`set` calls it)."""
        with torch.no_grad(), torch_threads(self.threads):
            self.sigmas = karras_sigmas(s["steps"], self.sigma_min, self.sigma_max, s["rho"])
            x, g = self.start(s["seed"])
            self.traj = sample_edm(self.mixture.denoiser, self.sigmas, x, s["solver"], s_churn=s["s_churn"], generator=g)
            ref = self.reference(s["seed"])
            self.metrics = dict(per_mode_frechet=float(self.mixture.per_mode_frechet(self.traj.x)),
                                distance_to_ode=float((self.traj.x - ref).norm(dim=1).mean()), nfe=self.traj.nfe)

    def level(self) -> int:
        """The index of the grid level (sigma > 0) nearest the field's sigma, in log sigma."""
        return int((self.sigmas[:-1].log() - math.log(self.settings["sigma"])).abs().argmin())

    def _draw(self) -> None:
        s, m, P = self.settings, self.metrics, self.n_paths
        self.fig = self.fig or Figure(figsize=self.figsize, dpi=self.dpi)
        self.fig.clear()
        ax_p, ax_g, ax_x = self.fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 0.85, 1]))
        self.fig.subplots_adjust(left=0.04, right=0.985, bottom=0.12, top=0.74, wspace=0.28)
        for ax, lim in ((ax_p, self.view(s["sigma"])), (ax_x, self.lim)):
            ax.contour(*self.contours, levels=5, colors="0.55", linewidths=0.6)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
            ax.tick_params(labelsize=7)
        # 1. paths, the field at sigma, where the particles were at the level nearest sigma
        xs = self.traj.xs[:, :P].transpose(0, 1).numpy()                     # (P, steps + 1, 2)
        ax_p.add_collection(LineCollection(list(xs), linewidths=0.6, colors="tab:blue", alpha=0.25))
        X, Y, U, V = self.field(s["sigma"])
        size = (U**2 + V**2).sqrt()
        spacing = float(X[0, 1] - X[0, 0])
        unit = size.clamp(min=1e-12)
        ax_p.quiver(X.numpy(), Y.numpy(), (U / unit).numpy(), (V / unit).numpy(), size.numpy(), cmap="viridis",
                    clim=(0, ARROW_MAX), angles="xy", scale_units="xy", scale=1 / (0.7 * spacing), width=0.005, zorder=3)
        i = self.level()
        ax_p.scatter(*xs[:, i].T, s=8, c="k", zorder=5)
        ax_p.scatter(*xs[:, 0].T, s=5, c="0.5", zorder=4)
        ax_p.scatter(*xs[:, -1].T, s=7, c="tab:red", zorder=6)
        ax_p.set_title(f"{P} paths: grey start, red end, black at sigma_{i} = {float(self.sigmas[i]):.3g}\n"
                       f"arrows: (D - x)/sigma at sigma = {s['sigma']:.3g} (colour: size 0..{ARROW_MAX:g})", fontsize=8)
        # 2. the Karras grid
        k = torch.arange(s["steps"])
        ax_g.semilogy(k.numpy(), self.sigmas[:-1].numpy(), ".-", color="tab:blue", ms=4, lw=0.8)
        ax_g.semilogy([i], [float(self.sigmas[i])], "o", color="k", ms=5)
        ax_g.axhline(s["sigma"], color="tab:orange", lw=1, label=f"field sigma = {s['sigma']:.3g}")
        ax_g.set_xlabel("step i", fontsize=8)
        ax_g.set_ylabel("sigma_i", fontsize=8)
        ax_g.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_g.set(ylim=(0.5 * self.sigma_min, 2 * self.sigma_max),
                 xlim=(-0.5, max(s["steps"] - 0.5, 1)))
        ax_g.tick_params(labelsize=7)
        ax_g.legend(loc="upper right", fontsize=7)
        ax_g.set_title(f"{s['steps']} Karras levels, rho = {s['rho']:g} (then sigma = 0)", fontsize=8)
        # 3. the samples
        ax_x.scatter(*self.traj.x.numpy().T, s=2, c="tab:red", alpha=0.5, linewidths=0)
        ax_x.set_title(f"{self.n} samples: per-mode Fréchet {m['per_mode_frechet']:.4f}\n"
                       f"(exact samples: {self.floor:.4f})", fontsize=8)
        how = ("the solver's discretisation error" if s["s_churn"] == 0 else
               "churn left the ODE: how far the churn moved the samples, not the solver's error")
        self.fig.suptitle(f"{s['solver']}, {s['steps']} steps, rho = {s['rho']:g}, S_churn = {s['s_churn']:g}, "
                          f"seed {s['seed']}: NFE = {m['nfe']}\nmean distance to the accurate ODE solution from the "
                          f"same noise = {m['distance_to_ode']:.4f}: {how}", fontsize=9)

    def widget(self):
        """ipywidgets controls (solver, steps, rho, S_churn, sigma, seed) over the figure, shown as a PNG."""
        import ipywidgets as W

        s = self.settings

        def wide():
            return W.Layout(width="300px")

        box = panel(self, {
            "solver": W.Dropdown(options=list(METHODS[::-1]), value=s["solver"], description="solver",
                                 layout=W.Layout(width="180px")),
            "steps": W.IntSlider(value=s["steps"], min=1, max=STEPS_MAX, continuous_update=False, description="steps",
                                 layout=wide()),
            "rho": W.FloatSlider(value=min(max(s["rho"], 1.0), 10.0), min=1.0, max=10.0, step=0.5,
                                 continuous_update=False, description="rho", layout=wide()),
            "s_churn": W.FloatSlider(value=min(s["s_churn"], CHURN_MAX), min=0.0, max=CHURN_MAX, step=1.0,
                                     continuous_update=False, description="S_churn", layout=wide()),
            "sigma": W.FloatLogSlider(value=s["sigma"], base=10, min=math.log10(self.sigma_min),
                                      max=math.log10(self.sigma_max), step=0.05, readout_format=".3g",
                                      continuous_update=False, description="sigma", layout=wide()),
            "seed": W.BoundedIntText(value=s["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=W.Layout(width="160px")),
        })
        box.children[0].layout.flex_flow = "row wrap"
        return box
