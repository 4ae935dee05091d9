"""Estimate-then-correct: DDIM recovered exactly; the marginal constraint; degradations.  [UDM]"""
import pytest
import torch

import diffedu as d
from standins import wiggly_eps_model

SCHED = d.Schedule(d.linear_betas(1000))
SHAPE = (16, 2)


def _start(seed=0, shape=SHAPE):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("steps, spacing", [(10, "leading"), (50, "trailing"), (1000, "leading")])
def test_deterministic_correction_is_ddim_eta0(steps, spacing):
    eps_model = wiggly_eps_model(SCHED)
    ts = d.ddim_timesteps(1000, steps, spacing)
    ddim = d.sample_ddim(eps_model, SCHED, _start(), steps=steps, spacing=spacing)
    ec = d.sample_estimate_correct(d.x0_model_from_eps(eps_model, SCHED), d.GaussianForward(SCHED), ts, _start(),
                                   "deterministic")
    torch.testing.assert_close(ec.xs, ddim.xs, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ec.x0_hats, ddim.x0_hats, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("eta", [0.3, 1.0])
def test_partial_correction_is_the_ddim_sigma_family(eta):
    eps_model = wiggly_eps_model(SCHED)
    ts = d.ddim_timesteps(1000, 20)
    noises = [_start(100 + i) for i in range(19)]
    ddim = d.sample_ddim(eps_model, SCHED, _start(), steps=20, eta=eta, noises=noises)
    ec = d.sample_estimate_correct(d.x0_model_from_eps(eps_model, SCHED), d.GaussianForward(SCHED), ts, _start(),
                                   "partial", sigma_tilde=d.sigma_tilde_for_eta(SCHED, ts, eta), noises=noises)
    torch.testing.assert_close(ec.xs, ddim.xs, rtol=1e-10, atol=1e-10)


def test_partial_with_sigma_tilde_one_is_marginal_and_zero_is_deterministic():
    eps_model = wiggly_eps_model(SCHED)
    x0_model, fwd, ts = d.x0_model_from_eps(eps_model, SCHED), d.GaussianForward(SCHED), d.ddim_timesteps(1000, 10)
    noises = [_start(200 + i) for i in range(9)]
    one = d.sample_estimate_correct(x0_model, fwd, ts, _start(), "partial", sigma_tilde=1.0, noises=noises)
    marg = d.sample_estimate_correct(x0_model, fwd, ts, _start(), "marginal", noises=noises)
    torch.testing.assert_close(one.xs, marg.xs, rtol=1e-12, atol=1e-12)
    zero = d.sample_estimate_correct(x0_model, fwd, ts, _start(), "partial", sigma_tilde=0.0)
    det = d.sample_estimate_correct(x0_model, fwd, ts, _start(), "deterministic")
    torch.testing.assert_close(zero.xs, det.xs, rtol=0, atol=0)


@pytest.mark.parametrize("correction, sigma_tilde", [("marginal", 0.0), ("deterministic", 0.0), ("partial", 0.6)])
def test_each_correction_keeps_the_marginal(correction, sigma_tilde):
    """With the true x_0 in place of x0_hat, x_{t-1} ~ q(x_{t-1} | x_0) for every correction.  [UDM eq. 9]"""
    n, t, t_prev = 400_000, 600, 550
    x0 = torch.full((n, 1), 0.8, dtype=torch.float64)
    fwd = d.GaussianForward(SCHED)
    x_t = fwd.F(x0, _start(1, (n, 1)), t)
    traj = d.sample_estimate_correct(lambda x, tt: x0, fwd, [t, t_prev, 0], x_t, correction, sigma_tilde=sigma_tilde,
                                     generator=torch.Generator().manual_seed(2))
    x_prev = traj.xs[1]
    ab = SCHED.alpha_bar[t_prev].item()
    assert abs(x_prev.mean().item() - ab**0.5 * 0.8) < 5 * ((1 - ab) / n) ** 0.5
    assert abs(x_prev.var().item() - (1 - ab)) < 5 * (1 - ab) * (2 / n) ** 0.5


def test_ignoring_x_t_accumulates_error_on_the_mixture():
    """The seed's warning, measured: with an imperfect x0 estimate, 'marginal' ends farther from the data."""
    mix = d.GaussianMixture.eight_gaussians()
    exact = d.x0_model_from_eps(mix.eps_model(SCHED), SCHED)

    def x0_model(x, t):  # a biased estimate: shrinks towards 0 by 10%
        return 0.9 * exact(x, t)

    ts = d.ddim_timesteps(1000, 50)
    x_T = _start(3, (4000, 2))
    ll = {}
    for correction in ("marginal", "deterministic"):
        traj = d.sample_estimate_correct(x0_model, d.GaussianForward(SCHED), ts, x_T, correction,
                                         generator=torch.Generator().manual_seed(4))
        ll[correction] = mix.log_prob(traj.x).mean().item()
    assert ll["deterministic"] > ll["marginal"] + 1.0


@pytest.mark.parametrize("deg", [d.Blur(T=10, std_max=2.0), d.Mask(T=8)], ids=["blur", "mask"])
def test_degradation_with_a_perfect_estimate_recovers_x0(deg):
    x0 = _start(5, (3, 1, 8, 8))
    ts = list(range(deg.T, -1, -1))
    x_T = deg.A(x0, deg.T)
    for correction in ("marginal", "deterministic"):
        traj = d.sample_estimate_correct(lambda x, t: x0, deg, ts, x_T, correction)
        torch.testing.assert_close(traj.x, x0)
        torch.testing.assert_close(traj.xs[1], deg.A(x0, deg.T - 1))
    assert torch.equal(deg.A(x0, 0), x0)


def test_deterministic_correction_reuses_the_residual():
    """Cold diffusion's sampler: x_{t-1} = x_t - A_t(x0_hat) + A_{t-1}(x0_hat)."""
    deg = d.Blur(T=5, std_max=1.5)
    x_t = _start(6, (2, 1, 8, 8))
    x0_hat = _start(7, (2, 1, 8, 8))
    traj = d.sample_estimate_correct(lambda x, t: x0_hat, deg, [5, 4, 0], x_t, "deterministic")
    torch.testing.assert_close(traj.xs[1], x_t - deg.A(x0_hat, 5) + deg.A(x0_hat, 4))


def test_blur_grows_with_t():
    deg = d.Blur(T=10, std_max=2.0)
    x0 = _start(8, (1, 1, 16, 16))
    energy = [deg.A(x0, t).diff(dim=-1).pow(2).sum().item() for t in range(11)]
    assert all(a > b for a, b in zip(energy, energy[1:]))


def test_bad_input():
    fwd, x = d.GaussianForward(SCHED), _start()
    with pytest.raises(ValueError, match="correction must be one of"):
        d.sample_estimate_correct(lambda x, t: x, fwd, [10, 0], x, "mystery")
    with pytest.raises(ValueError, match="needs a Gaussian forward"):
        d.sample_estimate_correct(lambda x, t: x, d.Mask(), [8, 0], x, "partial", sigma_tilde=0.5)
    with pytest.raises(ValueError, match="sigma_tilde must be in"):
        d.sample_estimate_correct(lambda x, t: x, fwd, [10, 0], x, "partial", sigma_tilde=1.5)
    with pytest.raises(ValueError, match="ending in 0"):
        d.sample_estimate_correct(lambda x, t: x, fwd, [10, 5], x)
    with pytest.raises(ValueError, match="T = 1000"):
        d.sample_estimate_correct(lambda x, t: x, fwd, [1001, 0], x)
    with pytest.raises(ValueError, match="one value per step"):
        d.sample_estimate_correct(lambda x, t: x, fwd, [10, 5, 0], x, "partial", sigma_tilde=[0.1])


def test_x0_loss_trains_a_deblurring_estimate():
    """A per-time linear x0-predictor trained with x0_loss learns to undo the blur better than identity."""
    torch.manual_seed(0)
    deg = d.Blur(T=4, std_max=1.0)
    x0 = _start(9, (256, 1, 8, 8)).float()
    net = torch.nn.ModuleList([torch.nn.Conv2d(1, 1, 5, padding=2) for _ in range(deg.T + 1)])
    for conv in net:
        torch.nn.init.dirac_(conv.weight)
        torch.nn.init.zeros_(conv.bias)

    def model(x, t):
        return torch.stack([net[int(ti)](xi[None])[0] for xi, ti in zip(x, t)])

    g = torch.Generator().manual_seed(1)
    before = d.x0_loss(model, deg, x0, generator=torch.Generator().manual_seed(2)).item()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        loss = d.x0_loss(model, deg, x0[torch.randint(0, 256, (64,), generator=g)], generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = d.x0_loss(model, deg, x0, generator=torch.Generator().manual_seed(2)).item()
    assert after < 0.7 * before
