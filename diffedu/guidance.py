"""Classifier-free guidance: one class-conditional network gives both eps(x, c) and eps(x).  [CFG eq. 6]

    eps_tilde(x, c) = (1 + w) eps(x, c) - w eps(x)

w = 0 is the conditional model, w > 0 trades diversity for samples that look more like class c.  The
derivation (Bayes: grad log p(x | c) = grad log p(x) + grad log p(c | x), with the implicit classifier
p(c | x) = p(x | c) p(c) / p(x)) is `diffedu.symbolic.classifier_free_guidance`; `cfg_eps` is the line
it checks.  `Guided` wraps a conditional network into the plain `net(x, t)` every sampler calls, so
guidance works with every sampler of the registry (and with either objective: EDM's D and the
eps-prediction are affine in the network's output, with coefficients that do not depend on c).

Imports: torch, _checks.  Layer core.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_number


def cfg_eps(eps_cond, eps_uncond, w):
    """eps_tilde = (1 + w) eps(x, c) - w eps(x): the guided prediction.  [CFG eq. 6]

    Works on floats, tensors and sympy expressions (the symbolic pairing calls it on symbols).
    """
    return (1 + w) * eps_cond - w * eps_uncond


def check_guidance(guidance) -> float:
    """w must be a finite number >= 0 (ValueError naming `guidance` otherwise)."""
    if isinstance(guidance, bool):
        raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
    return float(check_number(guidance, "guidance", lo=0, hi=math.inf, hi_open=True))


def check_labels(labels, n: int, num_classes: int | None, device="cpu") -> torch.Tensor | None:
    """`labels` as an int64 tensor (n,) on `device`: an int means that class for all n; None stays None.

    A label outside 0..num_classes-1, a wrong shape or dtype, or labels for an unconditional model
    (num_classes None) is a ValueError naming `labels`.
    """
    if labels is None:
        return None
    if num_classes is None:
        raise ValueError("labels were given, but this model is unconditional (trained without labels): "
                         "pass labels=None, or use a class-conditional model")
    if isinstance(labels, bool) or not isinstance(labels, (int, torch.Tensor)):
        raise ValueError(f"labels must be an int or an int64 tensor of shape ({n},), got {type(labels).__name__}")
    if isinstance(labels, int):
        labels = torch.full((n,), labels, dtype=torch.long)
    if labels.dtype != torch.long or labels.shape != (n,):
        raise ValueError(f"labels must be an int or an int64 tensor of shape ({n},), "
                         f"got {labels.dtype} of shape {tuple(labels.shape)}")
    lo, hi = torch.stack(torch.aminmax(labels.cpu())).tolist()
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"labels must be classes in 0..{num_classes - 1}, got values in {lo}..{hi}")
    return labels.to(device)


class Guided(nn.Module):
    """net(x, t) of a class-conditional `net(x, t, c)` at fixed labels and guidance weight w.  [CFG eq. 6]

    labels None: the unconditional model (the null class).  w = 0: the conditional model, one call.
    w > 0: eps(x, c) and eps(x) from one call on the doubled batch, combined by `cfg_eps`.
    The wrapped network's own parameters are this module's (so `.parameters()` finds the device).
    """

    def __init__(self, net: nn.Module, labels: torch.Tensor | None, w: float = 0.0):
        super().__init__()
        self.net, self.labels, self.w = net, labels, check_guidance(w)
        if labels is None and self.w:
            raise ValueError(f"guidance={w} needs labels: guidance pushes samples towards a class")
        # w > 0: the labels of the doubled batch, c then the null class, built once for every call
        self._both = None if labels is None or not self.w else torch.cat([labels, torch.full_like(labels, net.null_class)])

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            return self.net(x, t)
        if len(self.labels) != len(x):
            raise ValueError(f"Guided holds {len(self.labels)} labels but got a batch of {len(x)}")
        if not self.w:
            return self.net(x, t, self.labels)
        both = self.net(torch.cat([x, x]), torch.cat([t, t]), self._both)
        eps_cond, eps_uncond = both.chunk(2)
        return cfg_eps(eps_cond, eps_uncond, self.w)
