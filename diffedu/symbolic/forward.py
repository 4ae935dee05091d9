"""Derivation 1: merging Gaussians turns the one-step chain into q(x_t | x_0), and what alpha_bar_t
then fixes: the VE noise level, the SNR and beta_t.  [DDPM eq. 2, 4]

The rule "independent Gaussians add their variances" is itself derived here, from cumulant
generating functions, and `gaussian_moments` reuses it for DDIM's marginal-matching argument.
PAIRS holds the coefficient functions of diffedu.forward and diffedu.schedules (ve_sigma, snr,
beta_from_alpha_bar, with which Schedule builds its tables) against these derivations; WAIVERS names
their modules' public functions that are not closed forms.  The VE noise level is displayed
sigma^VE_t (`sched.sigma`), so that sigma_t keeps its meaning of DDPM's reverse standard deviation;
`Normal(mean, variance)` displays N(mean, variance) in the boxed conclusions.
Imports: sympy, diffedu.forward, diffedu.schedules, ._core, .pairing.
"""
from __future__ import annotations

import functools

import sympy as sp

from .. import forward as F
from .. import schedules as SCH
from ._core import Derivation, alpha_bar_prev, alpha_bar_t, alpha_t, beta_t, x_0, x_prev, x_t
from .pairing import Pair

_u = sp.Symbol("u", real=True)


class Normal(sp.Function):
    """N(mean, variance) for display only: renders as \\mathcal{N}(mean, variance); never evaluated."""
    nargs = 2

    def _latex(self, printer):
        return r"\mathcal{N}\left(%s,\ %s\right)" % tuple(printer._print(a) for a in self.args)


def cumulant_gf(coef) -> sp.Expr:
    """K(u) = log E[exp(u c e)] = (c u)^2 / 2 for c e with e ~ N(0, 1), from K_e(u) = u^2 / 2."""
    K_std = _u**2 / 2
    return K_std.subs(_u, coef * _u)


def gaussian_moments(expr, noises) -> tuple[sp.Expr, sp.Expr]:
    """Mean and variance of expr = a + sum_i c_i e_i with independent e_i ~ N(0, 1).

    Independent terms add their cumulant generating functions; the variance is K''(0).
    """
    expr = sp.expand(expr)
    mean = expr.subs({n: 0 for n in noises})
    coefs = [expr.coeff(n) for n in noises]
    if sp.expand(expr - mean - sum(c * n for c, n in zip(coefs, noises))) != 0:
        raise ValueError(f"{expr} is not linear in the noises {noises}")
    K = sum(cumulant_gf(c) for c in coefs)
    return mean, sp.expand(sp.diff(K, _u, 2).subs(_u, 0))


