"""A residual MLP for 2-D (or any low-dimensional) data, conditioned on time or noise level.

Imports: torch, _checks, .embedding.  Layer models.
"""
from __future__ import annotations

import torch
from torch import nn

from .._checks import check_int
from .embedding import sinusoidal_embedding

MAX_DEPTH = 1000   # residual blocks; a config asking for more is a damaged file, not a model


class _Block(nn.Module):
    """h + W2 silu(W1 silu(h) + time(emb)): a residual block that sees the time embedding."""

    def __init__(self, hidden: int, emb_dim: int):
        super().__init__()
        self.lin1 = nn.Linear(hidden, hidden)
        self.time = nn.Linear(emb_dim, hidden)
        self.lin2 = nn.Linear(hidden, hidden)
        self.act = nn.SiLU()

    def forward(self, h, emb):
        return h + self.lin2(self.act(self.lin1(self.act(h)) + self.time(emb)))


class MLP(nn.Module):
    """F(x, t) for x of shape (B, dim): eps-prediction (t = paper time) or EDM's F (t = c_noise).

    in -> Linear(dim, hidden) -> `depth` residual blocks, each adding a projection of the
    sinusoidal time embedding -> SiLU -> Linear(hidden, dim).  The last layer starts at zero, so
    the untrained network predicts 0.  `.config` rebuilds it: `diffedu.models.build_model(m.config)`.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 64):
        super().__init__()
        self.config = dict(kind="mlp", dim=check_int(dim, "dim", lo=1), hidden=check_int(hidden, "hidden", lo=1),
                           depth=check_int(depth, "depth", lo=1, hi=MAX_DEPTH),
                           emb_dim=check_int(emb_dim, "emb_dim", lo=2))
        if emb_dim % 2:
            raise ValueError(f"emb_dim must be even, got {emb_dim}")
        self.emb_dim = emb_dim
        self.embed = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, emb_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.config["dim"]:
            raise ValueError(f"MLP expects x of shape (B, {self.config['dim']}), got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
        emb = self.embed(sinusoidal_embedding(t, self.emb_dim).to(next(self.embed.parameters()).dtype))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)
