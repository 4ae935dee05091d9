"""Classifier-free guidance, derived: Bayes gives the implicit classifier, and its score is the
difference of the conditional and the unconditional scores.  [CFG eq. 6; Song eq. 13]

For any class-conditional density, log p(c | x) = log p(x | c) + log p(c) - log p(x), so
grad log p(c | x) = grad log p(x | c) - grad log p(x): a classifier that needs no classifier network.
Guidance samples p_w(x | c) proportional to p(x | c) p(c | x)^w, whose score is
(1 + w) grad log p(x | c) - w grad log p(x); with eps = -sqrt(1 - alpha_bar) grad log p that is
eps_tilde = (1 + w) eps(x, c) - w eps(x), `diffedu.guidance.cfg_eps`.  The second part does it again
on an explicit two-class Gaussian example, where every density is written out and differentiated,
and shows what w scales: the push (mu_c - E[mu | x]) / (v + sigma^2) away from the other class.
`_classifier_free_guidance(sign=-1)` builds it with the sign of the unconditional term flipped: the
tests see `verify()` report it.

Imports: functools, sympy, diffedu.guidance, ._core, .pairing.
"""
from __future__ import annotations

import functools

import sympy as sp

from .. import guidance as G
from ._core import Derivation
from .pairing import Pair

x = sp.Symbol("x", real=True)
w = sp.Symbol("w", positive=True)                      # the guidance weight
eps_c, eps_u = sp.symbols("epsilon_c epsilon_u", real=True)   # eps(x, c) and eps(x) at one x
ab = sp.Symbol("alpha_bar_t", positive=True)
mu_1, mu_2 = sp.symbols("mu_1 mu_2", real=True)       # the two class means
v, sig, pi_1 = sp.symbols("v sigma_n pi_1", positive=True)   # class variance, noise level, P(c = 1)
p_xc, p_x = sp.Function("p_c"), sp.Function("p")       # p(x | c) and p(x), any densities
P_c = sp.Symbol("P_c", positive=True)                  # the prior p(c), a constant in x
# display-only symbols (their LaTeX below): the scores and the posterior average of the class means
log_cls, score_cls, score_w, score_cond, eps_tilde_sym, mean_mu, p_marg = sp.symbols(
    "log_cls score_cls score_w score_cond eps_tilde E_mu p_marg", real=True)
NAMES = {eps_c: r"\epsilon(x, c)", eps_u: r"\epsilon(x)", sig: r"\sigma", P_c: "p(c)", pi_1: r"\pi_1",
         log_cls: r"\log p(c \mid x)", score_cls: r"\nabla_x \log p(c \mid x)", score_w: r"\nabla_x \log p_w(x \mid c)",
         score_cond: r"\nabla_x \log p(x \mid c)", eps_tilde_sym: r"\tilde\epsilon(x, c)",
         mean_mu: r"\mathbb{E}[\mu \mid x]", p_marg: "p(x)"}


