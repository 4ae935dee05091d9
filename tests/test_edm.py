"""EDM: processes, Karras sigmas, Euler/Heun (Alg. 1-2), DDIM = Euler, convergence order, preconditioning."""
import math

import numpy as np
import pytest
import torch

import diffedu as d

MIX = d.GaussianMixture.eight_gaussians()
PROCESSES = [d.VP(), d.VE(), d.EDM(), d.FlowMatching()]


@pytest.mark.parametrize("proc", PROCESSES, ids=lambda p: type(p).__name__)
def test_derivatives_and_inverse(proc):
    t = torch.linspace(proc.t_min, min(proc.t_max, 50.0), 200, dtype=torch.float64)
    h = 1e-6 * t
    for fn, dfn in ((proc.s, proc.s_dot), (proc.sigma, proc.sigma_dot)):
        fd = (fn(t + h) - fn(t - h)) / (2 * h)
        torch.testing.assert_close(dfn(t), fd, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(proc.sigma_inv(proc.sigma(t)), t, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("proc", PROCESSES, ids=lambda p: type(p).__name__)
def test_f_and_g_give_back_s_and_sigma(proc):
    """s(t) = exp(int f), sigma(t)^2 = int g^2 / s^2 (numerical quadrature from a small t0)."""
    t0, t1 = proc.t_min, min(0.9 * proc.t_max, 4.0)
    r = torch.linspace(t0, t1, 200_001, dtype=torch.float64)
    log_s = torch.trapezoid(proc.f(r), r)
    assert math.isclose(math.exp(log_s), proc.s(t1) / proc.s(t0), rel_tol=1e-8)
    var = torch.trapezoid(proc.g(r) ** 2 / proc.s(r) ** 2, r)
    assert math.isclose(var, proc.sigma(t1) ** 2 - proc.sigma(t0) ** 2, rel_tol=1e-6)


def test_vp_matches_a_discrete_linear_schedule():
    """VP's alpha_bar(t) = s(t)^2 is the continuous limit of DDPM's linear schedule (beta = beta(t)/T)."""
    T = 1000
    sched = d.Schedule(d.linear_betas(T, 0.1 / T, 20.0 / T))
    vp = d.VP(0.1, 20.0)
    t = torch.arange(1, T + 1, dtype=torch.float64) / T
    torch.testing.assert_close(sched.alpha_bar[1:], vp.s(t) ** 2, rtol=2e-2, atol=1e-4)


def test_karras_sigmas():
    s = d.karras_sigmas(18)
    assert len(s) == 19 and s[-1] == 0 and s.dtype == torch.float64
    assert math.isclose(s[0], 80.0) and math.isclose(s[-2], 0.002)
    assert (s[1:] < s[:-1]).all()
    r = s[:-1] ** (1 / 7)
    torch.testing.assert_close(r[1:] - r[:-1], torch.full((17,), (r[1] - r[0]).item(), dtype=torch.float64))
    assert d.karras_sigmas(1).tolist() == [80.0, 0.0]


def test_ddim_eta0_is_euler_in_x_over_s_and_sigma():
    """DDIM(eta = 0) is one Euler step of dx/dsigma = (x - D)/sigma in x/sqrt(alpha_bar), sigma.  [EDM §3]"""
    sched = d.Schedule(d.cosine_betas(1000))
    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for steps, spacing in ((10, "leading"), (37, "trailing"), (1000, "leading")):
        ts = d.ddim_timesteps(1000, steps, spacing)
        ddim = d.sample_ddim(MIX.eps_model(sched), sched, x_T, steps=steps, spacing=spacing)
        euler = d.sample_edm(MIX.denoiser, sched.sigma[ts], x_T / sched.alpha_bar[ts[0]].sqrt(), method="euler")
        scale = sched.alpha_bar[ts].sqrt()[:, None, None]
        torch.testing.assert_close(ddim.xs, euler.xs * scale, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(ddim.x0_hats, euler.x0_hats, rtol=1e-10, atol=1e-10)


def test_sample_pf_ode_edm_process_is_sample_edm():
    sigmas = d.karras_sigmas(12)
    x = 80 * torch.randn(200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for method in ("euler", "heun"):
        a = d.sample_edm(MIX.denoiser, sigmas, x, method=method)
        b = d.sample_pf_ode(MIX.denoiser, d.EDM(), sigmas, x, method=method)
        torch.testing.assert_close(a.xs, b.xs, rtol=1e-12, atol=1e-12)
        assert a.nfe == b.nfe == (12 if method == "euler" else 23)


def test_pf_ode_agrees_across_processes():
    """The same data under VP and EDM: one ODE in different coordinates, so fine solves agree on x/s."""
    vp = d.VP()
    t = torch.linspace(1.0, 1e-3, 401, dtype=torch.float64)
    sig = vp.sigma(t)
    x_edm = sig[0] * torch.randn(100, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a = d.sample_pf_ode(MIX.denoiser, vp, t, x_edm * vp.s(t[0]), method="heun")
    b = d.sample_edm(MIX.denoiser, torch.cat([sig, sig.new_zeros(1)]), x_edm, method="heun")
    torch.testing.assert_close(a.x / vp.s(t[-1]), b.xs[-2], rtol=0, atol=2e-3)


def _convergence_slope(method, ns):
    x = 80 * torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = d.sample_edm(MIX.denoiser, d.karras_sigmas(4096), x, "heun").xs[-2]
    errs, nfes = [], []
    for n in ns:
        traj = d.sample_edm(MIX.denoiser, d.karras_sigmas(n), x, method)
        errs.append((traj.xs[-2] - ref).norm(dim=1).mean().item())  # at sigma_min, before the final jump
        nfes.append(traj.nfe - 1)  # the final Euler jump to 0 is not part of the solve
    return np.polyfit(np.log(nfes), np.log(errs), 1)[0]


def test_convergence_order_euler_1_heun_2():
    """Measured, not assumed: error vs a fine reference falls like NFE^-1 (Euler) and NFE^-2 (Heun)."""
    assert abs(_convergence_slope("euler", [16, 32, 64, 128, 256]) + 1) < 0.2
    assert abs(_convergence_slope("heun", [24, 32, 64, 128, 256]) + 2) < 0.2


def test_churn_noise_is_explicit_and_follows_algorithm_2():
    sigmas = d.karras_sigmas(10)
    x = 80 * torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    calls = []

    def D(x, sigma):
        calls.append(sigma[0].item())
        return MIX.denoiser(x, sigma)

    noises = [torch.randn(50, 2, generator=torch.Generator().manual_seed(10 + i), dtype=torch.float64) for i in range(10)]
    traj = d.sample_edm(D, sigmas, x, method="euler", s_churn=40, s_tmin=0.05, s_tmax=50, noises=noises)
    gamma = min(40 / 10, math.sqrt(2) - 1)
    churned = [s for s in sigmas[:-1].tolist() if 0.05 <= s <= 50]
    assert len(calls) == 10
    # the denoiser sees sigma_hat = (1 + gamma) sigma where churn applies (evaluated after the noise)
    expected = [s * (1 + gamma) if 0.05 <= s <= 50 else s for s in sigmas[:-1].tolist()]
    np.testing.assert_allclose(calls, expected, rtol=1e-12)
    again = d.sample_edm(MIX.denoiser, sigmas, x, method="euler", s_churn=40, s_tmin=0.05, s_tmax=50,
                         noises=noises[:len(churned)])
    torch.testing.assert_close(traj.xs, again.xs)
    with pytest.raises(ValueError, match="noises holds"):
        d.sample_edm(MIX.denoiser, sigmas, x, s_churn=40, s_tmin=0.05, s_tmax=50, noises=noises[:2])
    # no churn: no noise drawn at all, so no generator is needed and the result is deterministic
    a = d.sample_edm(MIX.denoiser, sigmas, x)
    b = d.sample_edm(MIX.denoiser, sigmas, x, generator=torch.Generator().manual_seed(99))
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)


def test_bad_input():
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="end in 0"):
        d.sample_edm(MIX.denoiser, torch.tensor([3.0, 1.0]), x)
    with pytest.raises(ValueError, match="strictly decreasing"):
        d.sample_edm(MIX.denoiser, torch.tensor([1.0, 3.0, 0.0]), x)
    with pytest.raises(ValueError, match="s_churn must be in"):
        d.sample_edm(MIX.denoiser, d.karras_sigmas(4), x, s_churn=-1)
    with pytest.raises(ValueError, match="method must be one of 'heun', 'euler'"):
        d.sample_edm(MIX.denoiser, d.karras_sigmas(4), x, method="rk4")
    with pytest.raises(ValueError, match="contains 1 NaN"):
        d.sample_edm(MIX.denoiser, d.karras_sigmas(4), torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="n must be in"):
        d.karras_sigmas(0)
    with pytest.raises(ValueError, match="denoiser returned"):
        d.sample_edm(lambda x, s: x[:, :1], d.karras_sigmas(4), x)
    with pytest.raises(ValueError, match="ts must be"):
        d.sample_pf_ode(MIX.denoiser, d.VP(), [0.1, 0.5], x)


def test_precond_scalings_and_loss():
    sigma = torch.logspace(-3, 2, 50, dtype=torch.float64)
    c_skip, c_out, c_in = d.edm_scalings(sigma)
    # unit-variance input and target for data of std sigma_data  [EDM App. B.6]
    torch.testing.assert_close(c_in**2 * (sigma**2 + 0.25), torch.ones_like(sigma))
    target_var = (1 - c_skip) ** 2 * 0.25 / c_out**2 + c_skip**2 * sigma**2 / c_out**2
    torch.testing.assert_close(target_var, torch.ones_like(sigma))
    # a network that returns the ideal F makes D exact; its loss is then the Bayes error only
    den = d.Denoiser(lambda x, c: torch.zeros_like(x))
    x = torch.randn(8, 3, dtype=torch.float64)
    torch.testing.assert_close(den(x, 0.7), d.edm_scalings(0.7)[0] * x)
    loss = d.edm_loss(den, torch.randn(64, 2, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert loss.dim() == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="sigma must be a number or a tensor of shape"):
        den(x, torch.ones(3))


def test_denoiser_eps_adapters_round_trip():
    sched = d.Schedule(d.linear_betas(1000))
    eps_model = MIX.eps_model(sched)
    D = d.denoiser_from_eps(eps_model, sched)
    x = 3 * torch.randn(64, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for t in (1, 50, 500, 1000):
        sigma = sched.sigma[t].item()
        torch.testing.assert_close(D(x, sigma), MIX.denoiser(x, sigma), rtol=1e-10, atol=1e-10)
