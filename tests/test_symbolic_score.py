"""The noised density, Tweedie, the ideal denoiser and Fokker-Planck: derived in diffedu.symbolic.score and
.fokker_planck, held against the code that runs (GaussianMixture, Process.ode_coefs / f / g) in float64."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

import diffedu as d
import test_symbolic_display as display
from diffedu import symbolic as S
from diffedu.symbolic import fokker_planck as sym_fp
from diffedu.symbolic import processes as sym_proc
from diffedu.symbolic import score as sym_score

DERIVATIONS = {f.__name__: f for f in (sym_score.p_t_convolution, sym_score.tweedie, sym_score.denoiser_minimiser,
                                        sym_fp.pf_ode_fokker_planck)}
RTOL = 1e-10


def lam(expr, *syms):
    return sp.lambdify(syms, expr, "numpy")


def close(a, b, rtol=RTOL):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.allclose(a, b, rtol=rtol, atol=rtol), f"max |a - b| = {np.max(np.abs(a - b)):.3g}"


def t64(a):
    return torch.as_tensor(np.asarray(a, np.float64))


@pytest.mark.parametrize("name", sorted(DERIVATIONS))
def test_derivation_holds_and_concludes(name):
    der = DERIVATIONS[name]()
    assert der.steps and der.identities and der.conclusions
    assert der.verify() == []


@pytest.mark.parametrize("name", sorted(DERIVATIONS))
def test_derivation_renders_cleanly(name, monkeypatch):
    """tests/test_symbolic_display.py's checks, on these derivations (whether or not DERIVATIONS lists them yet)."""
    monkeypatch.setitem(S.DERIVATIONS, name, DERIVATIONS[name])
    display.test_every_derivation_ends_in_a_boxed_conclusion(name)
    display.test_every_checked_identity_is_shown_with_its_verdict(name)
    display.test_displayed_maths_uses_the_papers_symbols(name)


# ---- p_t_convolution ---------------------------------------------------------------------------------------
def test_p_t_matches_the_mixture_log_prob_in_one_and_two_dimensions():
    r, c = sym_score.p_t_convolution().result, sym_score
    rng = np.random.default_rng(0)
    for _ in range(5):
        m, m2, v, sg, s = rng.normal(), rng.normal(), rng.uniform(0.05, 2), rng.uniform(0.01, 5), rng.uniform(0.05, 1.5)
        x = rng.normal(scale=2, size=40)
        gm = d.GaussianMixture([[m]], math.sqrt(v))
        want = gm.log_prob(t64(x / s)[:, None], sg).numpy() - math.log(s)        # p_t = s^-1 q(x/s)
        close(lam(r["log_p_t"], c.x, c.s, c.m, c.v0, c.sig)(x, s, m, v, sg), want)
        x12 = rng.normal(scale=2, size=(40, 2))
        gm2 = d.GaussianMixture([[m, m2]], math.sqrt(v))
        want2 = gm2.log_prob(t64(x12 / s), sg).numpy() - 2 * math.log(s)          # s^-d with d = 2
        got2 = lam(r["log_p_t_2d"], c.x_1, c.x_2, c.s, c.m_1, c.m_2, c.v0, c.sig)(x12[:, 0], x12[:, 1], s, m, m2, v, sg)
        close(got2, want2)


def test_the_convolution_matches_a_quadrature_of_the_integral():
    r, c = sym_score.p_t_convolution().result, sym_score
    m, v, sg = 0.3, 0.5, 0.7
    y = np.linspace(-12, 12, 20001)
    for z in (-1.0, 0.2, 2.5):
        integrand = np.exp(-(y - m) ** 2 / (2 * v) - (z - y) ** 2 / (2 * sg**2)) / (2 * np.pi * math.sqrt(v) * sg)
        close(lam(r["q"], c.z, c.m, c.v0, c.sig)(z, m, v, sg), np.trapezoid(integrand, y), rtol=1e-8)


