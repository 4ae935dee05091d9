"""Trajectory explorers: sliders for sampler, eta, step count and seed over the package samplers.

    from diffedu.widgets import Explorer2D, ImageExplorer, Compare
    Explorer2D().widget()                     # in a notebook: controls + figure
    fig = Explorer2D().set(eta=0.5, steps=20) # anywhere: a matplotlib Figure; .last holds the Trajectory

The noise is fixed by the seed (x_T and every per-step noise), so moving eta shows eta alone.
"""
from .base import SAMPLERS, STEP_CHOICES, Explorer, FixedNoise, Result
from .compare import Compare
from .explorer2d import Explorer2D
from .image import ImageExplorer

__all__ = ["Explorer2D", "ImageExplorer", "Compare", "Explorer", "FixedNoise", "Result", "SAMPLERS", "STEP_CHOICES"]
