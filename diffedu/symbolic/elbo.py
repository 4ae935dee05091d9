"""Derivation 2b: the ELBO as L_T + sum of L_{t-1} + L_0, the weight of L_{t-1}, and the two
reverse variances of DDPM.  [DDPM eq. 3, 5, 12, §3.2]

The decomposition is an identity between log-densities, checked pointwise in one dimension (the
isotropic case factorises over coordinates) for a chain of T = 3 steps with symbolic
alpha_1, alpha_2, alpha_3 and a Gaussian model with any means m_t and standard deviations sigma_t.
The two steps the DDPM notes state without proof are derived: Bayes on a forward step,
q(x_t | x_{t-1}) = q(x_{t-1} | x_t, x_0) q(x_t | x_0) / q(x_{t-1} | x_0) for t >= 2, and the
telescoping of the ratios q(x_t | x_0) / q(x_{t-1} | x_0).  Then, for Gaussian data
x_0 ~ N(c, sigma_data^2), the true reverse q(x_{t-1} | x_t) is Gaussian with a variance that runs
from beta_tilde_t (one point, sigma_data = 0) to beta_t (N(0, 1) data): the two ends of DDPM §3.2.
`build(T, posterior)` builds it from any posterior (mean, variance); the tests feed it a wrong one.
Imports: sympy, ._core, .forward, .posterior.
"""
from __future__ import annotations

import functools

import sympy as sp

from ._core import (Derivation, alpha_bar_prev, alpha_bar_t, alpha_t, beta_t, canonical, eps, eps_theta, sigma,
                    x_0, x_prev, x_t)
from .forward import Normal, gaussian_moments
from .posterior import ddpm_posterior, gaussian_kl, log_normal, vlb_term

sigma_data = sp.Symbol("sigma_data", nonnegative=True)  # standard deviation of Gaussian data x_0 ~ N(c, sigma_data^2)
c = sp.Symbol("c", real=True)  # mean of the data (the point itself when sigma_data = 0)
t_, T_ = sp.symbols("t T", integer=True, positive=True)

# 0 < alpha_bar_t < alpha_bar_{t-1} < 1 as alpha_bar_{t-1} = a^2, alpha_bar_t = a^2 b^2 (0 < a, b < 1): every
# square root of an alpha becomes a or b, so a sum of Gaussian log-densities is rational apart from its logs
_a, _b = sp.symbols("a b", positive=True)
_ROOTS = {alpha_bar_prev: _a**2, alpha_bar_t: _a**2 * _b**2}


def log_density_residual(expr, roots=None) -> sp.Tuple:
    """What is left of a sum of Gaussian log-densities: an empty Tuple exactly when it vanishes for every x.

    Such a sum is a quadratic in its unsigned real symbols (x's, means) plus sum_i c_i log(v_i) with
    rational c_i.  It is 0 everywhere iff every second derivative, every first derivative at 0, the
    rational part at 0 and prod_i v_i^(2 c_i) - 1 cancel to 0: small rational identities, one per
    coefficient, which `sympy.cancel` decides.  The result holds the coefficients that do not cancel.
    `roots` maps each symbol under a square root to a square (default: alpha_bar_{t-1} = a^2,
    alpha_bar_t = a^2 b^2 after `canonical`).
    """
    e = canonical(expr) if roots is None else expr
    e = e.subs(_ROOTS if roots is None else roots)
    gens = sorted((s for s in e.free_symbols if s.is_positive is not True and s.is_nonnegative is not True), key=str)
    at0 = {g: 0 for g in gens}
    left = []
    for i, g in enumerate(gens):
        de = sp.diff(e, g)
        left.append(de.subs(at0))
        left += [sp.diff(de, h) for h in gens[i:]]
        left += [sp.diff(de, h, k) for j, h in enumerate(gens[i:]) for k in gens[i + j:]]  # 0 for a quadratic
    quad, ratio = [], sp.Integer(1)
    for term in sp.Add.make_args(sp.expand(e.subs(at0))):
        logs = term.atoms(sp.log)
        if not logs:
            quad.append(term)
            continue
        (lg,) = logs
        coef = sp.cancel(term / lg)
        if not coef.is_Rational:
            raise ValueError(f"{term} is not a rational multiple of one log")
        ratio *= lg.args[0] ** (2 * coef)
    left += [sp.Add(*quad), ratio - 1]
    return sp.Tuple(*[r for r in (sp.cancel(x) for x in left) if r != 0])


