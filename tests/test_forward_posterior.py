"""q(x_t | x_0), the DDPM posterior and the parameterisations, against simulation and each other."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

import diffedu as d
from standins import SCHEDULES

unit = st.floats(0.01, 0.99)


def test_q_sample_matches_statistics():
    g = torch.Generator().manual_seed(0)
    s = d.Schedule(d.linear_betas(1000))
    n, t = 200_000, 300
    x0 = torch.full((n,), 1.5, dtype=torch.float64)
    x_t = d.q_sample(s, x0, t, torch.randn(n, generator=g, dtype=torch.float64))
    mean, var = d.q_mean_var(s, x0, t)
    se = (var / n).sqrt().item()
    assert abs(x_t.mean().item() - mean[0].item()) < 5 * se
    assert abs(x_t.var().item() / var.item() - 1) < 5 * (2 / n) ** 0.5


def test_q_sample_per_sample_times():
    s = d.Schedule(d.linear_betas(100))
    x0 = torch.ones(3, 2, dtype=torch.float64)
    eps = torch.zeros_like(x0)
    t = torch.tensor([0, 50, 100])
    x_t = d.q_sample(s, x0, t, eps)
    torch.testing.assert_close(x_t[:, 0], s.alpha_bar[t].sqrt())


def _simulate_chain(s, x0, t, g):
    """x_1..x_t by the one-step kernel x_k = sqrt(alpha_k) x_{k-1} + sqrt(beta_k) z  [DDPM eq. 2]."""
    x = x0
    xs = [x]
    for k in range(1, t + 1):
        x = s.alpha[k].sqrt() * x + s.beta[k].sqrt() * torch.randn(x.shape, generator=g, dtype=x.dtype)
        xs.append(x)
    return xs


@pytest.mark.parametrize("t", [2, 5, 12])
def test_posterior_is_the_conditional_of_the_simulated_chain(t):
    """Regress x_{t-1} on x_t (x_0 fixed) over simulated chains: slope, intercept and residual
    variance must be the posterior's coef_xt, coef_x0 x_0 and beta_tilde_t.  [DDPM eq. 6-7]"""
    g = torch.Generator().manual_seed(t)
    s = d.Schedule(d.linear_betas(20, 0.01, 0.2))
    n, x0_val = 400_000, 0.7
    xs = _simulate_chain(s, torch.full((n,), x0_val, dtype=torch.float64), t, g)
    x_prev, x_t = xs[t - 1], xs[t]
    xt_c = x_t - x_t.mean()
    slope = (xt_c * (x_prev - x_prev.mean())).sum() / (xt_c**2).sum()
    intercept = x_prev.mean() - slope * x_t.mean()
    resid_var = ((x_prev - intercept - slope * x_t) ** 2).mean()
    coef_x0, coef_xt = d.posterior_mean_coefs(s.alpha_bar[t], s.alpha_bar[t - 1])
    beta_tilde = s.posterior_variance[t]
    se_slope = (resid_var / (xt_c**2).sum()).sqrt()
    assert abs(slope - coef_xt) < 5 * se_slope
    assert abs(intercept - coef_x0 * x0_val) < 5 * se_slope * x_t.abs().mean() + 5 * (resid_var / n).sqrt()
    assert abs(resid_var / beta_tilde - 1) < 5 * (2 / n) ** 0.5


