"""Discrete noise schedules: beta_1..beta_T and the quantities indexed by paper time t = 0..T.

Paper time: t = 0 is clean data (alpha_bar_0 = 1), t = T is (almost) pure noise. Every tensor
of `Schedule` has length T + 1 and is indexed by that t, so `sched.alpha_bar[t]` reads as the
paper's \\bar\\alpha_t.  Notation clash: DDIM writes alpha_t for DDPM's alpha_bar_t; the code
always says `alpha_bar`.  The tables are computed with coefficient functions that are paired with
their derivations (`ve_sigma`, `snr`, `beta_from_alpha_bar` below, derived in
`diffedu.symbolic.forward`; `diffedu.posterior.posterior_variance`): beyond the schedules'
definitions and alpha_t = 1 - beta_t, `Schedule` holds no formula of its own.
Imports: torch, diffedu._checks, diffedu._ops, diffedu.posterior.
"""
from __future__ import annotations

import math

import torch

from ._checks import all_finite, check_int, check_number
from ._ops import sqrt
from .posterior import posterior_variance


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_t evenly spaced from beta_start to beta_end, t = 1..T.  [DDPM §4]"""
    T = check_int(T, "T", lo=1)
    beta_start = check_number(beta_start, "beta_start", lo=0, hi=1, lo_open=True, hi_open=True)
    beta_end = check_number(beta_end, "beta_end", lo=0, hi=1, lo_open=True, hi_open=True)
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def _betas_from_alpha_bar(alpha_bar: torch.Tensor, max_beta: float) -> torch.Tensor:
    """beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped at max_beta.  [iDDPM eq. 17]"""
    return beta_from_alpha_bar(alpha_bar[1:], alpha_bar[:-1]).clamp(max=max_beta)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """alpha_bar_t = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) * pi/2); betas clipped.  [iDDPM eq. 17]"""
    T = check_int(T, "T", lo=1)
    s = check_number(s, "s", lo=0, lo_open=True, finite=True)
    max_beta = check_number(max_beta, "max_beta", lo=0, hi=1, lo_open=True, hi_open=True)
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return _checked_betas(_betas_from_alpha_bar(f / f[0], max_beta), f"cosine_betas(T={T}, s={s})")


def sigmoid_betas(T: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0,
                  max_beta: float = 0.999) -> torch.Tensor:
    """alpha_bar_t from a shifted, scaled sigmoid of t/T; betas clipped at 0.999.  [Jabri Fig. 8]

    alpha_bar(u) = (sigmoid(end/tau) - sigmoid((start + u (end - start))/tau))
                   / (sigmoid(end/tau) - sigmoid(start/tau)),  u = t/T,
    renormalised so that alpha_bar_0 = 1 (the course homework's schedule).
    """
    T = check_int(T, "T", lo=1)
    start = check_number(start, "start", finite=True)
    end = check_number(end, "end", finite=True)
    if not start < end:
        raise ValueError(f"sigmoid_betas needs start < end, got start={start}, end={end}")
    tau = check_number(tau, "tau", lo=0, lo_open=True, finite=True)
    max_beta = check_number(max_beta, "max_beta", lo=0, hi=1, lo_open=True, hi_open=True)
    u = torch.arange(T + 1, dtype=torch.float64) / T
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
    alpha_bar = (v_end - torch.sigmoid((start + u * (end - start)) / tau)) / (v_end - v_start)
    return _checked_betas(_betas_from_alpha_bar(alpha_bar / alpha_bar[0], max_beta),
                          f"sigmoid_betas(T={T}, start={start}, end={end}, tau={tau})")


def _checked_betas(betas: torch.Tensor, call: str) -> torch.Tensor:
    """betas that are all in (0, 1), or a ValueError saying which call gave which t outside it."""
    bad = ~((betas > 0) & (betas < 1))
    if bool(bad.any()):
        t = int(bad.nonzero()[0, 0]) + 1
        raise ValueError(f"{call} gives beta_{t} = {betas[t - 1].item()!r}, outside (0, 1): alpha_bar saturates "
                         f"in float64 (sigmoid: tau too small for start, end; cosine: s too small); "
                         f"use a larger tau or s")
    return betas


# ---- coefficient functions of alpha_bar: plain arithmetic (floats, tensors, sympy symbols), each
# paired with its derivation in diffedu.symbolic.forward; Schedule builds its tables with them -------

def ve_sigma(alpha_bar):
    """sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t), the VE noise level.  [EDM Tab. 1, DDIM eq. 14]

    x_t / sqrt(alpha_bar_t) = x_0 + sigma_t eps: the variance-exploding view of the same process;
    0 at alpha_bar = 1 (t = 0).
    """
    return sqrt((1 - alpha_bar) / alpha_bar)


def snr(alpha_bar):
    """SNR_t = alpha_bar_t / (1 - alpha_bar_t) = 1 / sigma_t^2.  [VDM eq. 3]

    At alpha_bar = 1 (t = 0) a tensor gives inf; a Python float raises ZeroDivisionError.
    """
    return alpha_bar / (1 - alpha_bar)


def beta_from_alpha_bar(alpha_bar, alpha_bar_prev):
    """beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, as alpha_bar_t = alpha_t alpha_bar_{t-1}.  [iDDPM eq. 17]"""
    return 1 - alpha_bar / alpha_bar_prev


def _table_dtype(dtype) -> torch.dtype:
    """A schedule's tables are real floating point; float16 / bfloat16 are allowed only where the
    betas survive in them (`_check_tables`); samplers read the tables as Python floats."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a real floating-point torch.dtype (float32, float64), got {dtype!r}")
    return dtype


