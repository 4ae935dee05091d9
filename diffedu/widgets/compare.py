"""Two explorers side by side: one model, one seed's noise, one cache, each panel with its own settings.

Imports: ipywidgets/IPython (inside functions, as they are optional), and .base, .explorer2d beside it.
"""
from __future__ import annotations

from .base import SETTINGS
from .explorer2d import Explorer2D

SHARED = "the seed is shared by both panels: pass it as Compare.set(seed=...)"


class Compare:
    """Two explorers that share one model, one seed's noise and one cache, each with its own settings.

    explorer  an Explorer2D or ImageExplorer (default: Explorer2D on the eight Gaussians, drawn smaller);
              the panels are its twins (`Explorer.twin`), so it is itself left as it was
    left      settings of the left panel (default: the explorer's own)
    right     settings of the right panel (default: the left ones with eta = 1)

    `set(seed=, left={...}, right={...})` returns the two Figures; `last` the two Results.
    The seed is shared: both panels always start from the same x_T and use the same noises.
    """

    def __init__(self, explorer=None, left: dict | None = None, right: dict | None = None):
        explorer = explorer if explorer is not None else Explorer2D(figsize=(6.0, 3.3))
        _no_seed(left, right)
        self.a = explorer.twin(**(left or {}))
        self.b = self.a.twin(**(right if right is not None else {"eta": 1.0}))
        self._ui = None

    @property
    def last(self):
        return self.a.last, self.b.last

    def set(self, seed=None, left: dict | None = None, right: dict | None = None):
        """Change the shared seed and either panel's settings; returns (left Figure, right Figure)."""
        shared = {} if seed is None else {"seed": seed}
        _no_seed(left, right)
        # validate both before changing either, so a bad value leaves the pair consistent
        new_a = self.a.validate(**(left or {}), **shared)
        new_b = self.b.validate(**(right or {}), **shared)
        return self.a.set(**new_a), self.b.set(**new_b)

    def widget(self):
        """Both panels with their own sampler, eta and steps controls, and one seed for both."""
        if self._ui is not None:
            return self._ui
        import ipywidgets as W

        seed = W.BoundedIntText(value=self.a.settings["seed"], min=0, max=2**31 - 1, description="seed (both)")
        controls = tuple(k for k in SETTINGS if k != "seed")
        panels = [self.a.widget(controls), self.b.widget(controls)]
        for p in panels:
            p.layout = W.Layout(width="50%")

        def on_seed(change):
            self.a.render(seed=change["new"])
            self.b.render(seed=change["new"])

        seed.observe(on_seed, names="value")
        self._ui = W.VBox([seed, W.HBox(panels)])
        return self._ui

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())


def _no_seed(*panels) -> None:
    if any(d is not None and "seed" in d for d in panels):
        raise ValueError(SHARED)
