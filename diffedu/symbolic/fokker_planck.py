"""The PF-ODE's "very complicated derivation" checked: for Gaussian data the marginal solves Fokker-Planck, and the
probability-flow ODE moves it by the continuity equation.  [Song eq. 13, App. D.1; EDM notes §1.2]

For dx = f x dt + g dw with data N(x_0, v), x_t ~ N(s x_0, s^2 (sigma^2 + v)) with f = s'/s and
g^2 = 2 s^2 sigma sigma' (from `processes.sde_from_s_sigma`).  We check, in one dimension,

    dp/dt = -d(f x p)/dx + g^2/2 d^2p/dx^2                    (Fokker-Planck, the SDE's density)
    dp/dt = -d(u p)/dx,   u = f x - g^2/2 d log p/dx          (continuity, the PF-ODE dx/dt = u)

both divided by p, for s(t), sigma(t) as undetermined functions and for every family of diffedu.processes,
and that u = a x - b D(x/s; sigma) with `processes.pf_ode`'s a, b and the exact Gaussian denoiser of
`score.denoiser_minimiser`: what `Process.ode_coefs` and the samplers run.  A wrong diffusion factor
(g^2 for g^2/2) or a flipped score sign makes `verify()` report it.
Imports: functools, sympy, ._core, .processes, .score.
"""
from __future__ import annotations

import functools

import sympy as sp

from ._core import Derivation, x_0
from .processes import DOT_NAMES, FAMILIES, Paren, Prod, Seq, dots, pf_ode, sde_from_s_sigma, t
from .score import NAMES, denoiser_minimiser, m, normal, sig, v0, x

s, sigma = sp.Function("s")(t), sp.Function("sigma")(t)
P = sp.Function("p")(x, t)  # the density, for displaying the equations
F, G, U = sp.symbols("f g u")
S_X = sp.Symbol("S_x")  # d log p / dx, for display
# the two equations as displayed (Seq, Paren, Prod keep the order and the brackets; display only)
FOKKER_PLANCK = sp.Eq(sp.Derivative(P, t), Seq(-sp.Derivative(Paren(Prod(F, x, P)), x),
                                               Prod(G**2 / 2, sp.Derivative(P, (x, 2)))))
CONTINUITY = sp.Eq(sp.Derivative(P, t), -sp.Derivative(Paren(Prod(U, P)), x))


def _residuals(L, f=F, g=G, score_sign=1, diffusion=sp.Rational(1, 2)):
    """(Fokker-Planck residual, continuity residual, u, d log p/dx), both residuals divided by p, from L = log p
    through p_t/p = L_t, d(c p)/dx / p = c_x + c L_x, p_xx/p = L_xx + L_x^2 (checked in the derivation);
    f and g stay symbols unless given."""
    L_t, L_x, L_xx = sp.diff(L, t), sp.diff(L, x), sp.diff(L, x, 2)
    u = f * x - g**2 / 2 * score_sign * L_x          # the probability-flow velocity  [Song eq. 13]
    fp = L_t + (f + f * x * L_x) - diffusion * g**2 * (L_xx + L_x**2)
    cont = L_t + sp.diff(u, x) + u * L_x
    return fp, cont, u, L_x


def _reduce(expr):
    """expr with its exponentials written as powers of one positive symbol (VP's e^{+-E}, e^{+-E/2}), then over one
    denominator and cancelled: 0 exactly when expr is 0."""
    atoms = sorted(expr.atoms(sp.exp), key=sp.default_sort_key)
    if atoms:
        e, base = sp.Dummy("e", positive=True), atoms[0].args[0]
        powers = {a: sp.cancel(a.args[0] / base) for a in atoms}
        if all(k.is_Rational for k in powers.values()):
            expr = expr.xreplace({a: e**k for a, k in powers.items()})
    return sp.cancel(sp.together(expr))


