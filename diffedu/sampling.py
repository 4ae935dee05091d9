"""Draw samples from a trained model with any of the course's samplers, by name.

The names are what `python -m diffedu sample --sampler` accepts:

    ddpm       ancestral DDPM, all T steps (`steps` is ignored)        [DDPM Alg. 2]
    ddim       DDIM on `steps` leading-spaced times, noise scale eta  [DDIM eq. 12]
    edm-heun   EDM's Heun on `steps` Karras noise levels (2 steps - 1 network calls)  [EDM Alg. 1]
    edm-euler  the same grid with Euler steps (`steps` calls)

An eps-model is turned into a denoiser (and an EDM model into an eps-model) with the adapters of
`diffedu.precond`, so every sampler runs on every checkpoint.  For an eps-model the Karras grid
spans the schedule's own sigma_1..sigma_T; for an EDM model it is EDM's 0.002..80.
"""
from __future__ import annotations

import torch

from ._checks import check_choice, check_int
from .samplers import karras_sigmas, sample_ddim, sample_ddpm, sample_edm
from .schedules import Schedule, linear_betas
from .trajectory import Trajectory

SAMPLERS = ("ddpm", "ddim", "edm-heun", "edm-euler")


def nfe_of(sampler: str, steps: int, T: int = 1000) -> int:
    """Network evaluations a sampler makes: T (ddpm), steps (ddim, edm-euler), 2 steps - 1 (edm-heun)."""
    return {"ddpm": T, "ddim": steps, "edm-euler": steps, "edm-heun": 2 * steps - 1}[sampler]


@torch.no_grad()
def generate(trained, n: int, sampler: str = "ddim", steps: int = 50, eta: float = 0.0,
             generator: torch.Generator | None = None, record: bool = False) -> Trajectory:
    """n samples from a `Trained` model; returns the sampler's Trajectory (`.x` the samples, `.nfe`)."""
    check_choice(sampler, "sampler", SAMPLERS)
    n = check_int(n, "n", lo=1)
    steps = check_int(steps, "steps", lo=1)
    dev = trained.device
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if dev.type != "cpu" and g.device.type == "cpu":  # samplers draw noise on the model's device
        g = torch.Generator(device=dev).manual_seed(int(torch.randint(2**62, (1,), generator=g)))
    shape = (n, *trained.shape)
    sched = trained.sched if trained.sched is not None else Schedule(linear_betas(1000))
    if sampler in ("ddpm", "ddim"):
        x_T = torch.randn(shape, generator=g, device=dev)
        eps = trained.eps_model(sched)
        if sampler == "ddpm":
            return sample_ddpm(eps, sched, x_T, generator=g, record=record)
        return sample_ddim(eps, sched, x_T, steps=min(steps, sched.T), eta=eta, generator=g, record=record)
    if trained.objective == "eps":
        sigmas = karras_sigmas(steps, sigma_min=sched.sigma[1].item(), sigma_max=sched.sigma[-1].item())
    else:
        sigmas = karras_sigmas(steps)
    x = sigmas[0].item() * torch.randn(shape, generator=g, device=dev)
    return sample_edm(trained.denoiser(), sigmas, x, method=sampler.split("-")[1], generator=g, record=record)
