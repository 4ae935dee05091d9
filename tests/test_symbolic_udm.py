"""The unified-diffusion derivations: which noise may replace F_{t-1}'s, the Dirac kernel, the training
objective; each paired with the code that runs it, and each shown to fail when a step is broken.  [UDM eq. 4-13]"""
import dataclasses
import math

import numpy as np
import pytest
import sympy as sp
import torch

import diffedu as d
import test_symbolic_display as display
from diffedu import symbolic as S
from diffedu.symbolic import unified as U
from diffedu.symbolic._core import Derivation, alpha_bar_prev, alpha_bar_t, x_0, x_t

NEW = {"udm_noise_reuse": U.udm_noise_reuse, "udm_training_objective": U.udm_training_objective}
SCHED = d.Schedule(d.linear_betas(1000))


@pytest.mark.parametrize("name", ["udm_noise_reuse", "udm_training_objective", "corrections_keep_the_marginal",
                                  "gaussian_posterior_mean"])
def test_derivation_holds_and_renders_as_the_display_test_demands(name, monkeypatch):
    fn = NEW.get(name) or getattr(U, name)
    assert fn().verify() == []
    monkeypatch.setitem(S.DERIVATIONS, name, fn)  # until the package registers it
    display.test_every_derivation_ends_in_a_boxed_conclusion(name)
    display.test_every_checked_identity_is_shown_with_its_verdict(name)
    display.test_displayed_maths_uses_the_papers_symbols(name)


def _broken(d, index, lhs=None, rhs=None):
    """A copy of d with identity `index` replaced (the cached original is untouched)."""
    ids = list(d.identities)
    text, l0, r0 = ids[index]
    ids[index] = (text, l0 if lhs is None else lhs, r0 if rhs is None else rhs)
    return dataclasses.replace(d, identities=ids)


def _index(d, start):
    return next(i for i, (text, _, _) in enumerate(d.identities) if text.startswith(start))


# ---- udm_noise_reuse: broken steps ----------------------------------------------------------------------------

def test_noise_solved_from_x_next_in_place_of_x_t_is_reported():
    """A wrong input: the s = t check fed the x_{t+1} rule (after a marginal step) fails."""
    d = U.udm_noise_reuse()
    i = _index(d, "s = t:")
    wrong = U._circle_residue(U._var(d.result["x_prev_next"]["marginal"], [U.x_next, U.n_1, U.z_1, U.n_0]) - 1)
    bad = _broken(d, i, lhs=wrong)
    assert len(bad.verify()) == 1 and bad.verify()[0].startswith("s = t:")
    assert d.verify() == []


def test_a_wrong_sign_in_the_inverse_is_reported():
    """F_t^{-1} with + sqrt(alpha_bar_t) x_0: the solved noise is no longer the noise that made x_t."""
    d = U.udm_noise_reuse()
    e = U.e
    x_t_expr = U._F(alpha_bar_t, x_0, e)
    wrong = sp.simplify((x_t_expr + sp.sqrt(alpha_bar_t) * x_0) / sp.sqrt(1 - alpha_bar_t))
    bad = _broken(d, _index(d, "the noise solved from (x_t, x_0)"), lhs=wrong)
    assert [p for p in bad.verify() if p.startswith("the noise solved")]


def test_a_dropped_jacobian_in_the_dirac_pushforward_is_reported():
    """p(g^{-1}(y)) without the 1/k of the change of variables is not q(x_{t-1} | x_0)."""
    d = U.udm_noise_reuse()
    i = _index(d, "eq. 7 for the Dirac kernel")
    k, b = d.result["k"], d.result["b"]
    y = sp.Symbol("x_prev", real=True)
    inv = (y - b) / k
    v = 1 - alpha_bar_t
    no_jacobian = -(inv - sp.sqrt(alpha_bar_t) * x_0) ** 2 / (2 * v) - sp.log(2 * sp.pi * v) / 2
    bad = _broken(d, i, lhs=sp.expand_log(no_jacobian, force=True))
    assert len(bad.verify()) == 1