def test_a_kernel_of_variance_sigma_or_a_dropped_jacobian_is_reported():
    wrong_kernel = sym_score._p_t_convolution(noise_var=lambda sg: sg).verify()
    assert any("N(m, v + sigma^2)" in p for p in wrong_kernel)
    no_jacobian = sym_score._p_t_convolution(jacobian=False).verify()
    assert any("q(x/s) / s" in p for p in no_jacobian) and any("d = 2" in p for p in no_jacobian)


# ---- tweedie ---------------------------------------------------------------------------------------------
def _mixture_points(seed):
    rng = np.random.default_rng(seed)
    m1, m2 = rng.normal(size=2) * 1.5
    s1, s2 = rng.uniform(0.1, 1.0, 2)
    w1 = rng.uniform(0.1, 0.9)
    return (m1, m2, s1, s2, w1), rng.normal(scale=2, size=60), rng.uniform(0.02, 3.0, 60)


@pytest.mark.parametrize("seed", [0, 1, 2, "two_gaussians_1d"])
def test_tweedie_matches_the_mixture_density_score_and_denoiser(seed):
    r, c = sym_score.tweedie().result, sym_score
    if seed == "two_gaussians_1d":
        gm = d.GaussianMixture.two_gaussians_1d()
        params = (-1.0, 1.0, 0.3, 0.3, 0.5)
        _, x, sg = _mixture_points(3)
    else:
        params, x, sg = _mixture_points(seed)
        m1, m2, s1, s2, w1 = params
        gm = d.GaussianMixture([[m1], [m2]], [s1, s2], [w1, 1 - w1])
    args = (c.x, c.sig, c.m_1, c.m_2, c.s_1, c.s_2, c.w_1)
    xt, st = t64(x)[:, None], t64(sg)
    close(lam(r["log_p"], *args)(x, sg, *params), gm.log_prob(xt, st).numpy())
    close(lam(r["score"], *args)(x, sg, *params), gm.score(xt, st).numpy()[:, 0])
    close(lam(r["posterior_mean"], *args)(x, sg, *params), gm.denoiser(xt, st).numpy()[:, 0])
    close(lam(r["score_tweedie"], *args)(x, sg, *params), gm.score(xt, st).numpy()[:, 0])
    resp = np.stack([lam(rk, *args)(x, sg, *params) for rk in r["responsibilities"]], 1)
    close(resp, gm.responsibilities(xt, st).numpy())


def test_a_flipped_or_unsquared_tweedie_is_reported():
    assert sym_score._tweedie(form=lambda E, x, sg: (x - E) / sg**2).verify()
    assert sym_score._tweedie(form=lambda E, x, sg: (E - x) / sg).verify()


# ---- denoiser_minimiser ------------------------------------------------------------------------------------
def test_the_exact_denoiser_has_the_lowest_loss_and_it_is_the_posterior_variance():
    r, c = sym_score.denoiser_minimiser().result, sym_score
    gm = d.GaussianMixture.two_gaussians_1d()
    params = (-1.0, 1.0, 0.3, 0.3, 0.5)
    sg, n = 0.5, 200_000
    g = torch.Generator().manual_seed(0)
    y = gm.sample(n, generator=g)
    x = y + sg * torch.randn(n, 1, generator=g, dtype=y.dtype)
    D = gm.denoiser(x, sg)
    loss = ((D - y) ** 2).mean().item()
    args = (c.x, c.sig, c.m_1, c.m_2, c.s_1, c.s_2, c.w_1)
    var = lam(r["posterior_variance"], *args)(x.numpy()[:, 0], sg, *params)
    resid = ((D - y) ** 2).numpy()[:, 0] - var                  # mean 0 if the loss is E[Var(y | x)]
    assert abs(resid.mean()) < 4 * resid.std() / math.sqrt(n)
    assert var.min() > 0                                         # the minimum loss is not 0: D = y is unattainable
    for worse in (1.05 * D, D + 0.05, D - 0.05, x, torch.zeros_like(x)):
        assert ((worse - y) ** 2).mean().item() > loss
    close(((D + 0.05 - y) ** 2).mean().item() - loss, 0.05**2 + 2 * 0.05 * (D - y).mean().item(), rtol=1e-9)
    # D = x + sigma^2 score, numerically and as derived
    close(D.numpy(), (x + sg**2 * gm.score(x, sg)).numpy())
    close(lam(r["D_from_score"], *args)(x.numpy()[:500, 0], sg, *params), D.numpy()[:500, 0])
    # Gaussian data N(m, v): the derived posterior mean is GaussianMixture's one-component denoiser
    gm1 = d.GaussianMixture([[0.4]], math.sqrt(0.8))
    xs = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    close(lam(r["gaussian.D"], c.x, c.m, c.v0, c.sig)(xs.numpy()[:, 0], 0.4, 0.8, sg), gm1.denoiser(xs, sg).numpy()[:, 0])


