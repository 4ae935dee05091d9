"""Derivation 3: DDIM by undetermined coefficients, sigma(eta), and the seed's two open questions
as checked identities.  [DDIM eq. 7, 12, 16]

Notation: `alpha_bar_prev` is alpha_bar of *any* earlier time (DDIM's alpha_{tau_{i-1}}); DDIM's
alpha_t is DDPM's alpha_bar_t.  PAIRS holds diffedu.posterior's DDIM coefficient functions
against these derivations.  Imports: sympy, diffedu.posterior, ._core, .forward, .pairing, .posterior.
"""
from __future__ import annotations

import functools

import sympy as sp

from .. import posterior as P
from ._core import (Derivation, alpha_bar_prev, alpha_bar_t, alpha_t, beta_t, canonical, eps, eta, sample_points, sigma,
                    tidy, x_0, x_prev, x_t, z)
from .forward import gaussian_moments
from .pairing import Pair
from .posterior import ddpm_posterior

k, m = sp.symbols("k m", real=True)
alpha_bar_s = sp.Symbol("alpha_bar_s", positive=True)  # a time between prev and t (two-jump check)
_NAMES = {alpha_bar_prev: r"\bar\alpha_{\mathrm{prev}}", x_prev: r"x_{\mathrm{prev}}", alpha_bar_s: r"\bar\alpha_s"}


def _positive_root(solutions, symbol):
    """The solution whose `symbol` is positive at a valid random point (0 < alpha_bar_t < alpha_bar_prev < 1)."""
    for sol in solutions:
        free = sol[symbol].free_symbols
        pt = {s: float(v[0]) for s, v in sample_points(free, 1, seed=1).items()}
        if float(sol[symbol].subs(pt)) > 0:
            return sol
    raise ValueError(f"no solution with {symbol} > 0 among {solutions}")


def marginal_of_step(k_, m_, sigma_, ab_from):
    """Mean coefficient of x_0 and variance of x_prev = k x_0 + m x_t + sigma z, x_t ~ q(x_t | x_0)."""
    e_t = sp.Dummy("epsilon_t", real=True)
    x_t_marg = sp.sqrt(ab_from) * x_0 + sp.sqrt(1 - ab_from) * e_t
    mean, var = gaussian_moments(k_ * x_0 + m_ * x_t_marg + sigma_ * z, [e_t, z])
    return sp.expand(mean).coeff(x_0), var


