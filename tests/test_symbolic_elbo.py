"""elbo_decomposition: the derivation holds, is displayed as the papers write it, fails on a broken
posterior, and agrees with the code (vlb_weight, vlb_weights) and with Monte Carlo in float64."""
import numpy as np
import pytest
import sympy as sp
import torch

import diffedu as d
import diffedu.posterior as P
import test_symbolic_display as display
from diffedu import symbolic as S
from diffedu.symbolic import elbo
from diffedu.symbolic.posterior import log_normal
from diffedu.symbolic._core import (alpha_bar_prev, alpha_bar_t, alpha_t, beta_t, canonical, evaluate, rel_err,
                                    sample_points, sigma, x_0, x_t)

s = S.symbols()


@pytest.fixture
def registered(monkeypatch):
    """elbo_decomposition in S.DERIVATIONS, so the display tests run on it whether or not it is registered."""
    monkeypatch.setitem(S.DERIVATIONS, "elbo_decomposition", elbo.elbo_decomposition)


def test_the_decomposition_holds():
    deriv = elbo.elbo_decomposition()
    assert deriv.verify() == []
    assert len(deriv.identities) >= 10 and deriv.conclusions


@pytest.mark.parametrize("check", [display.test_every_derivation_ends_in_a_boxed_conclusion,
                                   display.test_every_checked_identity_is_shown_with_its_verdict,
                                   display.test_displayed_maths_uses_the_papers_symbols])
def test_it_is_displayed_like_every_derivation(registered, check):
    check("elbo_decomposition")


def _notes_completing_the_square():
    """The DDPM notes' line: 1/(1 - alpha_bar_t) where 1/(1 - alpha_bar_{t-1}) belongs (precision and x_0 term)."""
    precision = alpha_t / beta_t + 1 / (1 - alpha_bar_t)
    linear = sp.sqrt(alpha_t) / beta_t * x_t + sp.sqrt(alpha_bar_prev) / (1 - alpha_bar_t) * x_0
    return linear / precision, 1 / precision


def _dropped_factor():
    mu, var = elbo.default_posterior()
    return mu.subs(sp.sqrt(alpha_bar_prev), 1), var  # the sqrt(alpha_bar_{t-1}) of the x_0 coefficient dropped


def _beta_instead_of_beta_tilde():
    mu, _ = elbo.default_posterior()
    return mu, beta_t  # DDPM's other sigma_t^2 is not the posterior variance


@pytest.mark.parametrize("broken", [_notes_completing_the_square, _dropped_factor, _beta_instead_of_beta_tilde],
                         ids=["notes-erratum", "dropped-factor", "beta-for-beta-tilde"])
def test_a_broken_posterior_is_reported(broken):
    deriv = elbo.build(2, broken())
    failing = deriv.verify()
    for text in ("Bayes on the forward step", "ELBO decomposition (T = 2", "One data point x_0 = c"):
        assert any(f.startswith(text) for f in failing), (text, failing)
    assert "FAILS" in deriv._repr_markdown_()


def test_a_wrong_telescoping_is_reported():
    """Stopping the telescoping at q(x_{T-1} | x_0) (an off-by-one) must fail."""
    deriv = elbo.elbo_decomposition()
    r = deriv.result
    xs, ab = r["xs"], r["alpha_bars"]
    T = r["T"]
    wrong_T = log_normal(xs[T - 1], sp.sqrt(ab[T - 1]) * xs[0], 1 - ab[T - 1]) - log_normal(xs[T], 0, 1)
    roots = {a: sp.Symbol(f"r{i}", positive=True) ** 2 for i, a in enumerate(r["alphas"])}
    lhs = r["log_q"] - r["log_p"]
    assert elbo.log_density_residual(lhs - (r["L_T"] + sum(r["L_terms"].values()) + r["L_0"]), roots) == elbo.ZERO
    assert elbo.log_density_residual(lhs - (wrong_T + sum(r["L_terms"].values()) + r["L_0"]), roots) != elbo.ZERO


# ---- paired with the code that runs ---------------------------------------------------------------------

def test_the_derived_weight_is_vlb_weight_in_float64():
    w = elbo.elbo_decomposition().result["weight"]
    point = sample_points({alpha_bar_t, alpha_bar_prev, sigma}, 200, seed=3)
    derived = evaluate(canonical(w), point)
    code = P.vlb_weight(point[alpha_bar_t], point[alpha_bar_prev], point[sigma] ** 2)
    assert np.max(rel_err(derived, code)) < 1e-12


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_vlb_weights_along_a_schedule_are_the_derived_weight(variance):
    sched = d.Schedule(d.linear_betas(1000))
    w = sp.lambdify((alpha_bar_t, alpha_bar_prev, sigma), canonical(elbo.elbo_decomposition().result["weight"]))
    ab = sched.alpha_bar.double().numpy()
    sigma2 = (sched.beta if variance == "beta" else sched.posterior_variance).double().numpy()
    derived = w(ab[2:], ab[1:-1], np.sqrt(sigma2[2:]))
    code = d.vlb_weights(sched, variance).double().numpy()[2:]
    assert np.max(rel_err(derived, code)) < 1e-9
    assert bool(torch.isnan(d.vlb_weights(sched, variance)[0]))


