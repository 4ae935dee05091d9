"""`ddim_marginals_only` [DDIM Lemma 1, Thm. 1]: its identities hold and fail when the step is broken, and it is
paired with the code that uses it: diffedu.losses.l_simple draws x_t from exactly the derived marginal
q(x_t | x_0), and diffedu.samplers.ddim.ddim_step, fed the true noise, builds the sigma family's x_prev
(same marginal and same expected loss for every eta, a joint that depends on eta)."""
import numpy as np
import pytest
import sympy as sp
import torch

import diffedu as d
from diffedu import symbolic as S
from diffedu.losses import l_simple
from diffedu.symbolic import ddim as sym_ddim
from diffedu.symbolic._core import latex

s = S.symbols()
ab, abp = s.alpha_bar_t, s.alpha_bar_prev
SCHED = d.Schedule(d.linear_betas(1000))


@pytest.fixture(scope="module")
def derivation():
    return sym_ddim.ddim_marginals_only()


def _f(expr, *syms):
    """expr as a float64 numpy function of syms (every free symbol must be among them)."""
    missing = expr.free_symbols - set(syms)
    assert not missing, f"{expr} also depends on {missing}"
    return sp.lambdify(syms, expr, "numpy")


# ---- the derivation ---------------------------------------------------------------------------------

def test_every_identity_holds_and_the_conclusion_is_boxed(derivation):
    assert derivation.identities and derivation.verify() == []
    md = derivation._repr_markdown_()
    assert "\\boxed{" in md.split("**Conclusion.**")[-1]
    for text, _, _ in derivation.identities:
        assert f"{text}: **verified**" in md
    for _, expr in derivation.steps + derivation.conclusions:  # no code names in the displayed maths
        shown = latex(expr, derivation.names)
        assert not any(p in shown for p in ("_{bar", "_{hat", "nabla_{", "\\operatorname{log}", "\\left(("))


def test_the_marginals_and_the_loss_do_not_depend_on_sigma(derivation):
    r = derivation.result
    assert sigma_free(r["marginal_variance"]) and sigma_free(r["expected_loss_sigma"])
    assert S.is_zero(r["expected_loss_sigma"] - r["expected_loss"])
    # ... but the joint does: the covariance at sigma = 0 and at sigma > 0 differ
    cov = _f(r["covariance"], ab, abp, s.sigma)
    assert abs(cov(0.3, 0.6, 0.0) - cov(0.3, 0.6, 0.4)) > 0.05


def sigma_free(expr) -> bool:
    return S.is_zero(sp.diff(expr, s.sigma))


def _forgot_sigma():
    """The classic slip: k, m solved with sigma left out of the variance equation (DDPM's coefficients for every
    sigma), and sigma z added on top: k = sqrt(ab_prev) - sqrt(ab_t) m, m = sqrt(1 - ab_prev) / sqrt(1 - ab_t)."""
    m = sp.sqrt(1 - abp) / sp.sqrt(1 - ab)
    return sp.sqrt(abp) - sp.sqrt(ab) * m, m


def test_a_step_that_forgets_sigma_in_k_and_m_is_reported():
    text = " | ".join(sym_ddim._marginals_only(*_forgot_sigma()).verify())
    assert "Var[x_prev | x_0] = 1 - alpha_bar_prev" in text
    assert "E under q_sigma of the loss = E under the DDPM marginal" in text
    assert "d/dsigma of the expected loss is 0" in text
    assert "E[x_prev | x_0] = sqrt(alpha_bar_prev) x_0" not in text     # the mean is still right
    assert "L_simple reads only the marginal" not in text                # and the loss still reads only (c, v)


def test_a_step_that_drops_the_noise_term_is_reported():
    r = S.ddim_coefficients().result
    text = " | ".join(sym_ddim._marginals_only(r["k"], r["m"], noise=0).verify())
    assert "Var[x_prev | x_0] = 1 - alpha_bar_prev" in text and "E under q_sigma of the loss" in text