@functools.lru_cache(maxsize=None)
def ddim_coefficients() -> Derivation:
    """k, m of q_sigma(x_prev | x_t, x_0) = N(k x_0 + m x_t, sigma^2) from the marginal-matching
    equations; the DDIM update; sigma(eta) and its limits.  [DDIM eq. 7, 12, 16]"""
    d = Derivation("DDIM by undetermined coefficients  [DDIM eq. 7, 12, 16]", names=dict(_NAMES))
    d.step("Ansatz: q_sigma(x_prev | x_t, x_0) = N(k x_0 + m x_t, sigma^2)", sp.Eq(x_prev, k * x_0 + m * x_t + sigma * z))
    mean_coef, var = marginal_of_step(k, m, sigma, alpha_bar_t)
    d.step("With x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, merge the Gaussians: mean coefficient",
           sp.Eq(sp.Symbol("E"), mean_coef * x_0))
    d.step("and variance", sp.Eq(sp.Symbol("Var"), var))
    eqs = [sp.Eq(mean_coef, sp.sqrt(alpha_bar_prev)), sp.Eq(var, 1 - alpha_bar_prev)]
    d.step("Match q(x_prev | x_0) = N(sqrt(alpha_bar_prev) x_0, 1 - alpha_bar_prev) for every x_0", sp.Tuple(*eqs))
    sol = _positive_root(sp.solve(eqs, [k, m], dict=True), m)
    k_sol, m_sol = tidy(sol[k]), tidy(sol[m])
    d.step("Solve, taking m > 0  [DDIM eq. 7]", sp.Tuple(sp.Eq(k, k_sol), sp.Eq(m, m_sol)))

    x0_hat, eps_hat = sp.symbols("x0_hat eps_hat", real=True)
    d.names.update({x0_hat: r"\hat x_0", eps_hat: r"\hat\epsilon"})
    mean_hat = sp.expand(k_sol * x0_hat + m_sol * (sp.sqrt(alpha_bar_t) * x0_hat + sp.sqrt(1 - alpha_bar_t) * eps_hat))
    coef_x0, coef_eps = mean_hat.coeff(x0_hat), mean_hat.coeff(eps_hat)
    d.step("Insert the estimates: x_t = sqrt(alpha_bar_t) x0_hat + sqrt(1 - alpha_bar_t) eps_hat  [DDIM eq. 12]",
           sp.Eq(x_prev, coef_x0 * x0_hat + coef_eps * eps_hat + sigma * z))
    x0_of_eps = (x_t - sp.sqrt(1 - alpha_bar_t) * eps) / sp.sqrt(alpha_bar_t)
    update = coef_x0 * x0_of_eps + coef_eps * eps + sigma * z

    # sigma(eta): eta times the sigma at which q_sigma is the DDPM posterior  [DDIM eq. 16]
    post = ddpm_posterior().result
    beta_tilde = canonical(post["beta_tilde"])  # beta_t = 1 - alpha_bar_t / alpha_bar_prev, ab_prev = ab_{t-1}
    s = sp.Symbol("s", real=True)
    s_ddpm = tidy(_positive_root(sp.solve(sp.Eq(s**2, beta_tilde), s, dict=True), s)[s])
    d.step("The sigma for which q_sigma has the DDPM posterior's variance beta_tilde", sp.Eq(sigma, s_ddpm))
    sigma_eta = eta * s_ddpm
    d.step("DDIM's family sigma_t(eta)  [DDIM eq. 16]", sp.Eq(sigma, sigma_eta))

    at = lambda e, value: e.subs(sigma, sigma_eta.subs(eta, value))  # noqa: E731
    d.identity("eta = 1: sigma^2 = beta_tilde", at(sigma**2, 1), beta_tilde)
    d.identity("eta = 1: k = the DDPM posterior's coef_x0", at(k_sol, 1), canonical(post["coef_x0"]))
    d.identity("eta = 1: m = the DDPM posterior's coef_xt", at(m_sol, 1), canonical(post["coef_xt"]))
    d.identity("eta = 0: sigma = 0", sigma_eta.subs(eta, 0), sp.Integer(0))
    d.identity("eta = 0: no noise term in the update", sp.diff(at(update, 0), z), sp.Integer(0))
    d.identity("eta = 0: x_prev = sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev) eps_hat",
               at(update, 0), sp.sqrt(alpha_bar_prev) * x0_of_eps + sp.sqrt(1 - alpha_bar_prev) * eps)
    # the update's eps_hat coefficient sqrt(1 - alpha_bar_prev - sigma^2) is real while sigma(eta)^2 <= 1 - alpha_bar_prev
    e_max = tidy(_positive_root(sp.solve(sp.Eq(sigma_eta**2, 1 - alpha_bar_prev), eta, dict=True), eta)[eta])
    d.step("The largest eta: sigma(eta)^2 = 1 - alpha_bar_prev, where the eps_hat coefficient reaches 0",
           sp.Eq(sp.Symbol("eta_max", positive=True), e_max))
    d.identity("at eta_max the eps_hat coefficient of the update is 0", (1 - alpha_bar_prev - sigma_eta**2).subs(eta, e_max),
               sp.Integer(0))
    d.result.update(k=k_sol, m=m_sol, ddim_mean=k_sol * x_0 + m_sol * x_t, coef_x0=coef_x0, coef_eps=coef_eps,
                    update=update, sigma_eta=sigma_eta, sigma_ddpm=s_ddpm, equations=eqs, max_eta=e_max)
    return d


