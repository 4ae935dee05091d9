"""Ancestral DDPM sampling: x_{t-1} ~ N(mu_tilde(x_t, x0_hat), sigma_t^2 I), t = T..1.  [DDPM Alg. 2]

Imports: math, torch, _checks, core maths (param, posterior, schedules), trajectory, .common.  Layer samplers.
"""
from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_model_output, check_number, check_start
from ..param import x0_from_eps
from ..posterior import posterior_mean_coefs
from ..schedules import Schedule
from ..trajectory import NoiseStream, Trajectory, run
from .common import check_clip, clip, model_time

VARIANCES = ("beta_tilde", "beta")


def ddpm_step(x, eps_hat, alpha_bar, alpha_bar_prev, sigma=0.0, noise=None, clip_x0=None):
    """One reverse step: x0_hat from eps_hat, then the posterior mean plus sigma z.  [DDPM eq. 7, 11; Alg. 2]

    Returns (x_prev, x0_hat).  With clip_x0 = None the mean equals DDPM eq. 11 exactly
    (the eps-form); with clipping the clipped x0_hat enters eq. 7.  sigma must be finite and >= 0;
    `noise` is needed when sigma > 0.  alpha_bar, alpha_bar_prev in (0, 1] are checked when they
    are Python floats (alpha_bar < 1: the step's 1 - alpha_bar_t divides).
    """
    if not 0 <= sigma < math.inf:  # NaN fails too; the message is check_number's
        check_number(sigma, "sigma", lo=0, finite=True)
    if type(alpha_bar) is float and not (0 < alpha_bar < 1 and 0 < alpha_bar_prev <= 1):
        check_number(alpha_bar, "alpha_bar", lo=0, hi=1, lo_open=True, hi_open=True)
        check_number(alpha_bar_prev, "alpha_bar_prev", lo=0, hi=1, lo_open=True)
    x0_hat = clip(x0_from_eps(x, eps_hat, alpha_bar), clip_x0)
    coef_x0, coef_xt = posterior_mean_coefs(alpha_bar, alpha_bar_prev)
    x_prev = coef_x0 * x0_hat + coef_xt * x
    if sigma > 0:
        if noise is None:
            raise ValueError(f"sigma = {float(sigma):.6g} > 0: pass noise= (shaped like x)")
        x_prev = x_prev + sigma * noise
    return x_prev, x0_hat


def ddpm_sigmas(sched: Schedule, variance: str = "beta_tilde") -> list[float]:
    """sigma_t for t = 0..T: sqrt(beta_tilde_t) or sqrt(beta_t), and 0 at t = 1 (no noise on the last step).  [DDPM §3.2, Alg. 2]"""
    check_choice(variance, "variance", VARIANCES)
    var = sched.posterior_variance if variance == "beta_tilde" else sched.beta
    sigmas = var.sqrt().tolist()
    sigmas[1] = 0.0
    return sigmas


def sample_ddpm(eps_model, sched: Schedule, x_T: torch.Tensor, variance: str = "beta_tilde",
                noises=None, generator: torch.Generator | None = None, clip_x0=None,
                record: bool = True) -> Trajectory:
    """DDPM ancestral sampling from x_T through all T steps.  [DDPM Alg. 2]

    eps_model(x_t, t) is called with t a LongTensor of shape (B,) in 1..T.  variance picks
    sigma_t^2 = beta_tilde_t (the "fixed small" choice) or beta_t ("fixed large").  Noise: one
    fresh z per step t = T..2 (T - 1 in all; the step from t = 1 adds none), taken in order from
    `noises` if given, else drawn with `generator`.  clip_x0=(lo, hi) clips x0_hat before the
    update (off by default).  Returns a Trajectory with nfe = T.
    """
    check_choice(variance, "variance", VARIANCES)
    check_start(x_T)
    clip_x0 = check_clip(clip_x0)
    sigmas = ddpm_sigmas(sched, variance)
    ab = sched.alpha_bar.tolist()
    ts = torch.arange(sched.T, -1, -1)
    z = NoiseStream(x_T, noises, generator)

    def step(i, x):
        t = sched.T - i
        eps_hat = check_model_output(eps_model(x, model_time(t, x)), x)
        noise = z.next() if sigmas[t] > 0 else None
        x_prev, x0_hat = ddpm_step(x, eps_hat, ab[t], ab[t - 1], sigmas[t], noise, clip_x0)
        return x0_hat, x_prev, 1

    return run(x_T, ts, step, record, model="eps_model")
