"""Derivation 2: the DDPM posterior by Bayes and completing the square, its eps-form, and the
weight of ||eps - eps_theta||^2 in L_{t-1}.  [DDPM eq. 6-7, 11-12]

The derivation keeps the two marginal variances as symbols V_{t-1} = 1 - alpha_bar_{t-1} and
V_t = 1 - alpha_bar_t while it collects terms, and uses alpha_bar_t = alpha_t alpha_bar_{t-1}
and beta_t = 1 - alpha_t only where the paper does: in the numerator of the precision.
PAIRS holds diffedu.posterior's DDPM coefficient functions against these derivations; WAIVERS names
diffedu.losses' functions, which evaluate them along a Schedule.
Imports: sympy, diffedu.posterior, ._core, .forward (Normal, for display), .pairing.
"""
from __future__ import annotations

import functools

import sympy as sp

from .. import posterior as P
from ._core import (Derivation, alpha_bar_prev, alpha_bar_t, alpha_t, beta_t, eps, eps_theta, sigma, x_0,
                    x_prev, x_t)
from .forward import Normal
from .pairing import Pair

V_prev = sp.Symbol("V_prev", positive=True)  # 1 - alpha_bar_{t-1}, variance of q(x_{t-1} | x_0)
V_t = sp.Symbol("V_t", positive=True)  # 1 - alpha_bar_t, variance of q(x_t | x_0)
_VARIANCES = {V_prev: 1 - alpha_bar_prev, V_t: 1 - alpha_bar_t}
_NAMES = {V_prev: r"V_{t-1}", V_t: r"V_t"}  # a name with parentheses would double them inside log(...)


def log_normal(x, mean, var) -> sp.Expr:
    """log N(x; mean, var) in one dimension (the isotropic case factorises over coordinates)."""
    return -(x - mean) ** 2 / var / 2 - sp.log(2 * sp.pi * var) / 2


def _one_step_identities(expr):
    """Use beta_t = 1 - alpha_t and alpha_t alpha_bar_{t-1} = alpha_bar_t in a polynomial numerator."""
    return sp.expand(expr.subs(_VARIANCES).subs(beta_t, 1 - alpha_t)).subs(alpha_t * alpha_bar_prev, alpha_bar_t)


