"""EDM's view, derived: s(t), sigma(t) <-> f(t), g(t); the PF-ODE with s and sigma alone; DDIM = Euler.  [EDM eq. 4, 28, 34]

Each derivation differentiates or integrates; nothing is typed in from the paper (the paper's forms
appear only as the right-hand sides of checks).  The results are functions of `t` (and the
process's constants); METHOD_PAIRS holds them against every method of the classes of
`diffedu.processes` (VP, VE, EDM, FlowMatching).  Each public derivation is a private builder
called with the right inputs; the tests call the builders with a wrong one (the EDM notes'
sigma = int g^2/s^2, a dropped chain-rule factor, a flipped slope) and see `verify()` report it.
Imports: functools, numpy, sympy, diffedu.processes, diffedu.samplers.edm, ._core, .pairing.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from .. import processes as PR
from ..samplers import edm as SE
from ._core import Derivation, alpha_bar_prev, alpha_bar_t, eps, x_0, x_prev, x_t
from .pairing import Pair, log_uniform

t, r = sp.symbols("t r", positive=True)
beta_min, beta_max, sigma_min, sigma_max = sp.symbols("beta_min beta_max sigma_min sigma_max", positive=True)
x, D = sp.symbols("x D", real=True)
eps_hat, x0_hat, y, y_next = sp.symbols("eps_hat x0_hat y y_next", real=True)
sig, sig_next = sp.symbols("sigma_n sigma_next", positive=True)  # EDM's noise level sigma and the next one

# the four families, written as the seeds write them (p(x_t | x_0) = N(s x_0, s^2 sigma^2 I))
_beta_d = beta_max - beta_min
VP_ALPHA_BAR = sp.exp(-(_beta_d * t**2 / 2 + beta_min * t))
FAMILIES = {
    "VP": (sp.sqrt(VP_ALPHA_BAR), sp.sqrt((1 - VP_ALPHA_BAR) / VP_ALPHA_BAR)),
    "VE": (sp.Integer(1), sp.sqrt(t)),
    "EDM": (sp.Integer(1), t),
    "FlowMatching": (1 - t, t / (1 - t)),  # x_t = (1 - t) x_0 + t eps = (1 - t)(x_0 + t/(1 - t) eps)
}

# s(t), sigma(t), f(t), g(t) as undetermined functions; for display, s(t) -> s and s'(t) -> \dot s
_s, _sigma, _f, _g = (sp.Function(n) for n in ("s", "sigma", "f", "g"))
_S, _SIG, _S_DOT, _SIG_DOT, _F, _G = sp.symbols("s sigma_n s_dot sigma_dot f g")  # no assumptions: sqrt(2 sigma sigma') stays whole
DOT_NAMES = {_S_DOT: r"\dot s", _SIG_DOT: r"\dot\sigma"}


def dots(expr):
    """expr with s(t), sigma(t), f(t), g(t) and their t-derivatives written s, sigma, f, g, \\dot s, \\dot\\sigma
    (display only: the checks use the functions)."""
    rules = {sp.Derivative(_s(t), t): _S_DOT, sp.Derivative(_sigma(t), t): _SIG_DOT}
    expr = sp.sympify(expr).subs(rules).subs({_s(t): _S, _sigma(t): _SIG, _f(t): _F, _g(t): _G})
    return sp.powsimp(expr, force=True)


# Display-only expressions that sympy does not reorder (it would print y - sigma eps as -eps sigma + y).
class Seq(sp.Function):
    """a + b - c, printed in the order given (display only; never evaluated)."""

    def _latex(self, printer):
        out = printer._print(self.args[0])
        for a in self.args[1:]:
            p = printer._print(a)
            out += " - " + p[1:].lstrip() if p.startswith("-") else " + " + p
        return out


class Paren(Seq):
    """(a + b - c), in the order given (display only)."""

    def _latex(self, printer):
        return r"\left(" + super()._latex(printer) + r"\right)"


class Prod(sp.Function):
    """a b c, in the order given (display only)."""

    def _latex(self, printer):
        return " ".join(printer._print(a) for a in self.args)


class Frac(sp.Function):
    """a / b as \\frac{a}{b} (display only)."""
    nargs = 2

    def _latex(self, printer):
        return r"\frac{%s}{%s}" % tuple(printer._print(a) for a in self.args)


class Chain(sp.Function):
    """a = b = c = ..., a chain of equalities (display only)."""

    def _latex(self, printer):
        return " = ".join(printer._print(a) for a in self.args)


def _moments_identity(d: Derivation, f_sol, g_sol) -> None:
    """Itô's moment equations m' = f m, V' = 2 f V + g^2 for dx = f x dt + g dw, and the check that
    m = s x_0, V = s^2 sigma^2 solve them with the derived f, g."""
    m, M = sp.Function("m")(t), sp.Function("M")(t)  # mean and second moment of x_t
    f, g = _f(t), _g(t)
    ito = {sp.Derivative(m, t): f * m, sp.Derivative(M, t): 2 * f * M + g**2}
    V = M - m**2
    V_dot = sp.diff(V, t).subs(ito)
    Ms, ms, Vs, Md, md, Vd = sp.symbols("M m V M_dot m_dot V_dot")
    d.names.update({Md: r"\dot M", md: r"\dot m", Vd: r"\dot V"})
    d.step("Itô's lemma on x and on x^2, then expectations: the mean m and the second moment M obey "
           "m' = f m and M' = 2 f M + g^2  [Song App. B; EDM App. B.2]",
           sp.Tuple(sp.Eq(md, Prod(_F, ms)), sp.Eq(Md, Seq(Prod(2, _F, Ms), _G**2))))
    d.step("so the variance V = M - m^2 obeys",
           Chain(Vd, Seq(Md, -Prod(2, ms, md)), Seq(Prod(2, _F, Paren(Ms, -ms**2)), _G**2), Seq(Prod(2, _F, Vs), _G**2)))
    d.identity("V' = 2 f V + g^2 (the variance's ODE)", sp.expand(V_dot), sp.expand(2 * f * V + g**2))
    mean, var = _s(t) * x_0, _s(t) ** 2 * _sigma(t) ** 2
    rules = {f: f_sol, g: g_sol}
    d.identity("the mean s x_0 solves m' = f m with the derived f", sp.diff(mean, t), (f * mean).subs(rules))
    d.identity("the variance s^2 sigma^2 solves V' = 2 f V + g^2 with the derived f, g",
               sp.diff(var, t), (2 * f * var + g**2).subs(rules))


def _sde_from_s_sigma(variance_power: int = 2) -> Derivation:
    """The builder; variance_power = 1 is the EDM notes' sigma = int g^2/s^2 (wrong: it is sigma^2)."""
    d = Derivation("From s(t), sigma(t) to the SDE's f(t), g(t)  [EDM eq. 28, 34; EDM notes §1.2]",
                   names=dict(DOT_NAMES))
    s, sigma, f, g = _s, _sigma, _f, _g
    mean_eq = sp.Eq(sp.log(s(t)), sp.Integral(f(r), (r, 0, t)))
    d.step("The mean of dx = f x dt + g dw scales as s(t) = exp(int_0^t f): take logs  [EDM App. B.2]", mean_eq)
    f_sol = sp.solve(sp.Eq(sp.diff(mean_eq.lhs, t), sp.diff(mean_eq.rhs, t)), f(t))[0]
    d.step("Differentiate both sides in t  [EDM eq. 28]", sp.Eq(_F, dots(f_sol)))
    var_eq = sp.Eq(sigma(t) ** variance_power, sp.Integral(g(r) ** 2 / s(r) ** 2, (r, 0, t)))
    d.step("The variance of x/s grows by g^2/s^2 per unit time  [EDM App. B.2]", var_eq)
    g_sols = sp.solve(sp.Eq(sp.diff(var_eq.lhs, t), sp.diff(var_eq.rhs, t)), g(t))
    g_sol = next(e for e in g_sols if not e.could_extract_minus_sign())
    d.step("Differentiate and take the positive root  [EDM eq. 34]", sp.Eq(_G, dots(g_sol)))
    g_paper = _s(t) * sp.sqrt(2 * sp.diff(_sigma(t), t) * _sigma(t))
    d.identity("g = s sqrt(2 sigma' sigma), as EDM prints it  [EDM eq. 34]", g_sol, g_paper)
    g_shown = Prod(_S, sp.sqrt(Prod(2, _SIG_DOT, _SIG)))  # sympy would print sqrt(2) s sqrt(sigma' sigma)
    _moments_identity(d, f_sol, g_sol)
    d.result.update(f=f_sol, g=g_sol)
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        rules = {s(t): s_fam, sigma(t): sigma_fam}
        d.result[f"{name}.f"] = sp.simplify(f_sol.subs(rules).doit())
        d.result[f"{name}.g"] = g_sol.subs(rules).doit()
    # VP is Song et al.'s VP SDE: f = -beta(t)/2, g^2 = beta(t) with beta(t) = beta_min + beta_d t
    beta = beta_min + _beta_d * t
    d.identity("VP: f = -beta(t)/2 and g^2 = beta(t), Song's VP SDE  [Song eq. 11]",
               sp.Tuple(sp.simplify(d.result["VP.f"] + beta / 2), sp.simplify(d.result["VP.g"] ** 2 - beta)),
               sp.Tuple(0, 0))
    d.conclude("Any s(t), sigma(t) is the marginal of the linear SDE dx = f x dt + g dw with  [EDM eq. 28, 34]",
               sp.Tuple(sp.Eq(_F, dots(f_sol)), sp.Eq(_G, g_shown)))
    return d


