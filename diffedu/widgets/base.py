"""What every explorer shares: the sampler menu, the fixed noise of a seed, the cache, the controls.

An explorer is a model (an eps-model on a discrete schedule, plus its denoiser for EDM) and four
settings: sampler, eta, steps, seed.  `set(**changes)` samples through the package samplers
(never a copy of them), keeps the Trajectory in `last`, redraws its matplotlib Figure and
returns it.  The noise belongs to the seed alone: x_T and every per-step noise are drawn from
the seed and passed as `noises=`, so moving eta or the step count changes nothing else.
"""
from __future__ import annotations

import copy
import io
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._checks import check_choice, check_int, check_number
from ..precond import denoiser_from_eps
from ..samplers.ddim import SPACINGS
from ..samplers import (GaussianForward, ddim_timesteps, karras_sigmas, sample_ddim, sample_ddpm, sample_edm,
                        sample_estimate_correct, sigma_tilde_for_eta, x0_model_from_eps)
from ..schedules import Schedule, linear_betas
from ..trajectory import Trajectory

SAMPLERS = ("DDPM", "DDIM", "EC marginal", "EC deterministic", "EC partial", "EDM Euler", "EDM Heun")
LABELS = {"DDPM": "DDPM (ancestral, all T steps)", "DDIM": "DDIM (eta)",
          "EC marginal": "estimate-correct: marginal", "EC deterministic": "estimate-correct: deterministic",
          "EC partial": "estimate-correct: partial (eta)", "EDM Euler": "EDM Euler (Karras sigmas)",
          "EDM Heun": "EDM Heun (Karras sigmas)"}
USES_ETA = ("DDIM", "EC partial")
STEP_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
SETTINGS = ("sampler", "eta", "steps", "seed")
EDM_SIGMA_MIN, EDM_SIGMA_MAX = 0.002, 80.0          # [EDM Tab. 1], clipped to the schedule's range


class FixedNoise:
    """x_T and the per-step noises of a seed, each drawn from its own generator: noise i of seed s
    is the same tensor however many steps a setting takes, so only the setting changes the path."""

    def __init__(self, shape, dtype=torch.float32, keep: int = 4):
        self.shape, self.dtype, self.keep = tuple(shape), dtype, keep
        self._seeds: OrderedDict[int, tuple[torch.Tensor, list]] = OrderedDict()

    def _draw(self, seed: int, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed((seed << 20) + i)
        return torch.randn(self.shape, generator=g, dtype=self.dtype)

    def _entry(self, seed: int):
        if seed not in self._seeds:
            self._seeds[seed] = (self._draw(seed, 0), [])
            while len(self._seeds) > self.keep:
                self._seeds.popitem(last=False)
        self._seeds.move_to_end(seed)
        return self._seeds[seed]

    def start(self, seed: int) -> torch.Tensor:
        """x_T ~ N(0, I) of this seed (the unit-variance start every sampler shares)."""
        return self._entry(seed)[0]

    def steps(self, seed: int, k: int) -> list[torch.Tensor]:
        """The first k per-step noises of this seed."""
        noises = self._entry(seed)[1]
        while len(noises) < k:
            noises.append(self._draw(seed, len(noises) + 1))
        return noises[:k]


@dataclass
class Result:
    """One computed setting: the Trajectory, the shared start noise, what it measured, how long it took."""

    key: tuple
    traj: Trajectory
    x_T: torch.Tensor
    seconds: float
    metrics: dict = field(default_factory=dict)
    display_xs: torch.Tensor | None = None        # states in DDPM (VP) coordinates, for EDM too

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.traj.xs, self.traj.x0_hats))