@functools.lru_cache(maxsize=None)
def ddpm_posterior() -> Derivation:
    """mu_tilde(x_t, x_0) = coef_x0 x_0 + coef_xt x_t and beta_tilde_t by completing the square.  [DDPM eq. 6-7]

    Then x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) gives the eps-form
    mu = eps_coef_xt x_t - eps_coef_eps eps  [DDPM eq. 11].
    """
    d = Derivation("DDPM posterior q(x_{t-1} | x_t, x_0) by Bayes and completing the square  [DDPM eq. 6-7, 11]",
                   names=dict(_NAMES))
    terms = [log_normal(x_t, sp.sqrt(alpha_t) * x_prev, beta_t),
             log_normal(x_prev, sp.sqrt(alpha_bar_prev) * x_0, V_prev),
             -log_normal(x_t, sp.sqrt(alpha_bar_t) * x_0, V_t)]
    logpost = sum(terms)
    log_q = sp.Symbol("L")
    d.names[log_q] = r"\log q(x_{t-1} \mid x_t, x_0)"
    d.step("Name the variances of the two marginals q(x_{t-1} | x_0) and q(x_t | x_0)  [DDPM eq. 4]",
           sp.Tuple(sp.Eq(V_prev, 1 - alpha_bar_prev), sp.Eq(V_t, 1 - alpha_bar_t)))
    d.step("Bayes: log q(x_{t-1}|x_t,x_0) = log q(x_t|x_{t-1}) + log q(x_{t-1}|x_0) - log q(x_t|x_0)  [DDPM eq. 6]",
           sp.Eq(log_q, logpost))
    coeffs = sp.collect(sp.expand(logpost), x_prev, evaluate=False)
    A, B = coeffs[x_prev**2], coeffs[x_prev]
    d.step("Collect x_{t-1}: A x_{t-1}^2 + B x_{t-1} + C, with A", sp.Eq(sp.Symbol("A"), A))
    d.step("and B", sp.Eq(sp.Symbol("B"), sp.collect(B, [x_0, x_t])))

    precision = sp.together(-2 * A)
    v_ = sp.Symbol("v", positive=True)
    d.step("A Gaussian N(mu, v) has A = -1/(2v), B = mu/v: the precision 1/v = -2A", sp.Eq(1 / v_, precision))
    num, den = sp.fraction(precision)
    num = _one_step_identities(num)
    d.step("Numerator with beta_t = 1 - alpha_t and alpha_t alpha_bar_{t-1} = alpha_bar_t", sp.Eq(1 / v_, num / den))
    num = num.subs(1 - alpha_bar_t, V_t)
    beta_tilde = (den / num).subs(_VARIANCES)
    bt_, mt_ = sp.Symbol("beta_tilde_t", positive=True), sp.Symbol("mu_tilde_t", real=True)
    d.step("beta_tilde_t = 1/precision  [DDPM eq. 7]", sp.Eq(bt_, beta_tilde))

    Bx = sp.collect(B, [x_0, x_t], evaluate=False)
    coef_x0_V, coef_xt_V = Bx[x_0] * den / num, Bx[x_t] * den / num  # still in V_t, V_{t-1}
    coef_x0, coef_xt = coef_x0_V.subs(_VARIANCES), coef_xt_V.subs(_VARIANCES)
    mu_tilde = coef_x0 * x_0 + coef_xt * x_t
    d.step("mu_tilde = B v  [DDPM eq. 7]", sp.Eq(mt_, mu_tilde))

    # x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), sqrt(alpha_bar_t) = sqrt(alpha_t) sqrt(alpha_bar_{t-1})
    x0_of_eps = (x_t - sp.sqrt(V_t) * eps) / (sp.sqrt(alpha_t) * sp.sqrt(alpha_bar_prev))
    mu_raw = sp.expand(coef_x0_V * x0_of_eps + coef_xt_V * x_t)
    d.step("Substitute x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)", sp.Eq(mt_, mu_raw))
    num_x, den_x = sp.fraction(sp.together(mu_raw.coeff(x_t)))
    eps_coef_xt = _one_step_identities(num_x) / den_x.subs(_VARIANCES)
    eps_coef_eps_V = -mu_raw.coeff(eps)
    eps_coef_eps = eps_coef_eps_V.subs(_VARIANCES)
    mu_eps = eps_coef_xt * x_t - eps_coef_eps * eps
    d.step("Collect x_t (numerator: beta_t + alpha_t (1 - alpha_bar_{t-1}) = 1 - alpha_bar_t) and eps  [DDPM eq. 11]",
           sp.Eq(mt_, eps_coef_xt * (x_t - eps_coef_eps / eps_coef_xt * eps)))

    d.identity("Bayes is exact: log q(x_{t-1}|x_t,x_0) = log N(x_{t-1}; mu_tilde, beta_tilde)",
               logpost.subs(_VARIANCES), log_normal(x_prev, mu_tilde, beta_tilde))
    d.identity("eps-form equals mu_tilde at x_0(x_t, eps)", mu_eps, mu_tilde.subs(x_0, x0_of_eps.subs(_VARIANCES)))
    q_post = sp.Symbol("q")
    d.names[q_post] = r"q(x_{t-1} \mid x_t, x_0)"
    mu_eps_shown = eps_coef_xt * (x_t - eps_coef_eps / eps_coef_xt * eps)
    d.conclude("The posterior is Gaussian, with mean and variance  [DDPM eq. 6-7]",
               sp.Tuple(sp.Eq(q_post, Normal(mt_, bt_)), sp.Eq(mt_, mu_tilde), sp.Eq(bt_, beta_tilde)))
    d.conclude("and, with x_0 written through the noise eps that made x_t, the eps-form  [DDPM eq. 11]",
               sp.Eq(mt_, mu_eps_shown))
    d.result.update(mu_eps_V=eps_coef_xt * x_t - eps_coef_eps_V * eps, beta_tilde_V=den / num)  # for vlb_term
    d.result.update(coef_x0=coef_x0, coef_xt=coef_xt, beta_tilde=beta_tilde, mu_tilde=mu_tilde,
                    eps_coef_xt=eps_coef_xt, eps_coef_eps=eps_coef_eps, mu_eps=mu_eps)
    return d


@functools.lru_cache(maxsize=None)
def gaussian_kl() -> Derivation:
    """KL(N(m1, v1) || N(m2, v2)) = E_q[log q - log p] with x = m1 + sqrt(v1) z, E z = 0, E z^2 = 1."""
    m1, m2, zz = sp.symbols("m_1 m_2 z", real=True)
    v1, v2 = sp.symbols("v_1 v_2", positive=True)
    d = Derivation("KL divergence between two Gaussians, by taking the expectation")
    x = m1 + sp.sqrt(v1) * zz
    integrand = sp.expand(log_normal(x, m1, v1) - log_normal(x, m2, v2), log=False)
    d.step("log q(x) - log p(x) at x = m_1 + sqrt(v_1) z", integrand)
    moments = {0: 1, 1: 0, 2: 1}
    kl = sum(c * moments[k] for (k,), c in sp.Poly(integrand, zz).terms())
    kl = sp.expand_log(sp.expand(kl), force=True)
    d.step("E[z] = 0, E[z^2] = 1", sp.Eq(sp.Symbol("KL"), kl))
    d.identity("KL(q || q) = 0", kl.subs({m2: m1, v2: v1}), sp.Integer(0))
    textbook = (sp.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1) / 2
    d.identity("The expectation is the textbook form (log(v_2/v_1) + (v_1 + (m_1 - m_2)^2)/v_2 - 1)/2",
               sp.expand(sp.expand_log(textbook - kl, force=True)), sp.Integer(0))
    kl_sym = sp.Symbol("KL")
    d.conclude("KL(N(m_1, v_1) || N(m_2, v_2)): a squared mean gap over v_2, plus a part in the variances alone",
               sp.Eq(kl_sym, sp.Mul(sp.Rational(1, 2), sp.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1,
                                    evaluate=False)))
    d.result.update(kl=kl, m1=m1, m2=m2, v1=v1, v2=v2)
    return d