@functools.lru_cache(maxsize=None)
def sde_from_s_sigma() -> Derivation:
    """f = s'/s and g = s sqrt(2 sigma sigma') from s = exp(int f), sigma^2 = int g^2/s^2.  [EDM eq. 28, 34]

    result: f, g (in the functions s(t), sigma(t)); "<family>.f", "<family>.g" for VP, VE, EDM, FlowMatching.
    """
    return _sde_from_s_sigma()


def _s_sigma_from_sde(variance_power: int = 2) -> Derivation:
    """The builder; variance_power = 1 checks the EDM notes' sigma = int g^2/s^2 instead (it fails)."""
    fwd = sde_from_s_sigma()
    d = Derivation("From f(t), g(t) back to s(t), sigma(t)  [EDM notes §1.1; EDM App. B.2]")
    general = (sp.Eq(_s(t), sp.exp(sp.Integral(_f(r), (r, 0, t)))),
               sp.Eq(_sigma(t) ** 2, sp.Integral(_g(r) ** 2 / _s(r) ** 2, (r, 0, t))))
    d.step("Integrate f, and g^2/s^2, from 0 (where s = 1 and sigma = 0)", sp.Tuple(*general))
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        f_fam, g_fam = fwd.result[f"{name}.f"], fwd.result[f"{name}.g"]
        s_back = sp.exp(sp.integrate(f_fam.subs(t, r), (r, 0, t)))
        var_back = sp.integrate(sp.simplify((g_fam**2 / s_fam**2).subs(t, r)), (r, 0, t))
        s_sym, var_sym = sp.Symbol(f"s_{name}"), sp.Symbol(f"sigma2_{name}")
        d.names.update({s_sym: rf"s^{{\mathrm{{{name}}}}}", var_sym: rf"\left(\sigma^{{\mathrm{{{name}}}}}\right)^2"})
        d.step(f"{name}: s = exp(int_0^t f) and sigma^2 = int_0^t g^2/s^2",
               sp.Tuple(sp.Eq(s_sym, sp.simplify(s_back)), sp.Eq(var_sym, sp.factor(sp.simplify(var_back)))))
        d.identity(f"{name}: exp(int f) = s", s_back, s_fam)
        target = sigma_fam**variance_power
        d.identity(f"{name}: int g^2/s^2 = sigma^{variance_power}", sp.simplify(var_back - target), sp.Integer(0))
        d.result[f"{name}.s"], d.result[f"{name}.sigma2"] = s_back, var_back
    d.conclude("Integrating f and g^2/s^2 returns every family's s(t) and sigma(t)^2 (not sigma(t))", sp.Tuple(*general))
    return d


