"""The unified view, derived: every correction keeps the marginal, why the reused noise must come from x_t,
and the training objective.  [UDM eq. 4-13]

Gaussian F: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) e.  The three corrections feed
F_{t-1} the noise sqrt(1 - sigma_tilde^2) e_hat + sigma_tilde z, with e_hat = F_t^{-1}(x_0, x_t)
(sigma_tilde = 1: "marginal" [UDM eq. 8], 0: "deterministic" [UDM eq. 10-11]).  The post numbers its
display equations 1-13: eq. 4 the Gaussian q(x_0 | x_t), eq. 5-6 the cross-entropy and the weighted
MSE, eq. 7 the marginal constraint, eq. 10-11 the deterministic correction and its Dirac delta,
eq. 12-13 the partial correction.
  corrections_keep_the_marginal  eq. 7 for every sigma_tilde; the map sigma_tilde <-> DDIM's sigma
  gaussian_posterior_mean        E[x_0 | x] for one Gaussian component (the mixture denoiser's part)
  udm_noise_reuse                why e_hat may replace the noise of F_{t-1}, why x_{t+1}'s may not,
                                 and the deterministic kernel as a Dirac delta (eq. 10 -> 11)
  udm_training_objective         -log N(x_0; G_t, sigma_bar_t^2 I) -> the weighted MSE -> x0_loss
PAIRS holds the coefficient functions of diffedu.samplers.estimate_correct against these derivations;
WAIVERS names its other public functions (tests/test_symbolic_udm.py pairs the sampler's
deterministic step and x0_loss with udm_noise_reuse and udm_training_objective).
Imports: numpy, sympy, diffedu.posterior, diffedu.samplers.estimate_correct, ._core, .forward, .pairing.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp
import sympy.stats as sps

from .. import posterior as P
from ..samplers import estimate_correct as EC
from ._core import Derivation, alpha_bar_prev, alpha_bar_t, sample_points, sigma, x_0, x_prev, x_t
from .forward import gaussian_moments
from .pairing import Pair

sigma_tilde = sp.Symbol("sigma_tilde", positive=True)
e, z = sp.symbols("e z", real=True)
m, s, sigma_n, x = sp.symbols("m s sigma_n x", real=True)
# udm_noise_reuse: the time after t, the state there, and the noises of the two sampler steps
alpha_bar_next = sp.Symbol("alpha_bar_next", positive=True)     # alpha_bar_{t+1} < alpha_bar_t
x_next = sp.Symbol("x_next", real=True)                         # x_{t+1}
n_1, z_1, n_0 = sp.symbols("n_1 z_1 n_0", real=True)            # x0' noise and fresh noise at t+1, x0_hat noise at t
k, b = sp.symbols("k b", real=True)
# udm_training_objective
G, sigma_bar = sp.Symbol("G", real=True), sp.Symbol("sigma_bar", positive=True)
dim, M, S2 = sp.Symbol("d", positive=True, integer=True), sp.Symbol("M", positive=True), sp.Symbol("S", positive=True)

_E, _Var, _Cov = sp.Symbol("E"), sp.Symbol("Var"), sp.Symbol("C")


def _var(expr, noises):
    return gaussian_moments(expr, noises)[1]


def _cov(a, b_, noises):
    """Cov(a, b) of two expressions linear in independent N(0, 1) noises: (Var(a + b) - Var a - Var b) / 2."""
    return sp.expand((_var(a + b_, noises) - _var(a, noises) - _var(b_, noises)) / 2)


@functools.lru_cache(maxsize=None)
def corrections_keep_the_marginal() -> Derivation:
    """Marginal constraint [UDM eq. 7] for each correction, and the map sigma_tilde <-> DDIM's sigma."""
    d = Derivation("Estimate, then correct: the marginal constraint and DDIM as a special case  [UDM eq. 7-13]")
    d.names = {sigma_tilde: r"\tilde\sigma", e: r"\epsilon", z: "z",
               _E: r"\mathbb{E}[x_{t-1}\mid x_0]", _Var: r"\operatorname{Var}[x_{t-1}\mid x_0]"}
    x_t_ = sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * e
    e_hat = (x_t_ - sp.sqrt(alpha_bar_t) * x_0) / sp.sqrt(1 - alpha_bar_t)
    d.step("F_t^{-1}: the noise solved from x_t and the true x_0 is the noise that made x_t",
           sp.Eq(sp.Symbol("e_hat"), sp.simplify(e_hat)))
    noise = sp.sqrt(1 - sigma_tilde**2) * sp.simplify(e_hat) + sigma_tilde * z
    x_prev_ = sp.sqrt(alpha_bar_prev) * x_0 + sp.sqrt(1 - alpha_bar_prev) * noise
    d.step("Partial correction [UDM eq. 13]: x_{t-1} = F_{t-1}(x_0, sqrt(1 - sigma_tilde^2) e_hat + sigma_tilde z)",
           sp.Eq(x_prev, x_prev_))
    mean, var = gaussian_moments(x_prev_, [e, z])
    d.step("Its mean and variance over e, z (independent N(0, 1))",
           sp.Tuple(sp.Eq(_E, mean), sp.Eq(_Var, sp.factor(var))))
    d.identity("marginal kept for every sigma_tilde: mean", mean, sp.sqrt(alpha_bar_prev) * x_0)
    d.identity("marginal kept for every sigma_tilde: variance", sp.factor(var), 1 - alpha_bar_prev)
    for name, st in (("marginal", 1), ("deterministic", 0)):
        mean_c, var_c = gaussian_moments(x_prev_.subs(sigma_tilde, st), [e, z])
        d.identity(f"{name} (sigma_tilde = {st}) keeps the mean", mean_c, sp.sqrt(alpha_bar_prev) * x_0)
        d.identity(f"{name} (sigma_tilde = {st}) keeps the variance", var_c, 1 - alpha_bar_prev)
    # compare with DDIM: x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) e_hat + sigma z
    coef_z = sp.expand(x_prev_).coeff(z)
    d.step("Matching the fresh-noise coefficient with DDIM's sigma [DDIM eq. 12]", sp.Eq(sigma, coef_z))
    sigma_of_tilde = coef_z
    tilde_of_sigma = sp.solve(sp.Eq(sigma, coef_z), sigma_tilde)[0]
    d.step("and back", sp.Eq(sigma_tilde, tilde_of_sigma))
    coef_e = sp.expand(x_prev_).coeff(e)
    d.identity("then the reused-noise coefficient is DDIM's sqrt(1 - alpha_bar_prev - sigma^2)",
               (coef_e**2).subs(sigma_tilde, tilde_of_sigma), 1 - alpha_bar_prev - sigma**2)
    d.conclude("Every partial correction, marginal (sigma_tilde = 1) and deterministic (0) included, keeps "
               "q(x_{t-1} | x_0) [UDM eq. 7]; it is DDIM's step with sigma = sqrt(1 - alpha_bar_{t-1}) sigma_tilde",
               sp.Tuple(sp.Eq(_E, sp.sqrt(alpha_bar_prev) * x_0), sp.Eq(_Var, 1 - alpha_bar_prev),
                        sp.Eq(sigma, sigma_of_tilde)))
    d.result.update(x_prev=x_prev_, sigma=sigma_of_tilde, sigma_tilde=tilde_of_sigma, noise=noise)
    return d


