"""The unified view: a reverse step first estimates x_0, then corrects.  [UDM eq. 2-13]

Forward: x_t = F_t(x_0, eps) for any corruption F.  Reverse:
p(x_{t-1} | x_t) = integral p(x_{t-1} | x_t, x_0) p(x_0 | x_t) dx_0, which a sampler runs as

  1. estimate  x0_hat = model(x_t, t)
  2. correct   draw x_{t-1} from a p(x_{t-1} | x_t, x0_hat) that keeps the marginal
               integral p(x_{t-1} | x_t, x_0) p(x_t | x_0) dx_t = p(x_{t-1} | x_0)     [UDM eq. 9]

The three corrections of the seed:
  "marginal"       x_{t-1} = F_{t-1}(x0_hat, fresh eps): ignores x_t                     [UDM eq. 10]
  "deterministic"  eps_hat = F_t^{-1}(x0_hat, x_t); x_{t-1} = F_{t-1}(x0_hat, eps_hat)   [UDM eq. 12]
  "partial"        x_{t-1} = F_{t-1}(x0_hat, sqrt(1 - sigma_tilde^2) eps_hat + sigma_tilde z)  [UDM eq. 13]
For the Gaussian F, "deterministic" is DDIM with eta = 0 and "partial" is the DDIM family with
sigma = sqrt(1 - alpha_bar_prev) sigma_tilde (`ddim_sigma_from_sigma_tilde`).  For a
deterministic degradation (blur, masking) F_t(x_0, r) = A_t(x_0) + r, the "noise" is the
residual r = x_t - A_t(x0_hat), and "deterministic" reuses it (cold diffusion's sampler).

Imports: torch, _checks, _ops, core maths (forward, param, posterior, schedules), trajectory, .common.  Layer samplers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as nnf

from .._checks import HALF_DTYPES, check_choice, check_int, check_model_output, check_number, check_start
from .._ops import sqrt
from ..forward import q_sample
from ..param import eps_from_x0, x0_from_eps
from ..posterior import ddim_sigma
from ..schedules import Schedule
from ..trajectory import NoiseStream, Trajectory, run
from .common import model_time

CORRECTIONS = ("marginal", "deterministic", "partial")


def ddim_sigma_from_sigma_tilde(alpha_bar_prev, sigma_tilde):
    """DDIM's sigma of the step that "partial" takes: sigma = sqrt(1 - alpha_bar_prev) sigma_tilde.  [UDM eq. 13 vs DDIM eq. 12]"""
    return sqrt(1 - alpha_bar_prev) * sigma_tilde


def sigma_tilde_from_ddim_sigma(alpha_bar_prev, sigma):
    """sigma_tilde = sigma / sqrt(1 - alpha_bar_prev), the inverse of `ddim_sigma_from_sigma_tilde`."""
    return sigma / sqrt(1 - alpha_bar_prev)


def partial_noise(eps_hat, z, sigma_tilde):
    """The noise fed to F_{t-1}: sqrt(1 - sigma_tilde^2) eps_hat + sigma_tilde z, still N(0, I).  [UDM eq. 13]"""
    return sqrt(1 - sigma_tilde**2) * eps_hat + sigma_tilde * z


class GaussianForward:
    """F_t(x_0, eps) = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps on a discrete schedule.  [DDPM eq. 4]"""

    stochastic = True

    def __init__(self, sched: Schedule):
        self.sched = sched
        self.T = sched.T

    def F(self, x0, eps, t: int):
        return q_sample(self.sched, x0, t, eps)

    def F_inv(self, x0, x_t, t: int):
        """eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)."""
        return eps_from_x0(x_t, x0, self.sched.alpha_bar[t].item())

    def __repr__(self) -> str:
        return f"GaussianForward(T={self.T})"