@functools.lru_cache(maxsize=None)
def s_sigma_from_sde() -> Derivation:
    """Back again: integrate f and g^2/s^2 of each family and recover its s(t) and sigma(t)^2.  [EDM notes §1.1]

    result: "<family>.s", "<family>.sigma2" for VP, VE, EDM, FlowMatching.
    """
    return _s_sigma_from_sde()


class LogP(sp.Function):
    """log p(y; sigma), the log-density of y = x_0 + sigma eps (display only: renders as \\log p(y;\\sigma))."""
    nargs = 1

    def _latex(self, printer):
        return r"\log p\left(%s;\sigma\right)" % printer._print(self.args[0])


def _pf_ode(chain_rule: bool = True) -> Derivation:
    """The builder; chain_rule = False drops the 1/s of the chain rule (a wrong step: EDM Alg. 1's b then fails)."""
    fwd = sde_from_s_sigma()
    dim = sp.Symbol("d", positive=True)  # the dimension of x
    S_y, S_x, S_t, dxdt, L_t = sp.symbols("S_y S_x S_t dxdt L_t", real=True)
    d = Derivation("The probability-flow ODE with s and sigma alone  [EDM eq. 4; EDM notes §1.2]",
                   names={**DOT_NAMES, S_y: r"\nabla_y \log p(y;\sigma)\big|_{y = x/s}", S_t: r"\nabla_x \log p_t(x)",
                          S_x: r"\nabla_x \log p(x/s;\sigma)", dxdt: r"\frac{dx}{dt}", D: r"D(x/s;\sigma)",
                          L_t: r"\log p_t(x)"})
    s, sigma = _s(t), _sigma(t)
    log_pt = -dim * sp.log(s) + LogP(x / s)
    d.step("p_t(x) = s^-d [p_data * N(0, sigma^2 I)](x/s) (derived in `p_t_convolution`): take logs  [EDM notes §1.2]",
           sp.Eq(L_t, Seq(-dim * sp.log(_S), LogP(x / _S))))
    d.step("-d log s does not depend on x: the two scores agree", sp.Eq(S_t, S_x))
    pf = _f(t) * x - _g(t) ** 2 / 2 * S_t
    d.step("The probability-flow ODE of dx = f x dt + g dw  [Song eq. 13]",
           sp.Eq(dxdt, Seq(Prod(_F, x), -Prod(Frac(1, 2), _G**2, S_t))))
    f_sol, g_sol = fwd.result["f"], fwd.result["g"]
    score_form = sp.expand(pf.subs({_f(t): f_sol, _g(t): g_sol, S_t: S_x}))
    d.step("Substitute f = s'/s and g^2 = 2 s^2 sigma sigma' (from `sde_from_s_sigma`): f and g are gone  [EDM eq. 4]",
           sp.Eq(dxdt, Seq(Prod(Frac(_S_DOT, _S), x), -Prod(_S**2, _SIG, _SIG_DOT, S_x))))
    d.identity("the substitution gives s'/s x - s^2 sigma sigma' grad_x log p(x/s; sigma)  [EDM eq. 4]",
               score_form, sp.diff(s, t) / s * x - s**2 * sigma * sp.diff(sigma, t) * S_x)
    grad = sp.diff(LogP(x / s), x)
    inner = grad.atoms(sp.Subs).pop()  # (log p)'(y) at y = x/s
    d.step("The chain rule: the x-gradient of a function of y = x/s is 1/s times its y-gradient",
           sp.Eq(S_x, dots(grad.subs(inner, S_y))))
    d.identity("the chain rule contributes a factor 1/s", sp.simplify(grad / inner), 1 / s)
    tweedie = (D - x / s) / sigma**2
    d.step("Tweedie at y = x/s: grad log p(y; sigma) = (D(y; sigma) - y) / sigma^2  [EDM eq. 3; `tweedie`]",
           sp.Eq(S_y, Frac(Seq(D, -x / _S), _SIG**2)))
    rhs = sp.expand(sp.simplify(score_form.subs(S_x, (S_y / s if chain_rule else S_y)).subs(S_y, tweedie)))
    a = sp.simplify(rhs.coeff(x))
    b = sp.simplify(-rhs.coeff(D))
    d.identity("dx/dt is linear in x and D and nothing else", sp.expand(rhs - a * x + b * D), sp.Integer(0))
    s_dot, sigma_dot = sp.diff(s, t), sp.diff(sigma, t)
    d.identity("a = sigma'/sigma + s'/s and b = sigma' s / sigma, as EDM prints them  [EDM Alg. 1]",
               sp.Tuple(a, b), sp.Tuple(sigma_dot / sigma + s_dot / s, sigma_dot * s / sigma))
    shown = sp.Eq(dxdt, Seq(Prod(Paren(Frac(_SIG_DOT, _SIG), Frac(_S_DOT, _S)), x), -Prod(Frac(Prod(_SIG_DOT, _S), _SIG), D)))
    d.step("Substitute both and collect x and D", shown)
    d.conclude("The PF-ODE needs only s(t), sigma(t) and the denoiser D  [EDM eq. 4 with eq. 3; EDM Alg. 1]", shown)
    d.result.update(a=a, b=b)
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        rules = {s: s_fam, sigma: sigma_fam}
        d.result[f"{name}.a"] = a.subs(rules).doit()
        d.result[f"{name}.b"] = b.subs(rules).doit()
    return d


