"""Notebook 04's exercises: one Heun step of the probability-flow ODE.

Imports: sympy, torch, diffedu.models (the exact mixture), diffedu.processes, diffedu.samplers (the references), ._core.
"""
from __future__ import annotations

import sympy as sp
import torch

from ..models.analytic import GaussianMixture
from ..processes import FlowMatching
from ..samplers.edm import euler_step, heun_step, karras_sigmas, sample_edm, slope
from ._core import Exercise, code, derived, expression, symbolic

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


def _euler_reference():
    def euler(x, sigma, sigma_next, denoiser):
        return euler_step(x, slope(x, denoiser(x, sigma), sigma), sigma, sigma_next)
    return euler


def _karras_inputs(g):
    return dict(n=int(torch.randint(2, 12, (1,), generator=g)), sigma_min=0.002 + 0.05 * float(torch.rand((), generator=g)),
                sigma_max=10 + 70 * float(torch.rand((), generator=g)), rho=1 + 8 * float(torch.rand((), generator=g)))


def _heun_calls_inputs(g):
    return dict(n=int(torch.randint(1, 40, (1,), generator=g)))


def _heun_calls_reference():
    def heun_calls(n):
        sigmas = karras_sigmas(n)
        x = torch.zeros(1, 2, dtype=torch.float64)
        return sample_edm(_MIX.denoiser, sigmas, x, "heun", record=False).nfe
    return heun_calls


EXERCISES = [
    Exercise("04.flow_matching_g2", "symbolic",
             "flow matching has s(t) = 1 - t, sigma(t) = t / (1 - t): write g(t)^2 of its SDE as a sympy expression "
             "in t (sp.Symbol('t'))  [EDM notes §1.1; EDM eq. 6]",
             expression({"t": (0.05, 0.95)}), lambda: sp.simplify(FlowMatching().g(sp.Symbol("t", positive=True)) ** 2),
             hint="g(t)^2 = 2 s(t)^2 sigma(t) sigma'(t); with s = 1 - t and sigma = t / (1 - t)"),
    Exercise("04.heun_calls", "code",
             "write heun_calls(n) -> how many denoiser calls sample_edm(..., method='heun') makes on karras_sigmas(n) "
             "(n + 1 levels, the last one 0), as a formula in n  [EDM Alg. 1]",
             code(_heun_calls_inputs, trials=6), _heun_calls_reference,
             hint="n steps; every step but the last (to sigma = 0) evaluates the slope twice"),
    Exercise("04.euler_step", "code",
             "write euler(x, sigma, sigma_next, denoiser) -> x at sigma_next: one Euler step of the PF-ODE "
             "dx/dsigma = (x - D(x, sigma)) / sigma (s = 1, sigma(t) = t)  [EDM eq. 3, Alg. 1]",
             code(_heun_inputs), _euler_reference,
             hint="x + (sigma_next - sigma) (x - D(x, sigma)) / sigma; notebook 04 shows this is DDIM's step"),
    Exercise("04.karras_sigmas", "code",
             "write karras(n, sigma_min, sigma_max, rho) -> the n noise levels of EDM eq. 5 from sigma_max down to "
             "sigma_min, evenly spaced in sigma^(1/rho), followed by a final 0 (n + 1 values, float64)  [EDM eq. 5]",
             code(_karras_inputs, rtol=1e-9), lambda: karras_sigmas,
             hint="interpolate linearly between sigma_max^(1/rho) and sigma_min^(1/rho), raise to rho, append 0"),
    Exercise("04.x0_from_eps", "symbolic",
             "write x_0 in x_t and eps: the denoiser an eps-prediction network implies  [DDPM eq. 15; EDM Tab. 1]",
             symbolic("x0_from_eps"), derived("x0_from_eps"),
             hint="solve x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps for x_0; use S.symbols().x_t and .eps"),
    Exercise("04.heun_step", "code",
             "write heun(x, sigma, sigma_next, denoiser) -> x at sigma_next: one Heun step of "
             "dx/dsigma = (x - D(x, sigma)) / sigma, with sigma_next > 0  [EDM Alg. 1]",
             code(_heun_inputs), _heun_reference,
             hint="slope d at sigma, an Euler step to sigma_next, the slope there, then the average of the two slopes"),
]
