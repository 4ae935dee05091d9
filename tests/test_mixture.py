"""The exact Gaussian-mixture denoiser: Monte-Carlo posterior means, autograd scores, stability."""
import math

import pytest
import torch

import diffedu as d


@pytest.fixture(scope="module")
def mix():
    return d.GaussianMixture([[-1.0, 0.5], [1.5, -0.5], [0.0, 2.0]], [0.3, 0.5, 0.2], [0.5, 0.3, 0.2])


@pytest.mark.parametrize("sigma", [0.2, 1.0, 3.0])
def test_denoiser_is_the_monte_carlo_posterior_mean(mix, sigma):
    """E[x_0 | x_0 + sigma eps in a small ball around x], estimated by simulation."""
    g = torch.Generator().manual_seed(0)
    x0 = mix.sample(2_000_000, g)
    x = x0 + sigma * torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    for q in x[:3, None]:  # query points where noisy data actually lands
        near = (x - q).norm(dim=1) < 0.05 * (1 + sigma)
        assert near.sum() > 300, q
        mc = x0[near].mean(0)
        se = x0[near].std(0) / near.sum().sqrt()
        # the ball has a width: compare with the exact denoiser averaged over the same points
        exact = mix.denoiser(x[near], sigma).mean(0)
        assert ((mc - exact).abs() < 5 * se).all(), (q, mc, exact, se)


@pytest.mark.parametrize("sigma", [1e-3, 0.1, 1.0, 1e3])
def test_score_is_the_gradient_of_log_prob(mix, sigma):
    x = mix.sample(64, torch.Generator().manual_seed(1)) + sigma * 0.5
    y = x.clone().requires_grad_()
    mix.log_prob(y, sigma).sum().backward()
    torch.testing.assert_close(mix.score(x, sigma), y.grad, rtol=1e-9, atol=1e-12)
    # Tweedie: D = x + sigma^2 score  [EDM eq. 3]
    torch.testing.assert_close(mix.denoiser(x, sigma), x + sigma**2 * mix.score(x, sigma), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sigma", [1e-3, 1e3])
def test_stable_far_from_every_mode(mix, sigma):
    x = torch.tensor([[50.0, -40.0], [0.0, 0.0], [1e3, 1e3]], dtype=torch.float64)
    for out in (mix.denoiser(x, sigma), mix.score(x, sigma), mix.log_prob(x, sigma)):
        assert torch.isfinite(out).all()
    # for huge sigma the denoiser returns (nearly) the data mean
    if sigma == 1e3:
        mean = (mix.weights[:, None] * mix.means).sum(0)
        torch.testing.assert_close(mix.denoiser(x[:2], sigma), mean.expand(2, 2), atol=1e-3, rtol=0)


def test_log_prob_integrates_to_one():
    mix = d.GaussianMixture.two_gaussians_1d()
    grid = torch.linspace(-5, 5, 20001, dtype=torch.float64)[:, None]
    for sigma in (0.0, 0.5):
        total = torch.trapezoid(mix.log_prob(grid, sigma).exp(), grid[:, 0])
        assert abs(total.item() - 1) < 1e-8


def test_single_gaussian_posterior_mean_closed_form():
    m, s, sigma = 0.7, 0.4, 0.9
    mix = d.GaussianMixture([[m]], s)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    torch.testing.assert_close(mix.denoiser(x, sigma), m + s**2 / (s**2 + sigma**2) * (x - m))


def test_sample_moments():
    mix = d.GaussianMixture.eight_gaussians()
    x = mix.sample(200_000, torch.Generator().manual_seed(2))
    assert x.mean(0).abs().max() < 0.02
    assert abs(x.norm(dim=1).mean().item() - 2.0) < 0.01


def test_eps_model_matches_the_denoiser(mix):
    sched = d.Schedule(d.linear_betas(1000))
    eps_model = mix.eps_model(sched)
    x0 = mix.sample(100, torch.Generator().manual_seed(3))
    t = torch.full((100,), 300)
    ab = sched.alpha_bar[300]
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(100, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x0_hat = d.x0_from_eps(x_t, eps_model(x_t, t), ab)
    torch.testing.assert_close(x0_hat, mix.denoiser(x_t / ab.sqrt(), ((1 - ab) / ab).sqrt()))


def test_bad_input():
    with pytest.raises(ValueError, match="stds must be > 0"):
        d.GaussianMixture([[0.0]], 0.0)
    with pytest.raises(ValueError, match="means must have shape"):
        d.GaussianMixture([0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="weights must be > 0"):
        d.GaussianMixture([[0.0], [1.0]], 1.0, [1.0, -1.0])
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        d.GaussianMixture.eight_gaussians().denoiser(torch.zeros(3, 3, dtype=torch.float64), 1.0)