def _chain_numbers(T=3):
    alphas = np.array([0.9, 0.7, 0.5])[:T]
    ks = np.array([0.6, 0.8, 0.9])[:T]  # the model's mean m_t = k_t x_t
    sig = np.array([0.3, 0.5, 0.6])[:T]
    return alphas, ks, sig


def test_per_term_values_match_monte_carlo():
    """Sample x_1:3 ~ q(. | x_0): the pointwise identity holds in float64, and each term's Monte Carlo mean is
    its closed form: L_T the Gaussian KL, L_{t-1} the expected KL of the posterior from the model step."""
    deriv = elbo.elbo_decomposition()
    r = deriv.result
    T, xs, a, ms, ss = r["T"], r["xs"], r["alphas"], r["means"], r["sigmas"]
    alphas, ks, sig = _chain_numbers(T)
    rng = np.random.default_rng(0)
    n, x0 = 400_000, 0.8
    chain = [np.full(n, x0)]
    for t in range(1, T + 1):
        chain.append(np.sqrt(alphas[t - 1]) * chain[-1] + np.sqrt(1 - alphas[t - 1]) * rng.standard_normal(n))
    values = {**dict(zip(a, alphas)), **dict(zip(ss, sig))}
    args = (*xs, *ms)

    def f(expr):
        fn = sp.lambdify(args, expr.subs(values), "numpy")
        means = [ks[t - 1] * chain[t] for t in range(1, T + 1)]
        return np.broadcast_to(fn(*chain, *means), (n,))

    lhs = f(r["log_q"] - r["log_p"])
    terms = {"L_T": f(r["L_T"]), "L_0": f(r["L_0"]), **{t: f(e) for t, e in r["L_terms"].items()}}
    assert np.max(np.abs(lhs - sum(terms.values()))) < 1e-9  # the identity, pointwise in float64

    ab_T = np.prod(alphas)
    L_T_closed = float(r["L_T_kl"].subs({r["alpha_bar_T"]: ab_T, x_0: x0}))
    assert abs(terms["L_T"].mean() - L_T_closed) < 4 * terms["L_T"].std() / np.sqrt(n)

    kl = S.gaussian_kl().result
    mu, var = elbo.default_posterior()
    ab = np.concatenate([[1.0], np.cumprod(alphas)])
    for t in range(2, T + 1):
        sub = {alpha_bar_t: ab[t], alpha_bar_prev: ab[t - 1]}
        kl_t = kl["kl"].subs({kl["m1"]: canonical(mu).subs(sub), kl["v1"]: canonical(var).subs(sub),
                              kl["m2"]: sp.Symbol("m"), kl["v2"]: sig[t - 1] ** 2})
        fn = sp.lambdify((x_t, x_0, sp.Symbol("m")), kl_t, "numpy")
        closed = fn(chain[t], x0, ks[t - 1] * chain[t])  # E over x_t of the KL, x_{t-1} integrated exactly
        mc = terms[t]
        assert abs(mc.mean() - closed.mean()) < 4 * mc.std() / np.sqrt(n), t


@pytest.mark.parametrize("data_std, expected", [(1.0, "beta"), (0.0, "beta_tilde"), (0.5, None)])
def test_true_reverse_variance_by_simulation(data_std, expected):
    """x_0 ~ N(0, data_std^2), run the linear schedule to t - 1 and t: the residual variance of x_{t-1} given x_t
    (a linear regression, exact for Gaussians) is the derived Var[x_{t-1} | x_t]: beta_t for N(0, 1) data,
    beta_tilde_t for one point."""
    r = elbo.elbo_decomposition().result
    sched = d.Schedule(d.linear_betas(1000))
    t = 20
    abt, abp = float(sched.alpha_bar[t]), float(sched.alpha_bar[t - 1])
    gen = torch.Generator().manual_seed(5)
    n = 400_000
    x0 = data_std * torch.randn(n, generator=gen, dtype=torch.float64)
    x_prev = abp**0.5 * x0 + (1 - abp) ** 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    x_now = (abt / abp) ** 0.5 * x_prev + (1 - abt / abp) ** 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    cov = torch.cov(torch.stack([x_prev, x_now]))
    residual = float(cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1])
    derived = float(canonical(r["reverse_variance"]).subs({alpha_bar_t: abt, alpha_bar_prev: abp,
                                                           r["data_std"]: data_std}))
    assert abs(residual - derived) / derived < 0.02
    if expected:
        target = float(sched.beta[t] if expected == "beta" else sched.posterior_variance[t])
        assert abs(derived - target) / target < 1e-9
