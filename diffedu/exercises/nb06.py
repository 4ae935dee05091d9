"""Notebook 06's exercises: classifier-free guidance.

Imports: torch, diffedu.guidance (the reference), ._core.
"""
from __future__ import annotations

import torch

from ..guidance import cfg_eps
from ._core import Exercise, code


def _cfg_inputs(g):
    shape = (int(torch.randint(1, 4, (1,), generator=g)), 1, 3, 3)
    return dict(eps_cond=torch.randn(shape, generator=g), eps_uncond=torch.randn(shape, generator=g),
                w=float(4 * torch.rand((), generator=g)))


EXERCISES = [
    Exercise("06.guided_eps", "code",
             "write guided(eps_cond, eps_uncond, w) -> eps_tilde, the classifier-free guided prediction with "
             "w = 0 the conditional model  [CFG eq. 6]",
             code(_cfg_inputs, rtol=1e-5, atol=1e-6), lambda: cfg_eps,
             hint="start from the conditional prediction and move w times further along eps_cond - eps_uncond"),
]
