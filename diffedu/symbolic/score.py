"""The noised density, its score and the ideal denoiser, derived: p_t as a convolution, Tweedie, E[y | x].  [EDM eq. 2-3, 10]

Every integral over the data is Gaussian, done by completing the square (`_gaussian_integral`), so the
closed forms below are derived, not typed in; `GaussianMixture` (diffedu.models.analytic) computes the
same densities, scores and denoisers numerically and tests/test_symbolic_score.py holds them together.
Each public derivation is a private builder called with the right inputs; the tests call the builders
with a wrong one (variance sigma instead of sigma^2, a dropped s^{-d}, a flipped Tweedie sign, D = y)
and see `verify()` report it.  Symbols a caller lambdifies are module-level: x, y, z, m, v0 (the data
variance, shown as v), sig (EDM's sigma, named sigma_n), s, x_1, x_2, m_1, m_2, s_1, s_2, w_1, mu, M_2, D.
Imports: functools, sympy, ._core.
"""
from __future__ import annotations

import functools

import sympy as sp

from ._core import Derivation

x, y, z, m, x_1, x_2, m_1, m_2 = sp.symbols("x y z m x_1 x_2 m_1 m_2", real=True)
v0 = sp.Symbol("v_0", positive=True)        # the data variance v ("v" is the canonical v-prediction symbol)
sig = sp.Symbol("sigma_n", positive=True)   # EDM's noise level sigma (not _core.sigma, DDPM's reverse std)
s, s_1, s_2, w_1 = sp.symbols("s s_1 s_2 w_1", positive=True)  # scale s(t); component stds; weight of component 1
A, B, C = sp.symbols("A B C", real=True)
mu, M_2, D = sp.symbols("mu M_2 D", real=True)  # E[y | x], E[y^2 | x] and the denoiser's value at one x
p, q, N, Q = (sp.Function(n) for n in ("p", "q", "N", "Q"))
NAMES = {v0: "v", sig: r"\sigma"}


