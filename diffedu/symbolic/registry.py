"""One registry pairing each public numeric coefficient function with its derivation.

To add a pair: append `Pair(numeric=<function>, derived=lambda: <sympy expr or tuple>, args=(<sympy
exprs the function is called with>), labels=(...), ref="[PAPER eq. N]")` to PAIRS, and the module
name to NUMERIC_MODULES if it is new.  A public function of those modules that is not a
coefficient function goes on WAIVERS with the reason.  `verify(pair)` is what the tests run.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable

import numpy as np
import torch

from .. import forward as F
from .. import param as Q
from .. import posterior as P
from ._core import alpha_bar_prev, alpha_bar_t, canonical, eps, eta, evaluate, is_zero, rel_err, sample_points, sigma
from ._core import score, v, x_0, x_t
from .ddim import ddim_coefficients
from .forward import merge_gaussians
from .param import parameterisations
from .posterior import ddpm_posterior, vlb_term


@dataclasses.dataclass(frozen=True)
class Pair:
    """numeric(*args) must equal derived() (element-wise for tuples) for 0 < ab_t < ab_prev < 1."""
    numeric: Callable
    derived: Callable[[], Any]
    args: tuple
    labels: tuple = ()
    ref: str = ""
    points: Callable[[int, int], dict] | None = None  # (n, seed) -> {symbol: array}; default sample_points

    @property
    def name(self) -> str:
        return f"{self.numeric.__module__}.{self.numeric.__qualname__}"


NUMERIC_MODULES = ["diffedu.forward", "diffedu.posterior", "diffedu.param", "diffedu.losses"]

WAIVERS = {
    "diffedu.forward.q_mean_var": "takes a Schedule and x0; its arithmetic is q_mean_var_coefs (paired)",
    "diffedu.forward.q_sample": "draws x_t from q_mean_var; no coefficient of its own",
    "diffedu.losses.l_simple": "a Monte Carlo objective over a network, not a closed form",
    "diffedu.losses.vlb_weights": "vlb_weight (paired) evaluated along a Schedule",
}

ab, abp = alpha_bar_t, alpha_bar_prev


def _post(key):
    return ddpm_posterior().result[key]


def _ddim(key):
    return ddim_coefficients().result[key]


def _par(key):
    return parameterisations().result[key]


PAIRS = [
    Pair(F.q_mean_var_coefs, lambda: (merge_gaussians().result["mean_coef"], merge_gaussians().result["variance"]),
         (ab,), ("mean_coef", "variance"), "[DDPM eq. 4]"),
    Pair(P.posterior_mean_coefs, lambda: (_post("coef_x0"), _post("coef_xt")), (ab, abp), ("coef_x0", "coef_xt"),
         "[DDPM eq. 7]"),
    Pair(P.posterior_variance, lambda: _post("beta_tilde"), (ab, abp), ref="[DDPM eq. 7]"),
    Pair(P.posterior_mean_eps_coefs, lambda: (_post("eps_coef_xt"), _post("eps_coef_eps")), (ab, abp),
         ("coef_xt", "coef_eps"), "[DDPM eq. 11]"),
    Pair(P.vlb_weight, lambda: vlb_term().result["weight"], (ab, abp, sigma**2), ref="[DDPM eq. 12]"),
    Pair(P.ddim_sigma, lambda: _ddim("sigma_eta"), (ab, abp, eta), ref="[DDIM eq. 16]"),
    Pair(P.ddim_mean_coefs, lambda: (_ddim("k"), _ddim("m")), (ab, abp, sigma), ("k", "m"), "[DDIM eq. 7]"),
    Pair(P.ddim_step_coefs, lambda: (_ddim("coef_x0"), _ddim("coef_eps")), (ab, abp, sigma), ("coef_x0", "coef_eps"),
         "[DDIM eq. 12]"),
    Pair(Q.x0_from_eps, lambda: _par("x0_from_eps"), (x_t, eps, ab), ref="[DDPM eq. 15]"),
    Pair(Q.eps_from_x0, lambda: _par("eps_from_x0"), (x_t, x_0, ab), ref="[DDPM eq. 4]"),
    Pair(Q.v_from_eps, lambda: _par("v_from_eps"), (x_t, eps, ab), ref="[Salimans & Ho §4]"),
    Pair(Q.x0_from_v, lambda: _par("x0_from_v"), (x_t, v, ab), ref="[Salimans & Ho §4]"),
    Pair(Q.eps_from_v, lambda: _par("eps_from_v"), (x_t, v, ab), ref="[Salimans & Ho §4]"),
    Pair(Q.score_from_eps, lambda: _par("score_from_eps"), (eps, ab), ref="[Song eq. 9]"),
    Pair(Q.eps_from_score, lambda: _par("eps_from_score"), (score, ab), ref="[Song eq. 9]"),
    Pair(Q.x0_from_score, lambda: _par("x0_from_score"), (x_t, score, ab), ref="[Tweedie]"),
]


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def verify(pair: Pair, n: int = 200, rtol: float = 1e-12, seed: int = 0) -> list[str]:
    """Problems with a pair (empty when it holds): (a) derived - numeric(symbols) must reduce to 0;
    (b) lambdify(derived) must match numeric on float64 numpy arrays and torch tensors (relative rtol)."""
    derived = [canonical(d) for d in _tuple(pair.derived())]
    symbolic = _tuple(pair.numeric(*pair.args))
    labels = pair.labels or tuple(f"[{i}]" for i in range(len(derived)))
    if len(derived) != len(symbolic):
        return [f"{pair.name}: derived has {len(derived)} outputs, numeric {len(symbolic)}"]
    syms = set().union(*(sp_expr.free_symbols for sp_expr in (*derived, *pair.args)))
    pts = pair.points(n, seed) if pair.points else sample_points(syms, n, seed)
    arrays = [evaluate(a, pts) for a in pair.args]
    outs = {"numpy": _tuple(pair.numeric(*arrays)),
            "torch": _tuple(pair.numeric(*[torch.from_numpy(a.copy()) for a in arrays]))}
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


def public_functions(module_name: str) -> list[str]:
    """Qualified names of the public functions defined in a module."""
    mod = importlib.import_module(module_name)
    return [f"{module_name}.{name}" for name, fn in inspect.getmembers(mod, inspect.isfunction)
            if fn.__module__ == module_name and not name.startswith("_")]


def missing_pairs() -> list[str]:
    """Public functions of NUMERIC_MODULES with neither a pair nor a waiver."""
    paired = {p.name for p in PAIRS}
    return [f for m in NUMERIC_MODULES for f in public_functions(m) if f not in paired and f not in WAIVERS]
