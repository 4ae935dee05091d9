"""Input validation: every message names the argument, what it got, and what is allowed.

Imports: math, operator, torch.  Layer base.
"""
from __future__ import annotations

import math
import operator

import torch

# the dtypes a sampler's state may have; coefficients are computed in float64 whatever the state's
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
HALF_DTYPES = (torch.float16, torch.bfloat16)  # where 1 - alpha_bar_1 rounds to 0: coefficients go to float64
_FLOAT_NAMES = ", ".join(str(dt).replace("torch.", "") for dt in FLOAT_DTYPES)


def all_finite(x: torch.Tensor) -> bool:
    """True when a tensor holds no NaN or inf; one host sync.

    A NaN or an inf makes the sum NaN or inf, so a finite sum is proof, at the cost of one
    reduction (~10x cheaper than isfinite(x).all(), which makes a bool copy of x first, and ~2x
    cheaper than aminmax): samplers check their start and their end this way.  Only a sum that
    overflows (finite values near the dtype's max) needs the exact check.
    """
    if x.is_floating_point() and x.numel():
        if math.isfinite((x.detach() if x.requires_grad else x).sum().item()):
            return True
    return bool(torch.isfinite(x).all())


def count_nonfinite(x: torch.Tensor) -> str:
    """'3 NaN and 0 inf values' (of x), for error messages."""
    return f"{int(torch.isnan(x).sum())} NaN and {int(torch.isinf(x).sum())} inf values"


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ValueError if a tensor holds NaN or inf."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not all_finite(x):
        raise ValueError(f"{name} contains {count_nonfinite(x)}; it must be finite")


def check_number(value, name: str, *, lo=None, hi=None, lo_open=False, hi_open=False, finite=False) -> float:
    """Return value as a float, or raise ValueError naming the allowed interval.

    NaN is always refused; +-inf only where the interval's end is None and finite=True (an interval
    with a finite end refuses inf anyway).
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    bad = math.isnan(v) or (finite and math.isinf(v))
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        left = "(" if lo_open or (lo is None and finite) else "["
        right = ")" if hi_open or (hi is None and finite) else "]"
        allowed = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ValueError(f"{name} must be {'a finite number ' if finite else ''}in {allowed}, got {value!r}")
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


def check_float_dtype(x: torch.Tensor, name: str) -> None:
    """A state or a noise must be a real floating-point tensor: integer, bool and complex are refused."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} has dtype {str(x.dtype).replace('torch.', '')}; samplers take real floating-point "
                         f"tensors ({_FLOAT_NAMES})")


def check_start(x_T: torch.Tensor, name: str = "x_T") -> None:
    """A sampler's starting point must be a finite, real floating-point tensor with a batch dimension."""
    check_float_dtype(x_T, name)
    check_finite(x_T, name)
    if x_T.dim() < 1:
        raise ValueError(f"{name} must have a batch dimension, got a 0-d tensor")


def check_model_output(out, x: torch.Tensor, what: str = "eps_model") -> torch.Tensor:
    """The network must return a tensor shaped like its input."""
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} returned {shape}; it must return a tensor of the input's shape {tuple(x.shape)}")
    return out
