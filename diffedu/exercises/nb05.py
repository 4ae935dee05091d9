"""Notebook 05's exercises: DDPM's training step, the cost of a sampler, the Fréchet distance.

Imports: torch, diffedu.forward, diffedu.schedules, diffedu.sampling, diffedu.metrics (the references), ._core.
"""
from __future__ import annotations

import torch

from ..forward import q_sample
from ..metrics import frechet_distance
from ..sampling import nfe_of
from ..schedules import Schedule, linear_betas
from ._core import Exercise, code, numeric

_SCHED = Schedule(linear_betas(1000))


def _eps_model(x, t):
    """A fixed stand-in network: any function of (x_t, t) will do for checking the loss."""
    return torch.tanh(x) * (t.double() / 1000).view(-1, *([1] * (x.dim() - 1)))


def _loss_inputs(g):
    B = int(torch.randint(1, 6, (1,), generator=g))
    x0 = torch.randn(B, 1, 4, 4, generator=g, dtype=torch.float64)
    return dict(eps_model=_eps_model, alpha_bar=_SCHED.alpha_bar, x0=x0, t=torch.randint(1, 1001, (B,), generator=g),
                eps=torch.randn(x0.shape, generator=g, dtype=torch.float64))


def _loss_reference():
    def loss(eps_model, alpha_bar, x0, t, eps):
        x_t = q_sample(_SCHED, x0, t, eps)
        return ((eps - eps_model(x_t, t)) ** 2).mean()
    return loss


def _gaussians_inputs(g):
    D = int(torch.randint(1, 4, (1,), generator=g))
    a, b = torch.randn(2, D, D, generator=g, dtype=torch.float64)
    return dict(mu1=torch.randn(D, generator=g, dtype=torch.float64), sigma1=a @ a.T + 0.1 * torch.eye(D, dtype=torch.float64),
                mu2=torch.randn(D, generator=g, dtype=torch.float64), sigma2=b @ b.T + 0.1 * torch.eye(D, dtype=torch.float64))


def _frechet_reference():
    def fd(mu1, sigma1, mu2, sigma2):
        return torch.tensor(frechet_distance(mu1.numpy(), sigma1.numpy(), mu2.numpy(), sigma2.numpy()), dtype=torch.float64)
    return fd


EXERCISES = [
    Exercise("05.l_simple", "code",
             "write loss(eps_model, alpha_bar, x0, t, eps) -> the L_simple loss of one training step of DDPM "
             "Algorithm 1 for the given times t (B,) and noise eps: noise x0 to x_t, predict, mean squared error "
             "(alpha_bar is the schedule's table, indexed by t)  [DDPM Alg. 1, eq. 14]",
             code(_loss_inputs), _loss_reference,
             hint="x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) eps with alpha_bar[t] shaped (B, 1, 1, 1); "
                  "the loss is the mean of (eps - eps_model(x_t, t))^2"),
    Exercise("05.heun_nfe", "numeric",
             "how many network calls does edm-heun make with 26 steps (the last step is an Euler step)?  [EDM Alg. 1]",
             numeric(rtol=0), lambda: nfe_of("edm-heun", 26),
             hint="two calls per step, except the step to sigma = 0, which has no second slope"),
    Exercise("05.ddpm_calls_for_a_grid", "numeric",
             "DDPM with T = 1000 steps makes a grid of 64 images. How many images pass through the network in all "
             "(one image through the network once counts 1)?",
             numeric(rtol=0), lambda: 64 * nfe_of("ddpm", 1000),
             hint="each of the T steps calls the network once on the whole batch"),
    Exercise("05.frechet_distance", "code",
             "write fd(mu1, sigma1, mu2, sigma2) -> the Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2), a "
             "0-d float64 tensor (torch.linalg or scipy.linalg.sqrtm for the matrix square root)  [FID]",
             code(_gaussians_inputs, rtol=1e-6, atol=1e-9), _frechet_reference,
             hint="||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))"),
]
