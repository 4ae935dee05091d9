"""Notebook 04's exercises: one Heun step of the probability-flow ODE.

Imports: torch, diffedu.models (the exact mixture), diffedu.samplers (the reference step), ._core.
"""
from __future__ import annotations

import torch

from ..models.analytic import GaussianMixture
from ..samplers.edm import euler_step, heun_step, slope
from ._core import Exercise, code

_MIX = GaussianMixture.eight_gaussians()


def _heun_inputs(g):
    sigma = 0.05 + 3 * float(torch.rand((), generator=g))
    sigma_next = sigma * (0.2 + 0.7 * float(torch.rand((), generator=g)))
    x = sigma * torch.randn(int(torch.randint(1, 6, (1,), generator=g)), 2, generator=g, dtype=torch.float64)
    return dict(x=x, sigma=sigma, sigma_next=sigma_next, denoiser=_MIX.denoiser)


def _heun_reference():
    def heun(x, sigma, sigma_next, denoiser):
        d = slope(x, denoiser(x, sigma), sigma)
        x_euler = euler_step(x, d, sigma, sigma_next)
        return heun_step(x, d, slope(x_euler, denoiser(x_euler, sigma_next), sigma_next), sigma, sigma_next)
    return heun


EXERCISES = [
    Exercise("04.heun_step", "code",
             "write heun(x, sigma, sigma_next, denoiser) -> x at sigma_next: one Heun step of "
             "dx/dsigma = (x - D(x, sigma)) / sigma, with sigma_next > 0  [EDM Alg. 1]",
             code(_heun_inputs), _heun_reference,
             hint="slope d at sigma, an Euler step to sigma_next, the slope there, then the average of the two slopes"),
]
