"""The fixed noise of a seed: x_T and every per-step noise, so moving eta or the step count changes nothing else.

Imports: torch only.
"""
from __future__ import annotations

from collections import OrderedDict

import torch


class FixedNoise:
    """x_T and the per-step noises of a seed, each drawn from its own generator: noise i of seed s
    is the same tensor however many steps a setting takes, so only the setting changes the path.

    shape  of one draw (the whole batch, e.g. (n, 2)); dtype of the draws
    keep   how many seeds to hold (least recently used dropped first)
    """

    def __init__(self, shape, dtype=torch.float32, keep: int = 4):
        self.shape, self.dtype, self.keep = tuple(shape), dtype, keep
        self._seeds: OrderedDict[int, tuple[torch.Tensor, list]] = OrderedDict()

    def _draw(self, seed: int, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed((seed << 20) + i)
        return torch.randn(self.shape, generator=g, dtype=self.dtype)

    def _entry(self, seed: int):
        if seed not in self._seeds:
            self._seeds[seed] = (self._draw(seed, 0), [])
            while len(self._seeds) > self.keep:
                self._seeds.popitem(last=False)
        self._seeds.move_to_end(seed)
        return self._seeds[seed]

    def start(self, seed: int) -> torch.Tensor:
        """x_T ~ N(0, I) of this seed (the unit-variance start every sampler shares)."""
        return self._entry(seed)[0]

    def steps(self, seed: int, k: int) -> list[torch.Tensor]:
        """The first k per-step noises of this seed."""
        noises = self._entry(seed)[1]
        while len(noises) < k:
            noises.append(self._draw(seed, len(noises) + 1))
        return noises[:k]