def test_a_dropped_factor_in_a_covariance_is_reported():
    d = U.udm_noise_reuse()
    i = _index(d, "after a marginal step: Cov")
    cn, sn, ct, st, cp, sq = U._ROOTS
    x0p = cn * U.x_next + sn * U.n_1
    x0h = ct * (ct * x0p + st * U.z_1) + st * U.n_0
    # claim Cov = sqrt(ab_{t+1}) (the forward joint's) after a marginal step: one factor ab_t dropped
    bad = _broken(d, i, lhs=U._circle_residue(U._cov(x0h, U.x_next, [U.x_next, U.n_1, U.z_1, U.n_0]) - cn))
    assert len(bad.verify()) == 1


def test_the_joint_gap_is_really_nonzero_and_the_marginals_really_agree():
    """Eq. 7 fixes the marginal only: two joints with equal marginals and different covariances."""
    r = U.udm_noise_reuse().result
    f = sp.lambdify((alpha_bar_t, alpha_bar_prev), r["cov_reuse"] - r["cov_chain"])
    rng = np.random.default_rng(0)
    abp = rng.uniform(0.05, 0.95, 200)
    abt = abp * rng.uniform(0.05, 0.95, 200)
    assert (f(abt, abp) > 0).all()


# ---- udm_noise_reuse: paired with the code ----------------------------------------------------------------------

@pytest.mark.parametrize("t, t_prev", [(1000, 980), (600, 550), (50, 1), (300, 100)])
def test_the_samplers_deterministic_step_is_the_derived_affine_map(t, t_prev):
    """sample_estimate_correct's deterministic correction, given x0_hat, is x_{t-1} = k x_t + b  [UDM eq. 10]."""
    r = U.udm_noise_reuse().result
    g = torch.Generator().manual_seed(t)
    x0 = torch.randn(64, 3, generator=g, dtype=torch.float64)
    xt = torch.randn(64, 3, generator=g, dtype=torch.float64)
    traj = d.sample_estimate_correct(lambda x, tt: x0, d.GaussianForward(SCHED), [t, t_prev, 0], xt, "deterministic")
    ab, abp = SCHED.alpha_bar[t].item(), SCHED.alpha_bar[t_prev].item()
    affine = sp.lambdify((alpha_bar_t, alpha_bar_prev, x_0, x_t), r["k"] * x_t + r["b"])
    torch.testing.assert_close(traj.xs[1], affine(ab, abp, x0, xt), rtol=1e-12, atol=1e-12)
    # and the noise it reuses is the derived F_t^{-1}
    inv = sp.lambdify((alpha_bar_t, x_0, x_t), U._F_inv(alpha_bar_t, x_0, x_t))
    torch.testing.assert_close(d.GaussianForward(SCHED).F_inv(x0, xt, t), inv(ab, x0, xt), rtol=1e-12, atol=1e-12)