@functools.lru_cache(maxsize=None)
def merge_gaussians() -> Derivation:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps by induction on t.  [DDPM eq. 4]

    result: mean_coef = sqrt(alpha_bar_t), variance = 1 - alpha_bar_t, merged_variance (before
    alpha_t alpha_bar_{t-1} is renamed alpha_bar_t).
    """
    d = Derivation("Merging Gaussians: q(x_t | x_0) from the one-step chain  [DDPM eq. 2, 4]")
    a, b = sp.symbols("a b", positive=True)
    e1, e2, eps_t, eps_prev = sp.symbols("epsilon_1 epsilon_2 epsilon_t epsilon_tm1", real=True)
    d.names = {eps_prev: r"\epsilon_{t-1}", e1: r"e_1", e2: r"e_2"}

    K = cumulant_gf(a) + cumulant_gf(b)
    d.step("Cumulant generating functions of independent a e_1 and b e_2 (e_i ~ N(0,1)) add",
           sp.Eq(sp.Function("K")(_u), K))
    var_ab = sp.diff(K, _u, 2).subs(_u, 0)
    d.step("The variance is K''(0): the sum a e_1 + b e_2 is N(0, a^2 + b^2)", sp.Eq(sp.Symbol("Var"), var_ab))
    # a second route to the same rule: E[(a e1 + b e2)^2] with E[e_i^2] = 1, E[e1 e2] = 0
    square = sp.Poly(sp.expand((a * e1 + b * e2) ** 2), e1, e2)
    moments = {(2, 0): 1, (0, 2): 1, (1, 1): 0}
    d.identity("Var by second moments equals Var by cumulants",
               sum(c * moments[m] for m, c in square.terms()), var_ab)

    step_kernel = sp.sqrt(alpha_t) * x_prev + sp.sqrt(1 - alpha_t) * eps_t
    d.step("One step of the chain [DDPM eq. 2]", sp.Eq(x_t, step_kernel))
    # beta_t, the variance of one step q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t)
    step_variance = gaussian_moments(step_kernel, [eps_t])[1]
    hypothesis = sp.sqrt(alpha_bar_prev) * x_0 + sp.sqrt(1 - alpha_bar_prev) * eps_prev
    d.step("Induction hypothesis: q(x_{t-1} | x_0) [DDPM eq. 4 at t-1]", sp.Eq(x_prev, hypothesis))
    x_t_expr = sp.expand(step_kernel.subs(x_prev, hypothesis))
    d.step("Substitute", sp.Eq(x_t, sp.collect(x_t_expr, [x_0, eps_t, eps_prev])))

    mean, merged = gaussian_moments(x_t_expr, [eps_t, eps_prev])
    d.step("Merge the two noises: the variance is the sum of squared coefficients", sp.Eq(sp.Symbol("Var"), merged))
    rename = {alpha_t: alpha_bar_t / alpha_bar_prev}  # alpha_bar_t = alpha_t alpha_bar_{t-1}
    mean_coef = sp.powsimp(mean.coeff(x_0).subs(rename))
    variance = sp.expand(merged.subs(rename))
    d.step(r"With alpha_bar_t = alpha_t alpha_bar_{t-1}, x_t ~ N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t) [DDPM eq. 4]",
           sp.Eq(x_t, mean_coef * x_0 + sp.sqrt(variance) * sp.Symbol("epsilon")))

    base = {alpha_bar_prev: 1}  # t = 1: alpha_bar_0 = 1, x_0 carries no noise
    d.identity("Base case t = 1: one step gives N(sqrt(alpha_1) x_0, 1 - alpha_1)",
               sp.Tuple(mean.coeff(x_0), merged).subs(base), sp.Tuple(sp.sqrt(alpha_t), 1 - alpha_t))
    d.identity("Merged variance (1 - alpha_t) + alpha_t (1 - alpha_bar_{t-1}) = 1 - alpha_t alpha_bar_{t-1}",
               merged, 1 - alpha_t * alpha_bar_prev)
    d.identity("Mean coefficient sqrt(alpha_t) sqrt(alpha_bar_{t-1}) = sqrt(alpha_bar_t)", mean_coef, sp.sqrt(alpha_bar_t))
    q_t = sp.Symbol("q")
    d.names[q_t] = r"q(x_t \mid x_0)"
    d.conclude("Any t in one jump from x_0: the marginal of the chain is Gaussian  [DDPM eq. 4]",
               sp.Eq(q_t, Normal(mean_coef * x_0, variance)))
    d.result.update(mean_coef=mean_coef, variance=variance, merged_variance=merged,
                    q_mean=mean_coef * x_0, merge_rule=var_ab, step_variance=step_variance)
    return d


@functools.lru_cache(maxsize=None)
def noise_levels() -> Derivation:
    """sigma_t, SNR_t and beta_t from q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t).  [VDM eq. 3, iDDPM eq. 17]

    result: sigma = sqrt(variance) / mean_coef (x_t / sqrt(alpha_bar_t) = x_0 + sigma eps), snr =
    mean_coef^2 / variance, beta = beta_t in alpha_bar_t, alpha_bar_{t-1}.
    """
    q = merge_gaussians().result
    var_y, sigma_ve_t, snr_t = sp.symbols("V_y sigma_ve SNR_t", positive=True)
    # sigma^VE_t is the VE noise level (`sched.sigma`); sigma_t stays DDPM's reverse standard deviation
    d = Derivation("The noise level, the SNR and beta_t, all from alpha_bar_t  [EDM Tab. 1, VDM eq. 3, iDDPM eq. 17]",
                   names={var_y: r"\operatorname{Var}[y]", sigma_ve_t: r"\sigma^{\mathrm{VE}}_t"})
    e = sp.Symbol("epsilon", real=True)
    x_marg = q["mean_coef"] * x_0 + sp.sqrt(q["variance"]) * e
    d.step("q(x_t | x_0) by merging Gaussians [DDPM eq. 4]", sp.Eq(x_t, x_marg))
    y_mean, y_var = gaussian_moments(x_marg / q["mean_coef"], [e])
    d.step("Divide by the mean coefficient: y = x_t / sqrt(alpha_bar_t) has mean x_0 and variance",
           sp.Eq(var_y, sp.together(y_var)))
    s_ = sp.Symbol("s", real=True)
    sigma_ve = next(r for r in sp.solve(sp.Eq(s_**2, y_var), s_) if not r.could_extract_minus_sign())
    d.step("So y = x_0 + sigma^VE_t eps with the VE noise level sigma^VE_t = sqrt(Var[y]) > 0  [EDM Tab. 1, DDIM eq. 14]",
           sp.Eq(sigma_ve_t, sigma_ve))
    snr = q["mean_coef"] ** 2 / q["variance"]
    d.step("The signal-to-noise ratio: squared signal coefficient over noise variance  [VDM eq. 3]",
           sp.Eq(snr_t, snr))
    # alpha_t from matching the merged variance 1 - alpha_t alpha_bar_{t-1} with 1 - alpha_bar_t
    alpha_sol = sp.solve(sp.Eq(q["merged_variance"], q["variance"]), alpha_t)[0]
    d.step("Merging one step onto q(x_{t-1} | x_0) must give 1 - alpha_bar_t: solve for alpha_t",
           sp.Eq(alpha_t, alpha_sol))
    beta = q["step_variance"].subs(alpha_t, alpha_sol)
    d.step("beta_t, the variance of one step of the chain, in alpha_bar alone  [DDPM eq. 2, iDDPM eq. 17]",
           sp.Eq(beta_t, beta))
    d.identity("y has mean x_0", y_mean, x_0)
    d.identity("SNR = 1 / (sigma^VE_t)^2", snr, 1 / sigma_ve**2)
    d.identity("alpha_bar = 1 / (1 + (sigma^VE_t)^2)", 1 / (1 + sigma_ve**2), alpha_bar_t)
    d.identity("the step variance is 1 - alpha_t", q["step_variance"], 1 - alpha_t)
    d.identity("alpha_bar_t = (1 - beta_t) alpha_bar_{t-1}", (1 - beta) * alpha_bar_prev, alpha_bar_t)
    d.conclude("alpha_bar_t alone fixes the VE noise level, the SNR (= 1/(sigma^VE_t)^2) and the step variance "
               "[EDM Tab. 1, VDM eq. 3, iDDPM eq. 17]",
               sp.Tuple(sp.Eq(sigma_ve_t, sigma_ve), sp.Eq(snr_t, snr), sp.Eq(beta_t, beta)))
    d.result.update(sigma=sigma_ve, snr=snr, beta=beta, alpha=alpha_sol)
    return d


def _q(key):
    return merge_gaussians().result[key]


def _noise(key):
    return noise_levels().result[key]


PAIRS = (
    Pair(F.q_mean_var_coefs, lambda: (_q("mean_coef"), _q("variance")), (alpha_bar_t,), ("mean_coef", "variance"),
         "[DDPM eq. 4]"),
    Pair(SCH.ve_sigma, lambda: _noise("sigma"), (alpha_bar_t,), ref="[EDM Tab. 1, DDIM eq. 14]"),
    Pair(SCH.snr, lambda: _noise("snr"), (alpha_bar_t,), ref="[VDM eq. 3]"),
    Pair(SCH.beta_from_alpha_bar, lambda: _noise("beta"), (alpha_bar_t, alpha_bar_prev), ref="[iDDPM eq. 17]"),
)

WAIVERS = {
    "diffedu.forward.q_mean_var": "takes a Schedule and x0; its arithmetic is q_mean_var_coefs (paired)",
    "diffedu.forward.q_sample": "draws x_t from q_mean_var; no coefficient of its own",
    "diffedu.schedules.linear_betas": "a chosen schedule [DDPM §4], not derived; tested in tests/test_schedules.py",
    "diffedu.schedules.cosine_betas": "a chosen alpha_bar [iDDPM eq. 17] through beta_from_alpha_bar (paired); "
                                      "tested against diffusers in tests/peers",
    "diffedu.schedules.sigmoid_betas": "a chosen alpha_bar [Jabri Fig. 8] through beta_from_alpha_bar (paired); "
                                       "tested against the published pseudo-code in tests/peers",
}
