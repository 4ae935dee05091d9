"""Derivation 5, for learners: `check(name, expr)` says whether a sympy expression for a named
quantity equals the derived one, and if not, where it differs.

Use the canonical symbols (`diffedu.symbolic.symbols()`; symbols of the same name made with
`sympy.symbols` are accepted too).  beta_t -> 1 - alpha_t and alpha_t -> alpha_bar_t / alpha_bar_prev
are substituted first, so answers written with beta_t, alpha_t or alpha_bar are all accepted.
Imports: numpy, sympy, ._core and the derivation modules it names.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import sympy as sp

from ._core import canonical, evaluate, is_zero, sample_points
from .ddim import ddim_coefficients
from .forward import merge_gaussians
from .param import parameterisations
from .posterior import ddpm_posterior, vlb_term


def _r(derivation, key, about):
    return (lambda: derivation().result[key]), about


# name -> (reference expression, what it is and in which symbols)
REFERENCE = {
    "q_mean": _r(merge_gaussians, "q_mean", "mean of q(x_t | x_0), in x_0, alpha_bar_t  [DDPM eq. 4]"),
    "q_mean_coef": _r(merge_gaussians, "mean_coef", "coefficient of x_0 in the mean of q(x_t | x_0)  [DDPM eq. 4]"),
    "q_variance": _r(merge_gaussians, "variance", "variance of q(x_t | x_0)  [DDPM eq. 4]"),
    "posterior_mean": _r(ddpm_posterior, "mu_tilde", "mu_tilde_t in x_t, x_0  [DDPM eq. 7]"),
    "posterior_mean_coef_x0": _r(ddpm_posterior, "coef_x0", "coefficient of x_0 in mu_tilde_t  [DDPM eq. 7]"),
    "posterior_mean_coef_xt": _r(ddpm_posterior, "coef_xt", "coefficient of x_t in mu_tilde_t  [DDPM eq. 7]"),
    "posterior_variance": _r(ddpm_posterior, "beta_tilde", "beta_tilde_t  [DDPM eq. 7]"),
    "posterior_mean_eps": _r(ddpm_posterior, "mu_eps", "mu_tilde_t in x_t, eps  [DDPM eq. 11]"),
    "vlb_weight": _r(vlb_term, "weight", "weight of ||eps - eps_theta||^2 in L_{t-1}, in sigma  [DDPM eq. 12]"),
    "ddim_sigma": _r(ddim_coefficients, "sigma_eta", "sigma_t(eta)  [DDIM eq. 16]"),
    "ddim_k": _r(ddim_coefficients, "k", "k of q_sigma's mean k x_0 + m x_t, in sigma  [DDIM eq. 7]"),
    "ddim_m": _r(ddim_coefficients, "m", "m of q_sigma's mean k x_0 + m x_t, in sigma  [DDIM eq. 7]"),
    "ddim_mean": _r(ddim_coefficients, "ddim_mean", "mean of q_sigma(x_prev | x_t, x_0), in x_t, x_0, sigma  [DDIM eq. 7]"),
    "ddim_update": _r(ddim_coefficients, "update", "x_prev in x_t, eps, sigma, z  [DDIM eq. 12]"),
    "x0_from_eps": _r(parameterisations, "x0_from_eps", "x_0 in x_t, eps  [DDPM eq. 15]"),
    "eps_from_x0": _r(parameterisations, "eps_from_x0", "eps in x_t, x_0  [DDPM eq. 4]"),
    "v": _r(parameterisations, "v", "v in x_t, eps  [Salimans & Ho §4]"),
    "v_from_eps": _r(parameterisations, "v_from_eps", "v in x_t, eps  [Salimans & Ho §4]"),
    "x0_from_v": _r(parameterisations, "x0_from_v", "x_0 in x_t, v  [Salimans & Ho §4]"),
    "eps_from_v": _r(parameterisations, "eps_from_v", "eps in x_t, v  [Salimans & Ho §4]"),
    "score": _r(parameterisations, "score", "grad log q(x_t) in eps  [Song eq. 9]"),
    "score_from_eps": _r(parameterisations, "score_from_eps", "grad log q(x_t) in eps  [Song eq. 9]"),
    "eps_from_score": _r(parameterisations, "eps_from_score", "eps in score  [Song eq. 9]"),
    "x0_from_score": _r(parameterisations, "x0_from_score", "x_0 in x_t, score (Tweedie)"),
}


@dataclasses.dataclass
class CheckResult:
    """Outcome of `check`: truthy when right.  When wrong, `point` holds symbol values where the
    two differ and `yours`, `derived` the two values there."""
    name: str
    ok: bool
    message: str
    point: dict | None = None
    yours: float | None = None
    derived: float | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"{'correct' if self.ok else 'not equal'}: {self.name}: {self.message}"

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return f"{'✅' if self.ok else '❌'} **{self.name}**: {self.message}"


def _fmt(point: dict) -> str:
    return ", ".join(f"{k} = {v:.6g}" for k, v in point.items())


def check(name: str, expr, n: int = 50, seed: int = 0, rtol: float = 1e-9) -> CheckResult:
    """Is `expr` equal to the derived expression called `name` (see REFERENCE)?

    Compares float64 values at n random valid points (0 < alpha_bar_t < alpha_bar_prev < 1,
    0 <= eta <= 1, 0 < sigma^2 < 1 - alpha_bar_prev), then tries to reduce the difference to 0.
    """
    if name not in REFERENCE:
        raise ValueError(f"unknown name {name!r}; allowed: {', '.join(sorted(REFERENCE))}")
    build, about = REFERENCE[name]
    try:
        yours = canonical(expr)
    except (sp.SympifyError, TypeError) as err:
        return CheckResult(name, False, f"could not read the expression as sympy: {err}")
    ref = canonical(build())
    points = sample_points(yours.free_symbols | ref.free_symbols, n, seed)
    if not points:
        points = {sp.Dummy(): np.zeros(n)}
    try:
        a, b = evaluate(yours, points), evaluate(ref, points)
    except Exception as err:  # a learner's expression may hold anything
        return CheckResult(name, False, f"could not evaluate your expression: {err}")
    bad = ~(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)) + 1e-12)
    if bad.any():
        i = int(np.argmax(bad))
        point = {str(s): float(v[i]) for s, v in points.items() if not isinstance(s, sp.Dummy)}
        extra = sorted(str(s) for s in yours.free_symbols - ref.free_symbols)
        hint = f" (the answer does not depend on {', '.join(extra)})" if extra else ""
        return CheckResult(name, False, f"expected {about}. At {_fmt(point)}: yours = {a[i]:.10g}, derived = "
                                        f"{b[i]:.10g}{hint}", point, float(a[i]), float(b[i]))
    if is_zero(yours - ref):
        return CheckResult(name, True, "sympy reduces your expression minus the derived one to 0")
    return CheckResult(name, True, f"equal at {n} random points (sympy's cheap rewrites did not reduce the difference to 0)")
