"""EDM's denoiser D(x; sigma) = c_skip x + c_out F(c_in x, c_noise), its loss, and adapters to eps-models.  [EDM Tab. 1, eq. 7-8]

The denoiser works in the VE view x = x_0 + sigma eps.  An eps-model on a discrete DDPM
schedule is the same thing in other coordinates: x_t = sqrt(alpha_bar_t) x with
sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), and D(x, sigma_t) = x - sigma_t eps_hat
(see `diffedu.symbolic.processes` for the proof that DDIM is Euler in these coordinates).

Imports: torch, _checks, _ops, schedules.  Layer core.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import HALF_DTYPES, check_finite, check_model_output, check_number
from ._ops import log, sqrt
from .schedules import Schedule, ve_sigma


def edm_scalings(sigma, sigma_data=0.5):
    """(c_skip, c_out, c_in) of D = c_skip x + c_out F(c_in x, c_noise).  [EDM Tab. 1, App. B.6]

    c_in makes the network input unit variance; c_skip, c_out minimise the variance of the
    effective training target (derived in `diffedu.symbolic.precond`).
    """
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / sqrt(sigma**2 + sigma_data**2)
    c_in = 1 / sqrt(sigma**2 + sigma_data**2)
    return c_skip, c_out, c_in


def c_noise(sigma):
    """The network's noise label c_noise = ln(sigma) / 4.  [EDM Tab. 1]"""
    return log(sigma) / 4


def edm_loss_weight(sigma, sigma_data=0.5):
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2.  [EDM Tab. 1, eq. 8]"""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def _sigma_vector(sigma, x: torch.Tensor) -> torch.Tensor:
    """sigma as a (B,) tensor of x's dtype and device."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.dim() == 0:
        sigma = sigma.expand(x.shape[0])
    if sigma.shape != (x.shape[0],):
        raise ValueError(f"sigma must be a number or a tensor of shape ({x.shape[0]},), got {tuple(sigma.shape)}")
    return sigma


class Denoiser(nn.Module):
    """Wrap a network F(x, c_noise) into EDM's preconditioned denoiser D(x, sigma).  [EDM Tab. 1]"""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = check_number(sigma_data, "sigma_data", lo=0, lo_open=True, finite=True)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = _sigma_vector(sigma, x)
        shape = (-1,) + (1,) * (x.dim() - 1)
        c_skip, c_out, c_in = (c.reshape(shape) for c in edm_scalings(sigma, self.sigma_data))
        F = self.net(c_in * x, c_noise(sigma))
        return c_skip * x + c_out * F.to(x.dtype)


def edm_loss(denoiser, x0: torch.Tensor, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """E_sigma,y,n [lambda(sigma) ||D(y + n; sigma) - y||^2] with ln sigma ~ N(P_mean, P_std^2).  [EDM eq. 8, Tab. 1]"""
    check_finite(x0, "x0")
    P_mean = check_number(P_mean, "P_mean", finite=True)
    P_std = check_number(P_std, "P_std", lo=0, finite=True)
    sigma_data = check_number(sigma_data, "sigma_data", lo=0, lo_open=True, finite=True)
    B = x0.shape[0]
    ln_sigma = torch.randn(B, generator=generator, dtype=x0.dtype, device=x0.device) * P_std + P_mean
    sigma = ln_sigma.exp()
    n = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    D = denoiser(x0 + sigma.reshape(shape) * n, sigma)
    weight = edm_loss_weight(sigma, sigma_data).reshape(shape)
    return (weight * (D - x0) ** 2).mean()


def denoiser_from_eps(eps_model, sched: Schedule):
    """D(x, sigma) from an eps-model on a discrete schedule: the nearest time t in log sigma.

    x_t = x / sqrt(1 + sigma^2) (= sqrt(alpha_bar_t) x) and D = x - sigma eps_model(x_t, t).
    The sigma actually used is the schedule's sigma_t, so pass sigmas from `sched.sigma` for an
    exact match (as `sample_edm` does when given `sched.sigma[ts]`).  sigma must be > 0 (checked
    when it is a number; inf picks t = T); eps_model's output must be shaped like its input.  For
    float16 / bfloat16 states the coefficients are float64 and D is returned in x's dtype.
    """
    log_sig = sched.sigma[1:].log()

    def D(x: torch.Tensor, sigma) -> torch.Tensor:
        if isinstance(sigma, (int, float)):  # a tensor is not checked: that would cost a host sync per call
            check_number(sigma, "sigma", lo=0, lo_open=True)
        sigma = _sigma_vector(sigma, x)
        t = (log_sig.to(x.device)[None, :] - sigma.log().to(log_sig.dtype)[:, None]).abs().argmin(1) + 1
        shape = (-1,) + (1,) * (x.dim() - 1)
        if x.dtype in HALF_DTYPES:  # 1 + sigma_t^2 overflows float16 at sigma_t > 256: coefficients in float64
            sigma_t = sched.sigma.to(x.device, torch.float64)[t].reshape(shape)
            x_t = (x / (1 + sigma_t**2).sqrt()).to(x.dtype)
            return (x - sigma_t * check_model_output(eps_model(x_t, t), x_t)).to(x.dtype)
        sigma_t = sched.sigma.to(x.device)[t].to(x.dtype)
        x_t = x / (1 + sigma_t**2).sqrt().reshape(shape)
        return x - sigma_t.reshape(shape) * check_model_output(eps_model(x_t, t), x_t)

    return D


def eps_from_denoiser(denoiser, sched: Schedule):
    """The eps-model of a denoiser on a discrete schedule: eps_hat = (x - D(x, sigma_t)) / sigma_t, x = x_t / sqrt(alpha_bar_t).

    t must be >= 1 (sigma_0 = 0 divides).  For float16 / bfloat16 states the coefficients are float64
    and eps_hat is returned in x_t's dtype.
    """

    def eps_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (x_t.dim() - 1)
        if x_t.dtype in HALF_DTYPES:  # alpha_bar_1 rounds to 1 in half precision (sigma = 0, 0/0): float64
            ab = sched.alpha_bar.to(x_t.device, torch.float64)[t]
            sigma = ve_sigma(ab)
            x = (x_t / ab.sqrt().reshape(shape)).to(x_t.dtype)
            D = check_model_output(denoiser(x, sigma.to(x_t.dtype)), x, "denoiser")
            return ((x - D) / sigma.reshape(shape)).to(x_t.dtype)
        ab = sched.alpha_bar.to(x_t.device, x_t.dtype)[t]
        sigma = ve_sigma(ab)
        x = x_t / ab.sqrt().reshape(shape)
        return (x - check_model_output(denoiser(x, sigma), x, "denoiser")) / sigma.reshape(shape)

    return eps_model