def normal(u, mean, var):
    """N(u; mean, var), the 1-D normal density."""
    return sp.exp(-(u - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def _classifier_free_guidance(sign=1) -> Derivation:
    """The builder; sign multiplies the unconditional term of the guided score (-1 is a wrong step)."""
    d = Derivation("Classifier-free guidance from Bayes: the implicit classifier  [CFG eq. 6]", names=NAMES)
    grad = lambda f: sp.diff(f, x)  # noqa: E731
    log_classifier = sp.log(p_xc(x)) + sp.log(P_c) - sp.log(p_x(x))
    d.step("Bayes: the classifier p(c | x) = p(x | c) p(c) / p(x), in logs (p_c(x) is p(x | c))", sp.Eq(log_cls, log_classifier))
    d.step("p(c) does not depend on x: the implicit classifier's gradient is a difference of two scores",
           sp.Eq(score_cls, grad(log_classifier)))
    d.identity("grad log p(c | x) = grad log p(x | c) - grad log p(x)", grad(log_classifier),
               grad(sp.log(p_xc(x))) - grad(sp.log(p_x(x))))
    guided_log = sp.log(p_xc(x)) + w * log_classifier           # log [p(x | c) p(c | x)^w], up to a constant
    guided_score = grad(sp.log(p_xc(x))) + sign * w * grad(log_classifier)
    d.step("Guidance samples p_w(x | c) proportional to p(x | c) p(c | x)^w; its score",
           sp.Eq(score_w, guided_score))
    d.identity("the guided score is (1 + w) grad log p(x | c) - w grad log p(x)", guided_score,
               (1 + w) * grad(sp.log(p_xc(x))) - w * grad(sp.log(p_x(x))))
    d.identity("it is the score of p(x | c) p(c | x)^w", guided_score, grad(guided_log))
    # eps-prediction: eps = -sqrt(1 - alpha_bar) grad log p(x_t) [Song eq. 13; diffedu.param.eps_from_score]
    score_c, score_u = -eps_c / sp.sqrt(1 - ab), -eps_u / sp.sqrt(1 - ab)
    eps_tilde = sp.expand(-sp.sqrt(1 - ab) * (score_c + sign * w * (score_c - score_u)))
    d.step("eps = -sqrt(1 - alpha_bar_t) x score, for both scores  [Song eq. 13]",
           sp.Eq(eps_tilde_sym, eps_tilde))
    d.identity("w = 0 is the conditional model", eps_tilde.subs(w, 0), eps_c)
    d.identity("w = -1 would be the unconditional model", eps_tilde.subs(w, -1), eps_u)

    # the same on explicit densities: two Gaussian classes, noised x = x_0 + sigma n
    var = v + sig**2
    dens = {1: normal(x, mu_1, var), 2: normal(x, mu_2, var)}
    marginal = pi_1 * dens[1] + (1 - pi_1) * dens[2]
    d.step("Two classes, x_0 | c ~ N(mu_c, v), noised by sigma: p(x | c) = N(mu_c, v + sigma^2); p(x) is the mixture",
           sp.Eq(p_marg, marginal))
    s_c, s_u = grad(sp.log(dens[1])), grad(sp.log(marginal))
    classifier = pi_1 * dens[1] / marginal                  # p(c = 1 | x) by Bayes
    explicit = grad(sp.log(dens[1] * classifier**w))
    d.identity("two Gaussians: (1 + w) s_c - w s_u is d/dx log [p(x | c = 1) p(c = 1 | x)^w]",
               sp.simplify(s_c + sign * w * (s_c - s_u) - explicit), 0)
    posterior_mean = (mu_1 * pi_1 * dens[1] + mu_2 * (1 - pi_1) * dens[2]) / marginal   # E[mu_c | x]
    push = (mu_1 - posterior_mean) / var
    d.step("What w scales, for c = 1: the implicit classifier's gradient, with E[mu | x] = sum_k p(k | x) mu_k the "
           "posterior average of the class means; it points from that average towards mu_1",
           sp.Eq(score_cls, (mu_1 - mean_mu) / var))
    d.identity("grad log p(c = 1 | x) = (mu_1 - E[mu | x]) / (v + sigma^2)", sp.simplify(grad(sp.log(classifier)) - push), 0)
    numeric = G.cfg_eps(eps_c, eps_u, w)
    d.identity("diffedu.guidance.cfg_eps is this eps_tilde", numeric, eps_tilde)
    d.conclude("The guided prediction is a line through the two predictions of one network: w = 0 is "
               "conditional, w > 0 moves on past it, away from the unconditional one  [CFG eq. 6]",
               sp.Eq(eps_tilde_sym, sp.UnevaluatedExpr(1 + w) * eps_c - w * eps_u))
    d.conclude("In scores: the conditional score plus w times the implicit classifier's gradient",
               sp.Eq(score_w, score_cond + w * score_cls))
    d.result.update(eps_tilde=eps_tilde, push=push)
    return d


@functools.lru_cache(maxsize=None)
def classifier_free_guidance() -> Derivation:
    """Derive eps_tilde = (1 + w) eps(x, c) - w eps(x) from Bayes and the implicit classifier.  [CFG eq. 6]

    result: eps_tilde (in epsilon_c, epsilon_u, w), push (grad log p(c = 1 | x) for two Gaussian classes).
    """
    return _classifier_free_guidance()


PAIRS = (
    # (1 + w) a - w b cancels where the two terms nearly agree: a few ulps of a small result, hence rtol 1e-9
    Pair(G.cfg_eps, lambda: classifier_free_guidance().result["eps_tilde"], (eps_c, eps_u, w), ref="[CFG eq. 6]", rtol=1e-9),
)

WAIVERS = {
    "diffedu.guidance.check_guidance": "argument check: a finite w >= 0; tested in tests/test_guidance.py",
    "diffedu.guidance.check_labels": "argument check and conversion of labels; tested in tests/test_guidance.py",
}
