"""Derivation 3: DDIM by undetermined coefficients, sigma(eta), the two open questions of the DDIM
notes as checked identities, and why training never sees the joint.  [DDIM eq. 5-7, 12, 16, Thm. 1; DDIM notes]

    ddim_coefficients     k, m of q_sigma(x_prev | x_t, x_0), the DDIM update, sigma(eta), eta_max
    open_questions        Q1 (any sub-sequence) and Q2 (sigma = 0) of [DDIM notes], as identities
    ddim_marginals_only   every sigma has the marginals q(x_t | x_0), and L_simple reads only them
                          [DDIM Lemma 1, Thm. 1, §4.2]

Notation: `alpha_bar_prev` is alpha_bar of *any* earlier time (DDIM's alpha_{tau_{i-1}}); DDIM's
alpha_t is DDPM's alpha_bar_t.  PAIRS holds diffedu.posterior's DDIM coefficient functions
against these derivations; tests/test_symbolic_ddim_marginals.py pairs `ddim_marginals_only`
with diffedu.losses.l_simple and diffedu.samplers.ddim.ddim_step.
Imports: sympy, diffedu.posterior, ._core, .forward, .pairing, .posterior.
"""
from __future__ import annotations

import functools

import sympy as sp

from .. import posterior as P
from ._core import (Derivation, alpha_bar_prev, alpha_bar_t, alpha_t, beta_t, canonical, eps, eta, sample_points, sigma,
                    tidy, x_0, x_prev, x_t, z)
from .forward import Normal, gaussian_moments
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


def expect(expr, normals) -> sp.Expr:
    """E[expr] for a polynomial expr in independent standard normals: E[w^n] = (n - 1)!! for even n, 0 for odd."""
    total = sp.Integer(0)
    for powers, coef in sp.Poly(sp.expand(expr), *normals).terms():
        moment = sp.Integer(1)
        for p in powers:
            moment *= 0 if p % 2 else sp.factorial2(p - 1)
        total += coef * moment
    return sp.expand(total)


# display symbols: the moments of x_prev given x_0
_M, _V = sp.symbols("M V", real=True)
_MOMENT_NAMES = {_M: r"\mathbb{E}[x_{\mathrm{prev}} \mid x_0]", _V: r"\operatorname{Var}[x_{\mathrm{prev}} \mid x_0]"}