@functools.lru_cache(maxsize=None)
def gaussian_posterior_mean() -> Derivation:
    """E[x_0 | x_0 + sigma n = x] for x_0 ~ N(m, s^2), by completing the square: the mixture denoiser's part."""
    d = Derivation("Posterior mean of one Gaussian component  [EDM eq. 3]")
    D, A_, B_, L = sp.symbols("D A B L")
    d.names = {sigma_n: r"\sigma", D: r"D(x;\sigma)", L: r"\log p(x_0\mid x) + c"}
    x0 = sp.Symbol("x_0", real=True)
    s_pos, sig_pos = sp.symbols("s sigma_n", positive=True)
    log_post = -(x0 - m) ** 2 / (2 * s_pos**2) - (x - x0) ** 2 / (2 * sig_pos**2)
    d.step("log p(x_0 | x) = log N(x_0; m, s^2) + log N(x; x_0, sigma^2) + const", sp.Eq(L, log_post))
    poly = sp.Poly(sp.expand(log_post), x0)
    A, B = -2 * poly.coeff_monomial(x0**2), poly.coeff_monomial(x0)
    d.step("Collect: -A/2 x_0^2 + B x_0 with precision A",
           sp.Tuple(sp.Eq(A_, sp.simplify(A)), sp.Eq(B_, sp.simplify(B))))
    mean = sp.simplify(B / A)
    d.step("The mean is B / A", sp.Eq(D, mean))
    shrink_form = m + s_pos**2 / (s_pos**2 + sig_pos**2) * (x - m)
    d.identity("= m + s^2 / (s^2 + sigma^2) (x - m), the form GaussianMixture.denoiser uses",
               sp.simplify(mean - shrink_form), sp.Integer(0))
    d.conclude("The posterior mean shrinks x towards the component mean by s^2 / (s^2 + sigma^2)",
               sp.Eq(D, shrink_form))
    d.result.update(mean=mean, variance=sp.simplify(1 / A))
    return d


def _F(alpha_bar, x0, noise):
    """F_s(x_0, e) = sqrt(alpha_bar_s) x_0 + sqrt(1 - alpha_bar_s) e  [DDPM eq. 4]"""
    return sp.sqrt(alpha_bar) * x0 + sp.sqrt(1 - alpha_bar) * noise


def _F_inv(alpha_bar, x0, x_s):
    """F_s^{-1}(x_0, x_s) = (x_s - sqrt(alpha_bar_s) x_0) / sqrt(1 - alpha_bar_s): the noise solved from (x_0, x_s)."""
    return (x_s - sp.sqrt(alpha_bar) * x0) / sp.sqrt(1 - alpha_bar)