def normal(u, mean, var):
    """N(u; mean, var), the 1-D normal density."""
    return sp.exp(-(u - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def _log_zero(lhs, rhs):
    """log lhs - log rhs with every log split, so is_zero sees a rational function of the logs."""
    return sp.expand(sp.expand_log(sp.log(lhs) - sp.log(rhs), force=True))


def _numerator(expr):
    """The expanded numerator of expr over one common denominator: 0 exactly when expr is 0 (the denominators
    here are densities and variances, never 0); cheaper than cancel's gcds for the mixture's many symbols."""
    return sp.expand(sp.fraction(sp.together(expr))[0])


@functools.lru_cache(maxsize=None)
def _gauss_lemma():
    """int exp(-A w^2/2) dw over the real line, by sympy, with A a positive symbol."""
    w, a = sp.Symbol("w", real=True), sp.Symbol("A", positive=True)
    return sp.integrate(sp.exp(-a * w**2 / 2), (w, -sp.oo, sp.oo), conds="none"), w, a


def _gaussian_integral(d: Derivation, exponent, u, text: str):
    """int exp(exponent) du for an exponent quadratic in u: complete the square -A/2 (u - B/A)^2 + C + B^2/(2A)
    (a checked identity of d), then int exp(-A w^2/2) dw = sqrt(2 pi / A).  Returns (integral, B/A, 1/A):
    the integral and the mean and variance of u under the normalised integrand."""
    poly = sp.Poly(sp.expand(exponent), u)
    a, b, c = -2 * poly.coeff_monomial(u**2), poly.coeff_monomial(u), poly.coeff_monomial(1)
    lemma, w, a_pos = _gauss_lemma()
    d.step(text + f": collect the exponent as -A/2 {u}^2 + B {u} + C and complete the square",
           sp.Tuple(sp.Eq(A, sp.factor(a)), sp.Eq(B, sp.factor(b))))
    d.identity(f"{text}: the exponent = -A/2 ({u} - B/A)^2 + C + B^2/(2A)",
               exponent, -a / 2 * (u - b / a) ** 2 + c + b**2 / (2 * a))
    if not any(t.startswith("shift") for t, _ in d.steps):
        d.step(f"shift {u} by B/A: what is left is the Gaussian integral (sympy)",
               sp.Eq(sp.Integral(sp.exp(-a_pos * w**2 / 2), (w, -sp.oo, sp.oo)), lemma))
    return sp.exp(sp.factor(c + b**2 / (2 * a))) * lemma.subs(a_pos, sp.factor(a)), sp.factor(b / a), sp.factor(1 / a)


def _p_t_convolution(noise_var=lambda sg: sg**2, jacobian: bool = True) -> Derivation:
    """The builder; noise_var(sigma) = sigma (a wrong kernel) or jacobian = False (no s^{-d}) make checks fail."""
    d = Derivation("The noised density: p_t(x) = s^{-d} [p_data * N(0, sigma^2 I)](x/s)  [EDM eq. 10; EDM notes §1.2]",
                   names=dict(NAMES))
    n_var = noise_var(sig)
    d.step("x = s (y + sigma n) with y ~ p_data, n ~ N(0, I) independent: z = y + sigma n has the density of a sum, "
           "the convolution q = p_data * N(0, sigma^2)", sp.Eq(q(z), sp.Integral(p(y) * N(z - y), (y, -sp.oo, sp.oo))))
    density = sp.diff(Q(x / s), x)
    d.step("x = s z: P(x_t <= x) = Q(x/s) with Q the distribution function of z; differentiate in x",
           sp.Eq(p(x), density.subs(density.atoms(sp.Subs).pop(), q(x / s))))
    factor = 1 / s if jacobian else sp.Integer(1)
    d.identity("the chain rule gives p_t(x) = q(x/s) / s in one dimension", sp.cancel(density / density.atoms(sp.Subs).pop()),
               factor)
    jac = sp.Matrix([s * x_1, s * x_2]).jacobian([x_1, x_2]).det()
    d.step("in d dimensions x = s z has Jacobian determinant s^d (here d = 2), so p_t(x) = s^{-d} q(x/s)",
           sp.Eq(sp.Symbol("J"), jac))
    d.identity("the Jacobian of x = s z in d = 2 is s^2 = s^d", jac, s**2)
    # Gaussian data y ~ N(m, v): the convolution integral, done by completing the square in y
    exponent = -(y - m) ** 2 / (2 * v0) - (z - y) ** 2 / (2 * n_var)
    d.step("Gaussian data y ~ N(m, v): q(z) is the integral over y of N(y; m, v) N(z - y; 0, sigma^2)",
           sp.Eq(q(z), sp.Integral(normal(y, m, v0) * normal(z - y, 0, n_var), (y, -sp.oo, sp.oo))))
    integral, _, _ = _gaussian_integral(d, exponent, y, "the integral over y")
    q_z = integral / sp.sqrt(2 * sp.pi * v0) / sp.sqrt(2 * sp.pi * n_var)
    target = normal(z, m, v0 + sig**2)
    d.step("so the convolution of two Gaussians is Gaussian, with the variances added", sp.Eq(q(z), target))
    d.identity("p_data * N(0, sigma^2) = N(m, v + sigma^2) for Gaussian data", _log_zero(q_z, target), sp.Integer(0))
    p_t = factor * q_z.subs(z, x / s)
    direct = normal(x, s * m, s**2 * (v0 + sig**2))  # x = s y + s sigma n: mean s m, variance s^2 (v + sigma^2)
    d.step("the density of x = s (y + sigma n) itself: mean s m and variance s^2 (v + sigma^2)", sp.Eq(p(x), direct))
    d.identity("s^{-1} q(x/s) = N(x; s m, s^2 (v + sigma^2)) in one dimension", _log_zero(p_t, direct), sp.Integer(0))
    # d = 2, isotropic: N(0, sigma^2 I) and N(m, v I) factorise, so the convolution is a product of 1-D ones
    kernel2 = sp.exp(-(x_1**2 + x_2**2) / (2 * n_var)) / (2 * sp.pi * n_var)
    d.identity("in d = 2 the isotropic kernel N(0, sigma^2 I) is a product of 1-D kernels",
               _log_zero(kernel2, normal(x_1, 0, n_var) * normal(x_2, 0, n_var)), sp.Integer(0))
    q2 = q_z.subs({z: x_1 / s, m: m_1}) * q_z.subs({z: x_2 / s, m: m_2})
    p_t2 = (factor**2 if jacobian else factor) * q2
    direct2 = normal(x_1, s * m_1, s**2 * (v0 + sig**2)) * normal(x_2, s * m_2, s**2 * (v0 + sig**2))
    d.identity("s^{-2} q(x_1/s) q(x_2/s) = the density of x = s (y + sigma n) in d = 2", _log_zero(p_t2, direct2),
               sp.Integer(0))
    d.conclude("The marginal of x = s (y + sigma n) is the data smoothed by N(0, sigma^2 I), read at x/s, "
               "times s^{-d}; for Gaussian data  [EDM eq. 10]",
               (sp.Eq(p(x), s ** -sp.Symbol("d") * q(x / s)), sp.Eq(p(x), direct)))
    d.result.update(q=q_z, p_t=p_t, log_p_t=sp.expand(sp.expand_log(sp.log(p_t), force=True)), p_t_2d=p_t2,
                    log_p_t_2d=sp.expand(sp.expand_log(sp.log(p_t2), force=True)))
    return d


@functools.lru_cache(maxsize=None)
def p_t_convolution() -> Derivation:
    """p_t(x) = s^{-d} [p_data * N(0, sigma^2 I)](x/s), checked for Gaussian data N(m, v).  [EDM eq. 10; EDM notes §1.2]

    result: q (the convolution at z, in z, m, v0, sig); p_t, log_p_t (in x, s, m, v0, sig: N(x; s m, s^2 (v + sigma^2)));
    p_t_2d, log_p_t_2d (d = 2, data N((m_1, m_2), v I), in x_1, x_2, s, m_1, m_2, v0, sig).
    """
    return _p_t_convolution()


def tweedie_score(mean, x_, sigma_):
    """grad log p(x; sigma) from the posterior mean: (E[y | x] - x) / sigma^2.  [EDM eq. 3; Tweedie]"""
    return (mean - x_) / sigma_**2


# the component densities N(x; m_k, s_k^2 + sigma^2) as symbols n_1, n_2: every x-derivative then goes through
# dn_k/dx = n_k (m_k - x)/(s_k^2 + sigma^2) (checked in `tweedie`), and the checks stay rational functions
n_1, n_2 = sp.symbols("n_1 n_2", positive=True)
MIXTURE = ((n_1, m_1, s_1, w_1), (n_2, m_2, s_2, 1 - w_1))


def _dx(expr):
    """d/dx of an expression in x and the component densities n_k (the chain rule through each n_k)."""
    return sp.diff(expr, x) + sum(sp.diff(expr, n_k) * n_k * (m_k - x) / (s_k**2 + sig**2) for n_k, m_k, s_k, _ in MIXTURE)


def _tweedie(form=tweedie_score) -> Derivation:
    """The builder; form(E, x, sigma) is the claimed score (a flipped sign or sigma for sigma^2 fails the check)."""
    conv = p_t_convolution().result["q"]
    E, S = sp.symbols("E S", real=True)
    d = Derivation("Tweedie's formula: grad log p(x; sigma) = (E[y | x] - x) / sigma^2  [EDM eq. 3; Tweedie]",
                   names={**NAMES, E: r"\mathbb{E}[y\mid x]", S: r"\nabla_x \log p(x;\sigma)",
                          n_1: r"\mathcal{N}_1", n_2: r"\mathcal{N}_2"})
    kernel = normal(x, y, sig**2)
    d.step("p(x; sigma) = int p_data(y) N(x; y, sigma^2) dy  (`p_t_convolution` with s = 1): differentiate under the "
           "integral; only the kernel N(x) = N(x; y, sigma^2) depends on x",
           sp.Eq(sp.Derivative(N(x), x), N(x) * (y - x) / sig**2))
    d.identity("the kernel's x-derivative is N(x; y, sigma^2) (y - x) / sigma^2", sp.diff(kernel, x),
               kernel * (y - x) / sig**2)
    d.step("so grad p = int p_data(y) N (y - x)/sigma^2 dy = p(x) (E[y | x] - x) / sigma^2: divide by p",
           sp.Eq(S, (E - x) / sig**2))
    dens, means, variances = {}, {}, {}
    for n_k, m_k, s_k, _ in MIXTURE:
        _, mean_k, var_k = _gaussian_integral(d, -(y - m_k) ** 2 / (2 * s_k**2) - (x - y) ** 2 / (2 * sig**2), y,
                                              f"component N({m_k}, {s_k}^2) times the kernel")
        means[n_k] = m_k + s_k**2 / (s_k**2 + sig**2) * (x - m_k)
        d.identity(f"the posterior mean of component {m_k} is B/A = m + s^2/(s^2 + sigma^2)(x - m)", mean_k, means[n_k])
        variances[n_k] = var_k
        dens[n_k] = conv.subs({z: x, m: m_k, v0: s_k**2})  # N(x; m_k, s_k^2 + sigma^2), from p_t_convolution
        d.step(f"component {m_k} convolves to", sp.Eq(n_k, dens[n_k]))
        d.identity(f"d/dx of component {m_k}'s density = n (m - x)/(s^2 + sigma^2), the rule the chain rule uses",
                   sp.diff(dens[n_k], x), (_dx(n_k) - sp.diff(n_k, x)).subs(n_k, dens[n_k]))
    p_n = sum(w_k * n_k for n_k, _, _, w_k in MIXTURE)
    mean_n = sum(w_k * n_k * means[n_k] for n_k, _, _, w_k in MIXTURE) / p_n
    resp = tuple(w_k * n_k / p_n for n_k, _, _, w_k in MIXTURE)
    d.step("Two-component mixture w_1 N(m_1, s_1^2) + (1 - w_1) N(m_2, s_2^2)", sp.Eq(p(x), p_n))
    d.step("and int y p_data(y) N(x; y, sigma^2) dy / p(x) = sum_k r_k(x) (m_k + s_k^2/(s_k^2 + sigma^2)(x - m_k))",
           sp.Eq(E, mean_n))
    score_n = _dx(p_n) / p_n  # d/dx log p = p'/p
    d.identity("d/dx log p(x; sigma) of the closed form = (E[y | x] - x) / sigma^2",
               _numerator(score_n - form(mean_n, x, sig)), sp.Integer(0))
    d.identity("the responsibilities sum to 1", sp.cancel(sum(resp)), sp.Integer(1))
    d.conclude("The score of the noised density is the denoising direction, scaled by 1/sigma^2  [EDM eq. 3]",
               sp.Eq(S, (E - x) / sig**2))
    full = {n_k: dens[n_k] for n_k in dens}
    d.result.update(p=p_n.subs(full), log_p=sp.log(p_n.subs(full)), score=score_n.subs(full),
                    posterior_mean=mean_n.subs(full), responsibilities=tuple(r.subs(full) for r in resp),
                    score_tweedie=tweedie_score(mean_n, x, sig).subs(full), densities=full, p_n=p_n,
                    score_n=score_n, posterior_mean_n=mean_n, component_means=means, component_variances=variances)
    return d


@functools.lru_cache(maxsize=None)
def tweedie() -> Derivation:
    """grad log p(x; sigma) = (E[y | x] - x) / sigma^2, for a two-component 1-D Gaussian mixture in closed form.  [EDM eq. 3]

    Data w_1 N(m_1, s_1^2) + (1 - w_1) N(m_2, s_2^2); results in x, sig, m_1, m_2, s_1, s_2, w_1:
    p, log_p (p(x; sigma)); score (d/dx log p); posterior_mean (E[y | x], the exact denoiser);
    responsibilities (r_1, r_2); score_tweedie ((E - x)/sigma^2).  The same in the component densities
    n_1, n_2 (symbols): p_n, score_n, posterior_mean_n, with densities = {n_k: N(x; m_k, s_k^2 + sigma^2)};
    component_means, component_variances: {n_k: E[y | x, k]}, {n_k: Var(y | x, k)}.
    """
    return _tweedie()


def _denoiser_minimiser(candidate=None) -> Derivation:
    """The builder; candidate is the claimed minimiser (None: solve for it); candidate = y, the EDM notes' "ideal
    D = y", fails the stationarity and the minimum-loss checks."""
    Dd, (J, V, P, J_0, J_y, S) = D, sp.symbols("J V P J_0 J_y S", real=True)
    d = Derivation("The ideal denoiser is the posterior mean E[y | y + n = x], not y  [EDM eq. 2; EDM notes §1.3]",
                   names={**NAMES, mu: r"\mathbb{E}[y\mid x]", M_2: r"\mathbb{E}[y^2\mid x]", Dd: r"D(x;\sigma)",
                          J: r"J(D)", V: r"\operatorname{Var}(y\mid x)", P: r"p(y\mid x)", J_0: r"\min_D J",
                          J_y: r"\frac{dJ}{dD}\Big|_{D = y}", S: r"\nabla_x \log p(x;\sigma)"})
    d.step("E ||D(y + n; sigma) - y||^2 = E_x [ int (D(x) - y)^2 p(y | x) dy ]: D(x) is one number per x, chosen "
           "pointwise", sp.Eq(J, sp.Integral((Dd - y) ** 2 * P, (y, -sp.oo, sp.oo))))
    poly = sp.Poly(sp.expand((Dd - y) ** 2), y)
    moments = {0: sp.Integer(1), 1: mu, 2: M_2}
    loss = sum(c * moments[k] for (k,), c in poly.terms())
    d.step("expand the square: the posterior moments int p(y|x) = 1, E[y|x], E[y^2|x] appear", sp.Eq(J, loss))
    grad = sp.diff(loss, Dd)
    best = sp.solve(grad, Dd)[0] if candidate is None else candidate
    d.step("dJ/dD = 0", sp.Eq(sp.Derivative(J, Dd), grad))
    d.step("[EDM notes] 'ideally D(y + n; sigma) = y': but D sees only x, and at D = y the slope is not 0 "
           "(y varies under p(y | x) while D(x) cannot)", sp.Eq(J_y, grad.subs(Dd, y)))
    d.identity("dJ/dD = 0 at D* = E[y | x]", grad.subs(Dd, best), sp.Integer(0))
    d.identity("d^2J/dD^2 = 2 > 0: a minimum", sp.diff(loss, Dd, 2), sp.Integer(2))
    d.identity("J(D) - J(D*) = (D - D*)^2: every other D loses exactly its squared distance to D*",
               loss - loss.subs(Dd, best), (Dd - mu) ** 2)
    d.identity("the loss at the minimiser is the posterior variance E[y^2|x] - E[y|x]^2", loss.subs(Dd, best), M_2 - mu**2)
    # Gaussian data N(m, v): the posterior of y given x = y + n, by completing the square
    _, g_mean, g_var = _gaussian_integral(d, -(y - m) ** 2 / (2 * v0) - (x - y) ** 2 / (2 * sig**2), y,
                                          "Gaussian data: p(y | x) from N(y; m, v) N(x; y, sigma^2)")
    d.step("Gaussian data: the posterior mean B/A, the exact denoiser", sp.Eq(mu, g_mean))
    g_loss = sp.simplify(loss.subs(Dd, best).subs({mu: g_mean, M_2: g_var + g_mean**2}))
    d.step("for Gaussian data the minimum loss is the posterior variance 1/A, > 0 for every sigma > 0",
           sp.Eq(V, sp.factor(g_loss)))
    d.identity("Gaussian data: min loss = v sigma^2 / (v + sigma^2)", g_loss, v0 * sig**2 / (v0 + sig**2))
    d.identity("... which is > 0: D = y (loss 0) is not attainable, y is not a function of x", bool(g_loss.is_positive),
               True)
    tw = tweedie().result
    means, variances, mean_n = tw["component_means"], tw["component_variances"], tw["posterior_mean_n"]
    var_n = sum(w_k * n_k * (variances[n_k] + means[n_k] ** 2) for n_k, _, _, w_k in MIXTURE) / tw["p_n"] - mean_n**2
    d.step("Tweedie (`tweedie`) turns the minimiser into the score: D* = x + sigma^2 grad log p(x; sigma), which is "
           "how the PF-ODE replaces its score by D  [EDM eq. 3-4]", sp.Eq(Dd, x + sig**2 * S))
    d.identity("mixture: D* = E[y | x] = x + sigma^2 d/dx log p(x; sigma)",
               _numerator(mean_n - x - sig**2 * tw["score_n"]), sp.Integer(0))
    d.identity("mixture: the minimum loss Var(y | x) = sigma^2 (1 + sigma^2 d^2/dx^2 log p)  (Tweedie, second order)",
               _numerator(var_n - sig**2 * (1 + sig**2 * _dx(tw["score_n"]))), sp.Integer(0))
    d.conclude("The loss is minimised by the posterior mean, and its minimum is the posterior variance, not 0  "
               "[EDM eq. 2-3]", (sp.Eq(Dd, mu), sp.Eq(J_0, V)))
    d.result.update(J=loss, D_star=best, min_loss=loss.subs(Dd, best), excess=sp.factor(loss - loss.subs(Dd, best)),
                    **{"gaussian.D": g_mean, "gaussian.posterior_variance": g_var,
                       "posterior_variance": var_n.subs(tw["densities"]), "D": tw["posterior_mean"],
                       "D_from_score": x + sig**2 * tw["score"]})
    return d


@functools.lru_cache(maxsize=None)
def denoiser_minimiser() -> Derivation:
    """argmin_D E ||D(y + n; sigma) - y||^2 = E[y | y + n = x] (not y); the minimum is the posterior variance.  [EDM eq. 2-3]

    result: J (the loss at one x in D, mu = E[y|x], M_2 = E[y^2|x]); D_star (= mu); min_loss (= M_2 - mu^2);
    excess ((D - mu)^2); "gaussian.D", "gaussian.posterior_variance" (data N(m, v), in x, m, v0, sig);
    D, D_from_score, posterior_variance (the `tweedie` mixture, in x, sig, m_1, m_2, s_1, s_2, w_1).
    """
    return _denoiser_minimiser()
