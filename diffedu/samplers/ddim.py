"""DDIM: the sigma(eta) family of non-Markovian reverse steps over a sub-sequence tau of times.  [DDIM eq. 12, 16]

Time grids (`spacing`) follow diffusers' `timestep_spacing`, moved to paper time
(diffusers' timestep k is paper time k + 1, because diffusers indexes alpha_bar from 0 for
the first noisy step).  With n = steps:

  leading   t_i = i * (T // n) + 1,                 i = n-1..0     (diffusers' default)
  trailing  t_i = round(T - i * T / n),             i = 0..n-1
  linspace  t_i = round(i * (T - 1) / (n - 1)) + 1, i = n-1..0

and every grid ends with t = 0 (alpha_bar_0 = 1), so the last step lands on clean data.
Each step goes from one grid time to the next one in the list.  diffusers' DDIMScheduler
instead always jumps by T // n, which lands off the grid for `linspace`, and for `trailing`
when n does not divide T; there diffedu keeps to the grid (see tests/peers/test_diffusers_ddpm_ddim.py).

Imports: numpy, torch, _checks, core maths (param, posterior, schedules), trajectory, .common.  Layer samplers.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_choice, check_int, check_model_output, check_number, check_start
from ..param import eps_from_x0, x0_from_eps
from ..posterior import ddim_max_eta, ddim_sigma, ddim_step_coefs
from ..schedules import Schedule
from ..trajectory import NoiseStream, Trajectory, run
from .common import check_clip, clip, model_time

SPACINGS = ("leading", "trailing", "linspace")


def ddim_timesteps(T: int, steps: int, spacing: str = "leading") -> torch.Tensor:
    """The decreasing paper times t_n > ... > t_1 >= 1 of a DDIM grid, followed by 0 (length steps + 1)."""
    T = check_int(T, "T", lo=1)
    steps = check_int(steps, "steps", lo=1, hi=T)
    check_choice(spacing, "spacing", SPACINGS)
    if spacing == "leading":
        ratio = T // steps
        ts = [i * ratio + 1 for i in range(steps - 1, -1, -1)]
    elif spacing == "trailing":
        # numpy's float arithmetic, as diffusers uses it, so that near-half-way cases round alike
        ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64).tolist()
        # float round-off can leave one extra value near 0 in arange (e.g. T = 1000, steps = 61,
        # where diffusers then yields timestep -1); the grid has exactly `steps` times >= 1
        ts = ts[:steps]
    else:
        ts = (np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64) + 1).tolist()
    return torch.tensor(ts + [0], dtype=torch.long)


def ddim_step(x, eps_hat, alpha_bar, alpha_bar_prev, eta=0.0, noise=None, clip_x0=None):
    """x_prev = sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev - sigma^2) eps_hat + sigma z.  [DDIM eq. 12]

    sigma = sigma(eta) of DDIM eq. 16.  Returns (x_prev, x0_hat).  When clip_x0 clips x0_hat,
    eps_hat is re-solved from x_t and the clipped x0_hat so that the step stays consistent.
    eta must be finite and >= 0 with sigma^2 <= 1 - alpha_bar_prev; `noise` is needed when sigma > 0.
    alpha_bar and alpha_bar_prev in (0, 1] are checked when they are Python floats.
    """
    if not 0 <= eta < math.inf:  # NaN fails too; the message is check_number's
        check_number(eta, "eta", lo=0, finite=True)
    if type(alpha_bar) is float and not (0 < alpha_bar <= 1 and 0 < alpha_bar_prev <= 1):
        _check_alpha_bars(alpha_bar, alpha_bar_prev)
    x0_hat = x0_from_eps(x, eps_hat, alpha_bar)
    if clip_x0 is not None:
        x0_hat = clip(x0_hat, clip_x0)
        eps_hat = eps_from_x0(x, x0_hat, alpha_bar)
    sigma = ddim_sigma(alpha_bar, alpha_bar_prev, eta) if eta else 0.0   # eta = 0 also runs upwards (inversion)
    if type(sigma) is float and sigma > 0 and sigma * sigma > 1 - alpha_bar_prev:  # sigma = 0 always fits
        largest = ddim_max_eta(alpha_bar, alpha_bar_prev)
        raise ValueError(f"eta={eta} makes sigma^2 = {sigma * sigma:.6g} > 1 - alpha_bar_prev = "
                         f"{1 - alpha_bar_prev:.6g}; the largest eta for this step is {largest:.6g}")
    coef_x0, coef_eps = ddim_step_coefs(alpha_bar, alpha_bar_prev, sigma)
    x_prev = coef_x0 * x0_hat + coef_eps * eps_hat
    largest = float(sigma.max()) if torch.is_tensor(sigma) else float(sigma)   # sigma may be per-sample
    if largest > 0:
        if noise is None:
            raise ValueError(f"eta={eta} gives this step sigma = {largest:.6g} > 0: pass noise= (shaped like x)")
        x_prev = x_prev + sigma * noise
    return x_prev, x0_hat


def _check_alpha_bars(alpha_bar, alpha_bar_prev) -> None:
    """A step's alpha_bar_t and alpha_bar_prev must be in (0, 1] (Python floats; tensors are not checked)."""
    check_number(alpha_bar, "alpha_bar", lo=0, hi=1, lo_open=True)
    check_number(alpha_bar_prev, "alpha_bar_prev", lo=0, hi=1, lo_open=True)


