"""The one sampling loop and the Trajectory it records; the noise a sampler consumes.

Every sampler in diffedu is a list of times plus a pure step function; `run` walks the list,
calls the step, and records the states, the estimates of x_0 and the number of network calls.
Widgets and plots read Trajectory objects; they never re-implement sampling.  How recorded
states are stored (preallocated, page-fault-friendly memory) is `diffedu._recording`'s business.

Imports: torch, diffedu._recording.  Layer samplers.
"""
from __future__ import annotations

from typing import Callable

import torch

from ._recording import Recorder


class Trajectory:
    """What a sampler did: every state x_t from x_T to x_0, every x0_hat, the times, the NFE.

    xs       tensor (n + 1, *x.shape): xs[0] = x_T, xs[-1] = the final sample (only the first and
             last state when sampled with record=False)
    x0_hats  tensor (n, *x.shape): the model's estimate of x_0 at each of the n steps
    ts       tensor (n + 1,): the times visited (paper time for discrete samplers, sigma for EDM)
    nfe      number of network (denoiser) evaluations
    """

    def __init__(self, x_T: torch.Tensor, ts: torch.Tensor, record: bool = True):
        self.ts = ts
        self.nfe = 0
        self.record = record
        self._x_T = self._x = x_T
        self._x0_hat: torch.Tensor | None = None
        if record:
            self._xs, self._x0_hats = Recorder(len(ts)), Recorder(len(ts) - 1)
            self._xs.append(x_T)
        self._stacked: dict[str, torch.Tensor] = {}

    def append(self, x0_hat: torch.Tensor, x_next: torch.Tensor, nfe: int) -> None:
        self.nfe += nfe
        self._x, self._x0_hat = x_next, x0_hat
        if self.record:
            self._xs.append(x_next)
            self._x0_hats.append(x0_hat)
        self._stacked.clear()

    @property
    def x(self) -> torch.Tensor:
        """The final sample."""
        return self._x

    @property
    def xs(self) -> torch.Tensor:
        if "xs" not in self._stacked:
            if self.record:
                self._stacked["xs"] = self._xs.stacked()
            else:
                self._stacked["xs"] = torch.stack([self._x_T] + ([self._x] if self._x0_hat is not None else []))
        return self._stacked["xs"]

    @property
    def x0_hats(self) -> torch.Tensor:
        if "x0_hats" not in self._stacked:
            if self.record:
                self._stacked["x0_hats"] = self._x0_hats.stacked()
            else:
                self._stacked["x0_hats"] = torch.stack([] if self._x0_hat is None else [self._x0_hat])
        return self._stacked["x0_hats"]

    def __len__(self) -> int:
        """The number of steps taken."""
        return len(self.ts) - 1

    def __repr__(self) -> str:
        return (f"Trajectory(steps={len(self)}, nfe={self.nfe}, shape={tuple(self.x.shape)}, "
                f"t: {self.ts[0].item():g} -> {self.ts[-1].item():g})")


class NoiseStream:
    """The fresh Gaussian noises a sampler consumes, in order: given (`noises`) or drawn (`generator`).

    Passing the same `noises` to two samplers (or to diffedu and another library) makes their
    stochastic paths comparable step by step; a sampler takes one noise for each step whose
    noise scale is > 0, in the order of its steps.
    """

    def __init__(self, like: torch.Tensor, noises=None, generator: torch.Generator | None = None):
        self.like = like
        self.noises = noises
        self.generator = generator
        self.used = 0
        if noises is not None and generator is not None:
            raise ValueError("pass either noises= or generator=, not both")

    def next(self) -> torch.Tensor:
        like = self.like
        if self.noises is None:
            z = torch.randn(like.shape, generator=self.generator, dtype=like.dtype, device=like.device)
        else:
            if self.used >= len(self.noises):
                raise ValueError(
                    f"noises holds {len(self.noises)} tensors but the sampler needs more; "
                    f"pass at least one per noisy step (see the sampler's docstring)"
                )
            z = self.noises[self.used]
            if z.shape != like.shape:
                raise ValueError(f"noises[{self.used}] has shape {tuple(z.shape)}, expected {tuple(like.shape)}")
            if z.device != like.device:
                raise ValueError(f"noises[{self.used}] is on {z.device} but x is on {like.device}")
            z = z.to(like.dtype)
        self.used += 1
        return z


StepFn = Callable[[int, torch.Tensor], tuple]


def run(x_T: torch.Tensor, ts: torch.Tensor, step: StepFn, record: bool = True) -> Trajectory:
    """Walk the steps i = 0..len(ts)-2; `step(i, x)` returns (x0_hat, x_next, nfe)."""
    traj = Trajectory(x_T, ts, record)
    x = x_T
    for i in range(len(ts) - 1):
        x0_hat, x, nfe = step(i, x)
        traj.append(x0_hat, x, nfe)
    return traj
