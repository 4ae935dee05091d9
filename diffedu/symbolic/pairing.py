"""The `Pair` record and `verify`: one numeric coefficient function held against its derivation.

Each derivation module declares, next to its derivations, a `PAIRS` tuple of `Pair`s and a
`WAIVERS` dict for the public functions of the numeric modules that are not closed forms;
`diffedu.symbolic.registry` collects them.  Imports: numpy, sympy, torch, ._core.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import torch

from ._core import canonical, evaluate, is_zero, rel_err, sample_points


@dataclasses.dataclass(frozen=True)
class Pair:
    """numeric(*args) must equal derived() (element-wise for tuples) for 0 < ab_t < ab_prev < 1.

    `name` defaults to "<module>.<qualname>" of `numeric`; give it when numeric is an adapter,
    e.g. name="diffedu.processes.VP.sigma_dot" for a function that builds a VP and calls the method.
    """
    numeric: Callable
    derived: Callable[[], Any]
    args: tuple
    labels: tuple = ()
    ref: str = ""
    points: Callable[[int, int], dict] | None = None  # (n, seed) -> {symbol: array}; default sample_points
    rtol: float | None = None  # a looser float tolerance where the reference itself loses digits (say why)
    name: str = ""  # the public function this pair stands for; "" means numeric's own module.qualname

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", f"{self.numeric.__module__}.{self.numeric.__qualname__}")


def as_tuple(x) -> tuple:
    """x itself when it is a tuple or list (as a tuple), else (x,)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """n values spread evenly in log between lo and hi (noise levels across several decades)."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def verify(pair: Pair, n: int = 200, rtol: float = 1e-12, seed: int = 0) -> list[str]:
    """Problems with a pair (empty when it holds): (a) derived - numeric(symbols) must reduce to 0;
    (b) lambdify(derived) must match numeric on float64 numpy arrays and torch tensors (relative rtol)."""
    rtol = pair.rtol or rtol
    derived = [canonical(d) for d in as_tuple(pair.derived())]
    symbolic = as_tuple(pair.numeric(*pair.args))
    labels = pair.labels or tuple(f"[{i}]" for i in range(len(derived)))
    if len(derived) != len(symbolic):
        return [f"{pair.name}: derived has {len(derived)} outputs, numeric {len(symbolic)}"]
    syms = set().union(*(sp_expr.free_symbols for sp_expr in (*derived, *pair.args)))
    pts = pair.points(n, seed) if pair.points else sample_points(syms, n, seed)
    arrays = [evaluate(a, pts) for a in pair.args]
    outs = {"numpy": as_tuple(pair.numeric(*arrays)),
            "torch": as_tuple(pair.numeric(*[torch.from_numpy(a.copy()) for a in arrays]))}
    problems = []
    for i, (d, s) in enumerate(zip(derived, symbolic)):
        where = f"{pair.name} {labels[i]} {pair.ref}".rstrip()
        if not is_zero(d - s):
            problems.append(f"{where}: derived - numeric(symbols) does not reduce to 0\n"
                            f"    derived: {d}\n    numeric: {s}")
        ref = evaluate(d, pts)
        for backend, out in outs.items():
            got = np.broadcast_to(np.asarray(out[i], dtype=np.float64), ref.shape)
            err = rel_err(ref, got)
            j = int(np.argmax(err))
            if err[j] > rtol:
                at = ", ".join(f"{s_}={vals[j]:.6g}" for s_, vals in pts.items())
                problems.append(f"{where}: float64 ({backend}) relative error {err[j]:.3g} > {rtol:g} at {at}: "
                                f"derived {ref[j]:.17g}, numeric {got[j]:.17g} ({int((err > rtol).sum())}/{n} points)")
    return problems