def test_monte_carlo_with_the_package_agrees_with_the_derived_variances():
    """1-D N(0, 1) data, exact posterior samples (GaussianMixture.posterior_sample), the package's F and F^{-1}:
    Var(x_{t-1}) is 1 with the noise from x_t and 1 + the derived error with the noise from x_{t+1}."""
    data = d.GaussianMixture([[0.0]], 1.0)
    fwd = d.GaussianForward(SCHED)
    t_next, t, t_prev = 500, 400, 300
    ab = {s: SCHED.alpha_bar[s].item() for s in (t_next, t, t_prev)}
    g = torch.Generator().manual_seed(0)
    n = 400_000

    def estimate(x, s):  # x0_hat ~ p(x_0 | x_s): x_s = sqrt(ab)(x_0 + sigma n)
        return data.posterior_sample(x / math.sqrt(ab[s]), math.sqrt((1 - ab[s]) / ab[s]), g)

    x_next = torch.randn(n, 1, generator=g, dtype=torch.float64)
    x0p = estimate(x_next, t_next)
    r = U.udm_noise_reuse().result
    point = {U.alpha_bar_next: ab[t_next], alpha_bar_t: ab[t], alpha_bar_prev: ab[t_prev]}
    se = 5 * math.sqrt(2 / n)
    for name, xt in (("marginal", fwd.F(x0p, torch.randn(n, 1, generator=g, dtype=torch.float64), t)),
                     ("deterministic", fwd.F(x0p, fwd.F_inv(x0p, x_next, t_next), t))):
        assert abs(xt.var().item() - 1) < se                    # the step itself keeps q(x_t) = N(0, 1)
        x0_hat = estimate(xt, t)
        from_t = fwd.F(x0_hat, fwd.F_inv(x0_hat, xt, t), t_prev)
        from_next = fwd.F(x0_hat, fwd.F_inv(x0_hat, x_next, t_next), t_prev)
        err = float(r["var_error"][name].subs(point))
        assert abs(from_t.var().item() - 1) < se, name
        assert abs(from_next.var().item() - (1 + err)) < se, (name, from_next.var().item(), 1 + err)
        assert abs(err) > 2 * se, (name, err)                   # the failure is 10 standard errors out, at least


# ---- udm_training_objective ------------------------------------------------------------------------------------

def test_a_dropped_factor_two_in_the_weight_is_reported():
    dd = U.udm_training_objective()
    i = _index(dd, "S / d = ")
    r = dd.result
    bad = _broken(dd, i, rhs=U.sigma_bar**2 / U.dim * (r["neg_log_q"] - r["const"]))
    assert len(bad.verify()) == 1
    j = _index(dd, "the best sigma_bar_t^2")
    assert len(_broken(dd, j, rhs=U.M / (2 * U.dim)).verify()) == 1


def test_a_wrong_sign_in_the_log_density_is_reported():
    dd = U.udm_training_objective()
    i = _index(dd, "-log N(x; G, sigma_bar^2)")
    wrong = sp.expand((x_0 + U.G) ** 2 / (2 * U.sigma_bar**2) + sp.log(2 * sp.pi * U.sigma_bar**2) / 2)
    assert len(_broken(dd, i, rhs=sp.expand_log(wrong, force=True)).verify()) == 1


@pytest.mark.parametrize("forward", [d.GaussianForward(d.Schedule(d.linear_betas(50))), d.Blur(T=5, std_max=1.5)],
                         ids=["gaussian", "blur"])