# a valid point 0 < alpha_bar_{t+1} < alpha_bar_t < alpha_bar_{t-1} < 1, where "nonzero" is checked
NUMERIC_POINT = {alpha_bar_next: sp.Rational(3, 10), alpha_bar_t: sp.Rational(1, 2), alpha_bar_prev: sp.Rational(7, 10)}


# The roots sqrt(alpha_bar), sqrt(1 - alpha_bar) at t+1, t, t-1 as positive symbols: udm_noise_reuse's part 3 is
# polynomial in them, and an identity holds iff its numerator vanishes modulo c^2 + s^2 = 1 at each time.
_ROOTS = sp.symbols("c_n s_n c_t s_t c_p s_p", positive=True)
_TIMES = (alpha_bar_next, alpha_bar_t, alpha_bar_prev)


def _from_roots(expr):
    """Back to the alpha_bar's for display: c -> sqrt(alpha_bar), s -> sqrt(1 - alpha_bar)."""
    sub = {}
    for (c_, s_), ab in zip(zip(_ROOTS[::2], _ROOTS[1::2]), _TIMES):
        sub.update({c_: sp.sqrt(ab), s_: sp.sqrt(1 - ab)})
    return sp.sympify(expr).subs(sub)


def _to_roots(expr):
    """alpha_bar's -> roots: sqrt(alpha_bar) -> c, sqrt(1 - alpha_bar) -> s (the inverse of _from_roots)."""
    sub = {}
    for (c_, s_), ab in zip(zip(_ROOTS[::2], _ROOTS[1::2]), _TIMES):
        sub.update({sp.sqrt(1 - ab): s_, sp.sqrt(ab): c_})
    return sp.sympify(expr).subs(sub)


def _roots_at(point):
    """The six roots at a point {alpha_bar: value}."""
    return [f(point[ab]) for ab in _TIMES for f in (sp.sqrt, lambda v: sp.sqrt(1 - v))]


def _circle_residue(expr):
    """The numerator of expr reduced modulo c^2 + s^2 = 1 for each time: 0 iff expr = 0 for all valid roots."""
    num = sp.fraction(sp.cancel(sp.together(expr)))[0]
    circle = [s_**2 + c_**2 - 1 for c_, s_ in zip(_ROOTS[::2], _ROOTS[1::2])]
    return sp.reduced(sp.expand(num), circle, *_ROOTS[1::2], *_ROOTS[::2])[1]


