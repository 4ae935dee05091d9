"""The sampler registry: every sampler the course offers, by name, as one small spec each.

The command line's `--sampler` choices are the keys of SAMPLERS; the explorers' sampler menu,
training's sample grids, `evaluate` and the benchmarks read the same table, so a new sampler is
one entry here.  What each needs from a model is a `Target`: the eps-model on its discrete
schedule and the same model seen as a denoiser D(x, sigma), with the noise range of its
Karras grid.

    name               needs     grid                   NFE        noise scale
    ddpm               eps       every t = T..1         T          (ancestral)  [DDPM Alg. 2]
    ddim               eps       DDIM grid (spacing)    steps      eta          [DDIM eq. 12]
    ec-marginal        x0 (eps)  DDIM grid              steps      fresh eps    [UDM eq. 10]
    ec-deterministic   x0 (eps)  DDIM grid              steps      none         [UDM eq. 12]
    ec-partial         x0 (eps)  DDIM grid              steps      eta          [UDM eq. 13]
    edm-euler          D         Karras sigmas (rho)    steps      none         [EDM Alg. 1]
    edm-heun           D         Karras sigmas (rho)    2 steps-1  none         [EDM Alg. 1]

Every spec takes unit-variance noise x_T ~ N(0, I) and scales it itself (EDM starts at
sigma_max x_T), so two samplers given the same x_T start from the same point.

Imports: torch, diffedu core maths (schedules, precond), _checks, and the sampler modules beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from .._checks import check_choice, check_int, check_number
from ..precond import denoiser_from_eps
from ..schedules import Schedule
from ..trajectory import Trajectory
from .ddim import SPACINGS, ddim_timesteps, sample_ddim
from .ddpm import VARIANCES, sample_ddpm
from .edm import karras_sigmas, sample_edm
from .estimate_correct import GaussianForward, sample_estimate_correct, sigma_tilde_for_eta, x0_model_from_eps


@dataclass(frozen=True)
class Target:
    """What a sampler may call: eps_model(x_t, t) on `sched`, and D(x, sigma) for the PF-ODE samplers.

    sigma_min, sigma_max  the noise range of the Karras grid: the schedule's own sigma_1..sigma_T for
                          an eps-model (so the grid starts where x_T lives), EDM's 0.002..80 for a
                          model trained with EDM's objective  [EDM Tab. 1]
    """

    eps_model: Callable
    sched: Schedule
    denoiser: Callable
    sigma_min: float
    sigma_max: float

    @classmethod
    def from_eps(cls, eps_model, sched: Schedule, denoiser=None) -> "Target":
        """An eps-model on a discrete schedule; its denoiser (unless given) from `denoiser_from_eps`."""
        denoiser = denoiser if denoiser is not None else denoiser_from_eps(eps_model, sched)
        return cls(eps_model, sched, denoiser, float(sched.sigma[1]), float(sched.sigma[-1]))


@dataclass(frozen=True)
class Param:
    """One sampler parameter: its default and either a numeric range [lo, hi] or a set of choices."""

    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()

    def check(self, value, name: str):
        if self.choices:
            return check_choice(value, name, self.choices)
        return check_number(value, name, lo=self.lo, hi=self.hi)


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler as the registry describes it.

    name      the registry key (what `--sampler` takes)
    title     the explorers' menu label
    doc       one line, with the equation it implements
    needs     "eps" | "x0" | "denoiser": what it calls
    grid      "every t" | "ddim" | "karras": the times or noise levels it visits
    params    name -> Param: the settings it takes beyond `steps`
    nfe       (steps, T) -> network calls
    uses_steps  False when it always takes all T steps (DDPM)
    ve        True when its Trajectory holds VE states x = x_t / sqrt(alpha_bar) and `ts` are sigmas
    """

    name: str
    title: str
    doc: str
    needs: str
    grid: str
    nfe: Callable[[int, int], int]
    draw: Callable[..., Trajectory] = field(repr=False)
    params: Mapping[str, Param] = field(default_factory=dict)
    noise_count: Callable[[int, int, dict], int] = field(default=lambda steps, T, p: 0, repr=False)
    uses_steps: bool = True
    ve: bool = False

    def settings(self, steps: int, T: int, **params) -> tuple[int, dict]:
        """(steps, params) checked and completed with defaults; ValueError names the sampler and the setting."""
        unknown = set(params) - set(self.params)
        if unknown:
            takes = ", ".join(self.params) or "no parameters"
            raise ValueError(f"sampler {self.name!r} takes {takes} besides steps; got {', '.join(sorted(unknown))}")
        steps = check_int(steps, "steps", lo=1, hi=T) if self.uses_steps else T
        return steps, {k: p.check(params.get(k, p.default), k) for k, p in self.params.items()}

    def __call__(self, target: Target, x_T: torch.Tensor, steps: int = 50, *, noises=None,
                 generator: torch.Generator | None = None, record: bool = True, **params) -> Trajectory:
        """Sample from unit noise x_T with `steps` steps (ignored when uses_steps is False)."""
        steps, params = self.settings(steps, target.sched.T, **params)
        return self.draw(target, x_T, steps, noises=noises, generator=generator, record=record, **params)


