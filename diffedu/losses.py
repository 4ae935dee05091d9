"""The DDPM training objective L_simple and the true per-t weights of the variational bound.  [DDPM eq. 12, 14]

Imports: torch, _checks, forward, posterior, schedules.  Layer core.
"""
from __future__ import annotations

import torch

from ._checks import check_choice, check_finite, check_model_output
from .forward import q_sample
from .posterior import vlb_weight
from .schedules import Schedule


def l_simple(eps_model, sched: Schedule, x0: torch.Tensor, generator: torch.Generator | None = None, *,
             t: torch.Tensor | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """E_{t, eps} ||eps - eps_theta(sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, t)||^2, t ~ U{1..T}.  [DDPM eq. 14, Alg. 1]

    Returns the mean over the batch and all dimensions (a scalar tensor).  `t` (B,) integers in 1..T and
    `eps` (x0's shape) may be given (Algorithm 1's lines 3-4 drawn by the caller); otherwise they are drawn
    from `generator`, t first.  `diffedu.training.train` calls this function for every step.
    """
    check_finite(x0, "x0")
    B = x0.shape[0]
    device = generator.device if generator is not None else x0.device
    if t is None:
        t = torch.randint(1, sched.T + 1, (B,), generator=generator, device=device).to(x0.device)
    elif not (torch.is_tensor(t) and t.shape == (B,)):
        raise ValueError(f"t must be a tensor of shape ({B},), one time per sample, got "
                         f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}")
    else:
        sched.check_t(t, lo=1)                    # the loss has no t = 0 term
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=device).to(x0.device)
    elif not torch.is_tensor(eps):
        raise ValueError(f"eps must be a tensor of x0's shape {tuple(x0.shape)}, got {type(eps).__name__}")
    x_t = q_sample(sched, x0, t, eps)             # checks eps's shape and device against x0
    eps_hat = check_model_output(eps_model(x_t, t), x_t)
    return ((eps - eps_hat) ** 2).mean()


def vlb_weights(sched: Schedule, variance: str = "beta_tilde") -> torch.Tensor:
    """lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)), t = 0..T: what L_simple sets to 1.  [DDPM eq. 12]

    The bound's term L_{t-1} equals lambda_t E||eps - eps_theta||^2 (plus a constant).  Index 0
    is NaN (there is no L_{-1}); with variance="beta_tilde", t = 1 is inf because beta_tilde_1 = 0:
    the bound's t = 1 term is the decoder L_0, not a Gaussian KL.
    """
    check_choice(variance, "variance", ("beta_tilde", "beta"))
    sigma2 = sched.posterior_variance if variance == "beta_tilde" else sched.beta
    ab = sched.alpha_bar
    w = torch.full_like(ab, float("nan"))
    with torch.no_grad():
        w[1:] = vlb_weight(ab[1:], ab[:-1], sigma2[1:])
    return w
