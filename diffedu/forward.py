"""The forward process q(x_t | x_0) of DDPM, in closed form.  [DDPM eq. 4]

`q_mean_var_coefs` is plain arithmetic (floats, tensors, sympy symbols), paired with its derivation
in `diffedu.symbolic.forward`.  Imports: torch, diffedu._checks, diffedu._ops, diffedu.schedules.
"""
from __future__ import annotations

import torch

from ._checks import HALF_DTYPES
from ._ops import broadcast_to_batch, sqrt
from .schedules import Schedule


def q_mean_var_coefs(alpha_bar):
    """(sqrt(alpha_bar_t), 1 - alpha_bar_t): q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).  [DDPM eq. 4]"""
    return sqrt(alpha_bar), 1 - alpha_bar


def _alpha_bar_at(sched: Schedule, t, x: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t as a scalar or as a (B, 1, ..., 1) tensor broadcasting over x.

    In x's dtype, or float64 for float16 / bfloat16 x (where alpha_bar_1 would round to 1).
    """
    sched.check_t(t)
    dtype = torch.float64 if x.dtype in HALF_DTYPES else x.dtype
    if isinstance(t, torch.Tensor) and t.dim() > 0:
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be an int or a LongTensor of shape (B,) = ({x.shape[0]},), got shape {tuple(t.shape)}")
        ab = sched.alpha_bar.to(x.device)[t.to(x.device)]
        return broadcast_to_batch(ab, x).to(dtype)
    return sched.alpha_bar[int(t)].to(device=x.device, dtype=dtype)


def _coefs(sched: Schedule, x0: torch.Tensor, t):
    """(sqrt(alpha_bar_t), 1 - alpha_bar_t) in x0's dtype; for half precision computed in float64 first."""
    mean_coef, var = q_mean_var_coefs(_alpha_bar_at(sched, t, x0))
    if x0.dtype in HALF_DTYPES:
        return mean_coef.to(x0.dtype), var.to(x0.dtype)
    return mean_coef, var


def q_mean_var(sched: Schedule, x0: torch.Tensor, t):
    """Mean and variance of q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).  [DDPM eq. 4]"""
    mean_coef, var = _coefs(sched, x0, t)
    return mean_coef * x0, var


def q_sample(sched: Schedule, x0: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.  [DDPM eq. 4, Alg. 1]

    t is an int in 0..T or a LongTensor of shape (B,), one time per sample.
    """
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have the shape of x0 {tuple(x0.shape)}, got {tuple(eps.shape)}")
    if eps.device != x0.device:
        raise ValueError(f"eps is on {eps.device} but x0 is on {x0.device}; put them on one device")
    if x0.dtype in HALF_DTYPES:  # sqrt(1 - alpha_bar_t) from float64: 1 - alpha_bar_1 is 0 in float16
        mean_coef, var = q_mean_var_coefs(_alpha_bar_at(sched, t, x0))
        return mean_coef.to(x0.dtype) * x0 + sqrt(var).to(x0.dtype) * eps
    mean, var = q_mean_var(sched, x0, t)
    return mean + sqrt(var) * eps
