"""The explorer: a model, four settings (sampler, eta, steps, seed), and the figure that shows one sample.

An explorer holds a `Target` (diffedu.samplers.registry) and samples it with the registry's spec
of the chosen sampler, never a copy of a sampler: `set(**changes)` validates, samples (or reuses
the cache), keeps the Result in `last`, redraws its matplotlib Figure and returns it.  The noise
belongs to the seed alone (`FixedNoise`), so moving eta or the step count changes nothing else.
Subclasses draw: `build_figure()` makes the axes (returning the artists that change, which are
then redrawn over a saved background), `draw(result)` fills them, `measure(result)` scores a sample.

Imports: torch, matplotlib, PIL, diffedu.samplers (the registry, SPACINGS), diffedu.schedules, _checks,
and .noise, .compute, .ui beside it.
"""
from __future__ import annotations

import io

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .._checks import check_choice, check_int, check_number
from ..samplers import registry
from ..samplers.ddim import SPACINGS
from ..samplers.registry import SamplerSpec, Target
from ..schedules import Schedule
from .compute import Key, Result, ResultCache, compute
from .noise import FixedNoise
from .ui import Controls, menu

SETTINGS = ("sampler", "eta", "steps", "seed")
ETA_RANGE = (0.0, 1.0)                  # the eta slider's range, for every sampler that takes eta


def as_target(model, sched: Schedule | None, denoiser=None) -> Target:
    """A Target as given, or an eps-model eps(x_t, t) on `sched` (its denoiser derived unless given)."""
    if isinstance(model, Target):
        if sched is not None or denoiser is not None:
            raise ValueError("a Target brings its own schedule and denoiser: pass sched=None and denoiser=None")
        return model
    if not callable(model):
        raise ValueError(f"the model must be a Target or an eps-model eps(x_t, t), got {type(model).__name__}")
    if sched is None:
        raise ValueError("an eps-model needs the discrete schedule it was trained on: pass sched=")
    return Target.from_eps(model, sched, denoiser)


