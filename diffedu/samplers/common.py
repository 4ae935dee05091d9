"""Small pieces every discrete sampler shares: x0 clipping and the time tensors fed to a network.

Imports: torch.  Layer samplers.
"""
from __future__ import annotations

import torch


def check_clip(clip_x0):
    """clip_x0 is None or a pair (lo, hi) with lo < hi."""
    if clip_x0 is None:
        return None
    try:
        lo, hi = (float(v) for v in clip_x0)
    except (TypeError, ValueError):
        raise ValueError(f"clip_x0 must be None or a pair (lo, hi), got {clip_x0!r}") from None
    if not lo < hi:
        raise ValueError(f"clip_x0 must be (lo, hi) with lo < hi, got {clip_x0!r}")
    return lo, hi


def clip(x0_hat: torch.Tensor, clip_x0) -> torch.Tensor:
    """Clip x0_hat to the data range (lo, hi), or leave it when clip_x0 is None."""
    return x0_hat if clip_x0 is None else x0_hat.clamp(*clip_x0)


def model_time(t: int, x: torch.Tensor) -> torch.Tensor:
    """The LongTensor of shape (B,) filled with t that eps_model(x_t, t) receives.

    Samplers make it at each step rather than all of them up front: one at a time is reused
    memory, while n of them held at once (T * B integers for DDPM) is fresh memory the system
    must hand out page by page (see benchmarks/sampler_overhead.py).
    """
    return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
