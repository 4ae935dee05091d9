"""EDM's view, derived: s(t), sigma(t) <-> f(t), g(t); the PF-ODE with s and sigma alone; DDIM = Euler.  [EDM eq. 4, 28, 34]

Each derivation differentiates or integrates; nothing is typed in from the paper.  The results
are functions of `t` (and the process's constants); METHOD_PAIRS holds them against every method
of the classes of `diffedu.processes` (VP, VE, EDM, FlowMatching).
Imports: numpy, sympy, diffedu.processes, ._core, .pairing.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from .. import processes as PR
from ._core import Derivation
from .pairing import Pair, log_uniform

t, r = sp.symbols("t r", positive=True)
beta_min, beta_max, sigma_min, sigma_max = sp.symbols("beta_min beta_max sigma_min sigma_max", positive=True)
x, D, sig, sig_next, eps_hat = sp.symbols("x D sigma_t sigma_next epsilon_hat", real=True)

# the four families, written as the seeds write them (p(x_t | x_0) = N(s x_0, s^2 sigma^2 I))
_beta_d = beta_max - beta_min
VP_ALPHA_BAR = sp.exp(-(_beta_d * t**2 / 2 + beta_min * t))
FAMILIES = {
    "VP": (sp.sqrt(VP_ALPHA_BAR), sp.sqrt((1 - VP_ALPHA_BAR) / VP_ALPHA_BAR)),
    "VE": (sp.Integer(1), sp.sqrt(t)),
    "EDM": (sp.Integer(1), t),
    "FlowMatching": (1 - t, t / (1 - t)),  # x_t = (1 - t) x_0 + t eps = (1 - t)(x_0 + t/(1 - t) eps)
}


@functools.lru_cache(maxsize=None)
def sde_from_s_sigma() -> Derivation:
    """f = s'/s and g = s sqrt(2 sigma sigma') from s = exp(int f), sigma^2 = int g^2/s^2.  [EDM eq. 28, 34]"""
    d = Derivation("From s(t), sigma(t) to the SDE's f(t), g(t)  [EDM App. B.2]")
    s, sigma, f, g = (sp.Function(n) for n in ("s", "sigma", "f", "g"))
    d.names = {s(t): "s(t)", sigma(t): r"\sigma(t)", f(t): "f(t)", g(t): "g(t)"}
    mean_eq = sp.Eq(sp.log(s(t)), sp.Integral(f(r), (r, 0, t)))
    d.step("The mean of dx = f x dt + g dw scales as s(t) = exp(int_0^t f): take logs", mean_eq)
    f_sol = sp.solve(sp.Eq(sp.diff(mean_eq.lhs, t), sp.diff(mean_eq.rhs, t)), f(t))[0]
    d.step("Differentiate both sides", sp.Eq(f(t), f_sol))
    var_eq = sp.Eq(sigma(t) ** 2, sp.Integral(g(r) ** 2 / s(r) ** 2, (r, 0, t)))
    d.step("The variance of x/s grows by g^2/s^2 per unit time", var_eq)
    g_sols = sp.solve(sp.Eq(sp.diff(var_eq.lhs, t), sp.diff(var_eq.rhs, t)), g(t))
    g_sol = next(e for e in g_sols if not e.could_extract_minus_sign())
    d.step("Differentiate and take the positive root", sp.Eq(g(t), g_sol))
    d.result.update(f=f_sol, g=g_sol)
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        rules = {s(t): s_fam, sigma(t): sigma_fam}
        f_fam = f_sol.subs(rules).doit()
        g_fam = g_sol.subs(rules).doit()
        d.result[f"{name}.f"] = sp.simplify(f_fam)
        d.result[f"{name}.g"] = g_fam
    return d


@functools.lru_cache(maxsize=None)
def s_sigma_from_sde() -> Derivation:
    """Back again: integrate f and g^2/s^2 of each family and recover its s(t) and sigma(t)^2.  [EDM notes §1.1]"""
    fwd = sde_from_s_sigma()
    d = Derivation("From f(t), g(t) back to s(t), sigma(t)")
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        f_fam, g_fam = fwd.result[f"{name}.f"], fwd.result[f"{name}.g"]
        lo = sp.Integer(0)
        s_back = sp.exp(sp.integrate(f_fam.subs(t, r), (r, lo, t)))
        var_back = sp.integrate(sp.simplify((g_fam**2 / s_fam**2).subs(t, r)), (r, lo, t))
        d.step(f"{name}: s(t) = exp(int_0^t f)", sp.Eq(sp.Symbol(f"s_{name}"), sp.simplify(s_back)))
        d.step(f"{name}: sigma(t)^2 = int_0^t g^2 / s^2", sp.Eq(sp.Symbol(f"sigma2_{name}"), sp.simplify(var_back)))
        d.identity(f"{name}: exp(int f) = s", s_back, s_fam)
        d.identity(f"{name}: int g^2/s^2 = sigma^2", var_back, sigma_fam**2)
        d.result[f"{name}.s"], d.result[f"{name}.sigma2"] = s_back, var_back
    return d


@functools.lru_cache(maxsize=None)
def pf_ode() -> Derivation:
    """dx/dt = (sigma'/sigma + s'/s) x - (sigma' s / sigma) D(x/s; sigma), from f, g and the score.  [EDM eq. 4]"""
    fwd = sde_from_s_sigma()
    d = Derivation("The probability-flow ODE with s and sigma alone  [EDM eq. 4]")
    s, sigma = sp.Function("s")(t), sp.Function("sigma")(t)
    d.names = {s: "s", sigma: r"\sigma"}
    score_rescaled = sp.Symbol("nabla log p(x/s; sigma)")
    logp = sp.Function("log_p")
    chain = sp.diff(logp(x / s), x)
    d.step("p_t(x) = s^-d [p_data * N(0, sigma^2)](x/s): differentiate log p_t in x (chain rule)",
           sp.Eq(sp.Symbol("nabla_x log p_t"), chain))
    inner = chain.atoms(sp.Subs).pop()  # log_p'(x/s)
    d.identity("the chain rule contributes a factor 1/s", sp.simplify(chain / inner), 1 / s)
    score_x = score_rescaled / s
    tweedie = (D - x / s) / sigma**2
    d.step("Tweedie: grad log p(y; sigma) = (D(y; sigma) - y) / sigma^2 at y = x/s", sp.Eq(score_rescaled, tweedie))
    f, g = fwd.result["f"].subs({sp.Function("s")(t): s, sp.Function("sigma")(t): sigma}), fwd.result["g"]
    rhs = f * x - g**2 / 2 * score_x.subs(score_rescaled, tweedie)
    rhs = sp.expand(sp.simplify(rhs))
    d.step("Substitute f = s'/s, g^2 = 2 s^2 sigma sigma' into dx/dt = f x - g^2/2 grad log p_t", sp.Eq(sp.Symbol("dx/dt"), rhs))
    a = sp.simplify(rhs.coeff(x))
    b = sp.simplify(-rhs.coeff(D))
    d.identity("dx/dt is linear in x and D and nothing else", sp.expand(rhs - a * x + b * D), sp.Integer(0))
    d.result.update(a=a, b=b)
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        rules = {s: s_fam, sigma: sigma_fam}
        d.result[f"{name}.a"] = a.subs(rules).doit()
        d.result[f"{name}.b"] = b.subs(rules).doit()
    return d


@functools.lru_cache(maxsize=None)
def ddim_is_euler() -> Derivation:
    """DDIM with eta = 0 is one Euler step of dy/dsigma = (y - D)/sigma in y = x/sqrt(alpha_bar).  [EDM §3, DDIM §4.3]"""
    d = Derivation("DDIM (eta = 0) is Euler's method on the PF-ODE in y = x / sqrt(alpha_bar) and sigma")
    ab, ab_prev = (1 / (1 + sig**2)), (1 / (1 + sig_next**2))
    d.step("Write alpha_bar through the noise level: sigma^2 = (1 - alpha_bar)/alpha_bar", sp.Eq(sp.Symbol("alpha_bar"), ab))
    x_t = sp.Symbol("x_t", real=True)
    x0_hat = (x_t - sp.sqrt(1 - ab) * eps_hat) / sp.sqrt(ab)
    x_prev = sp.sqrt(ab_prev) * x0_hat + sp.sqrt(1 - ab_prev) * eps_hat
    d.step("DDIM's deterministic update [DDIM eq. 12, sigma = 0]", sp.Eq(sp.Symbol("x_prev"), x_prev))
    y, y_prev = x_t / sp.sqrt(ab), x_prev / sp.sqrt(ab_prev)
    D_hat = x0_hat
    euler = y + (sig_next - sig) * (y - D_hat) / sig
    d.step("Euler on dy/dsigma = (y - D(y; sigma))/sigma with D = x0_hat", sp.Eq(sp.Symbol("y_next"), euler))
    sig_pos, sig_next_pos = sp.symbols("sigma_p sigma_n", positive=True)
    diff = (y_prev - euler).subs({sig: sig_pos, sig_next: sig_next_pos})
    d.identity("y_prev of DDIM equals the Euler step", sp.simplify(diff), sp.Integer(0))
    d.result.update(y_prev=y_prev, euler=euler)
    return d


# ---- the methods of the Process classes against the derivations above ---------------------------------
# Each numeric side is called as numeric(t, beta_min, beta_max): the process is built with those
# constants (VP uses them; VE, EDM and FlowMatching have none that enter these methods).
BUILD = {"VP": PR.VP, "VE": lambda b0, b1: PR.VE(), "EDM": lambda b0, b1: PR.EDM(),
         "FlowMatching": lambda b0, b1: PR.FlowMatching()}
METHODS = ("s", "sigma", "s_dot", "sigma_dot", "f", "g", "ode_coefs", "sigma_inv")
sigma_level = sp.Symbol("sigma_level", positive=True)  # the argument of sigma_inv


def _sigma_inverse(name: str) -> sp.Expr:
    """Solve sigma(t) = sigma_level for t, keeping the positive root (time is positive)."""
    roots = sp.solve(sp.Eq(FAMILIES[name][1], sigma_level), t)
    at = {sigma_level: 1.0, beta_min: 0.1, beta_max: 20.0}
    return next(root for root in roots if float(root.subs(at)) > 0)


_DERIVED = {
    "s": lambda name: FAMILIES[name][0],
    "sigma": lambda name: FAMILIES[name][1],
    "s_dot": lambda name: sp.diff(FAMILIES[name][0], t),
    "sigma_dot": lambda name: sp.diff(FAMILIES[name][1], t),
    "f": lambda name: sde_from_s_sigma().result[f"{name}.f"],
    "g": lambda name: sde_from_s_sigma().result[f"{name}.g"],
    "ode_coefs": lambda name: (pf_ode().result[f"{name}.a"], pf_ode().result[f"{name}.b"]),
    "sigma_inv": _sigma_inverse,
}


def _method(name: str, method: str):
    """numeric(arg, beta_min, beta_max) = <process `name` built with those constants>.<method>(arg)."""
    def numeric(arg, b0, b1):
        return getattr(BUILD[name](b0, b1), method)(arg)
    return numeric


def _points(name: str):
    """Times across the process's range, and VP's constants 0.05 <= beta_min < beta_max <= beta_min + 30."""
    lo, hi = {"VP": (1e-3, 1.0), "VE": (1e-3, 100.0), "EDM": (1e-3, 80.0), "FlowMatching": (0.01, 0.99)}[name]

    def points(n, seed):
        rng = np.random.default_rng(seed)
        bmin = rng.uniform(0.05, 1.0, n)
        ts = rng.uniform(lo, hi, n) if name == "FlowMatching" else log_uniform(rng, lo, hi, n)
        return {t: ts, beta_min: bmin, beta_max: bmin + rng.uniform(1.0, 30.0, n)}
    return points


def _inverse_points(name: str):
    """The process's own t points mapped through sigma(t), so sigma_inv is tested where it is used."""
    def points(n, seed):
        p = _points(name)(n, seed)
        sig_t = BUILD[name](p[beta_min], p[beta_max]).sigma(p[t])
        p[sigma_level] = np.asarray(sig_t, dtype=np.float64) * np.ones(n)
        return p
    return points


def _method_pair(name: str, method: str) -> Pair:
    inverse = method == "sigma_inv"
    # VP's a = sigma'/sigma + s'/s cancels to ~1e-5 at t -> 1: both sides lose ~5 digits there
    rtol = 1e-9 if (name, method) == ("VP", "ode_coefs") else None
    return Pair(_method(name, method), functools.partial(_DERIVED[method], name),
                (sigma_level if inverse else t, beta_min, beta_max),
                ref="[solve sigma(t) = sigma for t]" if inverse else "[EDM Tab. 1, eq. 4, 28, 34]",
                points=_inverse_points(name) if inverse else _points(name), rtol=rtol,
                name=f"diffedu.processes.{name}.{method}")


METHOD_PAIRS = tuple(_method_pair(name, method) for name in FAMILIES for method in METHODS)