def test_a_joint_reading_objective_would_depend_on_sigma(derivation):
    # predict x_prev from x_t (an objective on the pair): its expected value moves with sigma
    r = derivation.result
    w, e_t, z = r["normals"]
    x_t = sp.sqrt(ab) * s.x_0 + sp.sqrt(1 - ab) * e_t
    pair_loss = sym_ddim.expect((r["x_prev"] - x_t) ** 2, [e_t, z])
    assert not S.is_zero(sp.diff(pair_loss, s.sigma))
    f = _f(pair_loss, s.x_0, ab, abp, s.sigma)
    assert abs(f(0.3, 0.3, 0.6, 0.0) - f(0.3, 0.3, 0.6, 0.5)) > 0.1


# ---- paired with diffedu.losses.l_simple ----------------------------------------------------------------

class Recorder(torch.nn.Module):
    """eps_theta(x, t) = a x + b, recording the (x_t, t) it is called with."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b, self.calls = a, b, []

    def forward(self, x, t):
        self.calls.append((x.clone(), t.clone()))
        return self.a * x + self.b


def _reproduce(marginal_mean_coef, marginal_variance, x0, seed, a, b):
    """l_simple's x_t and value rebuilt from the same generator, through a marginal N(c x_0, v) given in
    alpha_bar_prev (the derivation's name for the time whose marginal it is)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(1, SCHED.T + 1, (x0.shape[0],), generator=g)
    eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    alpha = SCHED.alpha_bar[t].double().numpy()[:, None]
    c = _f(marginal_mean_coef, abp)(alpha) * np.ones_like(alpha)
    v = _f(marginal_variance, abp)(alpha) * np.ones_like(alpha)
    x_t = torch.from_numpy(c) * x0 + torch.from_numpy(np.sqrt(v)) * eps
    return t, x_t, ((eps - (a * x_t + b)) ** 2).mean()


def test_l_simple_draws_x_t_exactly_from_the_derived_marginal(derivation):
    r = derivation.result
    x0 = 0.7 + 0.4 * torch.randn(512, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model = Recorder(0.3, -0.1)
    loss = l_simple(model, SCHED, x0, generator=torch.Generator().manual_seed(11))
    (x_seen, t_seen), = model.calls
    t, x_t, loss_again = _reproduce(r["marginal_mean_coef"], r["marginal_variance"], x0, 11, 0.3, -0.1)
    assert torch.equal(t_seen, t)
    assert (x_seen - x_t).abs().max() < 1e-12
    assert abs(loss.item() - loss_again.item()) < 1e-12


def test_a_broken_derivation_does_not_reproduce_l_simple():
    broken = sym_ddim._marginals_only(*_forgot_sigma()).result
    # the broken step's "marginal" still holds sigma (and may hold the later time): give them valid values
    fix = {s.sigma: sp.sqrt(1 - abp) / 2, ab: abp / 2}
    mean_coef, var = broken["marginal_mean_coef"].subs(fix), broken["marginal_variance"].subs(fix)
    x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    model = Recorder(0.3, -0.1)
    l_simple(model, SCHED, x0, generator=torch.Generator().manual_seed(12))
    _, x_t, _ = _reproduce(mean_coef, var, x0, 12, 0.3, -0.1)
    assert (model.calls[0][0] - x_t).abs().max() > 1e-2


def test_l_simple_estimates_the_derived_expected_loss(derivation):
    # Gaussian data, a linear network: E[l_simple] is the derived loss averaged over t = 1..T
    mu, sd = derivation.result["data"]
    a, b = derivation.result["model"]
    L = _f(derivation.result["expected_loss"], a, b, mu, sd, abp)
    values = dict(a=0.4, b=0.2, mu=0.5, sd=0.8)
    exact = L(values["a"], values["b"], values["mu"], values["sd"], SCHED.alpha_bar[1:].double().numpy()).mean()
    g = torch.Generator().manual_seed(5)
    x0 = values["mu"] + values["sd"] * torch.randn(400_000, 1, generator=g, dtype=torch.float64)
    model = Recorder(values["a"], values["b"])
    loss = l_simple(model, SCHED, x0, generator=torch.Generator().manual_seed(6)).item()
    # the per-sample losses, for the Monte Carlo standard error
    x_t, t = model.calls[0]
    g2 = torch.Generator().manual_seed(6)
    torch.randint(1, SCHED.T + 1, (x0.shape[0],), generator=g2)
    eps = torch.randn(x0.shape, generator=g2, dtype=x0.dtype)
    per = (eps - (values["a"] * x_t + values["b"])) ** 2
    se = per.std().item() / per.numel() ** 0.5
    assert abs(loss - exact) < 5 * se, (loss, exact, se)
    assert abs(L(values["a"] + 0.3, values["b"], values["mu"], values["sd"],
                 SCHED.alpha_bar[1:].double().numpy()).mean() - loss) > 50 * se   # the test can tell a wrong network


# ---- paired with diffedu.samplers.ddim.ddim_step -------------------------------------------------------

@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_with_the_true_noise_builds_the_sigma_family(derivation, eta):
    r = derivation.result
    w, e_t, z = r["normals"]
    t, t_prev = 700, 250                                  # a skip: any earlier time
    ab_t, ab_p = float(SCHED.alpha_bar[t]), float(SCHED.alpha_bar[t_prev])
    sigma = float(d.ddim_sigma(ab_t, ab_p, eta))
    g = torch.Generator().manual_seed(int(10 * eta) + 20)
    n = 200_000
    x0 = 0.5 + 0.8 * torch.randn(n, generator=g, dtype=torch.float64)
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    noise = torch.randn(n, generator=g, dtype=torch.float64)
    x_t = d.q_sample(SCHED, x0, t, eps)
    eps_true = d.eps_from_x0(x_t, x0, ab_t)               # the noise that made x_t: x0_hat is then x_0 itself
    x_prev, x0_hat = d.ddim_step(x_t, eps_true, ab_t, ab_p, eta, noise if sigma > 0 else None)
    assert (x0_hat - x0).abs().max() < 1e-10

    # exactly the derived step, sample by sample
    x_p = _f(r["x_prev"], s.x_0, e_t, z, ab, abp, s.sigma)(x0.numpy(), eps.numpy(), noise.numpy(), ab_t, ab_p, sigma)
    assert np.abs(x_prev.numpy() - x_p).max() < 1e-10

    # the marginal q(x_prev | x_0), the expected loss and the covariance, against Monte Carlo
    resid = x_prev - ab_p**0.5 * x0
    assert abs(resid.mean().item()) < 5 * (1 - ab_p) ** 0.5 / n**0.5
    assert abs(resid.var().item() / (1 - ab_p) - 1) < 0.02
    mu, sd = r["data"]
    a, b = r["model"]
    L = _f(r["expected_loss"], a, b, mu, sd, abp)(0.4, 0.2, 0.5, 0.8, ab_p)
    per = ((x_prev - ab_p**0.5 * x0) / (1 - ab_p) ** 0.5 - (0.4 * x_prev + 0.2)) ** 2
    assert abs(per.mean().item() - L) < 5 * per.std().item() / n**0.5
    cov = _f(r["covariance"], ab, abp, s.sigma)(ab_t, ab_p, sigma)
    mc_cov = ((x_t - ab_t**0.5 * x0) * resid).mean().item()
    assert abs(mc_cov - cov) < 0.01
    cov_other = _f(r["covariance"], ab, abp, s.sigma)(ab_t, ab_p, float(d.ddim_sigma(ab_t, ab_p, 1.0 - eta)))
    if eta != 0.5:
        assert abs(mc_cov - cov_other) > 0.05                # eta = 0 and eta = 1: different joints
