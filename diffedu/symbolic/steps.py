"""One step of an ODE solver, derived: Euler from the Taylor expansion, Heun from the trapezoid rule,
and the slope they take from the derived PF-ODE of EDM's process.  [EDM Alg. 1, eq. 3-4]

PAIRS holds diffedu.samplers.edm's slope, euler_step and heun_step against these derivations;
WAIVERS names that module's other public functions.
Imports: functools, numpy, sympy, diffedu.samplers.edm, ._core, .pairing, .processes.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ..samplers import edm as SE
from ._core import Derivation
from .pairing import Pair, log_uniform
from .processes import Frac, Paren, Prod, Seq, pf_ode
from .processes import t as t_process

t_i, t_next = sp.symbols("t_i t_i1", positive=True)  # the step goes from t_i to t_next (t = sigma for EDM)
x, D, d, d_next = sp.symbols("x D d d_next", real=True)  # state, denoiser output, slopes at t_i and t_next
_X = sp.Function("x")  # the exact solution x(t)


def _ode_steps(euler_order: int = 1) -> Derivation:
    """The builder; euler_order = 0 keeps only x(t_i) of the Taylor series (a wrong step: the order check fails)."""
    h_, x_E, x_H = sp.symbols("h x_E x_H", real=True)
    dd = Derivation("Euler and Heun steps of dx/dt, and the slope of EDM's PF-ODE  [EDM Alg. 1, eq. 3-4]",
                    names={t_i: "t_i", t_next: "t_{i+1}", d_next: "d'", x_E: r"x^{\mathrm{Euler}}_{i+1}",
                           x_H: r"x^{\mathrm{Heun}}_{i+1}"})
    h = t_next - t_i
    taylor = [sp.diff(_X(t_i), t_i, k) * h**k / sp.factorial(k) for k in range(3)]
    dd.step("Taylor, with the step h = t_{i+1} - t_i: x(t_{i+1}) = x(t_i) + h x'(t_i) + h^2/2 x''(t_i) + O(h^3)",
            sp.Eq(_X(t_next), Seq(_X(t_i), Prod(h_, sp.diff(_X(t_i), t_i)), Prod(Frac(h_**2, 2), sp.diff(_X(t_i), t_i, 2)))))
    # x'(t_i) = d, the slope at (x, t_i)
    euler = sum(taylor[: euler_order + 1]).subs(sp.Derivative(_X(t_i), t_i), d).subs(_X(t_i), x)
    euler_shown = Seq(x, Prod(h_, d))
    dd.step("Euler: keep the first order, with x'(t_i) = d the slope at (x, t_i)  [EDM Alg. 1 l. 6]",
            sp.Eq(x_E, euler_shown))

    u = sp.Symbol("u", real=True)  # time inside the step
    line = d + (d_next - d) * (u - t_i) / h  # the slope, linear between d at t_i and d_next at t_{i+1}
    dd.step("x(t_{i+1}) = x(t_i) + int x'(u) du; replace x' by the line through d at t_i and d' at t_{i+1}",
            sp.Eq(x_H, Seq(x, sp.Integral(Paren(d, Prod(Paren(d_next, -d), Frac(Seq(u, -t_i), h_))), (u, t_i, t_next)))))
    heun = sp.factor(sp.integrate(line, (u, t_i, t_next))) + x
    heun_shown = Seq(x, Prod(Frac(h_, 2), Paren(d, d_next)))
    dd.step("Integrate: the trapezoid rule, Heun's method when d' is the slope at the Euler prediction  "
            "[EDM Alg. 1 l. 7-8]", sp.Eq(x_H, heun_shown))
    dd.identity("the Euler step shown is the one derived: x + h d", euler, x + h * d)
    dd.identity("the Heun step shown is the one derived: x + h (d + d')/2", heun, x + h * (d + d_next) / 2)

    c0, c1, c2, lam = sp.symbols("c_0 c_1 c_2 lambda", real=True)
    quad = c0 + c1 * u + c2 * u**2
    on_quad = {x: quad.subs(u, t_i), d: sp.diff(quad, u).subs(u, t_i), d_next: sp.diff(quad, u).subs(u, t_next)}
    dd.identity("the trapezoid rule is exact when x(t) is a quadratic", heun.subs(on_quad), quad.subs(u, t_next))
    dd.identity("Euler misses a quadratic by c_2 h^2 (first order)", quad.subs(u, t_next) - euler.subs(on_quad),
                c2 * h**2)
    # dx/dt = lambda x: Heun with d' taken at the Euler prediction agrees with x e^{lambda h} to second order
    hh = sp.Symbol("h", positive=True)
    linear = {d: lam * x, d_next: lam * euler.subs(d, lam * x)}
    heun_lin = sp.expand(heun.subs(linear).subs(t_next, t_i + hh))
    exact = sp.series(x * sp.exp(lam * hh), hh, 0, 3).removeO()
    dd.identity("Heun on dx/dt = lambda x matches x e^{lambda h} up to h^2 (second order)", heun_lin, sp.expand(exact))

    pf = pf_ode().result
    a, b = (pf[f"EDM.{k}"].subs(t_process, t_i) for k in ("a", "b"))
    slope = a * x - b * D
    dd.step("EDM's process (s = 1, sigma = t): the derived PF-ODE dx/dt = a x - b D(x; t) at t = t_i  [EDM eq. 4]",
            sp.Eq(d, sp.factor(slope)))
    slope_shown = Frac(Seq(x, -D), t_i)
    dd.identity("... which is (x - D) / sigma  [EDM eq. 3]", slope, (x - D) / t_i)
    dd.conclude("One Euler step (first order), one Heun step (second order), and the slope both take  "
                "[EDM Alg. 1, eq. 3]", sp.Tuple(sp.Eq(x_E, euler_shown), sp.Eq(x_H, heun_shown), sp.Eq(d, slope_shown)))
    dd.result.update(slope=slope, euler=euler, heun=heun)
    return dd


@functools.lru_cache(maxsize=None)
def ode_steps() -> Derivation:
    """Euler x + h d and Heun x + h (d + d_next)/2 for dx/dt = d, h = t_next - t_i; EDM's slope.  [EDM Alg. 1]

    result: slope = dx/dsigma of the PF-ODE with s = 1, sigma = t, in x, D, t_i; euler; heun.
    """
    return _ode_steps()


def points(n: int, seed: int) -> dict:
    """Noise levels t_i in [0.002, 80] (log-uniform), t_next = t_i U(0.05, 0.95); states and slopes ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    ts = log_uniform(rng, 0.002, 80, n)
    return {t_i: ts, t_next: ts * rng.uniform(0.05, 0.95, n), x: rng.standard_normal(n), D: rng.standard_normal(n),
            d: rng.standard_normal(n), d_next: rng.standard_normal(n)}


def _step(key):
    return ode_steps().result[key]


PAIRS = (
    Pair(SE.slope, lambda: _step("slope"), (x, D, t_i), ref="[EDM eq. 3-4]", points=points),
    Pair(SE.euler_step, lambda: _step("euler"), (x, d, t_i, t_next), ref="[EDM Alg. 1 l. 6]", points=points),
    Pair(SE.heun_step, lambda: _step("heun"), (x, d, d_next, t_i, t_next), ref="[EDM Alg. 1 l. 7-8]", points=points),
)

WAIVERS = {
    "diffedu.samplers.edm.karras_sigmas": "a chosen grid [EDM eq. 5]; tested against diffusers in tests/peers",
    "diffedu.samplers.edm.check_sigmas": "input validation",
    "diffedu.samplers.edm.churn_gamma": "EDM's heuristic gamma_i [EDM Alg. 2 l. 4], a choice, not derived",
    "diffedu.samplers.edm.sample_edm": "the loop over slope, euler_step and heun_step (paired), with EDM's churn",
    "diffedu.samplers.edm.sample_pf_ode": "the loop over Process.ode_coefs (paired in METHOD_PAIRS), euler_step "
                                          "and heun_step (paired)",
}
