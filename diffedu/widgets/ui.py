"""The notebook controls of an explorer: a sampler menu, eta and steps sliders, a seed box, a status line, the figure.

The menu is the registry's titles; which controls apply is the registry's too: the eta slider is
enabled only for a sampler that takes "eta", the steps slider only for one that `uses_steps`.
The figure is shown as a PNG image, so no ipympl is needed.

Imports: time, matplotlib (Agg), ipywidgets (inside `Controls` and `panel`, as it is optional), diffedu.samplers.registry.
"""
from __future__ import annotations

import io
import time

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..samplers import registry

STEP_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
ETA_STEP = 0.1


def menu() -> tuple[str, ...]:
    """The sampler menu: the title of every registry entry, in the registry's order."""
    return tuple(spec.title for spec in registry.SAMPLERS.values())


SAMPLERS = menu()


class Controls:
    """The ipywidgets UI of one explorer: `box` holds the controls named in `shown`, `status` and `image`.

    A control's change goes to `explorer.render(name=value)`; the explorer calls `update(cached)`
    after each change (from a control or from Python) and `error(err)` for a rejected value.
    """

    def __init__(self, explorer, shown):
        import ipywidgets as W

        self.explorer = explorer
        s, T = explorer.settings, explorer.sched.T
        steps_options = sorted({c for c in STEP_CHOICES if c <= T} | {T, s["steps"]})
        self.controls = {
            "sampler": W.Dropdown(options=explorer.menu, value=s["sampler"],
                                  description="sampler"),
            "eta": W.FloatSlider(value=s["eta"], min=0.0, max=1.0, step=ETA_STEP, readout_format=".2f",
                                 continuous_update=False, description="eta"),
            "steps": W.SelectionSlider(options=steps_options, value=s["steps"], continuous_update=False,
                                       description="steps"),
            "seed": W.BoundedIntText(value=s["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=W.Layout(width="160px")),
        }
        self.status = W.HTML(layout=W.Layout(min_height="1.6em"))
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
        self.box = W.VBox([W.HBox([self.controls[k] for k in shown]), self.status, self.image])
        self._syncing = False
        for name, ctrl in self.controls.items():
            ctrl.observe(lambda change, name=name: self._changed(name, change["new"]), names="value")

    def _changed(self, name, value) -> None:
        if not self._syncing:
            self.explorer.render(**{name: value})

    def sync(self) -> None:
        """Show the explorer's settings in the controls without triggering them."""
        c, s = self.controls, self.explorer.settings
        spec = registry.get(s["sampler"])
        self._syncing = True
        try:
            if s["steps"] not in c["steps"].options:
                c["steps"].options = sorted(set(c["steps"].options) | {s["steps"]})
            for k, ctrl in c.items():
                if ctrl.value != s[k]:
                    ctrl.value = s[k]
            c["eta"].disabled = "eta" not in spec.params
            c["steps"].disabled = not spec.uses_steps
        finally:
            self._syncing = False

    def update(self, cached: bool) -> None:
        """After a change: the controls, the figure (PNG) and the status line follow the explorer."""
        ex = self.explorer
        self.sync()
        self.image.value = ex.png()
        how = "cached" if cached else f"sampled in {ex.last.seconds:.2f} s"
        self.status.value = f"<code>{ex.title()}</code> &nbsp; {ex.status_metrics()} &nbsp; <small>({how})</small>"

    def error(self, err: Exception) -> None:
        """A rejected value: the message in the status line, the controls back to the current settings."""
        self.status.value = f"<b style='color:#b00'>{err}</b>"
        self.sync()


def figure_png(fig) -> bytes:
    """A matplotlib Figure as PNG bytes (Agg, whatever backend the notebook uses)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


class PanelExplorer:
    """Base of the explorers with settings of their own (ForwardExplorer, GuidanceExplorer, PFODEExplorer,
    TrainingExplorer): `set(**changes)` checks the settings with the subclass's `validate`, runs its
    `compute(settings)` (timed into `seconds`) and its `_draw()` into `self.fig`; `png()` and the notebook
    display follow from it, the controls from `panel`."""

    fig = None

    def set(self, **changes) -> Figure:
        """Apply `changes` (checked first: a bad one changes nothing), compute, redraw; returns the Figure."""
        self.settings = self.validate(**changes)
        t0 = time.perf_counter()
        self.compute(self.settings)
        self.seconds = time.perf_counter() - t0
        self._draw()
        return self.fig

    def png(self) -> bytes:
        """The current figure as PNG bytes (drawing first if nothing was drawn yet)."""
        if self.fig is None:
            self.set()
        return figure_png(self.fig)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())


def panel(explorer, controls: dict):
    """The UI of an explorer with its own settings: `controls` (setting name -> ipywidget) in a row,
    a status line and the figure as a PNG.  A change calls `explorer.set(name=value)`; a rejected
    value goes to the status line.  Sets `explorer.controls` and `explorer.ui` and returns the VBox."""
    import ipywidgets as W

    status = W.HTML()
    image = W.Image(value=explorer.png(), format="png", layout=W.Layout(max_width="100%", height="auto"))

    def changed(name, value):
        try:
            explorer.set(**{name: value})
        except ValueError as err:
            status.value = f"<b style='color:#b00'>{err}</b>"
            return
        image.value = explorer.png()
        status.value = f"<small>computed in {explorer.seconds:.2f} s</small>"

    for name, ctrl in controls.items():
        ctrl.observe(lambda change, name=name: changed(name, change["new"]), names="value")
    explorer.controls = controls
    explorer.ui = W.VBox([W.HBox(list(controls.values())), status, image])
    return explorer.ui
