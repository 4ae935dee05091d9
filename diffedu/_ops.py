"""Arithmetic that works on floats, numpy arrays, torch tensors and sympy expressions.

Coefficient functions in diffedu are written with `+ - * /`, `**` and the `sqrt` below, so the
sympy derivations in `diffedu.symbolic` can call the very function the samplers call.

Imports: math, numpy, torch; sympy only when given a sympy expression.  Layer base.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def _is_sympy(x) -> bool:
    return type(x).__module__.startswith("sympy")


def _dispatch(x, name: str):
    """Apply the elementary function `name` with the library that owns x."""
    if type(x) is float:  # the samplers' case, once per coefficient per step: checked first
        return getattr(math, name)(x)
    if isinstance(x, torch.Tensor):
        return getattr(torch, name)(x)
    if _is_sympy(x):
        import sympy

        return getattr(sympy, name)(x)
    if isinstance(x, (int, float)):
        return getattr(math, name)(x)
    return getattr(np, name)(x)


def sqrt(x):
    """Square root for a float, a numpy array, a torch tensor or a sympy expression."""
    return _dispatch(x, "sqrt")


def exp(x):
    """Exponential for a float, a numpy array, a torch tensor or a sympy expression."""
    return _dispatch(x, "exp")


def log(x):
    """Natural logarithm for a float, a numpy array, a torch tensor or a sympy expression."""
    return _dispatch(x, "log")


def broadcast_to_batch(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample value of shape (B,) to (B, 1, ..., 1) so it broadcasts over x."""
    return a.reshape(a.shape[0], *([1] * (x.dim() - 1)))
