"""Input validation: every message names the argument, what it got, and what is allowed.

Imports: math, operator, torch.  Layer base.
"""
from __future__ import annotations

import math
import operator

import torch


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ValueError if a tensor holds NaN or inf."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() and x.numel():
        # aminmax is one pass and propagates NaN; isfinite(x).all() makes a bool copy of x first
        # (~10x slower on the CPU: a sampler checks its start this way)
        finite = all(math.isfinite(v.item()) for v in torch.aminmax(x))
    else:
        finite = bool(torch.isfinite(x).all())
    if not finite:
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contains {n_nan} NaN and {n_inf} inf values; it must be finite")


def check_number(value, name: str, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """Return value as a float, or raise ValueError naming the allowed interval."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    allowed = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
    bad = math.isnan(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return v


def check_int(value, name: str, *, lo: int, hi: int | None = None) -> int:
    """Return value as an int, or raise ValueError naming the allowed range."""
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if v < lo or (hi is not None and v > hi):
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be in {allowed}, got {v}")
    return v


def check_choice(value, name: str, choices) -> str:
    """Raise ValueError unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_start(x_T: torch.Tensor, name: str = "x_T") -> None:
    """A sampler's starting point must be a finite tensor with a batch dimension."""
    check_finite(x_T, name)
    if x_T.dim() < 1:
        raise ValueError(f"{name} must have a batch dimension, got a 0-d tensor")


def check_model_output(out, x: torch.Tensor, what: str = "eps_model") -> torch.Tensor:
    """The network must return a tensor shaped like its input."""
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} returned {shape}; it must return a tensor of the input's shape {tuple(x.shape)}")
    return out