@functools.lru_cache(maxsize=None)
def ddim_coefficients() -> Derivation:
    """k, m of q_sigma(x_prev | x_t, x_0) = N(k x_0 + m x_t, sigma^2) from the marginal-matching
    equations; the DDIM update; sigma(eta) and its limits.  [DDIM eq. 7, 12, 16]"""
    d = Derivation("DDIM by undetermined coefficients  [DDIM eq. 7, 12, 16; DDIM notes eq. 1-6]",
                   names={**_NAMES, **_MOMENT_NAMES})
    d.step(r"Ansatz [DDIM notes eq. 1]: $q_\sigma(x_{\mathrm{prev}} \mid x_t, x_0) = \mathcal N(k x_0 + m x_t, \sigma_t^2)$, "
           r"that is, with $z \sim \mathcal N(0, 1)$", sp.Eq(x_prev, k * x_0 + m * x_t + sigma * z))
    mean_coef, var = marginal_of_step(k, m, sigma, alpha_bar_t)
    var_shown = sp.collect(var, m)
    d.step(r"Insert $x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon_t$ and merge the two Gaussians "
           r"[DDIM notes eq. 3-4]: the mean", sp.Eq(_M, mean_coef * x_0))
    d.step("and the variance", sp.Eq(_V, var_shown))
    eqs = [sp.Eq(mean_coef, sp.sqrt(alpha_bar_prev)), sp.Eq(var, 1 - alpha_bar_prev)]
    d.step(r"Match $q(x_{\mathrm{prev}} \mid x_0) = \mathcal N(\sqrt{\bar\alpha_{\mathrm{prev}}}\, x_0, "
           r"1 - \bar\alpha_{\mathrm{prev}})$ for every $x_0$ [DDIM notes eq. 6]: two equations in $k, m$",
           sp.Tuple(eqs[0], sp.Eq(var_shown, 1 - alpha_bar_prev)))
    sol = _positive_root(sp.solve(eqs, [k, m], dict=True), m)
    k_sol, m_sol = tidy(sol[k]), tidy(sol[m])
    d.step("Solve, taking $m > 0$  [DDIM eq. 7]", sp.Tuple(sp.Eq(k, k_sol), sp.Eq(m, m_sol)))

    x0_hat, eps_hat = sp.symbols("x0_hat eps_hat", real=True)
    d.names.update({x0_hat: r"\hat x_0", eps_hat: r"\hat\epsilon"})
    mean_hat = sp.expand(k_sol * x0_hat + m_sol * (sp.sqrt(alpha_bar_t) * x0_hat + sp.sqrt(1 - alpha_bar_t) * eps_hat))
    coef_x0, coef_eps = mean_hat.coeff(x0_hat), mean_hat.coeff(eps_hat)
    update_hat = sp.Eq(x_prev, coef_x0 * x0_hat + coef_eps * eps_hat + sigma * z)
    d.step(r"Insert the network's estimates, $x_t = \sqrt{\bar\alpha_t}\,\hat x_0 + \sqrt{1 - \bar\alpha_t}\,\hat\epsilon$ "
           "[DDIM eq. 12]", update_hat)
    x0_of_eps = (x_t - sp.sqrt(1 - alpha_bar_t) * eps) / sp.sqrt(alpha_bar_t)
    update = coef_x0 * x0_of_eps + coef_eps * eps + sigma * z

    # sigma(eta): eta times the sigma at which q_sigma is the DDPM posterior  [DDIM eq. 16]
    post = ddpm_posterior().result
    beta_tilde = canonical(post["beta_tilde"])  # beta_t = 1 - alpha_bar_t / alpha_bar_prev, ab_prev = ab_{t-1}
    s = sp.Symbol("s", real=True)
    s_ddpm = tidy(_positive_root(sp.solve(sp.Eq(s**2, beta_tilde), s, dict=True), s)[s])
    d.step(r"The $\sigma_t$ at which $q_\sigma$ has the DDPM posterior's variance $\tilde\beta_t$", sp.Eq(sigma, s_ddpm))
    sigma_eta = eta * s_ddpm
    d.step(r"DDIM's family $\sigma_t(\eta)$  [DDIM eq. 16]", sp.Eq(sigma, sigma_eta))

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
    eta_max = sp.Symbol("eta_max", positive=True)
    d.step(r"The largest $\eta$: $\sigma_t(\eta)^2 = 1 - \bar\alpha_{\mathrm{prev}}$, where the coefficient of "
           r"$\hat\epsilon$ reaches 0", sp.Eq(eta_max, e_max))
    d.identity("at eta_max the eps_hat coefficient of the update is 0", (1 - alpha_bar_prev - sigma_eta**2).subs(eta, e_max),
               sp.Integer(0))
    d.conclude(r"DDIM's step keeps $q(x_{\mathrm{prev}} \mid x_0)$ for every $\sigma_t$; its coefficients, its update "
               r"and the $\eta$ family, with $\eta = 1$ the DDPM posterior and $\eta = 0$ deterministic, valid for "
               r"$\eta \le \eta_{\max}$",
               sp.Tuple(sp.Eq(k, k_sol), sp.Eq(m, m_sol), update_hat, sp.Eq(sigma, sigma_eta), sp.Eq(eta_max, e_max)))
    d.result.update(k=k_sol, m=m_sol, ddim_mean=k_sol * x_0 + m_sol * x_t, coef_x0=coef_x0, coef_eps=coef_eps,
                    update=update, sigma_eta=sigma_eta, sigma_ddpm=s_ddpm, equations=eqs, max_eta=e_max)
    return d


