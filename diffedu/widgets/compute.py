"""One explorer setting computed: the cache key, the Result, the sampling call, and the cache of Results.

    key = Key.of(spec, T, steps, seed, eta=0.3, spacing="trailing")   # only what the spec takes
    res = compute(target, spec, key, FixedNoise((n, 2)))              # Trajectory, x_T, display_xs, metrics

Everything about a sampler comes from its registry spec (`diffedu.samplers.registry`): which
settings it takes (the rest do not enter the key, so they share one cache entry), how many
per-step noises it may consume, whether its states are VE.  Nothing here names a sampler.

Imports: torch, diffedu.samplers.registry and diffedu.trajectory (samplers), .noise beside it.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from ..samplers.registry import SamplerSpec, Target
from ..trajectory import Trajectory
from .noise import FixedNoise


class Key(NamedTuple):
    """What a sampled setting depends on, and nothing else: two settings with one Key are one sample."""

    sampler: str        # the registry key, e.g. "ddim"
    steps: int          # the steps the sampler takes (T for one that ignores `steps`)
    params: tuple       # ((name, value), ...) of the spec's own parameters, defaults filled in
    seed: int

    @classmethod
    def of(cls, spec: SamplerSpec, T: int, steps: int, seed: int, **offered) -> "Key":
        """The key of `spec` run with `steps` and those of the `offered` settings it takes; ValueError
        (from `spec.settings`) names a bad one."""
        steps, params = spec.settings(steps, T, **{k: v for k, v in offered.items() if k in spec.params})
        return cls(spec.name, steps, tuple(params.items()), seed)


@dataclass
class Result:
    """One computed setting: its Key and spec, the Trajectory, the shared start noise, what it measured, how long it took."""

    key: Key
    spec: SamplerSpec
    traj: Trajectory
    x_T: torch.Tensor
    display_xs: torch.Tensor            # the states in DDPM (VP) coordinates, for VE samplers too
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        tensors = {id(t): t for t in (self.traj.xs, self.traj.x0_hats, self.display_xs)}
        return sum(t.numel() * t.element_size() for t in tensors.values())


def vp_states(traj: Trajectory) -> torch.Tensor:
    """VE states x = x_t / sqrt(alpha_bar) at noise levels sigma (traj.ts) back to DDPM's
    x_t = x / sqrt(1 + sigma^2), since alpha_bar = 1 / (1 + sigma^2).  [DDIM eq. 14]"""
    xs = traj.xs
    return xs / (1 + traj.ts.to(xs.dtype) ** 2).sqrt().reshape((-1,) + (1,) * (xs.dim() - 1))


@contextmanager
def torch_threads(n: int | None):
    """Run with n intra-op threads (None: leave as is), then restore."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def compute(target: Target, spec: SamplerSpec, key: Key, noise: FixedNoise, *, threads: int | None = 1,
            measure: Callable[[Result], dict] | None = None) -> Result:
    """Sample `key` with `spec` from the seed's x_T and its per-step noises (as many as the spec may
    consume), convert VE states for display, fill `metrics` by `measure`; all timed, under `threads`."""
    t0 = time.perf_counter()
    params = dict(key.params)
    x_T = noise.start(key.seed)
    k = spec.noise_count(key.steps, target.sched.T, params)
    noises = noise.steps(key.seed, k) if k else None
    with torch.no_grad(), torch_threads(threads):
        traj = spec(target, x_T, key.steps, noises=noises, **params)
        res = Result(key, spec, traj, x_T, vp_states(traj) if spec.ve else traj.xs)
        if measure is not None:
            res.metrics = measure(res)
    res.seconds = time.perf_counter() - t0
    return res


class ResultCache:
    """Results by Key, least recently used dropped first once their tensors pass max_bytes (the newest is always kept)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._results: OrderedDict[Key, Result] = OrderedDict()

    def get(self, key: Key) -> Result | None:
        res = self._results.get(key)
        if res is not None:
            self._results.move_to_end(key)
        return res

    def put(self, res: Result) -> None:
        old = self._results.pop(res.key, None)
        self.nbytes += res.nbytes - (old.nbytes if old is not None else 0)
        self._results[res.key] = res
        while len(self._results) > 1 and self.nbytes > self.max_bytes:
            self.nbytes -= self._results.popitem(last=False)[1].nbytes

    def clear(self) -> None:
        self._results.clear()
        self.nbytes = 0

    def __contains__(self, key) -> bool:
        return key in self._results

    def __len__(self) -> int:
        return len(self._results)
