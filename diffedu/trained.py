"""`Trained`: a trained network and what is needed to sample from it, as loading returns it.

Imports: torch, diffedu core maths (schedules, precond), the sampler registry and diffedu.sampling.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .precond import Denoiser, denoiser_from_eps, eps_from_denoiser
from .samplers.registry import Target
from .sampling import generate
from .schedules import Schedule, linear_betas

OBJECTIVES = ("eps", "edm")
EDM_SIGMA_MIN, EDM_SIGMA_MAX = 0.002, 80.0   # [EDM Tab. 1]: the Karras range of an EDM-trained denoiser


@dataclass
class Trained:
    """A trained network and what is needed to sample from it.

    model       the network (EMA weights, eval mode): eps_model(x_t, t) or EDM's F(c_in x, c_noise)
    objective   "eps" or "edm"
    sched       the DDPM Schedule it was trained on (eps), or None (edm)
    sigma_data  EDM's sigma_data (edm)
    shape       the shape of one sample, e.g. [1, 8, 8] or [2]
    meta        data name, step, training arguments
    """

    model: nn.Module
    objective: str
    sched: Schedule | None
    sigma_data: float = 0.5
    shape: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def denoiser(self):
        """D(x, sigma) for either objective: EDM's Denoiser, or the eps-model seen as one.  [EDM Tab. 1]"""
        if self.objective == "edm":
            return Denoiser(self.model, self.sigma_data)
        return denoiser_from_eps(self.model, self.sched)

    def schedule(self) -> Schedule:
        """The discrete schedule the samplers walk: the training schedule (eps), else DDPM's linear one, T = 1000."""
        return self.sched if self.sched is not None else Schedule(linear_betas(1000))

    def eps_model(self, sched: Schedule | None = None):
        """eps_model(x_t, t) on a discrete schedule: the network itself (eps), or derived from D (edm)."""
        if self.objective == "eps":
            return self.model
        return eps_from_denoiser(self.denoiser(), sched or self.schedule())

    def target(self) -> Target:
        """What every sampler in `diffedu.samplers.SAMPLERS` needs from this model."""
        sched = self.schedule()
        if self.objective == "eps":
            return Target.from_eps(self.model, sched, self.denoiser())
        return Target(self.eps_model(sched), sched, self.denoiser(), EDM_SIGMA_MIN, EDM_SIGMA_MAX)

    @property
    def num_classes(self) -> int | None:
        """K of a class-conditional network (labels 0..K-1), None for an unconditional one."""
        return getattr(self.model, "num_classes", None)

    @torch.no_grad()
    def sample(self, n: int, sampler: str = "ddim", steps: int = 50, labels=None, guidance: float = 0.0,
               generator: torch.Generator | None = None, eta: float | None = None, record: bool = False,
               **params) -> torch.Tensor:
        """n samples (on the CPU); `sampler` is a key of `diffedu.samplers.SAMPLERS`, see `diffedu.sampling.generate`.

        labels: None (unconditional), an int or an int64 tensor (n,), for a class-conditional model;
        guidance: w >= 0 of classifier-free guidance, eps_tilde = (1 + w) eps(x, c) - w eps(x) [CFG eq. 6].
        """
        return generate(self, n, sampler=sampler, steps=steps, eta=eta, generator=generator, record=record,
                        labels=labels, guidance=guidance, **params).x.cpu()