@functools.lru_cache(maxsize=None)
def udm_noise_reuse() -> Derivation:
    """Why the noise solved from (x_t, x_0) may feed F_{t-1}, in which sense the noise solved from x_{t+1} may not,
    and the deterministic kernel as a Dirac delta.  [UDM eq. 2, 7, 10-11; the post's comment thread]

    1. Given x_0, e_hat = F_t^{-1}(x_0, x_t) is the noise that made x_t: F_{t-1}(x_0, e_hat) ~ q(x_{t-1} | x_0).
       Eq. 7 fixes only that marginal: the joint of (x_t, x_{t-1}) is not DDPM's.
    2. Eq. 10 -> 11: the kernel delta(x_{t-1} - k x_t - b), integrated against q(x_t | x_0), is q(x_{t-1} | x_0).
    3. On data N(0, 1) with exact posterior samples x0_hat ~ p(x_0 | x_t): the rule that solves the noise
       from x_s keeps q(x_{t-1}) iff Cov(x0_hat, x_s) = sqrt(alpha_bar_s).  For s = t that always holds;
       for s = t + 1 it depends on how the previous step made x_t, so it is not a correction
       p(x_{t-1} | x_t, x_0) at all; after a marginal or deterministic step it fails.
    result: e_hat, k, b (the affine map of eq. 10: x_{t-1} = k x_t + b), pushforward and target (the two
    densities of eq. 7 for the Dirac kernel), A, B, x_prev_rule (x_{t-1} = A x0_hat + B x_s), var_error and
    cov_next (Var(x_{t-1}) - 1 and Cov(x0_hat, x_{t+1}) after a "marginal" / "deterministic" / "DDPM" step, in
    the alpha_bar's; var_error_roots, x_prev_next, previous: the same in the roots c, s of _ROOTS), cov_reuse
    and cov_chain (Cov(x_t, x_{t-1} | x_0) with the reused noise and in DDPM's chain).
    """
    d = Derivation("Which noise may replace the noise of F_{t-1}, and the deterministic correction as a Dirac delta  "
                   "[UDM eq. 7, 10-11]")
    e_hat, x0_hat, x0_prime = sp.symbols("e_hat x0_hat x0_prime")
    ab_s, A_s, B_s, V = sp.Symbol("alpha_bar_s", positive=True), sp.Symbol("A_s"), sp.Symbol("B_s"), sp.Symbol("V")
    C_ddpm, C_reuse, dens = sp.symbols("C_q C_r q_1")
    x_s, p = sp.Symbol("x_s", real=True), sp.Function("p")
    Nf = sp.Function("N")
    d.names = {e: r"\epsilon", alpha_bar_next: r"\bar\alpha_{t+1}", x_next: "x_{t+1}", x0_prime: r"\hat x_0'",
               n_1: "n_{t+1}", z_1: "z_{t+1}", n_0: "n_t", V: r"\operatorname{Var}(x_{t-1})",
               _Cov: r"\operatorname{Cov}(\hat x_0, x_s)", _Var: r"\operatorname{Var}[x_{t-1}\mid x_0]",
               C_reuse: r"\operatorname{Cov}_{\mathrm{reuse}}[x_t, x_{t-1}\mid x_0]",
               C_ddpm: r"\operatorname{Cov}_{\mathrm{DDPM}}[x_t, x_{t-1}\mid x_0]", dens: r"p(x_{t-1}\mid x_0)"}

    # ---- 1. the solved noise is the noise; eq. 7 fixes the marginal only -------------------------------------
    xt_expr = _F(alpha_bar_t, x_0, e)
    d.step("Given x_0, x_t = F_t(x_0, epsilon) with epsilon ~ N(0, 1) independent of x_0  [UDM eq. 1, 9]",
           sp.Eq(x_t, xt_expr))
    solved = sp.simplify(_F_inv(alpha_bar_t, x_0, xt_expr))
    d.step("Solve for the noise: e_hat = F_t^{-1}(x_0, x_t) is the noise that made x_t", sp.Eq(e_hat, solved))
    d.identity("the noise solved from (x_t, x_0) is epsilon itself, so it is N(0, 1) and independent of x_0",
               solved, e)
    xp_reuse = _F(alpha_bar_prev, x_0, solved)
    d.step("Feed it to F_{t-1} [UDM eq. 10]: the law of x_{t-1} given x_0 is that of F_{t-1}(x_0, epsilon)",
           sp.Eq(x_prev, xp_reuse))
    mean_r, var_r = gaussian_moments(xp_reuse, [e])
    d.identity("eq. 7 holds: x_{t-1} given x_0 has mean sqrt(alpha_bar_{t-1}) x_0", mean_r,
               sp.sqrt(alpha_bar_prev) * x_0)
    d.identity("eq. 7 holds: x_{t-1} given x_0 has variance 1 - alpha_bar_{t-1}", var_r, 1 - alpha_bar_prev)
    # DDPM's forward chain [DDPM eq. 2]: x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) e', x_{t-1} ~ q(x_{t-1} | x_0)
    e1, e2 = sp.symbols("epsilon_1 epsilon_2", real=True)
    xp_chain = _F(alpha_bar_prev, x_0, e1)
    xt_chain = sp.sqrt(alpha_bar_t / alpha_bar_prev) * xp_chain + sp.sqrt(1 - alpha_bar_t / alpha_bar_prev) * e2
    cov_reuse = _cov(xt_expr, xp_reuse, [e])
    cov_chain = sp.powsimp(sp.factor(_cov(xt_chain, xp_chain, [e1, e2])))
    d.step("Eq. 7 constrains the marginal only; the joint of (x_t, x_{t-1}) given x_0 is left free. Reuse and DDPM's "
           "forward chain [DDPM eq. 2] give different covariances", sp.Tuple(sp.Eq(C_reuse, cov_reuse),
                                                                       sp.Eq(C_ddpm, cov_chain)))
    d.identity("DDPM's chain has the same marginal q(x_t | x_0)", _var(xt_chain, [e1, e2]), 1 - alpha_bar_t)
    gap = sp.sqrt(1 - alpha_bar_prev) * (sp.sqrt(1 - alpha_bar_t) - sp.sqrt(alpha_bar_t) * sp.sqrt(1 - alpha_bar_prev)
                                         / sp.sqrt(alpha_bar_prev))
    d.identity("the two joints differ by sqrt(1 - ab_{t-1}) (sqrt(1 - ab_t) - sqrt(ab_t (1 - ab_{t-1}) / ab_{t-1}))",
               cov_reuse - cov_chain, gap)
    d.identity("which is nonzero (at ab_t = 1/2, ab_{t-1} = 7/10)", bool(gap.subs(NUMERIC_POINT) != 0), True)

    # ---- 2. eq. 10 -> 11: the deterministic kernel is a Dirac delta ---------------------------------------
    k_val = sp.diff(xp_reuse.subs(e, _F_inv(alpha_bar_t, x_0, x_t)), x_t)
    b_val = sp.expand(xp_reuse.subs(e, _F_inv(alpha_bar_t, x_0, x_t)) - k_val * x_t)
    d.step("Eq. 10 with x_t free: x_{t-1} = F_{t-1}(x_0, F_t^{-1}(x_0, x_t)) = k x_t + b, an affine map with k > 0",
           sp.Tuple(sp.Eq(k, k_val), sp.Eq(b, b_val)))
    kp = sp.Symbol("k", positive=True)
    sift = sp.integrate(sp.DiracDelta(x_prev - kp * x_t - b) * p(x_t), (x_t, -sp.oo, sp.oo))
    d.step("A deterministic map has the kernel delta(x_{t-1} - k x_t - b) [UDM eq. 11]; integrated against a density "
           "p it is the change of variables (sympy's DiracDelta rule)",
           sp.Eq(sp.Integral(sp.DiracDelta(x_prev - k * x_t - b) * p(x_t), (x_t, -sp.oo, sp.oo)), sift.subs(kp, k)))

    def normal(y, mean, var):
        return sp.exp(-(y - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)

    pushed = sift.replace(p, sp.Lambda(x_t, normal(x_t, sp.sqrt(alpha_bar_t) * x_0, 1 - alpha_bar_t)))
    pushed = pushed.subs({kp: k_val, b: b_val})
    target = normal(x_prev, sp.sqrt(alpha_bar_prev) * x_0, 1 - alpha_bar_prev)
    d.step("With p = q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t), the left side of eq. 7 is",
           sp.Eq(dens, sp.simplify(pushed)))
    d.identity("eq. 7 for the Dirac kernel: the pushforward is N(x_{t-1}; sqrt(ab_{t-1}) x_0, 1 - ab_{t-1}) "
               "(log-densities agree)",
               sp.expand_log(sp.log(pushed), force=True), sp.expand_log(sp.log(target), force=True))

    # ---- 3. on data N(0, 1): solving the noise from x_t versus from x_{t+1} --------------------------------
    post = gaussian_posterior_mean().result
    # x_t = sqrt(ab_t)(x_0 + sigma_t n) with sigma_t^2 = (1 - ab_t)/ab_t; prior m = 0, s = 1
    ve = {sp.Symbol("m", real=True): 0, sp.Symbol("s", positive=True): 1,
          sp.Symbol("sigma_n", positive=True): sp.sqrt((1 - alpha_bar_t) / alpha_bar_t)}
    post_mean = sp.simplify(post["mean"].subs(ve).subs(sp.Symbol("x", real=True), x_t / sp.sqrt(alpha_bar_t)))
    post_var = sp.simplify(post["variance"].subs(ve))
    d.identity("posterior of N(0, 1) data (gaussian_posterior_mean with m = 0, s = 1): mean sqrt(ab_t) x_t",
               post_mean, sp.sqrt(alpha_bar_t) * x_t)
    d.identity("posterior of N(0, 1) data: variance 1 - ab_t", post_var, 1 - alpha_bar_t)
    sample_t = sp.sqrt(alpha_bar_t) * x_t + sp.sqrt(1 - alpha_bar_t) * n_0
    d.step("The sampler at step t, on data x_0 ~ N(0, 1) (every VP marginal is N(0, 1)): an exact posterior sample "
           "x0_hat ~ p(x_0 | x_t) [UDM eq. 3]", sp.Eq(x0_hat, sample_t))
    rule = sp.expand(_F(alpha_bar_prev, x0_hat, _F_inv(ab_s, x0_hat, x_s)))
    A_val, B_val = rule.coeff(x0_hat), rule.coeff(x_s)
    d.step("Solve the noise from x_s and feed it to F_{t-1}: x_{t-1} = A_s x0_hat + B_s x_s",
           sp.Tuple(sp.Eq(A_s, A_val), sp.Eq(B_s, B_val)))
    V_rule = A_s**2 + B_s**2 + 2 * A_s * B_s * _Cov
    d.step("With Var(x0_hat) = Var(x_s) = 1, its variance is", sp.Eq(V, V_rule))
    d.identity("Var(x_{t-1}) - 1 = 2 A_s B_s (Cov(x0_hat, x_s) - sqrt(ab_s)): q(x_{t-1}) = N(0, 1) is kept iff "
               "Cov(x0_hat, x_s) = sqrt(ab_s), the covariance of q(x_0, x_s)",
               (V_rule - 1).subs({A_s: A_val, B_s: B_val}), 2 * A_val * B_val * (_Cov - sp.sqrt(ab_s)))

    # The rest is computed in the roots c = sqrt(alpha_bar), s = sqrt(1 - alpha_bar) of the three times, where
    # every expression is a polynomial over powers of s: zero is tested modulo c^2 + s^2 = 1 (_circle_residue).
    cn, sn, ct, st, cp, sq = _ROOTS
    x_any = sp.Symbol("u", real=True)  # x_t ~ N(0, 1), however it was produced
    x0h_t = ct * x_any + st * n_0
    reuse_t = cp * x0h_t + sq * (x_any - ct * x0h_t) / st
    d.identity("s = t: Cov(x0_hat, x_t) = sqrt(ab_t) whatever step produced x_t ~ N(0, 1), so Var(x_{t-1}) = 1",
               _circle_residue(_var(reuse_t, [x_any, n_0]) - 1), sp.Integer(0))
    # s = t + 1: x_{t+1} ~ N(0, 1); the previous step drew x0' ~ p(x_0 | x_{t+1}) and made x_t from it
    x0p = cn * x_next + sn * n_1
    c0, c1 = P.posterior_mean_coefs(cn**2, ct**2)                  # DDPM's mu_tilde for the step t+1 -> t
    previous = {
        "marginal": ct * x0p + st * z_1,
        "deterministic": ct * x0p + st * (x_next - cn * x0p) / sn,
        "DDPM": c0 * x0p + c1 * x_next + sp.sqrt(P.posterior_variance(cn**2, ct**2)) * z_1,
    }
    noises = [x_next, n_1, z_1, n_0]
    A1, B1 = cp - sq * cn / sn, sq / sn
    x0h = {name: ct * xt_prev + st * n_0 for name, xt_prev in previous.items()}
    x_prev_next = {name: cp * x0h[name] + sq * (x_next - cn * x0h[name]) / sn for name in previous}
    covs = {name: _cov(x0h[name], x_next, noises) for name in previous}
    errors = {name: _var(x_prev_next[name], noises) - 1 for name in previous}
    cov_want = {"marginal": ct**2 * cn, "deterministic": ct**2 * cn + ct * st * sn, "DDPM": cn}
    cov_text = {"marginal": "ab_t sqrt(ab_(t+1))", "DDPM": "sqrt(ab_(t+1))",
                "deterministic": "ab_t sqrt(ab_(t+1)) + sqrt(ab_t (1 - ab_t) (1 - ab_(t+1)))"}
    C_step = {k_: sp.Symbol(f"C_{k_[0]}") for k_ in previous}
    V_step = {k_: sp.Symbol(f"V_{k_[0]}") for k_ in ("marginal", "deterministic")}
    A_n, B_n = sp.symbols("A_n B_n")
    d.names.update({C_step[k_]: rf"\operatorname{{Cov}}_{{\mathrm{{{k_}}}}}(\hat x_0, x_{{t+1}})" for k_ in previous})
    d.names.update({V_step[k_]: rf"\operatorname{{Var}}_{{\mathrm{{{k_}}}}}(x_{{t-1}})" for k_ in V_step})
    d.names.update({A_n: "A_{t+1}", B_n: "B_{t+1}"})
    d.step("s = t + 1: x0_hat reads x_{t+1} only through x_t, so Cov(x0_hat, x_{t+1}) = sqrt(ab_t) Cov(x_t, x_{t+1}), "
           "which eq. 7 does not fix: it depends on the step x_{t+1} -> x_t (from x0' ~ p(x_0 | x_{t+1}); marginal, "
           "deterministic, DDPM)", sp.Tuple(*[sp.Eq(C_step[k_], _from_roots(cov_want[k_])) for k_ in previous]))
    for name in previous:
        d.identity(f"after a {name} step: Cov(x0_hat, x_{{t+1}}) = {cov_text[name]}",
                   _circle_residue(covs[name] - cov_want[name]), sp.Integer(0))
    err_want = {name: 2 * A1 * B1 * (cov_want[name] - cn) for name in ("marginal", "deterministic")}
    err_shown = {"marginal": -2 * A_n * B_n * (1 - alpha_bar_t) * sp.sqrt(alpha_bar_next),
                 "deterministic": 2 * A_n * B_n * sp.sqrt(1 - alpha_bar_t) * (
                     sp.sqrt(alpha_bar_t) * sp.sqrt(1 - alpha_bar_next)
                     - sp.sqrt(alpha_bar_next) * sp.sqrt(1 - alpha_bar_t))}
    d.step("Then Var(x_{t-1}) - 1 (computed by gaussian_moments over x_{t+1}, n_{t+1}, z_{t+1}, n_t) after a marginal "
           "and after a deterministic step, with A_{t+1} > 0 and B_{t+1} > 0 (step 9 at s = t + 1): the one too small, "
           "the other too large, since ab_{t+1} < ab_t",
           sp.Tuple(*[sp.Eq(V_step[k_] - 1, err_shown[k_]) for k_ in V_step]))
    for k_ in V_step:
        d.identity(f"the {k_} line above is 2 A B (Cov - sqrt(ab_(t+1))) written out",
                   _circle_residue(_to_roots(err_shown[k_].subs({A_n: A1, B_n: B1})) - err_want[k_]), sp.Integer(0))
    point = {r: v for r, v in zip(_ROOTS, _roots_at(NUMERIC_POINT))}
    for name in ("marginal", "deterministic"):
        d.identity(f"after a {name} step, noise solved from x_{{t+1}}: Var(x_{{t-1}}) - 1 "
                   f"= 2 A B (Cov - sqrt(ab_(t+1)))",
                   _circle_residue(errors[name] - err_want[name]), sp.Integer(0))
        direct = float(errors[name].subs(point))
        d.identity(f"  which is nonzero: {direct:+.4f} at ab_(t+1), ab_t, ab_(t-1) = 0.3, 0.5, 0.7",
                   bool(abs(direct) > 1e-3), True)
    d.identity("after a DDPM step (x_t ~ q(x_t | x_{t+1}, x0')) it survives, Var(x_{t-1}) = 1: Cov(x_t, x_{t+1}) is "
               "sqrt(alpha_{t+1}), the forward chain's, so x_{t+1} tells nothing more about x_0 than x_t",
               _circle_residue(errors["DDPM"]), sp.Integer(0))
    # the estimate from x_{t+1} itself: the two-step DDIM jump x_{t+1} -> x_{t-1}; x_t plays no part
    jump = cp * x0p + sq * (x_next - cn * x0p) / sn
    d.identity("with x0' ~ p(x_0 | x_{t+1}) in place of x0_hat the rule is the 2-step jump from x_{t+1} (DDIM's "
               "skipping): Var(x_{t-1}) = 1, and x_t is never used", _circle_residue(_var(jump, [x_next, n_1]) - 1),
               sp.Integer(0))

    d.conclude("The noise solved from (x_t, x_0) is the noise that made x_t, so F_{t-1} fed with it keeps eq. 7; "
               "the deterministic kernel is a Dirac delta whose pushforward of q(x_t | x_0) is q(x_{t-1} | x_0); "
               "noise solved from x_{t+1} keeps the marginal only if Cov(x0_hat, x_{t+1}) = sqrt(ab_{t+1}), which a "
               "marginal step, for one, breaks",
               sp.Tuple(sp.Eq(e_hat, e),
                        sp.Eq(sp.Integral(sp.DiracDelta(x_prev - k * x_t - b)
                                          * Nf(x_t, sp.sqrt(alpha_bar_t) * x_0, 1 - alpha_bar_t), (x_t, -sp.oo, sp.oo)),
                              Nf(x_prev, sp.sqrt(alpha_bar_prev) * x_0, 1 - alpha_bar_prev)),
                        sp.Eq(V - 1, 2 * A_s * B_s * (_Cov - sp.sqrt(ab_s)))))
    var_error = {name: sp.factor(_from_roots(err_want[name])) for name in err_want}
    var_error["DDPM"] = sp.Integer(0)
    d.result.update(e_hat=solved, k=k_val, b=b_val, x_prev_rule=rule, A=A_val, B=B_val, var_error=var_error,
                    var_error_roots=errors, cov_next={name: _from_roots(cov_want[name]) for name in cov_want},
                    x_prev_next=x_prev_next, previous=previous, pushforward=pushed, target=target,
                    cov_reuse=cov_reuse, cov_chain=cov_chain, ab_s=ab_s, x_s=x_s, x0_hat=x0_hat)
    return d


@functools.lru_cache(maxsize=None)
def udm_training_objective() -> Derivation:
    """The cross-entropy -log N(x_0; G_t(x_t), sigma_bar_t^2 I) is the weighted MSE, and x0_loss is it with
    the weight 2 sigma_bar_t^2 / d.  [UDM eq. 4-6]

    result: neg_log_q (in S = ||x_0 - G_t||^2, sigma_bar, d), const, weight = 1 / (2 sigma_bar^2),
    x0_loss_term = S / d (what diffedu's x0_loss averages), sigma_bar2_opt = M / d.
    """
    d = Derivation("The training objective: cross-entropy of a Gaussian estimate = weighted MSE  [UDM eq. 4-6]")
    q1, L1, L, CE, L0, g, mu, m2, w = sp.symbols("q_1 L_1 L H L_0 g mu m_2 w")
    d.names = {G: r"\mathcal{G}_t", sigma_bar: r"\bar\sigma_t", S2: r"\lVert x_0 - \mathcal{G}_t(x_t)\rVert^2",
               M: r"\mathbb{E}\lVert x_0 - \mathcal{G}_t\rVert^2", q1: r"q(x_{0,i}\mid x_t)",
               L1: r"-\log q(x_{0,i}\mid x_t)", L: r"-\log q(x_0\mid x_t)", CE: r"H_t",
               L0: r"\mathcal{L}_{x_0, t}", m2: r"\mathbb{E}[x_0^2\mid x_t]", mu: r"\mathbb{E}[x_0\mid x_t]"}
    X = sps.Normal("X", G, sigma_bar)
    pdf = sps.density(X)(x_0)
    d.step("q(x_0 | x_t) = N(x_0; G_t(x_t), sigma_bar_t^2 I) [UDM eq. 4]; one coordinate's density (sympy.stats)",
           sp.Eq(q1, pdf))
    nll1 = sp.expand(sp.expand_log(-sp.log(pdf), force=True))
    nll1_form = (x_0 - G) ** 2 / (2 * sigma_bar**2) + sp.log(2 * sp.pi * sigma_bar**2) / 2
    d.step("Its negative log: a squared error over 2 sigma_bar_t^2 and a constant", sp.Eq(L1, nll1_form))
    d.identity("-log N(x; G, sigma_bar^2) = (x - G)^2 / (2 sigma_bar^2) + log(2 pi sigma_bar^2) / 2", nll1,
               sp.expand(sp.expand_log(nll1_form, force=True)))
    const = dim / 2 * sp.log(2 * sp.pi * sigma_bar**2)
    nll = S2 / (2 * sigma_bar**2) + const
    d.step("The d coordinates are independent given x_t, so their logs add (S = ||x_0 - G_t||^2)", sp.Eq(L, nll))
    xs, gs = sp.symbols("y_1:4", real=True), sp.symbols("g_1:4", real=True)
    three = sum(sp.expand_log(-sp.log(sps.density(sps.Normal(f"Y{i}", gs[i], sigma_bar))(xs[i])), force=True)
                for i in range(3))
    d.identity("checked at d = 3: the sum of three coordinates' -log densities",
               sp.expand(three), sp.expand(nll.subs({S2: sum((xs[i] - gs[i]) ** 2 for i in range(3)), dim: 3})))
    H = M / (2 * sigma_bar**2) + const
    d.step("The cross-entropy [UDM eq. 5] averages it over x_0 and x_t = F_t(x_0, eps); with sigma_bar_t fixed the log "
           "is a constant and what is left is the weighted MSE [UDM eq. 6]", sp.Eq(CE, H))
    s2_opt = [r for r in sp.solve(sp.diff(H, sigma_bar), sigma_bar) if r.is_positive][0] ** 2
    d.step("sigma_bar_t is not trained: the cross-entropy is least where dH/dsigma_bar = 0, the estimate made "
           "afterwards [UDM eq. 4]", sp.Eq(sigma_bar**2, s2_opt))
    d.identity("the best sigma_bar_t^2 is the mean squared error per coordinate, M / d", s2_opt, M / dim)
    # the weight does not move the minimiser: for one x_t, w E[(x_0 - g)^2 | x_t] = w (m_2 - 2 g mu + g^2)
    risk = w * (m2 - 2 * g * mu + g**2)
    g_opt = sp.solve(sp.diff(risk, g), g)[0]
    d.step("For each t (G_t is free per t) and each x_t, w E[(x_0 - g)^2 | x_t] with any weight w > 0 is least at",
           sp.Eq(g, g_opt))
    d.identity("the minimiser is E[x_0 | x_t] whatever the weight", g_opt, mu)
    x0_term = S2 / dim
    d.step("diffedu's x0_loss averages (x0_model - x_0)^2 over the batch and the d coordinates with t uniform in 1..T: "
           "per t, S / d, the cross-entropy reweighted by 2 sigma_bar_t^2 / d", sp.Eq(L0, x0_term))
    d.identity("S / d = (2 sigma_bar^2 / d) (-log q - d/2 log(2 pi sigma_bar^2))",
               x0_term, 2 * sigma_bar**2 / dim * (nll - const))
    d.conclude("The cross-entropy of the Gaussian estimate is the MSE weighted by 1/(2 sigma_bar_t^2) plus a constant "
               "[UDM eq. 6]; x0_loss is the same MSE with the weight 2 sigma_bar_t^2 / d, so it has the same minimiser "
               "E[x_0 | x_t], and sigma_bar_t^2 is estimated afterwards as the MSE per coordinate",
               sp.Tuple(sp.Eq(L, nll), sp.Eq(L0, 2 * sigma_bar**2 / dim * (L - const)), sp.Eq(sigma_bar**2, M / dim)))
    d.result.update(neg_log_q=nll, const=const, weight=1 / (2 * sigma_bar**2), x0_loss_term=x0_term,
                    sigma_bar2_opt=s2_opt, neg_log_q_1d=nll1)
    return d


def points(n: int, seed: int) -> dict:
    """0 < alpha_bar_prev < 1, 0 < sigma < sqrt(1 - alpha_bar_prev), 0 < sigma_tilde < 1, noises ~ N(0, 1)."""
    pts = sample_points({alpha_bar_prev, sigma}, n, seed)
    rng = np.random.default_rng(seed + 1)
    pts.update({sigma_tilde: rng.uniform(0.01, 0.99, n), e: rng.standard_normal(n), z: rng.standard_normal(n)})
    return pts


def _corr(key):
    return corrections_keep_the_marginal().result[key]


PAIRS = (
    Pair(EC.ddim_sigma_from_sigma_tilde, lambda: _corr("sigma"), (alpha_bar_prev, sigma_tilde), ref="[UDM eq. 13]",
         points=points),
    Pair(EC.sigma_tilde_from_ddim_sigma, lambda: _corr("sigma_tilde"), (alpha_bar_prev, sigma), ref="[UDM eq. 13]",
         points=points),
    Pair(EC.partial_noise, lambda: _corr("noise"), (e, z, sigma_tilde), ref="[UDM eq. 13]", points=points),
)

WAIVERS = {
    "diffedu.samplers.estimate_correct.sample_estimate_correct": "the loop over partial_noise (paired) and F",
    "diffedu.samplers.estimate_correct.sigma_tilde_for_eta": "ddim_sigma and sigma_tilde_from_ddim_sigma (both paired) "
                                                             "along a grid",
    "diffedu.samplers.estimate_correct.x0_model_from_eps": "adapter around param.x0_from_eps (paired)",
    "diffedu.samplers.estimate_correct.x0_loss": "a Monte Carlo objective over a network, not a closed form",
}
