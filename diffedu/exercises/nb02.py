"""Notebook 02's exercises: the DDIM sigma(eta) family and the DDIM step.

Imports: diffedu.samplers (the reference step), ._core and nb01 (the step inputs).
"""
from __future__ import annotations


from ..samplers.ddim import ddim_step
from ._core import Exercise, code, derived, symbolic
from .nb01 import step_inputs


def _ddim_step_reference():
    def step(x, eps_hat, alpha_bar, alpha_bar_prev, eta, noise):
        return ddim_step(x, eps_hat, alpha_bar, alpha_bar_prev, eta=eta, noise=noise)[0]
    return step


EXERCISES = [
    Exercise("02.ddim_sigma", "symbolic",
             "derive sigma_t(eta), the noise scale of the DDIM family with eta = 1 the DDPM posterior's "
             "standard deviation, in alpha_bar_t, alpha_bar_prev and eta  [DDIM eq. 16]",
             symbolic("ddim_sigma"), derived("ddim_sigma"),
             hint="eta = 1 must give sqrt(beta_tilde_t) = sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t) "
                  "(1 - alpha_bar_t / alpha_bar_prev))"),
    Exercise("02.ddim_k", "symbolic",
             "the ansatz q_sigma(x_prev | x_t, x_0) = N(k x_0 + m x_t, sigma^2 I) must keep q(x_prev | x_0) for every "
             "sigma: derive k in alpha_bar_t, alpha_bar_prev and sigma  [DDIM eq. 7, the notes' eq. 1-6]",
             symbolic("ddim_k"), derived("ddim_k"),
             hint="match the mean: k + m sqrt(alpha_bar_t) = sqrt(alpha_bar_prev); match the variance: "
                  "m^2 (1 - alpha_bar_t) + sigma^2 = 1 - alpha_bar_prev; solve for m first"),
    Exercise("02.ddim_m", "symbolic",
             "the same ansatz: derive m, the coefficient of x_t, in alpha_bar_t, alpha_bar_prev and sigma  [DDIM eq. 7]",
             symbolic("ddim_m"), derived("ddim_m"),
             hint="m^2 (1 - alpha_bar_t) + sigma^2 = 1 - alpha_bar_prev, m > 0"),
    Exercise("02.ddim_step", "code",
             "write ddim_step(x, eps_hat, alpha_bar, alpha_bar_prev, eta, noise) -> x_prev, one DDIM step: x0_hat, then "
             "sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev - sigma^2) eps_hat + sigma noise  [DDIM eq. 12]",
             code(lambda g: step_inputs(g, "eta", 1.0)), _ddim_step_reference,
             hint="sigma is sigma_t(eta) of DDIM eq. 16; x0_hat = (x - sqrt(1 - alpha_bar) eps_hat) / sqrt(alpha_bar)"),
]