@settings(max_examples=200, deadline=None)
@given(ab_prev=unit, u=unit)
def test_eps_form_mean_equals_x0_form_mean(ab_prev, u):
    """Substituting x_0 = (x_t - sqrt(1-ab) eps)/sqrt(ab) into eq. 7 gives eq. 11."""
    ab = u * ab_prev
    x_t, eps = 0.37, -1.21
    c0, ct = d.posterior_mean_coefs(ab, ab_prev)
    mu_x0 = c0 * d.x0_from_eps(x_t, eps, ab) + ct * x_t
    a, b = d.posterior_mean_eps_coefs(ab, ab_prev)
    assert a * x_t - b * eps == pytest.approx(mu_x0, rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(ab_prev=unit, u=unit)
def test_ddim_eta_one_is_the_ddpm_posterior(ab_prev, u):
    ab = u * ab_prev
    sigma = d.ddim_sigma(ab, ab_prev, 1.0)
    assert sigma**2 == pytest.approx(d.posterior_variance(ab, ab_prev), rel=1e-10)
    k, m = d.ddim_mean_coefs(ab, ab_prev, sigma)
    c0, ct = d.posterior_mean_coefs(ab, ab_prev)
    assert (k, m) == pytest.approx((c0, ct), rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(ab_prev=unit, u=unit, eta=st.floats(0, 1))
def test_ddim_family_preserves_the_marginal(ab_prev, u, eta):
    """x_prev = k x0 + m x_t + sigma z with x_t ~ q(x_t|x0) has mean sqrt(ab_prev) x0, variance 1 - ab_prev.  [DDIM eq. 7]"""
    ab = u * ab_prev
    sigma = d.ddim_sigma(ab, ab_prev, eta)
    k, m = d.ddim_mean_coefs(ab, ab_prev, sigma)
    assert k + m * ab**0.5 == pytest.approx(ab_prev**0.5, rel=1e-10)
    assert m**2 * (1 - ab) + sigma**2 == pytest.approx(1 - ab_prev, rel=1e-10)


# --- parameterisations: every round trip is the identity ---------------------------------
values = st.floats(-5, 5)


@settings(max_examples=200, deadline=None)
@given(x0=values, eps=values, ab=st.floats(1e-4, 1 - 1e-4))
def test_parameterisation_round_trips(x0, eps, ab):
    x_t = ab**0.5 * x0 + (1 - ab) ** 0.5 * eps
    approx = lambda v: pytest.approx(v, rel=1e-7, abs=1e-7 / ab**0.5)
    assert d.x0_from_eps(x_t, eps, ab) == approx(x0)
    assert d.eps_from_x0(x_t, x0, ab) == pytest.approx(eps, rel=1e-7, abs=1e-7 / (1 - ab) ** 0.5)
    v = d.v_from_eps(x_t, eps, ab)
    assert v == pytest.approx(ab**0.5 * eps - (1 - ab) ** 0.5 * x0, rel=1e-7, abs=1e-6)
    assert d.x0_from_v(x_t, v, ab) == approx(x0)
    assert d.eps_from_v(x_t, v, ab) == pytest.approx(eps, rel=1e-7, abs=1e-6)
    score = d.score_from_eps(eps, ab)
    assert d.eps_from_score(score, ab) == pytest.approx(eps, rel=1e-12, abs=1e-12)
    assert d.x0_from_score(x_t, score, ab) == approx(x0)


def test_score_of_gaussian_data_is_exact():
    """Data N(0, 1): q(x_t) = N(0, 1), so the score is -x_t and E[eps|x_t] = sqrt(1-ab) x_t."""
    ab, x_t = 0.3, torch.linspace(-2, 2, 5, dtype=torch.float64)
    torch.testing.assert_close(d.score_from_eps((1 - ab) ** 0.5 * x_t, ab), -x_t)


def test_conversions_broadcast_per_sample_alpha_bar():
    s = d.Schedule(d.linear_betas(100))
    t = torch.tensor([10, 90])
    x_t = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    eps = torch.randn_like(x_t)
    ab = s.alpha_bar[t].reshape(2, 1, 1, 1)
    x0 = d.x0_from_eps(x_t, eps, ab)
    torch.testing.assert_close(d.q_sample(s, x0, t, eps), x_t)


def test_vlb_weights_shape_and_values():
    s = d.Schedule(d.linear_betas(1000))
    w = d.vlb_weights(s)
    assert w.shape == (1001,) and torch.isnan(w[0]) and torch.isinf(w[1])
    t = 500
    expected = s.beta[t] ** 2 / (2 * s.posterior_variance[t] * s.alpha[t] * (1 - s.alpha_bar[t]))
    torch.testing.assert_close(w[t], expected)
    # L_simple's uniform weight 1 over-weights large t relative to the bound: the bound's weight falls with t.
    assert w[2] > w[100] > w[1000]


def test_l_simple_is_zero_for_the_exact_model_of_a_point_mass():
    """Data = the single point 0: x_t = sqrt(1-ab) eps, so eps = x_t / sqrt(1-ab) exactly."""
    s = d.Schedule(d.linear_betas(100))

    def eps_model(x, t):
        return x / (1 - s.alpha_bar[t]).sqrt().reshape(-1, 1)

    loss = d.l_simple(eps_model, s, torch.zeros(64, 2, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert loss.item() < 1e-20
    bad = d.l_simple(lambda x, t: torch.zeros_like(x), s, torch.zeros(4096, 2, dtype=torch.float64),
                     generator=torch.Generator().manual_seed(0))
    assert bad.item() == pytest.approx(1.0, abs=0.05)  # E||eps||^2 per dimension


@pytest.mark.parametrize("call, match", [
    (lambda s: d.q_sample(s, torch.zeros(2, 3), 1001, torch.zeros(2, 3)), r"t must be in 0..1000"),
    (lambda s: d.q_sample(s, torch.zeros(2, 3), 1.5, torch.zeros(2, 3)), r"t must be an integer"),
    (lambda s: d.q_sample(s, torch.zeros(2, 3), torch.tensor([1.0, 2.0]), torch.zeros(2, 3)), "integer times"),
    (lambda s: d.q_sample(s, torch.zeros(2, 3), torch.tensor([1, 2, 3]), torch.zeros(2, 3)), r"shape \(B,\)"),
    (lambda s: d.q_sample(s, torch.zeros(2, 3), 5, torch.zeros(2, 4)), "eps must have the shape"),
    (lambda s: d.l_simple(lambda x, t: x, s, torch.full((2, 3), float("nan"))), "NaN"),
    (lambda s: d.l_simple(lambda x, t: x[:, :1], s, torch.zeros(2, 3)), "input's shape"),
])
def test_bad_forward_input_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call(d.Schedule(d.linear_betas(1000)))


def test_l_simple_with_given_t_and_eps_is_algorithm_1_on_those_draws():
    """l_simple(..., t=, eps=) computes ||eps - eps_theta(x_t, t)||^2 on exactly those draws; drawn from the
    generator (t first, then eps) when not given; wrong shapes or times are named."""
    s = d.Schedule(d.linear_betas(50))
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(5, 2, generator=g, dtype=torch.float64)
    t = torch.randint(1, 51, (5,), generator=g)
    eps = torch.randn(5, 2, generator=g, dtype=torch.float64)

    def model(x, t):
        return torch.tanh(x) * t[:, None] / 50

    x_t = s.alpha_bar[t].sqrt()[:, None] * x0 + (1 - s.alpha_bar[t]).sqrt()[:, None] * eps
    expected = ((eps - model(x_t, t)) ** 2).mean()
    torch.testing.assert_close(d.l_simple(model, s, x0, t=t, eps=eps), expected)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    t_drawn = torch.randint(1, 51, (5,), generator=g2)
    eps_drawn = torch.randn(x0.shape, generator=g2, dtype=x0.dtype)
    torch.testing.assert_close(d.l_simple(model, s, x0, generator=g1), d.l_simple(model, s, x0, t=t_drawn, eps=eps_drawn))
    with pytest.raises(ValueError, match=r"t must be in 1..50, got values from 0 to 0"):
        d.l_simple(model, s, x0, t=torch.zeros(5, dtype=torch.long), eps=eps)
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(5,\)"):
        d.l_simple(model, s, x0, t=t[:3], eps=eps)
    with pytest.raises(ValueError, match=r"t must hold integer times in 1..50"):
        d.l_simple(model, s, x0, t=t.double(), eps=eps)
    with pytest.raises(ValueError, match=r"eps must have the shape of x0 \(5, 2\), got \(5, 1\)"):
        d.l_simple(model, s, x0, t=t, eps=eps[:, :1])