ZERO = sp.Tuple()  # what log_density_residual leaves when the identity holds


def _at(expr, ab, abp):
    """A one-step expression (in alpha_bar_t, alpha_bar_{t-1}, x_t, x_0) at a given pair of alpha_bars."""
    return canonical(expr).subs({alpha_bar_t: ab, alpha_bar_prev: abp}, simultaneous=True)


def default_posterior():
    """(mu_tilde, beta_tilde) of q(x_{t-1} | x_t, x_0), as `ddpm_posterior` derives them.  [DDPM eq. 7]"""
    post = ddpm_posterior().result
    return post["mu_tilde"], post["beta_tilde"]


def _shown(d, name, tex):
    """A symbol that stands for a density or a term in the displayed steps, with its LaTeX."""
    s = sp.Symbol(name, real=True)
    d.names[s] = tex
    return s


def build(T: int = 3, posterior=None) -> Derivation:
    """The derivation for a chain of T steps; `posterior` = (mean, variance) of q(x_{t-1} | x_t, x_0) in
    x_t, x_0, alpha_bar_t, alpha_bar_prev (default: the derived one).  A wrong posterior fails verify()."""
    mu_tilde, beta_tilde = posterior if posterior is not None else default_posterior()
    d = Derivation(f"The ELBO as L_T + sum of L_(t-1) + L_0, checked for T = {T}  [DDPM eq. 3, 5, 12, §3.2]")
    L, L_T, L_0 = sp.symbols("L L_T L_0", real=True)
    L_tm1 = _shown(d, "L_tm1", "L_{t-1}")
    E_bound = _shown(d, "B", r"\mathbb{E}_q\left[\log q(x_{1:T} \mid x_0) - \log p(x_{0:T})\right]")
    lq_chain = _shown(d, "Q", r"\log q(x_{1:T} \mid x_0)")
    lp_chain = _shown(d, "P", r"\log p(x_{0:T})")
    lq_step = _shown(d, "q_s", r"\log q(x_t \mid x_{t-1})")
    lq_post = _shown(d, "q_p", r"\log q(x_{t-1} \mid x_t, x_0)")
    lq_t = _shown(d, "q_t", r"\log q(x_t \mid x_0)")
    lq_prev = _shown(d, "q_m", r"\log q(x_{t-1} \mid x_0)")
    lq_1, lq_T = _shown(d, "q_1", r"\log q(x_1 \mid x_0)"), _shown(d, "q_T", r"\log q(x_T \mid x_0)")
    lp_T, lp_step = _shown(d, "p_T", r"\log p(x_T)"), _shown(d, "p_s", r"\log p(x_{t-1} \mid x_t)")
    lp_0 = _shown(d, "p_0", r"\log p(x_0 \mid x_1)")
    kl_T = _shown(d, "K_T", r"\mathrm{KL}\left(q(x_T \mid x_0) \,\|\, p(x_T)\right)")
    kl_t = _shown(d, "K_t", r"\mathbb{E}_q\,\mathrm{KL}\left(q(x_{t-1} \mid x_t, x_0) \,\|\, p(x_{t-1} \mid x_t)\right)")
    E_lp0 = _shown(d, "E_0", r"-\mathbb{E}_q \log p(x_0 \mid x_1)")

    # the explicit chain: alpha_1..alpha_T, x_0..x_T, the model's means m_t and standard deviations sigma_t
    a = sp.symbols(f"alpha_1:{T + 1}", positive=True)
    xs = sp.symbols(f"x_0:{T + 1}", real=True)
    ms = sp.symbols(f"m_1:{T + 1}", real=True)
    ss = sp.symbols(f"sigma_1:{T + 1}", positive=True)
    r = sp.symbols(f"r_1:{T + 1}", positive=True)  # alpha_t = r_t^2 inside the checks
    roots = dict(zip(a, [ri**2 for ri in r]))
    ab = [sp.Integer(1)] + [sp.Mul(*a[:t]) for t in range(1, T + 1)]  # alpha_bar_0 = 1 .. alpha_bar_T

    def marg(t):  # log q(x_t | x_0)
        return log_normal(xs[t], sp.sqrt(ab[t]) * xs[0], 1 - ab[t])

    def post(t):  # log q(x_{t-1} | x_t, x_0), t >= 2
        mean = _at(mu_tilde, ab[t], ab[t - 1]).subs({x_t: xs[t], x_0: xs[0]}, simultaneous=True)
        return log_normal(xs[t - 1], mean, _at(beta_tilde, ab[t], ab[t - 1]))

    def model(t):  # log p(x_{t-1} | x_t) = log N(x_{t-1}; m_t, sigma_t^2)
        return log_normal(xs[t - 1], ms[t - 1], ss[t - 1] ** 2)

    log_q = sum(log_normal(xs[t], sp.sqrt(a[t - 1]) * xs[t - 1], 1 - a[t - 1]) for t in range(1, T + 1))
    log_p = log_normal(xs[T], 0, 1) + sum(model(t) for t in range(1, T + 1))

    d.step("The bound: Jensen's inequality gives -log p(x_0) <= L  [DDPM eq. 3]", sp.Eq(L, E_bound))
    d.step("Both chains factorise: the forward process is Markov, the model starts from p(x_T) = N(0, I)  "
           "[DDPM eq. 1-2]",
           sp.Tuple(sp.Eq(lq_chain, sp.Sum(lq_step, (t_, 1, T_))), sp.Eq(lp_chain, lp_T + sp.Sum(lp_step, (t_, 1, T_)))))

    # Bayes on one forward step, for a general t >= 2
    step_lhs = log_normal(x_t, sp.sqrt(alpha_t) * x_prev, beta_t)
    step_rhs = (log_normal(x_prev, mu_tilde, beta_tilde) + log_normal(x_t, sp.sqrt(alpha_bar_t) * x_0, 1 - alpha_bar_t)
                - log_normal(x_prev, sp.sqrt(alpha_bar_prev) * x_0, 1 - alpha_bar_prev))
    d.step("Bayes on a step t >= 2: q(x_t | x_(t-1)) = q(x_t | x_(t-1), x_0) (Markov), then turn it around  [DDPM eq. 6]",
           sp.Eq(lq_step, lq_post + lq_t - lq_prev))
    d.identity("Bayes on the forward step (Gaussians, any t >= 2): log q(x_t|x_{t-1}) = log q(x_{t-1}|x_t,x_0) "
               "+ log q(x_t|x_0) - log q(x_{t-1}|x_0)", log_density_residual(step_lhs - step_rhs), ZERO)

    ratios = sum(marg(t) - marg(t - 1) for t in range(2, T + 1))
    d.step("The ratios telescope; the t = 1 step is q(x_1 | x_0) itself, which cancels the last denominator",
           sp.Eq(sp.Sum(lq_t - lq_prev, (t_, 2, T_)) + lq_1, lq_T))
    d.identity(f"Telescoping (T = {T}): sum over t = 2..T of log q(x_t|x_0) - log q(x_(t-1)|x_0), plus log q(x_1|x_0), "
               "is log q(x_T|x_0)", log_density_residual(ratios + marg(1) - marg(T), roots), ZERO)

    terms_T = marg(T) - log_normal(xs[T], 0, 1)
    terms = {t: post(t) - model(t) for t in range(2, T + 1)}
    term_0 = -model(1)
    d.step("So the integrand regroups into one term per time  [DDPM eq. 5]",
           sp.Eq(lq_chain - lp_chain, (lq_T - lp_T) + sp.Sum(lq_post - lp_step, (t_, 2, T_)) - lp_0))
    d.identity(f"ELBO decomposition (T = {T}, explicit Gaussians, any m_t, sigma_t): log q(x_1:T|x_0) - log p(x_0:T) "
               "= [log q(x_T|x_0) - log p(x_T)] + sum_t [log q(x_(t-1)|x_t,x_0) - log p(x_(t-1)|x_t)] - log p(x_0|x_1)",
               log_density_residual(log_q - log_p - (terms_T + sum(terms.values()) + term_0), roots), ZERO)
    d.step("Under E_q each bracket is a KL divergence: the expectation over x_T (or x_(t-1)) given the rest",
           sp.Tuple(sp.Eq(L_T, kl_T), sp.Eq(L_tm1, kl_t), sp.Eq(L_0, E_lp0)))

    # L_T in closed form: no parameter
    kl = gaussian_kl().result
    ab_T = sp.Symbol("alpha_bar_T", positive=True)
    d.names[ab_T] = r"\bar\alpha_T"
    L_T_value = kl["kl"].subs({kl["m1"]: sp.sqrt(ab_T) * x_0, kl["v1"]: 1 - ab_T, kl["m2"]: 0, kl["v2"]: 1})
    d.step("L_T by the Gaussian KL: it holds no parameter of the model, a constant of training", sp.Eq(L_T, L_T_value))
    d.identity("L_T -> 0 as alpha_bar_T -> 0 (the chain forgets x_0)", L_T_value.subs(ab_T, 0), sp.Integer(0))

    # the weight of L_{t-1}
    vlb, pr = vlb_term().result, ddpm_posterior().result
    mu_theta = pr["mu_eps"].subs(eps, eps_theta)
    mean_part = (pr["mu_eps"] - mu_theta) ** 2 / (2 * sigma**2)
    M = _shown(d, "M", r"\frac{(\tilde\mu_t - \mu_\theta)^2}{2\sigma_t^2}")
    w_paper = beta_t**2 / (2 * sigma**2 * alpha_t * (1 - alpha_bar_t))
    d.step("L_(t-1): the KL of N(mu_tilde, beta_tilde) from N(mu_theta, sigma_t^2); its mean part with both means "
           "in eps-form  [DDPM eq. 11-12]", sp.Eq(M, w_paper * (eps - eps_theta) ** 2))
    d.identity("The mean part of the KL is w (eps - eps_theta)^2 with vlb_term's weight w",
               canonical(mean_part - vlb["weight"] * (eps - eps_theta) ** 2), sp.Integer(0))
    d.identity("vlb_term's weight is DDPM eq. 12's beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t))",
               vlb["weight"], w_paper)

    # the true reverse q(x_{t-1} | x_t) for Gaussian data x_0 ~ N(c, sigma_data^2)
    e1, e2 = sp.symbols("e_1 e_2", real=True)
    m_prev, v_prev = gaussian_moments(sp.sqrt(alpha_bar_prev) * (c + sigma_data * e1)
                                      + sp.sqrt(1 - alpha_bar_prev) * e2, [e1, e2])
    m_t, v_t = sp.sqrt(alpha_t) * m_prev, alpha_t * v_prev + beta_t  # one more step of the chain
    q_prev, q_t = _shown(d, "q_a", r"q(x_{t-1})"), _shown(d, "q_b", r"q(x_t)")
    d.step("Gaussian data x_0 ~ N(c, sigma_data^2): the marginals are Gaussian (merging Gaussians)  [DDPM eq. 4]",
           sp.Tuple(sp.Eq(q_prev, Normal(m_prev, v_prev)), sp.Eq(q_t, Normal(m_t, v_t))))
    rev = (log_normal(x_t, sp.sqrt(alpha_t) * x_prev, beta_t) + log_normal(x_prev, m_prev, v_prev)
           - log_normal(x_t, m_t, v_t))
    coeffs = sp.collect(sp.expand(rev), x_prev, evaluate=False)
    rev_var = sp.factor(-1 / (2 * coeffs[x_prev**2]))
    rev_mean = sp.factor(coeffs[x_prev] * rev_var)
    V_rev = _shown(d, "V", r"\operatorname{Var}[x_{t-1} \mid x_t]")
    d.step("Bayes without x_0, q(x_(t-1)|x_t) = q(x_t|x_(t-1)) q(x_(t-1)) / q(x_t), and complete the square",
           sp.Eq(V_rev, rev_var))
    d.identity("For Gaussian data the true reverse q(x_{t-1} | x_t) is exactly N(mean, variance)",
               log_density_residual(rev - log_normal(x_prev, rev_mean, rev_var)), ZERO)
    var_x0 = sigma_data**2 * (1 - alpha_bar_t) / (alpha_bar_t * sigma_data**2 + 1 - alpha_bar_t)  # Var[x_0 | x_t]
    d.identity("Law of total variance: Var[x_{t-1}|x_t] = beta_tilde_t + coef_x0^2 Var[x_0|x_t]",
               rev_var, beta_tilde + pr["coef_x0"] ** 2 * var_x0)
    d.identity("Data N(0, 1): the true reverse variance is beta_t", rev_var.subs(sigma_data, 1), beta_t)
    d.identity("Data N(0, 1): the true reverse mean is sqrt(alpha_t) x_t", rev_mean.subs({sigma_data: 1, c: 0}),
               sp.sqrt(alpha_t) * x_t)
    d.identity("One data point x_0 = c: the true reverse variance is beta_tilde_t", rev_var.subs(sigma_data, 0),
               beta_tilde)
    d.identity("One data point x_0 = c: the true reverse mean is mu_tilde(x_t, c)", rev_mean.subs(sigma_data, 0),
               mu_tilde.subs(x_0, c))
    kl_v = sp.diff(kl["kl"].subs(kl["m2"], kl["m1"]), kl["v2"])  # d KL(N(m, v) || N(m, s^2)) / d s^2
    d.identity("d KL(N(m, v) || N(m, s^2)) / d s^2 = 0 at s^2 = v: the best sigma_t^2 is the true reverse variance",
               kl_v.subs(kl["v2"], kl["v1"]), sp.Integer(0))

    normal_data = _shown(d, "V_N", r"\operatorname{Var}[x_{t-1} \mid x_t]_{x_0 \sim \mathcal{N}(0, 1)}")
    point_data = _shown(d, "V_c", r"\operatorname{Var}[x_{t-1} \mid x_t]_{x_0 = c}")
    d.conclude("The bound is L_T (no parameters) + the L_(t-1), each a weighted eps error + C, + the decoder term L_0  "
               "[DDPM eq. 5, 12]",
               sp.Tuple(sp.Eq(L, L_T + sp.Sum(L_tm1, (t_, 2, T_)) + L_0),
                        sp.Eq(L_tm1, w_paper * (eps - eps_theta) ** 2 + sp.Symbol("C"))))
    d.conclude("The best sigma_t^2 is the true reverse variance; its two ends are DDPM's two choices [DDPM §3.2]: "
               "beta_t for x_0 ~ N(0, 1), beta_tilde_t for one point",
               sp.Tuple(sp.Eq(normal_data, beta_t), sp.Eq(point_data, sp.Symbol("beta_tilde_t"))))
    d.result.update(T=T, alphas=a, xs=xs, means=ms, sigmas=ss, alpha_bars=tuple(ab), log_q=log_q, log_p=log_p,
                    L_T=terms_T, L_terms=terms, L_0=term_0, L_T_kl=L_T_value, alpha_bar_T=ab_T,
                    weight=vlb["weight"], reverse_variance=rev_var, reverse_mean=rev_mean, data_mean=c,
                    data_std=sigma_data)
    return d


@functools.lru_cache(maxsize=None)
def elbo_decomposition() -> Derivation:
    """The ELBO as L_T + sum of L_{t-1} + L_0 for T = 3, the L_{t-1} weight, and beta_t vs beta_tilde_t as the
    true reverse variance.  [DDPM eq. 3, 5, 12, §3.2]"""
    return build(3)
