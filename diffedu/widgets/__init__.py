"""Trajectory explorers: sliders for sampler, eta, step count and seed over the package samplers.

    from diffedu.widgets import Explorer2D, ImageExplorer, Compare
    Explorer2D().widget()                     # in a notebook: controls + figure
    fig = Explorer2D().set(eta=0.5, steps=20) # anywhere: a matplotlib Figure; .last holds the Result

The widgets are a thin view over the sampler registry (`diffedu.samplers.registry`): the menu is
its titles, the controls that apply and the cache key follow each spec, and sampling is the spec.
The noise is fixed by the seed (x_T and every per-step noise), so moving eta shows eta alone.

    noise.py       FixedNoise: x_T and the per-step noises of a seed
    compute.py     Key, Result, compute (one setting sampled and measured), ResultCache (byte-bounded LRU)
    ui.py          the sampler menu (SAMPLERS), STEP_CHOICES, Controls (ipywidgets controls, status line)
    base.py        Explorer: settings, figure, blitting redraw, PNG
    explorer2d.py  image.py  compare.py   the explorers
    forward.py     ForwardExplorer: a schedule and a time t over x_0, x_t and a network's x0_hat (notebook 01)
    guidance.py    GuidanceExplorer: one class, the guidance weight w, the same noise (needs a conditional model)
    pf_ode.py      PFODEExplorer: EDM's Euler/Heun on the exact eight Gaussians: Karras grid, churn, the ODE's field (notebook 04)
    training.py    TrainingExplorer: a step slider over the snapshots of a run, its loss and samples (notebook 05)

Imports: the modules of this package (apps layer: core maths, samplers, models, io, metrics may be imported below).
"""
from .base import Explorer
from .compare import Compare
from .compute import Result
from .explorer2d import Explorer2D
from .forward import ForwardExplorer
from .guidance import GuidanceExplorer
from .image import ImageExplorer
from .noise import FixedNoise
from .pf_ode import PFODEExplorer
from .training import TrainingExplorer
from .ui import SAMPLERS, STEP_CHOICES

__all__ = ["Explorer2D", "ImageExplorer", "GuidanceExplorer", "ForwardExplorer", "TrainingExplorer", "PFODEExplorer", "Compare", "Explorer", "FixedNoise", "Result", "SAMPLERS", "STEP_CHOICES"]