@functools.lru_cache(maxsize=None)
def open_questions() -> Derivation:
    """Why any sub-sequence tau may be used (Q1) and why every sigma, 0 included, is allowed (Q2).  [DDIM notes, Q1-Q2]"""
    dd = ddim_coefficients().result
    k_sol, m_sol = dd["k"], dd["m"]
    d = Derivation("The DDIM notes' open questions, as identities  [DDIM notes Q1-Q2; DDIM §4.1-4.2]",
                   names={**_NAMES, **_MOMENT_NAMES})

    used = set().union(*(e.free_symbols for e in dd["equations"])) | k_sol.free_symbols | m_sol.free_symbols
    d.step("Q1. Every symbol that the matching equations and their solution use", sp.FiniteSet(*used))
    d.identity("Q1: q(x_t | x_{t-1}) never enters: no alpha_t or beta_t in the equations or their solution",
               used & {alpha_t, beta_t}, set())
    mean_coef, var = marginal_of_step(k_sol, m_sol, sigma, alpha_bar_t)
    d.step(r"Marginal of $x_{\mathrm{prev}}$ under $q_\sigma(x_{\mathrm{prev}} \mid x_t, x_0)\, q(x_t \mid x_0)$, "
           r"with the solved $k, m$", sp.Tuple(sp.Eq(_M, mean_coef * x_0), sp.Eq(_V, var)))
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
    d.step(r"Q1: two jumps $t \to s \to \mathrm{prev}$ (any sub-sequence $\tau$), with independent $\sigma_1, \sigma_2$",
           sp.Tuple(sp.Eq(_M, sp.factor(sp.expand(mean2).coeff(x_0)) * x_0), sp.Eq(_V, sp.cancel(var2))))
    d.identity("Q1: two jumps keep the marginal: mean", sp.expand(mean2).coeff(x_0), sp.sqrt(alpha_bar_prev))
    d.identity("Q1: two jumps keep the marginal: variance", var2, 1 - alpha_bar_prev)

    d.step(r"Q2. $\sigma_t$ enters the marginal variance only through $m^2 (1 - \bar\alpha_t) + \sigma_t^2$, and the "
           r"solved $m$ makes that $1 - \bar\alpha_{\mathrm{prev}}$ for every $\sigma_t$, also $\sigma_t = 0$",
           sp.Eq(_V, var.subs(sigma, 0)))
    d.identity("Q2: the marginal variance does not depend on sigma", sp.diff(var, sigma), sp.Integer(0))
    d.identity("Q2: sigma = 0 gives the same marginal: mean", mean_coef.subs(sigma, 0), sp.sqrt(alpha_bar_prev))
    d.identity("Q2: sigma = 0 gives the same marginal: variance", var.subs(sigma, 0), 1 - alpha_bar_prev)
    d.conclude(r"From $x_t \sim q(x_t \mid x_0)$, one DDIM step to *any* earlier time, or two, lands on "
               r"$q(x_{\mathrm{prev}} \mid x_0)$ whatever $\sigma_t \ge 0$ is: no $\alpha_t$, no $\beta_t$, "
               r"no $q(x_t \mid x_{t-1})$",
               sp.Tuple(sp.Eq(_M, sp.sqrt(alpha_bar_prev) * x_0), sp.Eq(_V, 1 - alpha_bar_prev)))
    d.result.update(marginal_mean_coef=mean_coef, marginal_variance=var, used_symbols=sp.FiniteSet(*used))
    return d