class Schedule:
    """A discrete DDPM schedule, every quantity a tensor of length T + 1 indexed by paper time.

    Index 0 is clean data: beta[0] = 0, alpha[0] = alpha_bar[0] = 1, sigma[0] = 0,
    posterior_variance[0] = 0, snr[0] = inf.  The tables are computed in float64 and stored in
    `dtype`; betas whose tables do not survive there are refused: beta_1 so small that
    1 - alpha_bar_1 rounds to 0 (beta_1 <= eps/4 of the dtype: 5.6e-17 in float64, 3e-8 in float32),
    an alpha_bar_T that underflows to 0, any table not finite at t >= 1.

    Attributes
    ----------
    beta               beta_t                                        [DDPM eq. 2]
    alpha              alpha_t = 1 - beta_t                          [DDPM §3.2]
    alpha_bar          prod_{s<=t} alpha_s                           [DDPM eq. 4]
    sigma              sqrt((1 - alpha_bar_t) / alpha_bar_t): the noise level of x_t / sqrt(alpha_bar_t),
                       the variance-exploding view of the same process; `ve_sigma`  [EDM Tab. 1, DDIM eq. 14]
    snr                alpha_bar_t / (1 - alpha_bar_t) = 1 / sigma_t^2; `snr`  [VDM eq. 3]
    posterior_variance beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t, with
                       beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}; `posterior.posterior_variance`  [DDPM eq. 7]
    """

    def __init__(self, betas, *, dtype: torch.dtype = torch.float64, device=None):
        betas = torch.as_tensor(betas)
        if betas.dim() != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a 1-D tensor of length T >= 1, got shape {tuple(betas.shape)}")
        if not betas.is_floating_point():
            raise ValueError(f"betas must be floating point, got dtype {betas.dtype}")
        betas = betas.to(dtype=torch.float64)
        if not bool(((betas > 0) & (betas < 1)).all()):
            bad = int(((betas <= 0) | (betas >= 1) | torch.isnan(betas)).nonzero()[0, 0])
            raise ValueError(
                f"betas must all be in (0, 1); betas[{bad}] (paper time t={bad + 1}) is {betas[bad].item()!r}"
            )
        self.T = betas.numel()
        dtype = _table_dtype(dtype)
        zero = torch.zeros(1, dtype=torch.float64)
        beta = torch.cat([zero, betas])
        alpha = 1 - beta
        alpha_bar = torch.cumprod(alpha, dim=0)
        names = dict(
            beta=beta,
            alpha=alpha,
            alpha_bar=alpha_bar,
            sigma=ve_sigma(alpha_bar),  # 0 at t = 0
            snr=snr(alpha_bar),  # alpha_bar_0 / 0 = inf at t = 0
            # beta_tilde_1 = 0 (alpha_bar_0 = 1); beta_tilde_0 is set to 0 as well
            posterior_variance=torch.cat([zero, posterior_variance(alpha_bar[1:], alpha_bar[:-1])]),
        )
        for name, value in names.items():
            setattr(self, name, value.to(dtype=dtype, device=device))
        _check_tables(self)

    _FIELDS = ("beta", "alpha", "alpha_bar", "sigma", "snr", "posterior_variance")

    @property
    def device(self) -> torch.device:
        return self.beta.device

    @property
    def dtype(self) -> torch.dtype:
        return self.beta.dtype

    def to(self, device=None, dtype=None) -> "Schedule":
        """A copy of this schedule on another device or dtype (computed in float64 first)."""
        new = Schedule.__new__(Schedule)
        new.T = self.T
        dtype = None if dtype is None else _table_dtype(dtype)
        for name in self._FIELDS:
            setattr(new, name, getattr(self, name).to(device=device, dtype=dtype))
        _check_tables(new)
        return new

    def __repr__(self) -> str:
        return (f"Schedule(T={self.T}, beta_1={self.beta[1].item():.3g}, beta_T={self.beta[-1].item():.3g}, "
                f"alpha_bar_T={self.alpha_bar[-1].item():.3g}, dtype={self.dtype}, device={self.device})")

    def check_t(self, t, name: str = "t", lo: int = 0) -> None:
        """Raise ValueError unless every entry of t is an integer time in lo..T."""
        if isinstance(t, torch.Tensor):
            if t.is_floating_point() or t.is_complex():
                raise ValueError(f"{name} must hold integer times in {lo}..{self.T}, got dtype {t.dtype}")
            if t.numel() and (int(t.min()) < lo or int(t.max()) > self.T):
                raise ValueError(f"{name} must be in {lo}..{self.T}, got values from {int(t.min())} to {int(t.max())}")
        else:
            check_int(t, name, lo=lo, hi=self.T)