def test_the_notes_ideal_denoiser_d_equals_y_is_reported():
    problems = sym_score._denoiser_minimiser(candidate=sym_score.y).verify()
    assert any("dJ/dD = 0" in p for p in problems)
    assert any("min loss" in p for p in problems)


# ---- pf_ode_fokker_planck ------------------------------------------------------------------------------------
RANGES = {"VP": (1e-3, 1.0), "VE": (1e-3, 100.0), "EDM": (1e-3, 80.0), "FlowMatching": (0.01, 0.99)}


@pytest.mark.parametrize("name", sorted(RANGES))
def test_the_pf_ode_velocity_is_what_ode_coefs_and_f_g_run(name):
    r = sym_fp.pf_ode_fokker_planck().result
    rng = np.random.default_rng(sorted(RANGES).index(name))
    x0, v = rng.normal(), rng.uniform(0.05, 2.0)
    lo, hi = RANGES[name]
    t = np.exp(rng.uniform(np.log(lo), np.log(hi), 50))
    x = rng.normal(scale=3, size=50)
    u = lam(r[f"{name}.u"], sym_fp.x, sym_proc.t, sym_fp.x_0, sym_fp.v0, sym_proc.beta_min, sym_proc.beta_max)
    want = u(x, t, x0, v, 0.1, 20.0)
    proc = sym_proc.BUILD[name](0.1, 20.0)
    tt, xt = t64(t), t64(x)
    s, sigma = proc.s(tt), proc.sigma(tt)
    gm = d.GaussianMixture([[x0]], math.sqrt(v))
    a, b = proc.ode_coefs(tt)
    D = gm.denoiser((xt / s)[:, None], sigma)[:, 0]
    close(a * xt - b * D, want, rtol=1e-8)                    # dx/dt = a x - b D(x/s; sigma)  [EDM eq. 4]
    assert not np.allclose(a * xt + b * D, want, rtol=1e-3)   # a flipped b does not pass
    score_x = gm.score((xt / s)[:, None], sigma)[:, 0] / s    # grad_x log p_t(x) = grad log p(x/s; sigma) / s
    close(proc.f(tt) * xt - proc.g(tt) ** 2 / 2 * score_x, want, rtol=1e-8)   # f x - g^2/2 grad log p  [Song eq. 13]


def test_a_doubled_diffusion_or_a_flipped_score_is_reported():
    doubled = sym_fp._pf_ode_fokker_planck(diffusion=1).verify()
    assert any(p.startswith("Fokker-Planck") for p in doubled)
    assert sum(": its own f, g" in p for p in doubled) == 4       # every family
    flipped = sym_fp._pf_ode_fokker_planck(score_sign=-1).verify()
    assert any("continuity" in p for p in flipped) and not any(p.startswith("Fokker-Planck") for p in flipped)