def max_eta(alpha_bars) -> float:
    """The largest eta for which 1 - alpha_bar_prev - sigma(eta)^2 >= 0 at every step of a grid."""
    bounds = [ddim_max_eta(ab, ab_prev) for ab, ab_prev in zip(alpha_bars[:-1], alpha_bars[1:]) if ab_prev < 1]
    return min(bounds, default=math.inf)


def sample_ddim(eps_model, sched: Schedule, x_T: torch.Tensor, steps: int = 50, eta: float = 0.0,
                spacing: str = "leading", noises=None, generator: torch.Generator | None = None,
                clip_x0=None, record: bool = True) -> Trajectory:
    """DDIM sampling over `steps` grid times with noise scale eta.  [DDIM eq. 12, 16; Alg. in §4.2]

    eta = 0: deterministic DDIM; eta = 1 with steps = T: the DDPM sampler with
    sigma_t^2 = beta_tilde_t, noise for noise (same `noises` give the same path).  Noise: one
    fresh z per step with sigma > 0, that is every step but the last when eta > 0, none when
    eta = 0.  eta > 1 is allowed as long as sigma^2 <= 1 - alpha_bar_prev at every step.
    The grid is `ddim_timesteps(T, steps, spacing)`: the default "leading" (diffusers') starts at
    (steps - 1) (T // steps) + 1, not at T, so with few steps the first state is treated as less
    noisy than x_T ~ N(0, I) is (steps = 1: a single step from t = 1); "trailing" always starts at T.
    """
    eta = check_number(eta, "eta", lo=0)  # inf: refused below with the largest eta allowed
    check_start(x_T)
    steps = check_int(steps, "steps", lo=1, hi=sched.T)
    clip_x0 = check_clip(clip_x0)
    ts = ddim_timesteps(sched.T, steps, spacing)
    ab = sched.alpha_bar[ts].tolist()
    if eta > 1 and eta > max_eta(ab):
        raise ValueError(f"eta={eta} makes sigma^2 > 1 - alpha_bar_prev on this grid; "
                         f"the largest eta allowed for steps={steps}, spacing={spacing!r} is {max_eta(ab):.6g}")
    t_list = ts.tolist()
    z = NoiseStream(x_T, noises, generator)

    def step(i, x):
        eps_hat = check_model_output(eps_model(x, model_time(t_list[i], x)), x)
        noisy = eta > 0 and ddim_sigma(ab[i], ab[i + 1], eta) > 0
        x_prev, x0_hat = ddim_step(x, eps_hat, ab[i], ab[i + 1], eta, z.next() if noisy else None, clip_x0)
        return x0_hat, x_prev, 1

    return run(x_T, ts, step, record, model="eps_model")


def ddim_invert(eps_model, sched: Schedule, x0: torch.Tensor, steps: int = 50, spacing: str = "leading",
                record: bool = True) -> Trajectory:
    """DDIM inversion: run the deterministic update upwards, from x_0 to x_T.  [DDIM §4.3, eq. 12 with sigma = 0]

    Because eta = 0 DDIM is an Euler discretisation of an ODE, the same update taken from t_i to
    the next larger grid time t_{i+1} encodes x_0 into a noise x_T from which `sample_ddim` (same
    steps and spacing) decodes it back, up to the discretisation error.  eps_hat is evaluated at
    the current time (at t = 0, where eps is undefined, at the first grid time).
    """
    check_start(x0, "x0")
    steps = check_int(steps, "steps", lo=1, hi=sched.T)
    ts = ddim_timesteps(sched.T, steps, spacing).flip(0)  # 0, t_1, ..., t_n
    ab = sched.alpha_bar[ts].tolist()
    t_model = ts.tolist()
    t_model[0] = t_model[1]  # eps_hat at t = 0 is taken at the first grid time

    def step(i, x):
        eps_hat = check_model_output(eps_model(x, model_time(t_model[i], x)), x)
        # the deterministic update from alpha_bar_{t_i} to the larger time's alpha_bar_{t_{i+1}};
        # at t = 0 (alpha_bar = 1) its x0_hat is x itself
        x_next, x0_hat = ddim_step(x, eps_hat, ab[i], ab[i + 1])
        return x0_hat, x_next, 1

    return run(x0, ts, step, record, model="eps_model")