def _marginals_only(k_, m_, noise=sigma) -> Derivation:
    """`ddim_marginals_only` built on the step x_prev = k_ x_0 + m_ x_t + noise z: the derived k, m and noise = sigma,
    or a broken step in a test."""
    ab, abp = alpha_bar_t, alpha_bar_prev
    mu = sp.Symbol("mu", real=True)                # data mean
    s = sp.Symbol("s", positive=True)              # data standard deviation
    a, b = sp.symbols("a b", real=True)            # the stand-in network eps_theta(x) = a x + b
    w, e_t, n_t = sp.symbols("w epsilon_t n_t", real=True)   # standard normals: data, x_t's noise, one DDPM step
    ell, L_s, L_q, C, C_q = sp.symbols("ell L_s L_q C C_q", real=True)
    q_s, q_T, eps_th = sp.symbols("q_s q_T eps_th", real=True)
    names = {**_NAMES, **_MOMENT_NAMES, ell: r"\ell(x_0, x_{\mathrm{prev}})", L_s: r"\mathbb{E}_{q_\sigma}[\ell]",
             L_q: r"\mathbb{E}_{q}[\ell]", C: r"\operatorname{Cov}_\sigma[x_t, x_{\mathrm{prev}} \mid x_0]",
             C_q: r"\operatorname{Cov}_{\mathrm{DDPM}}[x_t, x_{t-1} \mid x_0]",
             q_s: r"q_\sigma(x_{1:T} \mid x_0)", q_T: r"q_\sigma(x_T \mid x_0)", eps_th: r"\epsilon_\theta(x)",
             n_t: r"n_t"}
    d = Derivation("Training never sees the joint: every sigma has the marginals q(x_t | x_0), and L_simple reads "
                   "only them  [DDIM Lemma 1, Thm. 1, eq. 5-7]", names=names)
    t_, T_, f_t, ab_T = sp.symbols("t T f_t alpha_bar_T", positive=True)
    d.names.update({f_t: r"q_\sigma(x_{t-1} \mid x_t, x_0)", ab_T: r"\bar\alpha_T"})
    d.step(r"The $\sigma$ family's forward process [DDIM eq. 6-7]: start from $q_\sigma(x_T \mid x_0)$ and go *down*, "
           r"each $x_{t-1}$ drawn given $(x_t, x_0)$; it is not Markov (every factor reads $x_0$)",
           sp.Tuple(sp.Eq(q_s, q_T * sp.Product(f_t, (t_, 2, T_))),
                    sp.Eq(q_T, Normal(sp.sqrt(ab_T) * x_0, 1 - ab_T))))
    step = sp.Eq(x_prev, k_ * x_0 + m_ * x_t + noise * z)
    d.step(r"One factor, as a sampling step with $z \sim \mathcal N(0, 1)$ and the $k$, $m$ of `ddim_coefficients` "
           "[DDIM eq. 7]", sp.Tuple(sp.Eq(x_prev, k * x_0 + m * x_t + noise * z), sp.Eq(m, m_)))

    # induction from x_T: if x_t ~ q(x_t | x_0) then x_prev ~ q(x_prev | x_0), for every sigma
    hyp = sp.sqrt(ab) * x_0 + sp.sqrt(1 - ab) * e_t
    d.step(r"Induction hypothesis, true at $t = T$ by construction: $x_t \sim q(x_t \mid x_0)$", sp.Eq(x_t, hyp))
    x_p = sp.expand(step.rhs.subs(x_t, hyp))
    mean, var = gaussian_moments(x_p, [e_t, z])
    mean_coef = sp.expand(mean).coeff(x_0)
    d.step(r"Then $x_{\mathrm{prev}}$ given $x_0$ is Gaussian with", sp.Tuple(sp.Eq(_M, sp.factor(mean_coef) * x_0),
                                                                             sp.Eq(_V, sp.factor(var))))
    d.identity("induction step: E[x_prev | x_0] = sqrt(alpha_bar_prev) x_0 for every sigma", mean_coef, sp.sqrt(abp))
    d.identity("induction step: Var[x_prev | x_0] = 1 - alpha_bar_prev for every sigma", var, 1 - abp)

    # L_simple's term at the earlier time reads (x_0, x_prev) only  [DDIM eq. 5 with gamma = 1; DDPM eq. 14]
    eps_model = a * x_prev + b
    target = (x_prev - sp.sqrt(abp) * x_0) / sp.sqrt(1 - abp)
    integrand = (eps_model - target) ** 2
    d.step(r"$L_{\mathrm{simple}}$'s term at the earlier time [DDPM eq. 14, DDIM eq. 5]: the noise that made "
           r"$x_{\mathrm{prev}}$ from $x_0$ is $(x_{\mathrm{prev}} - \sqrt{\bar\alpha_{\mathrm{prev}}}\,x_0) / "
           r"\sqrt{1 - \bar\alpha_{\mathrm{prev}}}$, so the integrand is a function of $(x_0, x_{\mathrm{prev}})$ alone; "
           r"here with a linear stand-in network $\epsilon_\theta(x) = a x + b$", sp.Eq(ell, integrand))
    d.identity("the integrand reads x_0 and x_prev, never x_t or sigma", integrand.free_symbols & {x_t, sigma}, set())

    # Gaussian data x_0 = mu + s w; expected loss when x_prev is made by the sigma step from x_t ...
    data = {x_0: mu + s * w}
    L_sigma = expect(integrand.subs(x_prev, x_p).subs(data), [w, e_t, z])
    # ... and when x_prev is drawn directly from the DDPM marginal, as diffedu.losses.l_simple does
    x_q = sp.sqrt(abp) * x_0 + sp.sqrt(1 - abp) * eps
    L_marg = expect(integrand.subs(x_prev, x_q).subs(data), [w, eps])

    def by_monomial(L):  # collect in the network's weights a, b, each coefficient simplified (display only)
        parts = sp.collect(sp.expand(L), [a**2, a * b, a, b**2], evaluate=False)
        return sum(sp.simplify(c) * mono for mono, c in parts.items())

    d.step(r"Gaussian data $x_0 = \mu + s w$, $w \sim \mathcal N(0, 1)$: the expected loss with "
           r"$x_{\mathrm{prev}} = \sqrt{\bar\alpha_{\mathrm{prev}}}\,x_0 + \sqrt{1 - \bar\alpha_{\mathrm{prev}}}\,\epsilon$ "
           r"drawn from the marginal, as $L_{\mathrm{simple}}$ draws it", sp.Eq(L_q, by_monomial(L_marg)))
    d.step(r"and with $x_{\mathrm{prev}}$ built by the $\sigma$ step from $x_t$: the same expression, $\sigma_t$ has "
           "cancelled", sp.Eq(L_s, by_monomial(L_sigma)))
    # the expected loss of an x_prev ~ N(c x_0, v) given x_0: it reads the step only through (c, v)
    c_, v_, n_ = sp.Symbol("c", real=True), sp.Symbol("v_p", positive=True), sp.Dummy("n", real=True)
    L_cv = expect(integrand.subs(x_prev, c_ * x_0 + sp.sqrt(v_) * n_).subs(data), [w, n_])
    d.identity("L_simple reads only the marginal: E under q_sigma = the loss of N(c x_0, v) at the step's c, v",
               L_sigma, L_cv.subs({c_: mean_coef, v_: var}))
    d.identity("E under q_sigma of the loss = E under the DDPM marginal, for every sigma", L_sigma, L_marg)
    d.identity("d/dsigma of the expected loss is 0", sp.diff(L_sigma, sigma), sp.Integer(0))

    # the minimiser: the best linear eps_theta, the same for every sigma
    opt = sp.solve([sp.diff(L_marg, a), sp.diff(L_marg, b)], [a, b], dict=True)[0]
    var_x = abp * s**2 + 1 - abp        # Var[x_prev]; Cov[eps, x_prev] = sqrt(1 - abp)
    a_post = sp.sqrt(1 - abp) / var_x
    d.step(r"Its minimiser, the trained network, is $\mathbb{E}[\epsilon \mid x_{\mathrm{prev}} = x]$ (linear for "
           r"Gaussian data) and so the same for every $\sigma$",
           sp.Eq(eps_th, sp.factor(opt[a]) * (sp.Symbol("x") - sp.sqrt(abp) * mu)))
    d.identity("minimiser a* = Cov[eps, x_prev] / Var[x_prev] = sqrt(1 - abp) / (abp s^2 + 1 - abp)", opt[a], a_post)
    d.identity("minimiser b* = -a* sqrt(abp) mu", opt[b], -a_post * sp.sqrt(abp) * mu)

    # the joint of (x_t, x_prev) given x_0 does depend on sigma
    cov = expect((hyp - sp.sqrt(ab) * x_0) * (x_p - mean), [e_t, z])
    d.step(r"The joint does depend on $\sigma$: the covariance of $x_t$ and $x_{\mathrm{prev}}$ given $x_0$ is "
           r"$m (1 - \bar\alpha_t)$", sp.Eq(C, sp.factor(cov)))
    d.identity("Cov[x_t, x_prev | x_0]^2 = (1 - alpha_bar_t)(1 - alpha_bar_prev - sigma^2)", cov**2,
               (1 - ab) * (1 - abp - sigma**2))
    # DDPM's Markov joint: x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) n_t, with x_{t-1} ~ q(x_{t-1} | x_0)
    x_prev_q = sp.sqrt(abp) * x_0 + sp.sqrt(1 - abp) * eps
    x_t_markov = sp.sqrt(alpha_t) * x_prev_q + sp.sqrt(beta_t) * n_t
    cov_q = expect((x_t_markov - sp.sqrt(alpha_t * abp) * x_0) * (x_prev_q - sp.sqrt(abp) * x_0), [eps, n_t])
    d.step(r"DDPM's Markov joint, from $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,n_t$ [DDPM eq. 2]",
           sp.Eq(C_q, sp.collect(cov_q, sp.sqrt(alpha_t))))
    sigma1 = ddim_coefficients().result["sigma_eta"].subs(eta, 1)
    d.identity("at eta = 1 (prev = t - 1) the sigma joint is DDPM's Markov joint", cov.subs(sigma, sigma1), cov_q)
    corr2 = lambda c: c**2 / ((1 - ab) * (1 - abp))  # noqa: E731
    d.identity("the joints differ: Corr^2 at sigma = 0 minus Corr^2 at eta = 1 is beta_t / (1 - alpha_bar_t) > 0",
               corr2(cov.subs(sigma, 0)) - corr2(cov.subs(sigma, sigma1)), beta_t / (1 - ab))
    d.conclude(r"Every member of the $\sigma$ family has the marginals $q(x_t \mid x_0)$ (by induction from $x_T$); "
               r"$L_{\mathrm{simple}}$ reads only $(x_0, x_t)$, so its value and its minimiser $\epsilon_\theta$ are the "
               r"same for every $\sigma$, while the joint of $(x_t, x_{\mathrm{prev}})$ is not: training never sees "
               r"the joint",
               sp.Tuple(sp.Eq(_V, 1 - abp), sp.Eq(L_s, L_q), sp.Eq(C, sp.factor(cov))))
    d.result.update(x_prev=x_p, expected_loss_sigma=L_sigma, expected_loss=L_marg, integrand=integrand,
                    minimiser=(opt[a], opt[b]), covariance=cov, covariance_ddpm=cov_q, marginal_mean_coef=mean_coef,
                    marginal_variance=var, data=(mu, s), model=(a, b), normals=(w, e_t, z))
    return d


@functools.lru_cache(maxsize=None)
def ddim_marginals_only() -> Derivation:
    """DDIM Theorem 1's core: the sigma family's marginals are q(x_t | x_0) for every sigma, and L_simple
    depends on the forward process only through them, so one eps_theta serves every sigma; the joint of
    (x_t, x_prev) does depend on sigma.  Checked with Gaussian data and eps_theta(x) = a x + b.
    [DDIM Lemma 1, Thm. 1, eq. 5-7, §4.2; DDIM notes Q1]"""
    r = ddim_coefficients().result
    return _marginals_only(r["k"], r["m"])


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
