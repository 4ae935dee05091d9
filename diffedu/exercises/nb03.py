"""Notebook 03's exercises: the three corrections of estimate-then-correct, in code and in numbers.

Imports: torch, diffedu.param, diffedu.posterior, diffedu.samplers, diffedu.schedules (the references), ._core.
"""
from __future__ import annotations

import torch

from ..param import eps_from_x0
from ..posterior import ddim_sigma
from ..samplers.ddim import ddim_timesteps
from ..samplers.estimate_correct import partial_noise, sigma_tilde_for_eta, sigma_tilde_from_ddim_sigma
from ..schedules import Schedule, linear_betas
from ._core import Exercise, code, numeric
from .nb01 import _alpha_bars

# the step of the numeric exercise: alpha_bar_t = 0.3 -> alpha_bar_{t-1} = 0.5
AB_T, AB_PREV = 0.3, 0.5


def _step_inputs(g):
    B = int(torch.randint(1, 5, (1,), generator=g))
    alpha_bar, alpha_bar_prev = _alpha_bars(g, B)
    x_t = torch.randn(B, 1, 4, 4, generator=g, dtype=torch.float64)
    return dict(x_t=x_t, x0_hat=torch.randn(x_t.shape, generator=g, dtype=torch.float64), alpha_bar=alpha_bar,
                alpha_bar_prev=alpha_bar_prev)


def _deterministic_reference():
    def correct(x_t, x0_hat, alpha_bar, alpha_bar_prev):
        eps_hat = eps_from_x0(x_t, x0_hat, alpha_bar)                       # F_t^{-1}(x0_hat, x_t)
        return alpha_bar_prev.sqrt() * x0_hat + (1 - alpha_bar_prev).sqrt() * eps_hat
    return correct


def _partial_inputs(g):
    shape = (int(torch.randint(1, 5, (1,), generator=g)), 1, 3, 3)
    return dict(eps_hat=torch.randn(shape, generator=g, dtype=torch.float64),
                z=torch.randn(shape, generator=g, dtype=torch.float64), sigma_tilde=float(torch.rand((), generator=g)))


EXERCISES = [
    Exercise("03.deterministic_correction", "code",
             "write correct(x_t, x0_hat, alpha_bar, alpha_bar_prev) -> x_{t-1}, the deterministic correction for the "
             "Gaussian forward process: solve eps_hat from x_t and x0_hat, then F_{t-1}(x0_hat, eps_hat)  [UDM eq. 12]",
             code(_step_inputs), _deterministic_reference,
             hint="eps_hat = (x_t - sqrt(alpha_bar_t) x0_hat) / sqrt(1 - alpha_bar_t); then apply the forward "
                  "process at t - 1 with that noise"),
    Exercise("03.partial_noise", "code",
             "write partial(eps_hat, z, sigma_tilde) -> the noise the partial correction feeds to F_{t-1}, which "
             "must still be N(0, I) when eps_hat and z are independent N(0, I)  [UDM eq. 13]",
             code(_partial_inputs), lambda: partial_noise,
             hint="a weighted sum of two independent standard normals has variance a^2 + b^2: choose a so that it is 1"),
    Exercise("03.sigma_tilde_of_ddpm", "numeric",
             f"the partial correction with which sigma_tilde is DDPM's step (DDIM eta = 1) from alpha_bar_t = {AB_T} "
             f"to alpha_bar_(t-1) = {AB_PREV}?  [UDM eq. 13, DDIM eq. 16]",
             numeric(rtol=1e-4), lambda: float(sigma_tilde_from_ddim_sigma(AB_PREV, ddim_sigma(AB_T, AB_PREV, 1.0))),
             hint="DDIM's sigma of the partial step is sqrt(1 - alpha_bar_prev) sigma_tilde; eta = 1 gives "
                  "sigma^2 = beta_tilde_t"),
    Exercise("03.sigma_tilde_for_eta", "numeric",
             "which sigma_tilde makes the partial correction reproduce DDIM with eta = 0.5 at the first step of the "
             "10-step grid d.ddim_timesteps(1000, 10) of the linear schedule?  [UDM eq. 13, DDIM eq. 16]",
             numeric(rtol=1e-6), lambda: float(sigma_tilde_for_eta(Schedule(linear_betas(1000)), ddim_timesteps(1000, 10), 0.5)[0]),
             hint="sigma_tilde = sigma / sqrt(1 - alpha_bar_prev) with sigma = d.ddim_sigma(alpha_bar_t, alpha_bar_prev, 0.5) "
                  "at the grid's first two times"),
]