@contextmanager
def torch_threads(n):
    """Run with n intra-op threads (None: leave as is), then restore."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Explorer:
    """Base of the explorers: validation, fixed noise, cache and ipywidgets controls.

    Keyword arguments shared by every explorer:
      sampler, eta, steps, seed   the starting settings (see SAMPLERS; eta in [0, 1]; steps in 1..T)
      spacing     the DDIM / estimate-correct time grid ("trailing": every grid starts at t = T)
      dtype       of the samples (float32)
      threads     torch threads while sampling: 1 by default, because on a 2-core machine shared
                  with other work more threads made sampling 10-100x slower (see
                  benchmarks/widget_latency.py); None leaves torch's own setting
      figsize, dpi, cache_mb (memory for cached trajectories, least recently used dropped first)

    Subclasses define `_build_figure()`, `_draw(result)` and optionally `_measure(result)`.
    """

    figsize = (9.0, 4.2)

    def __init__(self, eps_model, sched: Schedule, shape, n: int, denoiser=None, *, sampler="DDIM", eta=0.0,
                 steps=50, seed=0, spacing="trailing", dtype=torch.float32, threads=1, figsize=None, dpi=80,
                 cache_mb=256):
        self.eps_model, self.sched = eps_model, sched
        self.denoiser = denoiser if denoiser is not None else denoiser_from_eps(eps_model, sched)
        self.n = check_int(n, "n", lo=1)
        self.shape = (self.n,) + tuple(shape)
        self.spacing = check_choice(spacing, "spacing", SPACINGS)
        self.dtype, self.threads, self.dpi = dtype, threads, dpi
        self.figsize = tuple(figsize) if figsize is not None else self.figsize
        self.noise = FixedNoise(self.shape, dtype)
        self.cache: OrderedDict[tuple, Result] = OrderedDict()
        self.cache_bytes = int(cache_mb * 2**20)
        self.stats = {"sampled": 0, "hits": 0}
        self.settings = self._validate(dict(sampler=sampler, eta=eta, steps=steps, seed=seed))
        self.last: Result | None = None
        self.fig: Figure | None = None
        self._dynamic: list = []                # artists redrawn on each change (see `redraw`)
        self._background = None
        self._ui = None
        self._syncing = False
        sig = sched.sigma
        self.edm_sigma_range = (max(EDM_SIGMA_MIN, float(sig[1])), min(EDM_SIGMA_MAX, float(sig[-1])))

    # -- settings -------------------------------------------------------------------------------
    def _validate(self, s: dict) -> dict:
        unknown = set(s) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; an explorer has {', '.join(SETTINGS)}")
        check_choice(s["sampler"], "sampler", SAMPLERS)
        eta = check_number(s["eta"], "eta", lo=0, hi=1)
        steps = check_int(s["steps"], "steps", lo=1, hi=self.sched.T)
        seed = check_int(s["seed"], "seed", lo=0, hi=2**40)
        return dict(sampler=s["sampler"], eta=round(eta, 6), steps=steps, seed=seed)

    def key(self, s: dict) -> tuple:
        """The cache key: what the sampler actually depends on (DDPM ignores eta and steps, ...)."""
        eta = s["eta"] if s["sampler"] in USES_ETA else None
        steps = self.sched.T if s["sampler"] == "DDPM" else s["steps"]
        return (s["sampler"], eta, steps, s["seed"])

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, sampler: str, eta, steps: int, seed: int) -> tuple[Trajectory, torch.Tensor]:
        """Run one package sampler from the seed's x_T with the seed's per-step noises."""
        sched, T = self.sched, self.sched.T
        z = self.noise.start(seed)
        if sampler == "DDPM":
            return sample_ddpm(self.eps_model, sched, z, noises=self.noise.steps(seed, T)), z
        if sampler == "DDIM":
            noises = self.noise.steps(seed, steps) if eta > 0 else None
            return sample_ddim(self.eps_model, sched, z, steps, eta, self.spacing, noises=noises), z
        if sampler.startswith("EC"):
            ts = ddim_timesteps(T, steps, self.spacing)
            correction = sampler.split()[1]
            sigma_tilde = sigma_tilde_for_eta(sched, ts, eta) if correction == "partial" else 0.0
            return sample_estimate_correct(x0_model_from_eps(self.eps_model, sched), GaussianForward(sched), ts, z,
                                           correction, sigma_tilde, noises=self.noise.steps(seed, steps)), z
        sigmas = karras_sigmas(steps, *self.edm_sigma_range)
        method = sampler.split()[1].lower()
        return sample_edm(self.denoiser, sigmas, sigmas[0].item() * z, method), z

    def result(self, s: dict) -> Result:
        """The Result of a setting, from the cache when it was computed before."""
        key = self.key(s)
        if key in self.cache:
            self.stats["hits"] += 1
            self.cache.move_to_end(key)
            return self.cache[key]
        t0 = time.perf_counter()
        with torch.no_grad(), torch_threads(self.threads):
            traj, z = self.sample(key[0], s["eta"], key[2], key[3])
            xs = traj.xs
            if key[0].startswith("EDM"):        # VE states x = x_t / sqrt(alpha_bar) back to x_t
                xs = xs / (1 + traj.ts.to(xs.dtype) ** 2).sqrt().reshape((-1,) + (1,) * (xs.dim() - 1))
            res = Result(key, traj, z, 0.0, display_xs=xs)
            self._measure(res)
        res.seconds = time.perf_counter() - t0
        self.stats["sampled"] += 1
        self.cache[key] = res
        while len(self.cache) > 1 and sum(r.nbytes for r in self.cache.values()) > self.cache_bytes:
            self.cache.popitem(last=False)
        return res

    def twin(self, **settings) -> "Explorer":
        """Another explorer on the same model, noise and cache, with its own settings and figure."""
        other = copy.copy(self)
        other.settings = self._validate({**self.settings, **settings})
        other.stats = dict(self.stats)
        other.last = other.fig = other._ui = other._background = None
        other._dynamic = []
        return other

    def _measure(self, res: Result) -> None:
        """Fill res.metrics (subclasses)."""

    def set(self, **changes) -> Figure:
        """Change any of sampler, eta, steps, seed; sample (or reuse the cache), redraw, return the Figure.
        When the notebook UI is shown, its controls, image and status line follow."""
        new = self._validate({**self.settings, **changes})
        hits = self.stats["hits"]
        res = self.result(new)
        self.settings, self.last = new, res
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize, dpi=self.dpi)
            FigureCanvasAgg(self.fig)
            self._build_figure()
        self._draw(res)
        if self._ui is not None:
            self._sync_controls()
            self._show(cached=self.stats["hits"] > hits)
        return self.fig

    def title(self) -> str:
        s, res = self.settings, self.last
        eta = f"eta={s['eta']:.2f}" if s["sampler"] in USES_ETA else "eta unused"
        steps = f"steps={res.key[2]}"
        return f"{s['sampler']}  {eta}  {steps}  NFE={res.traj.nfe}  seed={s['seed']}"

    def redraw(self) -> Figure:
        """Render the figure: only the artists that change (`_dynamic`) over a saved background
        when the subclass lists them, else a full `canvas.draw()`."""
        if self.fig is None:
            self.set()
        canvas, dynamic = self.fig.canvas, self._dynamic
        if not dynamic:
            canvas.draw()
            return self.fig
        if self._background is None:            # everything but the dynamic artists, drawn once
            for a in dynamic:
                a.set_visible(False)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            for a in dynamic:
                a.set_visible(True)
        canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for a in dynamic:
            a.draw(renderer)
        return self.fig

    def png(self) -> bytes:
        """The current figure as PNG bytes (redraws it)."""
        from PIL import Image

        canvas = self.redraw().canvas
        w, h = canvas.get_width_height(physical=True)
        buf = io.BytesIO()
        Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB").save(
            buf, format="png", compress_level=1)
        return buf.getvalue()

    # -- notebook UI ----------------------------------------------------------------------------
    def widget(self, controls=SETTINGS):
        """The ipywidgets UI: controls, a status line and the figure as a PNG image (no ipympl needed)."""
        if self._ui is not None:
            return self._ui["box"]
        import ipywidgets as W

        s = self.settings
        steps_options = sorted({c for c in STEP_CHOICES if c <= self.sched.T} | {self.sched.T, s["steps"]})
        c = {
            "sampler": W.Dropdown(options=[(LABELS[k], k) for k in SAMPLERS], value=s["sampler"], description="sampler"),
            "eta": W.FloatSlider(value=s["eta"], min=0.0, max=1.0, step=0.1, readout_format=".2f",
                                 continuous_update=False, description="eta"),
            "steps": W.SelectionSlider(options=steps_options, value=s["steps"], continuous_update=False,
                                       description="steps"),
            "seed": W.BoundedIntText(value=s["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=W.Layout(width="160px")),
        }
        status = W.HTML(layout=W.Layout(min_height="1.6em"))
        image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
        box = W.VBox([W.HBox([c[k] for k in controls]), status, image])
        self._ui = dict(box=box, controls=c, status=status, image=image)
        for name, ctrl in c.items():
            ctrl.observe(lambda ch, name=name: self._on_control(name, ch["new"]), names="value")
        self.render()
        return box

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())

    def render(self, **changes) -> None:
        """`set(**changes)` from a control: a bad value goes to the status line and the controls
        return to the current settings."""
        try:
            self.set(**changes)
        except ValueError as err:
            self._ui["status"].value = f"<b style='color:#b00'>{err}</b>"
            self._sync_controls()

    def _show(self, cached: bool) -> None:
        """Put the current figure (PNG) and the status line into the UI."""
        self._ui["image"].value = self.png()
        how = "cached" if cached else f"sampled in {self.last.seconds:.2f} s"
        self._ui["status"].value = (f"<code>{self.title()}</code> &nbsp; {self.status_metrics()} "
                                    f"&nbsp; <small>({how})</small>")

    def status_metrics(self) -> str:
        """The quality numbers for the status line (subclasses)."""
        return ""

    def _on_control(self, name, value):
        if not self._syncing:
            self.render(**{name: value})

    def _sync_controls(self) -> None:
        """Show the current settings in the controls without triggering them."""
        if self._ui is None:
            return
        c, s = self._ui["controls"], self.settings
        self._syncing = True
        try:
            if s["steps"] not in c["steps"].options:
                c["steps"].options = sorted(set(c["steps"].options) | {s["steps"]})
            for k in SETTINGS:
                if c[k].value != s[k]:
                    c[k].value = s[k]
            c["eta"].disabled = s["sampler"] not in USES_ETA
            c["steps"].disabled = s["sampler"] == "DDPM"
        finally:
            self._syncing = False



def unpack_asset(trained):
    """(eps_model, sched, denoiser, shape) of a shipped model (a `diffedu.checkpoint.Trained`)."""
    sched = trained.sched if trained.sched is not None else Schedule(linear_betas(1000))
    return trained.eps_model(sched), sched, trained.denoiser(), tuple(trained.shape)