def _check_tables(sched: Schedule) -> None:
    """Refuse betas whose tables are not usable in this dtype: 1 - alpha_bar_1 must not round to 0
    (it divides in sigma_1, the posterior and every sampler's first step), alpha_bar_T must not
    underflow to 0 (sigma_T = inf), and every table must be finite at t >= 1."""
    dtype = sched.alpha_bar.dtype
    name = str(dtype).replace("torch.", "")
    ab = sched.alpha_bar.cpu()
    if not ab[1] < 1:
        smallest = torch.finfo(dtype).eps / 4
        raise ValueError(f"betas[0] (paper time t=1) is {sched.beta[1].item()!r}: so small that alpha_bar_1 = "
                         f"1 - beta_1 rounds to 1 in {name} and 1 - alpha_bar_1 = 0 divides (sigma_1 = 0, the "
                         f"posterior variance 0/0); beta_1 must be > {smallest:.3g} for dtype={name}")
    if not ab[-1] > 0:
        t = int((ab == 0).nonzero()[0, 0])
        raise ValueError(f"alpha_bar_t = prod(1 - beta_s) underflows to 0 in {name} at t={t} of T={sched.T} "
                         f"(sigma_t = inf): the betas are too large for this many steps; make them smaller, "
                         f"or T shorter")
    for field in Schedule._FIELDS:
        values = getattr(sched, field)[1:]
        if not all_finite(values):
            t = int((~torch.isfinite(values.cpu())).nonzero()[0, 0]) + 1
            raise ValueError(f"Schedule.{field} is not finite at t={t} in {name} (got "
                             f"{getattr(sched, field)[t].item()!r}): betas too close to 0 or 1 for dtype={name}")