class Degradation:
    """A deterministic corruption x_t = A_t(x_0) (+ residual r): F_t(x_0, r) = A_t(x_0) + r.

    Subclasses define A(x0, t) with A(x0, 0) = x0.  With no randomness the "fresh noise" of the
    marginal correction is 0 and the inverse F_t^{-1} is the residual x_t - A_t(x_0).
    """

    stochastic = False
    T: int

    def A(self, x0, t: int):
        raise NotImplementedError

    def F(self, x0, r, t: int):
        return self.A(x0, t) if r is None else self.A(x0, t) + r

    def F_inv(self, x0, x_t, t: int):
        return x_t - self.A(x0, t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(T={self.T})"


class Blur(Degradation):
    """Gaussian blur whose width grows with t: std_t = std_max * t / T (pixels); images (B, C, H, W)."""

    def __init__(self, T: int = 20, std_max: float = 3.0):
        self.T = check_int(T, "T", lo=1)
        self.std_max = check_number(std_max, "std_max", lo=0, lo_open=True, finite=True)

    def kernel(self, t: int, dtype=torch.float64, device=None) -> torch.Tensor:
        std = self.std_max * t / self.T
        half = max(1, int(3 * self.std_max + 0.5))
        r = torch.arange(-half, half + 1, dtype=dtype, device=device)
        k = torch.exp(-0.5 * (r / std) ** 2)
        return k / k.sum()

    def A(self, x0, t: int):
        if t == 0:
            return x0
        if x0.dim() != 4:
            raise ValueError(f"Blur works on images (B, C, H, W), got shape {tuple(x0.shape)}")
        k = self.kernel(t, x0.dtype, x0.device)
        C, pad = x0.shape[1], len(k) // 2
        x = nnf.pad(x0, (pad, pad, pad, pad), mode="reflect" if pad < x0.shape[-1] else "replicate")
        x = nnf.conv2d(x, k.reshape(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
        return nnf.conv2d(x, k.reshape(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


class Mask(Degradation):
    """Column masking: A_t zeroes the rightmost round(W t / T) columns (a "wipe" from the right)."""

    def __init__(self, T: int = 8):
        self.T = check_int(T, "T", lo=1)

    def A(self, x0, t: int):
        W = x0.shape[-1]
        keep = W - round(W * t / self.T)
        out = x0.clone()
        out[..., keep:] = 0
        return out


def sample_estimate_correct(x0_model, forward, ts, x_T: torch.Tensor, correction: str = "deterministic",
                            sigma_tilde=0.0, noises=None, generator: torch.Generator | None = None,
                            record: bool = True) -> Trajectory:
    """Estimate x0_hat = x0_model(x_t, t), then correct to x_{t_next}.  [UDM eq. 10, 12, 13]

    forward     a GaussianForward (x_t = F_t(x_0, eps)) or a Degradation (x_t = A_t(x_0) + r)
    ts          decreasing times ending in 0, e.g. `ddim_timesteps(T, steps)` or range(T, -1, -1)
    correction  "marginal" | "deterministic" | "partial" (partial needs a Gaussian forward)
    sigma_tilde for "partial": a number in [0, 1] or one per step; 0 is "deterministic", 1 is
                "marginal"; `sigma_tilde_for_eta` gives the values that reproduce DDIM(eta)
    Fresh noises (marginal, partial with sigma_tilde > 0) are consumed one per step except the
    last, from `noises` or `generator`.
    """
    check_choice(correction, "correction", CORRECTIONS)
    if correction == "partial" and not forward.stochastic:
        raise ValueError(f"correction='partial' mixes Gaussian noise and needs a Gaussian forward process; "
                         f"{forward!r} is deterministic: use 'marginal' or 'deterministic'")
    ts = torch.as_tensor(ts, dtype=torch.long)
    if ts.dim() != 1 or len(ts) < 2 or ts[-1] != 0 or not bool((ts[1:] < ts[:-1]).all()):
        raise ValueError("ts must be strictly decreasing paper times ending in 0, e.g. ddim_timesteps(T, steps)")
    if ts[0] > forward.T:
        raise ValueError(f"ts starts at {int(ts[0])} but the forward process has T = {forward.T}")
    check_start(x_T)
    n = len(ts) - 1
    if isinstance(sigma_tilde, (int, float)) or (isinstance(sigma_tilde, torch.Tensor) and sigma_tilde.dim() == 0):
        sigma_tilde = [sigma_tilde] * n
    if len(sigma_tilde) != n:
        raise ValueError(f"sigma_tilde must be a number or hold one value per step ({n}), got {len(sigma_tilde)}")
    sigma_tilde = [check_number(s, "sigma_tilde", lo=0, hi=1) for s in sigma_tilde]
    t_list = ts.tolist()
    z = NoiseStream(x_T, noises, generator)

    def step(i, x):
        t, t_prev = t_list[i], t_list[i + 1]
        x0_hat = check_model_output(x0_model(x, model_time(t, x)), x, "x0_model")
        if t_prev == 0:
            return x0_hat, x0_hat, 1
        if correction == "marginal":
            eps = z.next() if forward.stochastic else None
        else:
            eps = forward.F_inv(x0_hat, x, t)
            if correction == "partial" and sigma_tilde[i] > 0:
                eps = partial_noise(eps, z.next(), sigma_tilde[i])
        return x0_hat, forward.F(x0_hat, eps, t_prev), 1

    return run(x_T, ts, step, record, model="x0_model")


def x0_loss(x0_model, forward, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """E_{t, eps} ||x0_model(F_t(x_0, eps), t) - x_0||^2 with t uniform in 1..T: training the estimate.  [UDM eq. 5]

    Works for a Degradation (no noise: x_t = A_t(x_0)) and for a GaussianForward (x0-prediction).
    """
    if x0.dim() < 2:
        raise ValueError(f"x0 must have a batch dimension, got shape {tuple(x0.shape)}")
    B = x0.shape[0]
    t = torch.randint(1, forward.T + 1, (B,), generator=generator)
    x_t = torch.empty_like(x0)
    for tt in t.unique().tolist():
        idx = (t == tt).nonzero().squeeze(1)
        eps = torch.randn(x0[idx].shape, generator=generator, dtype=x0.dtype) if forward.stochastic else None
        x_t[idx] = forward.F(x0[idx], eps, tt)
    pred = check_model_output(x0_model(x_t, t.to(x0.device)), x0, "x0_model")
    return ((pred - x0) ** 2).mean()


def sigma_tilde_for_eta(sched: Schedule, ts, eta: float) -> list[float]:
    """Per-step sigma_tilde that makes "partial" take exactly DDIM(eta)'s steps on the grid ts.  [DDIM eq. 16]"""
    eta = check_number(eta, "eta", lo=0, finite=True)
    ab = sched.alpha_bar[torch.as_tensor(ts, dtype=torch.long)].tolist()
    out = []
    for a, a_prev in zip(ab[:-1], ab[1:]):
        out.append(0.0 if a_prev == 1 else sigma_tilde_from_ddim_sigma(a_prev, ddim_sigma(a, a_prev, eta)))
    return out


def x0_model_from_eps(eps_model, sched: Schedule):
    """The estimate step of an eps-model: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t).  [DDIM eq. 9]

    eps_model's output must be shaped like x_t (as the samplers check).  For float16 / bfloat16
    states the arithmetic is float64 and x0_hat is returned in x_t's dtype.
    """

    def x0_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps_hat = check_model_output(eps_model(x_t, t), x_t)
        if x_t.dtype in HALF_DTYPES:  # alpha_bar near 1 rounds to 1 in half precision: the division in float64
            ab = sched.alpha_bar.to(x_t.device, torch.float64)[t].reshape((-1,) + (1,) * (x_t.dim() - 1))
            return x0_from_eps(x_t, eps_hat, ab).to(x_t.dtype)
        ab = sched.alpha_bar.to(x_t.device, x_t.dtype)[t].reshape((-1,) + (1,) * (x_t.dim() - 1))
        return x0_from_eps(x_t, eps_hat, ab)

    return x0_model