class Explorer:
    """Base of the explorers: settings, fixed noise, cache, figure, PNG and the notebook controls.

    Keyword arguments shared by every explorer:
      sampler, eta, steps, seed   the starting settings: sampler a registry key or menu title (see
                  SAMPLERS), eta in [0, 1], steps in 1..T; a sampler ignores those it does not take
      samplers    the sampler menu: registry keys or titles (default: every sampler of the registry);
                  `set(sampler=)` refuses one that is not on it
      spacing     the time grid of the samplers that take one (DDIM, estimate-correct); "trailing":
                  every grid starts at t = T
      dtype       of the samples (float32)
      threads     torch threads while sampling: 1 by default, because on a 2-core machine shared
                  with other work more threads made sampling 10-100x slower (see
                  benchmarks/widget_latency.py); None leaves torch's own setting
      figsize, dpi, cache_mb (memory for cached trajectories, least recently used dropped first)
      noise, cache  a FixedNoise and ResultCache to share (`twin` passes its own; else new ones)
    """

    figsize = (9.0, 4.2)

    def __init__(self, target: Target, shape, n: int, *, sampler="DDIM", eta=0.0, steps=50, seed=0,
                 spacing="trailing", dtype=torch.float32, threads=1, figsize=None, dpi=80, cache_mb=256,
                 noise: FixedNoise | None = None, cache: ResultCache | None = None, samplers=None):
        self.target = target
        self.menu = tuple(dict.fromkeys(registry.get(name).title for name in samplers)) if samplers else menu()
        if not self.menu:
            raise ValueError("samplers must name at least one sampler of the registry")
        self.n = check_int(n, "n", lo=1)
        self.shape = (self.n,) + tuple(shape)
        self.spacing = check_choice(spacing, "spacing", SPACINGS)
        self.dtype, self.threads, self.dpi = dtype, threads, dpi
        self.figsize = tuple(figsize) if figsize is not None else self.figsize
        if noise is not None and (noise.shape, noise.dtype) != (self.shape, dtype):
            raise ValueError(f"noise draws {noise.shape} {noise.dtype}; this explorer samples {self.shape} {dtype}")
        self.noise = noise if noise is not None else FixedNoise(self.shape, dtype)
        self.cache = cache if cache is not None else ResultCache(cache_mb * 2**20)
        self.stats = {"sampled": 0, "hits": 0}
        self.settings: dict = {}
        self.settings = self.validate(sampler=sampler, eta=eta, steps=steps, seed=seed)
        self.last: Result | None = None
        self.fig: Figure | None = None
        self.ui: Controls | None = None
        self._dynamic: list = []                # artists redrawn on each change (see `redraw`)
        self._background = None

    @property
    def sched(self) -> Schedule:
        return self.target.sched

    def options(self) -> dict:
        """The constructor keywords, besides the model and the settings, that rebuild this explorer (subclasses add theirs)."""
        return dict(spacing=self.spacing, dtype=self.dtype, threads=self.threads, figsize=self.figsize, dpi=self.dpi,
                    samplers=self.menu)

    def twin(self, **settings) -> "Explorer":
        """Another explorer on the same model, noise and cache, with its own settings and figure."""
        return type(self)(self.target, **self.options(), noise=self.noise, cache=self.cache,
                          **{**self.settings, **settings})

    # -- settings -------------------------------------------------------------------------------
    def validate(self, **changes) -> dict:
        """The settings `set(**changes)` would make, checked, with the sampler as its menu title;
        ValueError names a bad one.  Changes nothing."""
        s = {**self.settings, **changes}
        unknown = set(s) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; an explorer has {', '.join(SETTINGS)}")
        spec = registry.get(s["sampler"])
        if spec.title not in self.menu:
            raise ValueError(f"sampler must be one of this explorer's {', '.join(map(repr, self.menu))}; got {s['sampler']!r}")
        eta = check_number(s["eta"], "eta", lo=ETA_RANGE[0], hi=ETA_RANGE[1])
        steps = check_int(s["steps"], "steps", lo=1, hi=self.sched.T)
        seed = check_int(s["seed"], "seed", lo=0, hi=2**40)
        new = dict(sampler=spec.title, eta=round(eta, 6), steps=steps, seed=seed)
        self.key(new, spec)                     # the spec's own checks
        return new

    def key(self, s: dict, spec: SamplerSpec | None = None) -> Key:
        """The cache key of settings `s`: only what their sampler takes, so the others share one entry."""
        spec = spec if spec is not None else registry.get(s["sampler"])
        return Key.of(spec, self.sched.T, s["steps"], s["seed"], eta=s["eta"], spacing=self.spacing)

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, spec: SamplerSpec, key: Key) -> Result:
        """Compute one setting (no cache): the spec run from the seed's noise, measured by `measure`."""
        return compute(self.target, spec, key, self.noise, threads=self.threads, measure=self.measure)

    def result(self, s: dict) -> Result:
        """The Result of settings `s`, from the cache when it was computed before."""
        spec = registry.get(s["sampler"])
        key = self.key(s, spec)
        res = self.cache.get(key)
        if res is not None:
            self.stats["hits"] += 1
            return res
        res = self.sample(spec, key)
        self.stats["sampled"] += 1
        self.cache.put(res)
        return res

    def measure(self, res: Result) -> dict:
        """The quality numbers of a sample, for `res.metrics` (subclasses)."""
        return {}

    def set(self, **changes) -> Figure:
        """Change any of sampler, eta, steps, seed; sample (or reuse the cache), redraw, return the Figure.
        When the notebook UI is shown, its controls, image and status line follow."""
        new = self.validate(**changes)
        hits = self.stats["hits"]
        res = self.result(new)
        self.settings, self.last = new, res
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize, dpi=self.dpi)
            FigureCanvasAgg(self.fig)
            self._dynamic = list(self.build_figure() or [])
        self.draw(res)
        if self.ui is not None:
            self.ui.update(cached=self.stats["hits"] > hits)
        return self.fig

    def title(self) -> str:
        s, res = self.settings, self.last
        eta = f"eta={s['eta']:.2f}" if "eta" in res.spec.params else "eta unused"
        return f"{s['sampler']}  {eta}  steps={res.key.steps}  NFE={res.traj.nfe}  seed={s['seed']}"

    def status_metrics(self) -> str:
        """The quality numbers for the status line (subclasses)."""
        return ""

    # -- figure ---------------------------------------------------------------------------------
    def build_figure(self) -> list:
        """Make the axes on `self.fig`; return the artists that change with the settings, or [] to redraw all."""
        raise NotImplementedError

    def draw(self, res: Result) -> None:
        """Show `res` in the figure's artists."""
        raise NotImplementedError

    def redraw(self) -> Figure:
        """Render the figure: only the artists that change (those `build_figure` returned) over a
        saved background when there are any, else a full `canvas.draw()`."""
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
        canvas = self.redraw().canvas
        w, h = canvas.get_width_height(physical=True)
        buf = io.BytesIO()
        Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB").save(
            buf, format="png", compress_level=1)
        return buf.getvalue()

    # -- notebook UI ----------------------------------------------------------------------------
    def widget(self, controls=SETTINGS):
        """The ipywidgets UI (see `ui.Controls`): the named controls, a status line and the figure."""
        if self.ui is None:
            self.ui = Controls(self, controls)
            self.render()
        return self.ui.box

    def render(self, **changes) -> None:
        """`set(**changes)` from a control: a bad value goes to the status line and the controls
        return to the current settings."""
        try:
            self.set(**changes)
        except ValueError as err:
            if self.ui is None:
                raise
            self.ui.error(err)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())
