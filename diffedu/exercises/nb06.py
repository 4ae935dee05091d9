"""Notebook 06's exercises: classifier-free guidance, in code and in numbers.

Imports: torch, diffedu.guidance (the reference), ._core.
"""
from __future__ import annotations

import math

import torch

from ..guidance import cfg_eps
from ._core import Exercise, code, numeric

# the two-class example of the guidance derivation: mu = -1, +1, class variance v, noise sigma, equal priors
MU, V, SIGMA, X, W = (-1.0, 1.0), 0.09, 0.5, 0.2, 2.0


def _cfg_inputs(g):
    shape = (int(torch.randint(1, 4, (1,), generator=g)), 1, 3, 3)
    return dict(eps_cond=torch.randn(shape, generator=g), eps_uncond=torch.randn(shape, generator=g),
                w=float(4 * torch.rand((), generator=g)))


def _guided_score() -> float:
    """(1 + w) d/dx log p(x | c = 1) - w d/dx log p(x) at X, with p(x | c) = N(mu_c, v + sigma^2)."""
    var = V + SIGMA**2
    dens = [math.exp(-(X - m) ** 2 / (2 * var)) for m in MU]
    s_cond = -(X - MU[1]) / var
    s_uncond = sum(-(X - m) / var * p for m, p in zip(MU, dens)) / sum(dens)
    return (1 + W) * s_cond - W * s_uncond


EXERCISES = [
    Exercise("06.guided_eps", "code",
             "write guided(eps_cond, eps_uncond, w) -> eps_tilde, the classifier-free guided prediction with "
             "w = 0 the conditional model  [CFG eq. 6]",
             code(_cfg_inputs, rtol=1e-5, atol=1e-6), lambda: cfg_eps,
             hint="start from the conditional prediction and move w times further along eps_cond - eps_uncond"),
    Exercise("06.guided_score", "numeric",
             f"two classes x_0 | c ~ N(mu_c, {V}) with mu = -1, +1 and equal priors, noised by sigma = {SIGMA}: the "
             f"guided score (1 + w) grad log p(x | c = 1) - w grad log p(x) at x = {X}, w = {W:g}, a number",
             numeric(rtol=1e-4), _guided_score,
             hint="p(x | c) = N(mu_c, v + sigma^2); grad log p(x) is the responsibility-weighted average of the two "
                  "classes' scores"),
    Exercise("06.guided_calls", "numeric",
             "GuidanceExplorer samples 8 digits with DDIM, 20 steps, w = 2: how many images pass through the network "
             "in all? (And at w = 0?)",
             numeric(rtol=0), lambda: 8 * 2 * 20,
             hint="w > 0 runs the conditional and the unconditional prediction in one call on a doubled batch"),
    Exercise("06.implicit_classifier", "numeric",
             f"the same two classes: p(c = 1 | x) at x = {X} (the implicit classifier guidance sharpens), a number",
             numeric(rtol=1e-4),
             lambda: (lambda d: d[1] / sum(d))([math.exp(-(X - m) ** 2 / (2 * (V + SIGMA**2))) for m in MU]),
             hint="Bayes with equal priors: N(x; mu_1, v + sigma^2) / (N(x; mu_1, v + sigma^2) + N(x; mu_2, v + sigma^2))"),
]