ETA = Param(0.0, "noise scale: 0 deterministic, 1 as much noise as DDPM", lo=0.0)
SPACING = Param("leading", "the DDIM time grid", choices=SPACINGS)
RHO = Param(7.0, "Karras grid exponent: larger spends more steps at small sigma  [EDM eq. 5]", lo=0.0)


def _ddpm(target, x_T, steps, *, variance, noises, generator, record):
    return sample_ddpm(target.eps_model, target.sched, x_T, variance, noises=noises, generator=generator, record=record)


def _ddim(target, x_T, steps, *, eta, spacing, noises, generator, record):
    return sample_ddim(target.eps_model, target.sched, x_T, steps, eta, spacing, noises=noises, generator=generator,
                       record=record)


def _estimate_correct(correction):
    def draw(target, x_T, steps, *, spacing, noises, generator, record, eta=0.0):
        sched = target.sched
        ts = ddim_timesteps(sched.T, steps, spacing)
        sigma_tilde = sigma_tilde_for_eta(sched, ts, eta) if correction == "partial" else 0.0
        return sample_estimate_correct(x0_model_from_eps(target.eps_model, sched), GaussianForward(sched), ts, x_T,
                                       correction, sigma_tilde, noises=noises, generator=generator, record=record)
    return draw


def _edm(method):
    def draw(target, x_T, steps, *, rho, noises, generator, record):
        sigmas = karras_sigmas(steps, target.sigma_min, target.sigma_max, rho)
        return sample_edm(target.denoiser, sigmas, sigmas[0].item() * x_T, method, record=record)
    return draw


def _ec(name, correction, doc, params=None):
    return SamplerSpec(name, f"EC {correction}", doc, "x0", "ddim", nfe=lambda steps, T: steps,
                       draw=_estimate_correct(correction), params={**(params or {}), "spacing": SPACING},
                       noise_count=(lambda steps, T, p: 0) if correction == "deterministic" else lambda steps, T, p: steps)


SAMPLERS: dict[str, SamplerSpec] = {spec.name: spec for spec in (
    SamplerSpec("ddpm", "DDPM", "ancestral DDPM through all T steps  [DDPM Alg. 2]", "eps", "every t",
                nfe=lambda steps, T: T, draw=_ddpm, uses_steps=False,
                params={"variance": Param("beta_tilde", "sigma_t^2: beta_tilde_t (fixed small) or beta_t (fixed large)",
                                          choices=VARIANCES)},
                noise_count=lambda steps, T, p: T),
    SamplerSpec("ddim", "DDIM", "DDIM's sigma(eta) family on a sub-sequence of times  [DDIM eq. 12, 16]", "eps", "ddim",
                nfe=lambda steps, T: steps, draw=_ddim, params={"eta": ETA, "spacing": SPACING},
                noise_count=lambda steps, T, p: steps if p["eta"] > 0 else 0),
    _ec("ec-marginal", "marginal", "estimate x0, then x_{t-1} = F_{t-1}(x0_hat, fresh eps)  [UDM eq. 10]"),
    _ec("ec-deterministic", "deterministic", "estimate x0, then reuse the eps solved from x_t (DDIM eta = 0)  [UDM eq. 12]"),
    _ec("ec-partial", "partial", "estimate x0, then mix solved and fresh noise; eta as in DDIM  [UDM eq. 13]",
        {"eta": Param(0.0, "noise scale, converted to sigma_tilde per step", lo=0.0, hi=1.0)}),
    SamplerSpec("edm-euler", "EDM Euler", "Euler steps of the PF-ODE on Karras noise levels  [EDM Alg. 1, eq. 5]",
                "denoiser", "karras", nfe=lambda steps, T: steps, draw=_edm("euler"), params={"rho": RHO}, ve=True),
    SamplerSpec("edm-heun", "EDM Heun", "Heun steps of the PF-ODE on Karras noise levels  [EDM Alg. 1, eq. 5]",
                "denoiser", "karras", nfe=lambda steps, T: 2 * steps - 1, draw=_edm("heun"), params={"rho": RHO},
                ve=True),
)}


def get(name: str) -> SamplerSpec:
    """The spec of a sampler by registry key (e.g. "edm-heun") or menu title (e.g. "EDM Heun")."""
    if name in SAMPLERS:
        return SAMPLERS[name]
    for spec in SAMPLERS.values():
        if name == spec.title:
            return spec
    raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}; got {name!r}")