@functools.lru_cache(maxsize=None)
def pf_ode() -> Derivation:
    """dx/dt = (sigma'/sigma + s'/s) x - (sigma' s / sigma) D(x/s; sigma), from f, g and the score.  [EDM eq. 4]

    result: a, b (in the functions s(t), sigma(t)); "<family>.a", "<family>.b" for the four families.
    """
    return _pf_ode()


def _ddim_is_euler(slope=SE.slope) -> Derivation:
    """The builder.  slope(y, D, sigma) is the ODE's right-hand side; the default is the sampler's own
    `diffedu.samplers.edm.slope`, called on symbols, and the step is its `euler_step` (a wrong slope makes
    the last check fail)."""
    d = Derivation("DDIM (eta = 0) is one Euler step of the PF-ODE in y = x / sqrt(alpha_bar) and sigma  [EDM §3; DDIM §4.3]")
    ab, ab_next = alpha_bar_t, alpha_bar_prev  # the step goes from t to the earlier time t-1 (DDIM's "prev")

    def sigma_of(a):
        return sp.sqrt((1 - a) / a)  # sigma^2 = (1 - alpha_bar) / alpha_bar  [EDM Tab. 1, VP]
    noise_level = {sig: sigma_of(ab), sig_next: sigma_of(ab_next), y: x_t / sp.sqrt(ab)}

    forward = sp.sqrt(ab) * x_0 + sp.sqrt(1 - ab) * eps
    d.step("The forward process  [DDPM eq. 4], with sigma^2 = (1 - alpha_bar_t)/alpha_bar_t, is a scaled VE process",
           sp.Eq(x_t, Prod(sp.sqrt(ab), Paren(x_0, Prod(sig, eps)))))
    d.identity("sqrt(alpha_bar)(x_0 + sigma eps) = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps",
               sp.sqrt(ab) * (x_0 + sigma_of(ab) * eps), forward)

    x0_ddim = (x_t - sp.sqrt(1 - ab) * eps_hat) / sp.sqrt(ab)
    d.step("So y = x_t / sqrt(alpha_bar_t) = x_0 + sigma eps, and DDIM's predicted x_0 [DDIM eq. 12] is",
           sp.Eq(x0_hat, Seq(y, -Prod(sig, eps_hat))))
    d.identity("DDIM's (x_t - sqrt(1 - alpha_bar_t) eps_hat)/sqrt(alpha_bar_t) = y - sigma eps_hat",
               x0_ddim, (y - sig * eps_hat).subs(noise_level))

    x_prev_ddim = sp.sqrt(ab_next) * x0_ddim + sp.sqrt(1 - ab_next) * eps_hat
    d.step("DDIM's deterministic update [DDIM eq. 12, sigma_t = 0], divided by sqrt(alpha_bar_{t-1})",
           sp.Eq(y_next, Seq(x0_hat, Prod(sig_next, eps_hat))))
    d_sigma = Paren(sig_next, -sig)
    d.step("... and with x0_hat = y - sigma eps_hat", sp.Eq(y_next, Seq(y, Prod(d_sigma, eps_hat))))
    ddim_y = y + (sig_next - sig) * eps_hat
    d.identity("x_{t-1} / sqrt(alpha_bar_{t-1}) = y + (sigma_next - sigma) eps_hat",
               x_prev_ddim / sp.sqrt(ab_next), ddim_y.subs(noise_level))

    euler = SE.euler_step(y, slope(y, x0_hat, sig), sig, sig_next)
    d.step("Euler on dy/dsigma = (y - D(y; sigma))/sigma from sigma to sigma_next, with D = x0_hat  [EDM eq. 3, Alg. 1]",
           sp.Eq(y_next, Seq(y, Prod(d_sigma, Frac(Seq(y, -x0_hat), sig)))))
    d.identity("DDIM's x_prev = one Euler step: (y - x0_hat)/sigma = eps_hat, so Euler gives y + (sigma_next - sigma) eps_hat",
               euler.subs(x0_hat, x0_ddim).subs(noise_level), ddim_y.subs(noise_level))
    d.conclude("DDIM's deterministic step from alpha_bar_t to alpha_bar_{t-1} is one Euler step of the PF-ODE "
               "in (y, sigma), with D = x0_hat",
               Chain(sp.Symbol("x_prev_y"), Seq(y, Prod(d_sigma, eps_hat)), Seq(y, Prod(d_sigma, Frac(Seq(y, -x0_hat), sig)))))
    d.names[sp.Symbol("x_prev_y")] = r"\frac{x_{t-1}}{\sqrt{\bar\alpha_{t-1}}}"
    d.result.update(y_prev=x_prev_ddim / sp.sqrt(ab_next), euler=euler.subs(x0_hat, x0_ddim).subs(noise_level),
                    x0_hat=x0_ddim, y_next=ddim_y)
    return d


@functools.lru_cache(maxsize=None)
def ddim_is_euler() -> Derivation:
    """DDIM with eta = 0 is one Euler step of dy/dsigma = (y - D)/sigma in y = x/sqrt(alpha_bar).  [EDM §3, DDIM §4.3]

    result: y_prev = DDIM's x_{t-1}/sqrt(alpha_bar_{t-1}) and euler = the Euler step, both in x_t, eps_hat,
    alpha_bar_t, alpha_bar_prev; x0_hat; y_next = y + (sigma_next - sigma) eps_hat in y, sigma, sigma_next.
    """
    return _ddim_is_euler()


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