@functools.lru_cache(maxsize=None)
def vlb_term() -> Derivation:
    """L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p_theta(x_{t-1}|x_t)) = C + w ||eps - eps_theta||^2 with
    w = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)).  [DDPM eq. 12]"""
    post, kl = ddpm_posterior().result, gaussian_kl().result
    d = Derivation("The weight of ||eps - eps_theta||^2 in L_{t-1}  [DDPM eq. 12]", names=dict(_NAMES))
    mu_theta = post["mu_eps"].subs(eps, eps_theta)
    d.step("p_theta(x_{t-1}|x_t) = N(mu_theta, sigma_t^2), mu_theta in eps-form  [DDPM eq. 11]",
           sp.Eq(sp.Symbol(r"mu_theta"), mu_theta))
    mu_V = post["mu_eps_V"]  # V_t = 1 - alpha_bar_t kept as a symbol until the end
    L = kl["kl"].subs({kl["m1"]: mu_V, kl["m2"]: mu_V.subs(eps, eps_theta), kl["v1"]: post["beta_tilde_V"],
                       kl["v2"]: sigma**2})
    delta = sp.Symbol("delta", real=True)  # eps - eps_theta
    L_delta = sp.expand(L.subs(eps_theta, eps - delta))
    L_sym = sp.Symbol("L_tm1")
    d.names[L_sym] = r"L_{t-1}"
    d.step("As in the posterior, V_{t-1} and V_t are the variances of q(x_{t-1} | x_0) and q(x_t | x_0)",
           sp.Tuple(sp.Eq(V_prev, 1 - alpha_bar_prev), sp.Eq(V_t, 1 - alpha_bar_t)))
    d.step("KL(N(mu_tilde, beta_tilde) || N(mu_theta, sigma_t^2)) with eps_theta = eps - delta  [DDPM eq. 5]",
           sp.Eq(L_sym, L_delta))
    w = sp.factor(L_delta.coeff(delta, 2)).subs(_VARIANCES)
    d.step("The coefficient of delta^2 = ||eps - eps_theta||^2  [DDPM eq. 12]", sp.Eq(sp.Symbol("w"), w))
    const = L_delta.coeff(delta, 0).subs(_VARIANCES)
    d.identity("No term linear in eps - eps_theta", L_delta.coeff(delta, 1), sp.Integer(0))
    for s in (x_t, eps):
        d.identity(f"The rest does not depend on {s}", sp.diff(const, s), sp.Integer(0))
    d.identity("With sigma_t^2 = beta_tilde_t the rest vanishes", const.subs(sigma, sp.sqrt(post["beta_tilde"])), sp.Integer(0))
    w_sym, C_sym = sp.Symbol("w"), sp.Symbol("C")
    d.conclude("L_{t-1} is a weighted squared error in eps plus a constant C that does not depend on eps_theta "
               "(C = 0 for sigma_t^2 = beta_tilde_t); L_simple sets w to 1  [DDPM eq. 12, 14]",
               sp.Tuple(sp.Eq(L_sym, w_sym * (eps - eps_theta) ** 2 + C_sym), sp.Eq(w_sym, w)))
    d.result.update(weight=w, constant=const, L=L.subs(_VARIANCES))
    return d


def _post(key):
    return ddpm_posterior().result[key]


_ab, _abp = alpha_bar_t, alpha_bar_prev

PAIRS = (
    Pair(P.posterior_mean_coefs, lambda: (_post("coef_x0"), _post("coef_xt")), (_ab, _abp), ("coef_x0", "coef_xt"),
         "[DDPM eq. 7]"),
    Pair(P.posterior_variance, lambda: _post("beta_tilde"), (_ab, _abp), ref="[DDPM eq. 7]"),
    Pair(P.posterior_mean_eps_coefs, lambda: (_post("eps_coef_xt"), _post("eps_coef_eps")), (_ab, _abp),
         ("coef_xt", "coef_eps"), "[DDPM eq. 11]"),
    Pair(P.vlb_weight, lambda: vlb_term().result["weight"], (_ab, _abp, sigma**2), ref="[DDPM eq. 12]"),
)

WAIVERS = {
    "diffedu.losses.l_simple": "a Monte Carlo objective over a network, not a closed form",
    "diffedu.losses.vlb_weights": "vlb_weight (paired) evaluated along a Schedule",
}