@functools.lru_cache(maxsize=None)
def open_questions() -> Derivation:
    """Why any sub-sequence tau may be used (Q1) and why every sigma, 0 included, is allowed (Q2)."""
    dd = ddim_coefficients().result
    k_sol, m_sol = dd["k"], dd["m"]
    d = Derivation("The seed's open questions, as identities  [DDIM §4.1-4.2]", names=dict(_NAMES))

    used = set().union(*(e.free_symbols for e in dd["equations"])) | k_sol.free_symbols | m_sol.free_symbols
    d.step("Q1. Every symbol the matching equations and their solution use", sp.FiniteSet(*used))
    d.identity("Q1: q(x_t | x_{t-1}) never enters: no alpha_t or beta_t in the equations or their solution",
               used & {alpha_t, beta_t}, set())
    mean_coef, var = marginal_of_step(k_sol, m_sol, sigma, alpha_bar_t)
    d.step("Marginal of x_prev under q_sigma(x_prev | x_t, x_0) q(x_t | x_0): mean coefficient and variance",
           sp.Tuple(mean_coef, var))
    d.identity("Q1: the marginal is q(x_prev | x_0) for any alpha_bar_prev > alpha_bar_t: mean",
               mean_coef, sp.sqrt(alpha_bar_prev))
    d.identity("Q1: ... and variance", var, 1 - alpha_bar_prev)

    # two jumps t -> s -> prev with independent sigmas, no relation between the three alpha_bars
    s1, s2 = sp.symbols("sigma_1 sigma_2", nonnegative=True)
    to_s = {alpha_bar_prev: alpha_bar_s, sigma: s1}
    e_t, z1, z2 = sp.symbols("e_t z_1 z_2", real=True)
    x_t_marg = sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * e_t
    x_s = k_sol.subs(to_s) * x_0 + m_sol.subs(to_s) * x_t_marg + s1 * z1
    from_s = {alpha_bar_t: alpha_bar_s, sigma: s2}
    x_p = k_sol.subs(from_s) * x_0 + m_sol.subs(from_s) * x_s + s2 * z2
    mean2, var2 = gaussian_moments(x_p, [e_t, z1, z2])
    d.step("Q1: two jumps t -> s -> prev (any tau): variance of x_prev", sp.Eq(sp.Symbol("Var"), sp.cancel(var2)))
    d.identity("Q1: two jumps keep the marginal: mean", sp.expand(mean2).coeff(x_0), sp.sqrt(alpha_bar_prev))
    d.identity("Q1: two jumps keep the marginal: variance", var2, 1 - alpha_bar_prev)

    d.step("Q2. The marginal variance as a function of sigma", sp.Eq(sp.Symbol("Var"), var))
    d.identity("Q2: the marginal variance does not depend on sigma", sp.diff(var, sigma), sp.Integer(0))
    d.identity("Q2: sigma = 0 gives the same marginal: mean", mean_coef.subs(sigma, 0), sp.sqrt(alpha_bar_prev))
    d.identity("Q2: sigma = 0 gives the same marginal: variance", var.subs(sigma, 0), 1 - alpha_bar_prev)
    d.result.update(marginal_mean_coef=mean_coef, marginal_variance=var, used_symbols=sp.FiniteSet(*used))
    return d


def _ddim(key):
    return ddim_coefficients().result[key]


_ab, _abp = alpha_bar_t, alpha_bar_prev

PAIRS = (
    Pair(P.ddim_sigma, lambda: _ddim("sigma_eta"), (_ab, _abp, eta), ref="[DDIM eq. 16]"),
    Pair(P.ddim_max_eta, lambda: _ddim("max_eta"), (_ab, _abp), ref="[DDIM eq. 12, 16]"),
    Pair(P.ddim_mean_coefs, lambda: (_ddim("k"), _ddim("m")), (_ab, _abp, sigma), ("k", "m"), "[DDIM eq. 7]"),
    Pair(P.ddim_step_coefs, lambda: (_ddim("coef_x0"), _ddim("coef_eps")), (_ab, _abp, sigma), ("coef_x0", "coef_eps"),
         "[DDIM eq. 12]"),
)

WAIVERS: dict[str, str] = {}