def _pf_ode_fokker_planck(diffusion=sp.Rational(1, 2), score_sign=1) -> Derivation:
    """The builder; diffusion = 1 (g^2 for g^2/2) or score_sign = -1 (u = f x + g^2/2 grad log p) fail checks."""
    fwd = sde_from_s_sigma().result
    f, g = fwd["f"], fwd["g"]
    d = Derivation("Fokker-Planck and the continuity equation for Gaussian data: the PF-ODE carries the SDE's "
                   "marginals  [Song eq. 13, App. D.1; EDM notes §1.2]", names={**NAMES, **DOT_NAMES})
    p = normal(x, s * x_0, s**2 * (sigma**2 + v0))
    d.step("x = s (y + sigma n) with data y ~ N(x_0, v): the marginal (`p_t_convolution`)", sp.Eq(P, dots(p)))
    d.step("The SDE dx = f x dt + g dw moves its density by the Fokker-Planck equation  [Song eq. 5, App. D.1]",
           FOKKER_PLANCK)
    d.step("with f = s'/s and g^2 = 2 s^2 sigma sigma' (`sde_from_s_sigma`)",
           sp.Tuple(sp.Eq(F, dots(f)), sp.Eq(G**2, dots(g**2))))
    ell = sp.Function("l")(x, t)
    q_ = sp.exp(ell)
    c_ = sp.Function("c")(x, t)
    d.step("Divide each term by p = exp(l), l = log p: the product and chain rules turn the equations into "
           "equations in l", sp.Tuple(sp.Eq(sp.Derivative(P, (x, 2)) / P, sp.diff(ell, x, 2) + sp.diff(ell, x) ** 2),
                                      sp.Eq(sp.Derivative(Paren(Prod(c_, P)), x) / P, sp.diff(c_, x) + c_ * sp.diff(ell, x))))
    d.identity("p_t / p = l_t, d(c p)/dx / p = c_x + c l_x and p_xx / p = l_xx + l_x^2 for p = exp(l)",
               sp.Tuple(*(sp.simplify(e) for e in (sp.diff(q_, t) / q_ - sp.diff(ell, t),
                                                     sp.diff(c_ * q_, x) / q_ - sp.diff(c_, x) - c_ * sp.diff(ell, x),
                                                     sp.diff(q_, x, 2) / q_ - sp.diff(ell, x, 2) - sp.diff(ell, x) ** 2))),
               sp.Tuple(0, 0, 0))
    L = sp.expand(sp.expand_log(sp.log(p), force=True))
    fp_fg, cont_fg, u_fg, score = _residuals(L, score_sign=score_sign, diffusion=diffusion)
    fp, cont, u = (sp.cancel(e.subs({F: f, G: g})) for e in (fp_fg, cont_fg, u_fg))
    d.step("Divide by p: the log-derivatives are rational in x, s, sigma and their t-derivatives", sp.Eq(
        S_X, dots(sp.factor(score))))
    d.names[S_X] = r"\partial_x \log p"
    d.identity("Fokker-Planck: (dp/dt + d(f x p)/dx - g^2/2 d^2p/dx^2) / p = 0", fp, sp.Integer(0))
    d.step("Write the same equation as a flux: g^2/2 d^2p/dx^2 = d/dx (g^2/2 p d log p/dx), so dp/dt = -d(u p)/dx "
           "with the velocity u; the ODE dx/dt = u has the same marginals  [Song eq. 13]",
           sp.Eq(U, Seq(Prod(F, x), -Prod(G**2 / 2, S_X))))
    d.identity("the PF-ODE's continuity equation: (dp/dt + d(u p)/dx) / p = 0", cont, sp.Integer(0))
    d.step("For this p the velocity is", sp.Eq(U, dots(sp.factor(u))))
    # the same u as EDM's a x - b D(x/s; sigma) with the exact Gaussian denoiser
    ode = pf_ode().result
    D = denoiser_minimiser().result["gaussian.D"].subs({x: x / s, m: x_0, sig: sigma}, simultaneous=True)
    D_sym = sp.Symbol("D")
    d.names[D_sym] = r"D(x/s;\sigma)"
    d.step("the exact denoiser of N(x_0, v) data at y = x/s (`denoiser_minimiser`)", sp.Eq(D_sym, dots(D)))
    d.identity("u = a x - b D(x/s; sigma) with pf_ode's a = sigma'/sigma + s'/s, b = sigma' s / sigma  [EDM eq. 4]",
               sp.cancel(u - (ode["a"] * x - ode["b"] * D)), sp.Integer(0))
    d.step("so the PF-ODE of the SDE is EDM's ODE with the exact denoiser  [EDM eq. 4; `pf_ode`]",
           sp.Eq(U, Seq(Prod(Paren(*sp.Add.make_args(dots(ode["a"]))), x), -Prod(dots(ode["b"]), D_sym))))
    d.result.update(p=p, score=score, u=u, fp_residual=fp, continuity_residual=cont, D=D)
    for name, (s_fam, sigma_fam) in FAMILIES.items():
        # the family's own f, g (as `sde_from_s_sigma` derived them for it, and Process.f/g compute them)
        rules = {F: fwd[f"{name}.f"], G: fwd[f"{name}.g"]}

        def family(e):
            return e.subs(rules).subs({s: s_fam, sigma: sigma_fam}).doit()
        d.identity(f"{name}: its own f, g and N(s x_0, s^2 (sigma^2 + v)) solve Fokker-Planck and continuity",
                   sp.Tuple(_reduce(family(fp_fg)), _reduce(family(cont_fg))), sp.Tuple(0, 0))
        d.result[f"{name}.p"], d.result[f"{name}.u"] = family(p), family(u_fg)
    d.conclude("N(s x_0, s^2 (sigma^2 + v)) solves the SDE's Fokker-Planck equation, and the PF-ODE dx/dt = u "
               "transports the same density  [Song eq. 13]",
               (FOKKER_PLANCK, CONTINUITY))
    return d


@functools.lru_cache(maxsize=None)
def pf_ode_fokker_planck() -> Derivation:
    """For Gaussian data N(x_0, v) the marginal solves Fokker-Planck and the PF-ODE's continuity equation.  [Song eq. 13]

    result (in x, t, x_0, v0 and the functions s(t), sigma(t)): p (N(s x_0, s^2 (sigma^2 + v))), score (d log p/dx),
    u (f x - g^2/2 d log p/dx), D (the exact denoiser at x/s), fp_residual, continuity_residual (both 0);
    "<family>.p", "<family>.u" for VP, VE, EDM, FlowMatching (in x, t, x_0, v0, beta_min, beta_max).
    """
    return _pf_ode_fokker_planck()
