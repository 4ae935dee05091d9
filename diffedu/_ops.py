"""Arithmetic that works on floats, numpy arrays, torch tensors and sympy expressions.

Coefficient functions in diffedu are written with `+ - * /`, `**` and the `sqrt` below, so the
sympy derivations in `diffedu.symbolic` can call the very function the samplers call.
"""
from __future__ import annotations

import math

import torch


def _is_sympy(x) -> bool:
    return type(x).__module__.startswith("sympy")


def sqrt(x):
    """Square root for a float, a numpy array, a torch tensor or a sympy expression."""
    if isinstance(x, torch.Tensor):
        return torch.sqrt(x)
    if _is_sympy(x):
        import sympy

        return sympy.sqrt(x)
    if isinstance(x, (int, float)):
        return math.sqrt(x)
    import numpy as np

    return np.sqrt(x)


def broadcast_to_batch(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample value of shape (B,) to (B, 1, ..., 1) so it broadcasts over x."""
    return a.reshape(a.shape[0], *([1] * (x.dim() - 1)))
