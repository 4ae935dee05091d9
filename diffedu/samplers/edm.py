"""Probability-flow ODE samplers: EDM's Euler/Heun with optional churn, and the general s(t), sigma(t) solver.  [EDM Alg. 1-2]

With s = 1 and sigma = t the PF-ODE is dx/dsigma = (x - D(x; sigma)) / sigma  [EDM eq. 4], so one
Euler step from sigma to sigma_next is x + (sigma_next - sigma) (x - D) / sigma.  Heun's method
averages that slope with the slope at the Euler prediction (second order); the last step, to
sigma = 0, is always Euler, since the slope there is undefined.

Imports: torch, _checks, core maths (processes), trajectory.  Layer samplers.
"""
from __future__ import annotations

import math

import torch

from .._checks import all_finite, check_choice, check_finite, check_int, check_model_output, check_number, check_start
from ..processes import Process
from ..trajectory import NoiseStream, Trajectory, run

METHODS = ("heun", "euler")


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """n noise levels from sigma_max down to sigma_min, evenly spaced in sigma^(1/rho), then 0.  [EDM eq. 5]

    sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i = 0..n-1;
    float64, length n + 1.  n = 1 gives [sigma_max, 0].
    """
    n = check_int(n, "n", lo=1)
    sigma_min = check_number(sigma_min, "sigma_min", lo=0, lo_open=True, finite=True)
    sigma_max = check_number(sigma_max, "sigma_max", lo=sigma_min, finite=True)
    rho = check_number(rho, "rho", lo=0, lo_open=True, finite=True)
    if n > 1 and not sigma_max > sigma_min:
        raise ValueError(f"sigma_max must be > sigma_min for a grid of n = {n} levels, "
                         f"got sigma_min = sigma_max = {sigma_max}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    if not all_finite(sigmas) or (n > 1 and not bool((sigmas[1:] < sigmas[:-1]).all())):
        raise ValueError(f"karras_sigmas(n={n}, sigma_min={sigma_min}, sigma_max={sigma_max}, rho={rho}) is not a "
                         f"finite, strictly decreasing grid in float64: use a smaller rho or a narrower sigma range")
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def check_sigmas(sigmas) -> torch.Tensor:
    """A sigma grid must be 1-D, finite, strictly decreasing and end in 0."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
    if sigmas.dim() != 1 or len(sigmas) < 2:
        raise ValueError(f"sigmas must be a 1-D sequence of at least 2 noise levels ending in 0, got shape {tuple(sigmas.shape)}")
    check_finite(sigmas, "sigmas")
    if sigmas[-1] != 0:
        raise ValueError(f"sigmas must end in 0 (the clean data), got last value {sigmas[-1].item():g}")
    if not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError("sigmas must be strictly decreasing")
    return sigmas


def slope(x, x0_hat, sigma):
    """The PF-ODE slope dx/dsigma = (x - D(x; sigma)) / sigma when s = 1 and sigma(t) = t.  [EDM eq. 3, Alg. 1 l. 5]

    k-diffusion calls it `to_d`.  Every EDM sampler turns a denoiser output into a slope here.
    """
    return (x - x0_hat) / sigma


def euler_step(x, d, t, t_next):
    """One Euler step of dx/dt = d: x_next = x + (t_next - t) d.  [EDM Alg. 1 l. 6]"""
    return x + (t_next - t) * d


def heun_step(x, d, d_next, t, t_next):
    """One Heun (trapezoid) step: x_next = x + (t_next - t) (d + d_next) / 2, with d_next the slope at
    the Euler prediction.  [EDM Alg. 1 l. 7-8]"""
    return x + (t_next - t) * (d + d_next) / 2


def churn_gamma(sigma, s_churn, n_steps, s_tmin, s_tmax):
    """gamma_i = min(S_churn / N, sqrt(2) - 1) when S_tmin <= sigma_i <= S_tmax, else 0.  [EDM Alg. 2 l. 4]"""
    return min(s_churn / n_steps, math.sqrt(2) - 1) if s_tmin <= sigma <= s_tmax else 0.0


def sample_edm(denoiser, sigmas, x: torch.Tensor, method: str = "heun", s_churn: float = 0.0, s_tmin: float = 0.0,
               s_tmax: float = float("inf"), s_noise: float = 1.0, noises=None,
               generator: torch.Generator | None = None, record: bool = True) -> Trajectory:
    """EDM's stochastic sampler (the deterministic one when s_churn = 0).  [EDM Alg. 2]

    `denoiser(x, sigma)` returns x0_hat, with sigma a (B,) tensor; `x` is the start, already
    scaled by sigmas[0] (x = sigmas[0] * randn).  At each step with gamma_i > 0, noise is first
    added to raise sigma_i to sigma_hat = (1 + gamma_i) sigma_i (one fresh z, consumed from
    `noises` in order) and the denoiser is evaluated after that, as Algorithm 2 says.
    (diffusers' EulerDiscreteScheduler evaluates the model before adding the churn noise.)
    The step to sigma = 0 is an Euler step.  `.nfe` counts denoiser calls: 2N - 1 for Heun.
    s_churn >= 0 (inf: the largest gamma, sqrt(2) - 1), 0 <= s_tmin <= s_tmax (s_tmax may be inf),
    s_noise finite and >= 0.
    """
    check_choice(method, "method", METHODS)
    sigmas = check_sigmas(sigmas)
    check_start(x, "x")
    s_churn = check_number(s_churn, "s_churn", lo=0)
    s_tmin = check_number(s_tmin, "s_tmin", lo=0, finite=True)
    s_tmax = check_number(s_tmax, "s_tmax", lo=s_tmin)
    s_noise = check_number(s_noise, "s_noise", lo=0, finite=True)
    n_steps = len(sigmas) - 1
    sig = sigmas.tolist()
    gammas = [churn_gamma(s, s_churn, n_steps, s_tmin, s_tmax) for s in sig[:-1]]
    B = x.shape[0]
    z = NoiseStream(x, noises, generator)

    def vec(s):
        return torch.full((B,), s, dtype=x.dtype, device=x.device)

    def step(i, x):
        sigma, sigma_next = sig[i], sig[i + 1]
        if gammas[i] > 0:
            sigma_hat = sigma * (1 + gammas[i])
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * s_noise * z.next()
            sigma = sigma_hat
        # Euler step
        D = check_model_output(denoiser(x, vec(sigma)), x, "denoiser")
        d = slope(x, D, sigma)
        x_next = euler_step(x, d, sigma, sigma_next)
        if method == "euler" or sigma_next == 0:
            return D, x_next, 1
        # second-order correction: the slope at the Euler prediction
        D_next = check_model_output(denoiser(x_next, vec(sigma_next)), x, "denoiser")
        return D, heun_step(x, d, slope(x_next, D_next, sigma_next), sigma, sigma_next), 2

    return run(x, sigmas, step, record, model="denoiser", time="sigma")


def sample_pf_ode(denoiser, process: Process, ts, x: torch.Tensor, method: str = "euler",
                  record: bool = True) -> Trajectory:
    """Euler or Heun on the PF-ODE of any s(t), sigma(t).  [EDM Alg. 1, eq. 4]

    dx/dt = (sigma'/sigma + s'/s) x - (sigma' s / sigma) D(x / s; sigma(t)).  `ts` are decreasing
    times of the process; `x` is the start at ts[0], distributed like s(t_0) sigma(t_0) randn
    (plus s(t_0) x_0).  The last step is Euler when sigma(ts[-1]) = 0 (t = 0), Heun otherwise
    when method = "heun".  `.x0_hats` holds D at each step, the trajectory's `.ts` the times.
    """
    check_choice(method, "method", METHODS)
    ts = torch.as_tensor(ts, dtype=torch.float64)
    if ts.dim() != 1 or len(ts) < 2 or not bool((ts[1:] < ts[:-1]).all()):
        raise ValueError("ts must be a 1-D, strictly decreasing sequence of at least 2 times")
    check_finite(ts, "ts")
    check_start(x, "x")
    t_list = ts.tolist()
    B = x.shape[0]

    def slope_t(x, t):
        """dx/dt = a(t) x - b(t) D(x / s; sigma(t))  [EDM eq. 4]"""
        s, sigma = process.s(t), process.sigma(t)
        a, b = process.ode_coefs(t)
        D = check_model_output(denoiser(x / s, torch.full((B,), sigma, dtype=x.dtype, device=x.device)), x, "denoiser")
        return a * x - b * D, D

    def step(i, x):
        t, t_next = t_list[i], t_list[i + 1]
        d, D = slope_t(x, t)
        x_next = euler_step(x, d, t, t_next)
        if method == "euler" or process.sigma(t_next) == 0:
            return D, x_next, 1
        d_next, _ = slope_t(x_next, t_next)
        return D, heun_step(x, d, d_next, t, t_next), 2

    return run(x, ts, step, record, model="denoiser")