def test_x0_loss_is_the_derived_cross_entropy_reweighted(forward):
    """x0_loss = batch mean of (2 sigma_bar^2 / d)(-log q(x_0 | x_t) - const), for any sigma_bar  [UDM eq. 6]."""
    r = U.udm_training_objective().result
    neg_log_q = sp.lambdify((U.S2, U.sigma_bar, U.dim), r["neg_log_q"])
    const = sp.lambdify((U.sigma_bar, U.dim), r["const"])
    seen = {}

    def model(x, t):  # a fixed nonlinear estimate G_t(x_t) that records what it was given
        seen["x"], seen["t"] = x, t
        return torch.tanh(x) * (1 + t.reshape(-1, *[1] * (x.dim() - 1)) / 10)

    x0 = torch.rand(32, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    if isinstance(forward, d.GaussianForward):
        x0 = x0.reshape(32, 36)
    loss = d.x0_loss(model, forward, x0, generator=torch.Generator().manual_seed(1))
    dim = x0[0].numel()
    sq = ((x0 - model(seen["x"], seen["t"])) ** 2).flatten(1).sum(1).numpy()
    for sigma_bar in (0.3, 1.7):
        derived = np.mean(2 * sigma_bar**2 / dim * (neg_log_q(sq, sigma_bar, dim) - const(sigma_bar, dim)))
        assert abs(loss.item() - derived) < 1e-12 * max(1.0, derived)
    # the recorded x_t really is F_t(x_0, .) at the recorded t: for the blur, exactly A_t(x_0)
    if isinstance(forward, d.Blur):
        for i in range(4):
            tt = int(seen["t"][i])
            torch.testing.assert_close(seen["x"][i:i + 1], forward.A(x0[i:i + 1], tt))


def test_a_summed_instead_of_averaged_loss_would_not_match():
    """The pairing above can fail: the per-coordinate sum is d times the derived value."""
    r = U.udm_training_objective().result
    dim = 36
    assert not math.isclose(float((2 * U.sigma_bar**2 / U.dim * (r["neg_log_q"] - r["const"]))
                                   .subs({U.S2: 5.0, U.dim: dim, U.sigma_bar: 0.5})), 5.0)


# ---- GaussianMixture.posterior_sample (added for the sample-versus-mean question) -------------------------------

@pytest.fixture(scope="module")
def mix():
    return d.GaussianMixture([[-1.0, 0.5], [1.5, -0.5], [0.0, 2.0]], [0.3, 0.5, 0.2], [0.5, 0.3, 0.2])


@pytest.mark.parametrize("sigma", [0.3, 2.0])
def test_posterior_samples_have_the_denoiser_as_mean_and_the_right_spread(mix, sigma):
    g = torch.Generator().manual_seed(0)
    x = mix.sample(3, g) + sigma * torch.randn(3, 2, generator=g, dtype=torch.float64)
    n = 200_000
    rep = x.repeat_interleave(n, 0)
    draws = mix.posterior_sample(rep, sigma, g).reshape(3, n, 2)
    torch.testing.assert_close(draws.mean(1), mix.denoiser(x, sigma), atol=5 * 2 / n**0.5, rtol=0)
    # law of total variance: sum_k r_k (posterior var_k + m_k^2) - D^2, per coordinate
    r = mix.responsibilities(x, sigma)
    var_k = mix.stds**2 * sigma**2 / (mix.stds**2 + sigma**2)
    m_k = mix.means[None] + (mix.stds**2 / (mix.stds**2 + sigma**2))[None, :, None] * (x[:, None] - mix.means[None])
    second = (r[..., None] * (var_k[None, :, None] + m_k**2)).sum(1)
    torch.testing.assert_close(draws.var(1), second - mix.denoiser(x, sigma) ** 2, atol=0.02, rtol=0.02)


def test_posterior_samples_of_noisy_data_are_data(mix):
    """x ~ p_sigma, then x_0 ~ p(x_0 | x): the pair has the joint, so x_0 has the data law (moments, per mode)."""
    g = torch.Generator().manual_seed(3)
    n, sigma = 200_000, 1.5
    x = mix.sample(n, g) + sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)
    draws = mix.posterior_sample(x, sigma, g)
    ref = mix.sample(n, g)
    torch.testing.assert_close(draws.mean(0), ref.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), torch.cov(ref.T), atol=0.03, rtol=0)
    assert mix.per_mode_frechet(draws) < 0.01


def test_posterior_sample_edge_cases(mix):
    x = mix.sample(5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(mix.posterior_sample(x, 0.0), x)                        # sigma = 0: x itself
    a = mix.posterior_sample(x, torch.tensor([0.1, 1, 2, 3, 4.0], dtype=torch.float64),
                             torch.Generator().manual_seed(5))                          # one sigma per point
    b = mix.posterior_sample(x, torch.tensor([0.1, 1, 2, 3, 4.0], dtype=torch.float64),
                             torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(a, b)
    assert mix.posterior_sample(x.float(), 1.0).dtype == torch.float32
    with pytest.raises(ValueError, match="sigma"):
        mix.posterior_sample(x, -1.0)


def test_a_hand_built_derivation_with_a_false_claim_fails():
    """The same machinery that checks the derivations rejects a wrong variance of the x_t rule."""
    bad = Derivation("t")
    x_prev_next = U.udm_noise_reuse().result["x_prev_next"]["deterministic"]
    bad.identity("Var is 1 after all", U._circle_residue(U._var(x_prev_next, [U.x_next, U.n_1, U.z_1, U.n_0]) - 1),
                 sp.Integer(0))
    assert bad.verify() != []
