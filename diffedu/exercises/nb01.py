"""Notebook 01's exercises: the forward process, the posterior, the DDPM step.

Imports: torch, diffedu.forward, diffedu.samplers (the references), ._core.
"""
from __future__ import annotations

import torch

from ..forward import q_mean_var_coefs
from ..schedules import linear_betas
from ..samplers.ddpm import ddpm_step
from ._core import Exercise, code, derived, numeric, symbolic


def _alpha_bars(g: torch.Generator, B: int):
    """alpha_bar_prev > alpha_bar_t, each in (0.02, 0.98), one per sample, shaped (B, 1, 1, 1)."""
    a, b = (0.02 + 0.96 * torch.rand(2, B, 1, 1, 1, generator=g, dtype=torch.float64)).sort(0).values
    return a, b                                      # a = alpha_bar_t < b = alpha_bar_prev


def _q_sample_inputs(g):
    B = int(torch.randint(1, 5, (1,), generator=g))
    alpha_bar, _ = _alpha_bars(g, B)
    x0 = torch.randn(B, 1, 4, 4, generator=g, dtype=torch.float64)
    return dict(x0=x0, alpha_bar=alpha_bar, eps=torch.randn(x0.shape, generator=g, dtype=torch.float64))


def _q_sample_reference():
    def q_sample(x0, alpha_bar, eps):
        mean_coef, variance = q_mean_var_coefs(alpha_bar)
        return mean_coef * x0 + variance.sqrt() * eps
    return q_sample


def step_inputs(g, scale: str, top: float) -> dict:
    """A reverse step's inputs: x, eps_hat, noise (B, 1, 4, 4), alpha_bar < alpha_bar_prev, and the noise scale
    `scale` ("sigma" or "eta") uniform in (0, top)."""
    B = int(torch.randint(1, 5, (1,), generator=g))
    alpha_bar, alpha_bar_prev = _alpha_bars(g, B)
    x = torch.randn(B, 1, 4, 4, generator=g, dtype=torch.float64)
    return {"x": x, "eps_hat": torch.randn(x.shape, generator=g, dtype=torch.float64), "alpha_bar": alpha_bar,
            "alpha_bar_prev": alpha_bar_prev, scale: float(torch.rand((), generator=g)) * top,
            "noise": torch.randn(x.shape, generator=g, dtype=torch.float64)}


def _ddpm_step_reference():
    def step(x, eps_hat, alpha_bar, alpha_bar_prev, sigma, noise):
        return ddpm_step(x, eps_hat, alpha_bar, alpha_bar_prev, sigma=sigma, noise=noise)[0]
    return step


EXERCISES = [
    Exercise("01.q_sample", "code",
             "write q_sample(x0, alpha_bar, eps) -> x_t, one draw of q(x_t | x_0) with the noise eps given "
             "(alpha_bar has shape (B, 1, 1, 1): one alpha_bar_t per sample)  [DDPM eq. 4]",
             code(_q_sample_inputs), _q_sample_reference,
             hint="x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: the standard deviation, not the variance, "
                  "multiplies eps"),
    Exercise("01.posterior_variance", "symbolic",
             "derive beta_tilde_t, the variance of q(x_{t-1} | x_t, x_0), in alpha_bar_t and alpha_bar_prev "
             "(or beta_t, alpha_t)  [DDPM eq. 7]",
             symbolic("posterior_variance"), derived("posterior_variance"),
             hint="complete the square in x_{t-1}: the variance is 1 / (alpha_t / beta_t + 1 / (1 - alpha_bar_prev))"),
    Exercise("01.ddpm_step", "code",
             "write ddpm_step(x, eps_hat, alpha_bar, alpha_bar_prev, sigma, noise) -> x_{t-1}, one DDPM reverse step: "
             "x0_hat from eps_hat, the posterior mean at x0_hat, plus sigma noise  [DDPM eq. 11, Alg. 2]",
             code(lambda g: step_inputs(g, "sigma", 0.3)), _ddpm_step_reference,
             hint="alpha_t = alpha_bar / alpha_bar_prev; the mean is (x - (1 - alpha_t) / sqrt(1 - alpha_bar) eps_hat) "
                  "/ sqrt(alpha_t)"),
    Exercise("01.reverse_variance_of_gaussian_data", "numeric",
             "data x_0 ~ N(0, I), the linear schedule (T = 1000): the exact Var[x_{t-1} | x_t] at t = 500, a number. "
             "Is it beta_t or beta_tilde_t?  [DDPM §3.2]",
             numeric(rtol=1e-4), lambda: float(linear_betas(1000)[499]),
             hint="with x_0 ~ N(0, I) every x_t is N(0, I); x_{t-1} and x_t are jointly Gaussian with covariance "
                  "sqrt(alpha_t): condition one on the other"),
]
