"""Draw samples from a trained model with any sampler of the registry, by name.

The names are the keys of `diffedu.samplers.SAMPLERS`, what `python -m diffedu sample --sampler`
accepts (`python -m diffedu sample --help` lists them with one line each).  The model supplies a
`Target` (its eps-model on its schedule and the same model as a denoiser), so every sampler runs
on every checkpoint.

Class-conditional models take `labels` and `guidance` (classifier-free guidance, [CFG eq. 6]) with
every sampler: the network is wrapped into `diffedu.guidance.Guided`, which the samplers call as any
eps-model or EDM network.

Imports: torch, the sampler registry, guidance (core), _checks.
"""
from __future__ import annotations

import dataclasses

import torch

from ._checks import check_int
from .guidance import Guided, check_guidance, check_labels
from .samplers.registry import SAMPLERS, get
from .trajectory import Trajectory

__all__ = ["SAMPLERS", "generate", "nfe_of"]


def nfe_of(sampler: str, steps: int, T: int = 1000) -> int:
    """Network evaluations a sampler makes with `steps` steps on a T-step schedule (the registry's `nfe`)."""
    return get(sampler).nfe(check_int(steps, "steps", lo=1), check_int(T, "T", lo=1))


@torch.no_grad()
def generate(trained, n: int, sampler: str = "ddim", steps: int = 50, eta: float | None = None,
             generator: torch.Generator | None = None, record: bool = False, labels=None, guidance: float = 0.0,
             **params) -> Trajectory:
    """n samples from a `Trained` model; returns the sampler's Trajectory (`.x` the samples, `.nfe`).

    `eta` (and any other keyword, e.g. `spacing`, `rho`) goes to samplers that take it; passing it
    to one that does not is a ValueError.  x_T ~ N(0, I) is drawn from `generator` (default seed 0)
    on the model's device.

    labels      None (unconditional; for a class-conditional model, its null class), an int (that class
                for all n) or an int64 tensor (n,) of classes 0..K-1; only for a class-conditional model
    guidance    w >= 0 of classifier-free guidance, eps_tilde = (1 + w) eps(x, c) - w eps(x) [CFG eq. 6];
                w > 0 needs labels and doubles the batch of every network call
    """
    spec = get(sampler)
    n = check_int(n, "n", lo=1)
    trained = guided(trained, n, labels, guidance)
    if eta is not None:
        params["eta"] = eta
    target = trained.target()
    steps, params = spec.settings(steps, target.sched.T, **params)
    dev = trained.device
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if dev.type != "cpu" and g.device.type == "cpu":  # samplers draw noise on the model's device
        g = torch.Generator(device=dev).manual_seed(int(torch.randint(2**62, (1,), generator=g)))
    x_T = torch.randn((n, *trained.shape), generator=g, device=dev)
    return spec.draw(target, x_T, steps, noises=None, generator=g, record=record, **params)


def guided(trained, n: int, labels=None, guidance: float = 0.0):
    """`trained` itself, or a copy whose network is `Guided` at these n labels and weight w."""
    w = check_guidance(guidance)
    c = check_labels(labels, n, trained.num_classes, trained.device)
    if c is None and w:
        raise ValueError(f"guidance={guidance} needs labels (an int or an int64 tensor of shape ({n},)): "
                         "guidance pushes samples towards a class")
    if trained.num_classes is None:
        return trained
    return dataclasses.replace(trained, model=Guided(trained.model, c, w))
