"""The unified view, derived: every correction keeps the marginal, and "partial" is the DDIM family.  [UDM eq. 9-13]

Gaussian F: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) e.  The three corrections feed
F_{t-1} the noise sqrt(1 - sigma_tilde^2) e_hat + sigma_tilde z, with e_hat = F_t^{-1}(x_0, x_t)
(sigma_tilde = 1: "marginal", 0: "deterministic").  PAIRS holds the coefficient functions of
diffedu.samplers.estimate_correct against these derivations; WAIVERS names its other public functions.
Imports: numpy, sympy, diffedu.samplers.estimate_correct, ._core, .forward, .pairing.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ..samplers import estimate_correct as EC
from ._core import Derivation, alpha_bar_prev, alpha_bar_t, sample_points, sigma, x_0
from .forward import gaussian_moments
from .pairing import Pair

sigma_tilde = sp.Symbol("sigma_tilde", positive=True)
e, z = sp.symbols("e z", real=True)
m, s, sigma_n, x = sp.symbols("m s sigma_n x", real=True)


@functools.lru_cache(maxsize=None)
def corrections_keep_the_marginal() -> Derivation:
    """Marginal constraint [UDM eq. 9] for each correction, and the map sigma_tilde <-> DDIM's sigma."""
    d = Derivation("Estimate, then correct: the marginal constraint and DDIM as a special case  [UDM eq. 9-13]")
    d.names = {sigma_tilde: r"\tilde\sigma", e: r"\epsilon", z: "z"}
    x_t = sp.sqrt(alpha_bar_t) * x_0 + sp.sqrt(1 - alpha_bar_t) * e
    e_hat = (x_t - sp.sqrt(alpha_bar_t) * x_0) / sp.sqrt(1 - alpha_bar_t)
    d.step("F_t^{-1}: the noise solved from x_t and the true x_0 is the noise that made x_t", sp.Eq(sp.Symbol("e_hat"), sp.simplify(e_hat)))
    noise = sp.sqrt(1 - sigma_tilde**2) * sp.simplify(e_hat) + sigma_tilde * z
    x_prev = sp.sqrt(alpha_bar_prev) * x_0 + sp.sqrt(1 - alpha_bar_prev) * noise
    d.step("Partial correction [UDM eq. 13]: x_{t-1} = F_{t-1}(x_0, sqrt(1 - sigma_tilde^2) e_hat + sigma_tilde z)",
           sp.Eq(sp.Symbol("x_{t-1}"), x_prev))
    mean, var = gaussian_moments(x_prev, [e, z])
    d.step("Its mean and variance over e, z (independent N(0, 1))", sp.Tuple(mean, sp.factor(var)))
    d.identity("marginal kept for every sigma_tilde: mean", mean, sp.sqrt(alpha_bar_prev) * x_0)
    d.identity("marginal kept for every sigma_tilde: variance", sp.factor(var), 1 - alpha_bar_prev)
    for name, st in (("marginal", 1), ("deterministic", 0)):
        mean_c, var_c = gaussian_moments(x_prev.subs(sigma_tilde, st), [e, z])
        d.identity(f"{name} (sigma_tilde = {st}) keeps the mean", mean_c, sp.sqrt(alpha_bar_prev) * x_0)
        d.identity(f"{name} (sigma_tilde = {st}) keeps the variance", var_c, 1 - alpha_bar_prev)
    # compare with DDIM: x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) e_hat + sigma z
    coef_z = sp.expand(x_prev).coeff(z)
    d.step("Matching the fresh-noise coefficient with DDIM's sigma [DDIM eq. 12]", sp.Eq(sigma, coef_z))
    sigma_of_tilde = coef_z
    tilde_of_sigma = sp.solve(sp.Eq(sigma, coef_z), sigma_tilde)[0]
    d.step("and back", sp.Eq(sigma_tilde, tilde_of_sigma))
    coef_e = sp.expand(x_prev).coeff(e)
    d.identity("then the reused-noise coefficient is DDIM's sqrt(1 - alpha_bar_prev - sigma^2)",
               (coef_e**2).subs(sigma_tilde, tilde_of_sigma), 1 - alpha_bar_prev - sigma**2)
    d.result.update(x_prev=x_prev, sigma=sigma_of_tilde, sigma_tilde=tilde_of_sigma, noise=noise)
    return d


@functools.lru_cache(maxsize=None)
def gaussian_posterior_mean() -> Derivation:
    """E[x_0 | x_0 + sigma n = x] for x_0 ~ N(m, s^2), by completing the square: the mixture denoiser's building block."""
    d = Derivation("Posterior mean of one Gaussian component  [EDM eq. 3]")
    d.names = {sigma_n: r"\sigma"}
    x0 = sp.Symbol("x_0", real=True)
    s_pos, sig_pos = sp.symbols("s sigma_n", positive=True)
    log_post = -(x0 - m) ** 2 / (2 * s_pos**2) - (x - x0) ** 2 / (2 * sig_pos**2)
    d.step("log p(x_0 | x) = log N(x_0; m, s^2) + log N(x; x_0, sigma^2) + const", log_post)
    poly = sp.Poly(sp.expand(log_post), x0)
    A, B = -2 * poly.coeff_monomial(x0**2), poly.coeff_monomial(x0)
    d.step("Collect: -A/2 x_0^2 + B x_0 with precision A", sp.Tuple(sp.simplify(A), sp.simplify(B)))
    mean = sp.simplify(B / A)
    d.step("The mean is B / A", sp.Eq(sp.Symbol("D(x; sigma)"), mean))
    shrink_form = m + s_pos**2 / (s_pos**2 + sig_pos**2) * (x - m)
    d.identity("= m + s^2 / (s^2 + sigma^2) (x - m), the form GaussianMixture.denoiser uses", sp.simplify(mean - shrink_form), sp.Integer(0))
    d.result.update(mean=mean, variance=sp.simplify(1 / A))
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
