"""The one sampling loop and the Trajectory it records; the noise a sampler consumes.

Every sampler in diffedu is a list of times plus a pure step function; `run` walks the list,
calls the step, and records the states, the estimates of x_0 and the number of network calls.
Widgets and plots read Trajectory objects; they never re-implement sampling.  How recorded
states are stored (preallocated, page-fault-friendly memory) is `diffedu._recording`'s business.

Nothing silent: a model that returns NaN or inf makes every later state NaN, and a sampler would
hand back an all-NaN trajectory.  `run` looks once, after the last step, at the final state (one
sum, one host sync: no per-step check in the loop), and when it is not finite finds the first bad
step in the recorded states and raises `NonFiniteState` naming the model, the step and
its time.  A supplied `noises=` is checked when the sampler starts (dtype and finiteness, by index).

Imports: math, torch, diffedu._checks, diffedu._recording.  Layer samplers.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._checks import all_finite, check_float_dtype, count_nonfinite
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
        self._nfes: list[int] = []  # network calls per step: names Heun's second call in an error
        if record:
            self._xs, self._x0_hats = Recorder(len(ts)), Recorder(len(ts) - 1)
            self._xs.append(x_T)
        self._stacked: dict[str, torch.Tensor] = {}

    def append(self, x0_hat: torch.Tensor, x_next: torch.Tensor, nfe: int) -> None:
        self.nfe += nfe
        self._nfes.append(nfe)
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


class NonFiniteState(ValueError):
    """A sampler's state became NaN or inf.  `.trajectory` holds what it did; `.step` and `.time` say
    where it first happened (None when sampled with record=False, which keeps no states)."""

    def __init__(self, message: str, trajectory: Trajectory, step: int | None, time: float | None):
        super().__init__(message)
        self.trajectory, self.step, self.time = trajectory, step, time


def _first_bad(values: torch.Tensor) -> int | None:
    """The first index along dim 0 whose entry holds NaN or inf, or None."""
    if len(values) == 0:
        return None
    bad = ~torch.isfinite(values.detach().reshape(len(values), -1)).all(1)
    return int(bad.nonzero()[0, 0]) if bool(bad.any()) else None


def check_run(traj: Trajectory, model: str = "model", time: str = "t") -> Trajectory:
    """Raise NonFiniteState unless the final state of a finished run is finite.

    One reduction over the final state (`_checks.all_finite`, a sum), after the loop: a model's NaN
    or inf reaches it, since every later step computes from the state.  Only then are the recorded states searched, for
    the first step whose x0_hat (the model's output, or x0_hat made from it) or next state is not
    finite.  `model` names the model in the message (eps_model, denoiser, x0_model); `time` what
    `traj.ts` holds (t, or sigma for EDM).  Not seen: a NaN that a later step washes out again, which
    takes a model that ignores its input (a state is always computed from the one before).
    """
    x = traj._x
    if traj._x0_hat is None or all_finite(x):  # every sampler's last state is computed from its last x0_hat
        return traj
    n, ts = len(traj._nfes), traj.ts.tolist()
    if not traj.record:
        raise NonFiniteState(
            f"the sample is not finite: the final state holds {count_nonfinite(x)}, so {model}'s output or an "
            f"update made the state NaN or inf at one of the {n} steps ({time} = {ts[0]:g} to {ts[n]:g}); "
            f"record=False keeps no states to say which: sample again with record=True to have the step named",
            traj, None, None)
    xs, x0_hats = traj.xs, traj.x0_hats
    bad_x, bad_x0 = _first_bad(xs[1:]), _first_bad(x0_hats)   # xs[0] = the checked start
    if bad_x is None and bad_x0 is None:  # appended outside `run`, past what ts announced
        raise NonFiniteState(f"the sample is not finite: the final state holds {count_nonfinite(x)}", traj, None, None)
    i = min(k for k in (bad_x, bad_x0) if k is not None)
    t, t_next = ts[i], ts[i + 1]
    if bad_x0 == i:
        msg = (f"{model} gave NaN or inf at step {i} of {n}, {time} = {t:g} (the step to {time} = {t_next:g}): "
               f"x0_hat there holds {count_nonfinite(x0_hats[i])} while the state given to {model} was finite")
    elif traj._nfes[i] > 1:
        msg = (f"{model} gave NaN or inf at step {i} of {n} in its second evaluation, the Heun correction at "
               f"{time} = {t_next:g} (the step from {time} = {t:g}): x_next holds {count_nonfinite(xs[i + 1])}; "
               f"the state and x0_hat at {time} = {t:g} were finite")
    else:
        msg = (f"the update at step {i} of {n} ({time} = {t:g} -> {t_next:g}) made the state NaN or inf (x_next "
               f"holds {count_nonfinite(xs[i + 1])}) although {model}'s x0_hat there was finite: a noise, or a "
               f"coefficient overflowing {str(xs.dtype).replace('torch.', '')}")
    raise NonFiniteState(msg + "; the trajectory is on this error's .trajectory", traj, i, t)


class NoiseStream:
    """The fresh Gaussian noises a sampler consumes, in order: given (`noises`) or drawn (`generator`).

    Passing the same `noises` to two samplers (or to diffedu and another library) makes their
    stochastic paths comparable step by step; a sampler takes one noise for each step whose
    noise scale is > 0, in the order of its steps.  Given noises are checked when the stream is
    made (before the first model call): real floating point and finite, each by its index.
    """

    def __init__(self, like: torch.Tensor, noises=None, generator: torch.Generator | None = None):
        self.like = like
        self.noises = noises
        self.generator = generator
        self.used = 0
        if noises is not None and generator is not None:
            raise ValueError("pass either noises= or generator=, not both")
        if noises is not None:
            _check_noises(noises)

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


def _check_noises(noises) -> None:
    """Every given noise a real floating-point tensor with no NaN or inf; the message names its index.

    One aminmax per noise and one host sync for all of them, before the sampler's first step.
    """
    try:
        len(noises)
    except TypeError:
        raise ValueError(f"noises must be a sequence of tensors (a list, or one tensor with a leading "
                         f"dimension), got {type(noises).__name__}") from None
    if isinstance(noises, torch.Tensor):
        check_float_dtype(noises, "noises")
    else:
        for k, z in enumerate(noises):
            check_float_dtype(z, f"noises[{k}]")
    ends = [torch.stack(torch.aminmax(z.detach())).double() for z in noises if z.numel()]
    try:
        ok = not ends or all(math.isfinite(v) for v in torch.stack(ends).flatten().tolist())
    except RuntimeError:  # noises on several devices: one by one
        ok = False
    if ok:
        return
    for k, z in enumerate(noises):
        if not all_finite(z):
            raise ValueError(f"noises[{k}] contains {count_nonfinite(z)}; every noise must be finite")


StepFn = Callable[[int, torch.Tensor], tuple]


def run(x_T: torch.Tensor, ts: torch.Tensor, step: StepFn, record: bool = True, *, model: str = "model",
        time: str = "t") -> Trajectory:
    """Walk the steps i = 0..len(ts)-2; `step(i, x)` returns (x0_hat, x_next, nfe).

    After the last step `check_run` raises NonFiniteState if the state is no longer finite, naming
    `model` and the step and `time` (t or sigma) where it first was not; nothing is checked per step.
    """
    traj = Trajectory(x_T, ts, record)
    x = x_T
    for i in range(len(ts) - 1):
        x0_hat, x, nfe = step(i, x)
        traj.append(x0_hat, x, nfe)
    return check_run(traj, model, time)
