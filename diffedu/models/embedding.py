"""The sinusoidal embedding of a time or noise label, shared by every network.  [Transformer §3.5; DDPM App. B]

Imports: torch.  Layer models.
"""
from __future__ import annotations

import math

import torch


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos(t w_i), sin(t w_i)] with w_i = max_period^(-i / (dim/2)), i = 0..dim/2-1; shape (B, dim).

    t is cast to float, so the same network takes a LongTensor of paper times 1..T (eps-prediction)
    or a float noise label c_noise = ln(sigma)/4 (EDM).  The frequencies run from 1 down to
    1/max_period, which resolves integer times up to ~1000 and c_noise in [-2, 2] alike.
    """
    if t.dim() != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    if dim % 2:
        raise ValueError(f"the embedding dimension must be even, got {dim}")
    half = dim // 2
    w = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angle = t.float()[:, None] * w[None, :]
    return torch.cat([angle.cos(), angle.sin()], dim=1)
