"""DDPM and DDIM samplers: their relations, their noise contract, and their errors."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

import diffedu as d
from standins import SCHEDULES, gaussian_eps_model, wiggly_eps_model


def _x_T(shape=(16, 2), seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _noises(n, shape=(16, 2), seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(n)]


def test_ddim_eta_one_all_steps_is_ddpm_beta_tilde(linear_sched):
    s = linear_sched
    model, x_T, noises = wiggly_eps_model(s), _x_T(), _noises(s.T - 1)
    ddpm = d.sample_ddpm(model, s, x_T, variance="beta_tilde", noises=noises)
    ddim = d.sample_ddim(model, s, x_T, steps=s.T, eta=1.0, noises=noises)
    assert ddpm.nfe == ddim.nfe == s.T
    torch.testing.assert_close(ddim.ts, ddpm.ts)
    torch.testing.assert_close(ddim.xs, ddpm.xs, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ddim.x0_hats, ddpm.x0_hats, rtol=1e-9, atol=1e-9)


def test_ddpm_consumes_one_noise_per_step_but_the_last(linear_sched):
    s = linear_sched
    model = wiggly_eps_model(s)
    with pytest.raises(ValueError, match="noises holds 998 tensors"):
        d.sample_ddpm(model, s, _x_T(), noises=_noises(s.T - 2))
    tr = d.sample_ddpm(model, s, _x_T(), variance="beta", noises=_noises(s.T - 1))
    assert tr.xs.shape == (s.T + 1, 16, 2) and tr.x0_hats.shape == (s.T, 16, 2)
    assert tr.ts[0] == s.T and tr.ts[-1] == 0


def test_generator_and_noises_give_the_same_path(linear_sched):
    s = linear_sched
    model = wiggly_eps_model(s)
    g = torch.Generator().manual_seed(7)
    drawn = [torch.randn((16, 2), generator=g, dtype=torch.float64) for _ in range(9)]
    a = d.sample_ddim(model, s, _x_T(), steps=10, eta=0.5, generator=torch.Generator().manual_seed(7))
    b = d.sample_ddim(model, s, _x_T(), steps=10, eta=0.5, noises=drawn)
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)


def test_ddim_eta_zero_is_deterministic_and_draws_no_noise(linear_sched):
    s = linear_sched
    model = wiggly_eps_model(s)
    a = d.sample_ddim(model, s, _x_T(), steps=20, eta=0.0, noises=[])
    b = d.sample_ddim(model, s, _x_T(), steps=20, eta=0.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 3, 7, 50])
def test_each_ddim_step_is_the_q_sigma_mean_plus_noise(spacing, steps, linear_sched):
    """Every recorded step equals k x0_hat + m x_t + sigma z with (k, m) of DDIM eq. 7, an
    independent route to eq. 12; and each step starts where the previous one landed."""
    s = linear_sched
    eta = 0.6
    noises = _noises(steps)
    tr = d.sample_ddim(wiggly_eps_model(s), s, _x_T(), steps=steps, eta=eta, spacing=spacing, noises=noises)
    assert tr.ts.tolist() == d.ddim_timesteps(s.T, steps, spacing).tolist()
    for i in range(steps):
        ab, ab_prev = s.alpha_bar[tr.ts[i]].item(), s.alpha_bar[tr.ts[i + 1]].item()
        sigma = d.ddim_sigma(ab, ab_prev, eta)
        k, m = d.ddim_mean_coefs(ab, ab_prev, sigma)
        expected = k * tr.x0_hats[i] + m * tr.xs[i] + (sigma * noises[i] if i < steps - 1 else 0)
        torch.testing.assert_close(tr.xs[i + 1], expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@given(steps=st.integers(1, 1000))
@settings(max_examples=30, deadline=None)
def test_ddim_grids_are_strictly_decreasing_and_end_at_zero(spacing, steps):
    ts = d.ddim_timesteps(1000, steps, spacing)
    assert len(ts) == steps + 1 and ts[-1] == 0 and ts[-2] >= 1 and ts[0] <= 1000
    assert bool((ts[1:] < ts[:-1]).all())


def test_ddim_on_gaussian_data_contracts_by_cos_of_each_angle(linear_sched):
    """Data N(0, I) with its exact eps-model: one DDIM step maps x_t to
    (sqrt(ab ab_prev) + sqrt((1-ab)(1-ab_prev))) x_t = cos(theta_t - theta_prev) x_t, where
    ab = cos^2 theta.  The PF-ODE keeps x fixed; the product of cosines is DDIM's
    discretisation error, and it vanishes as steps grow."""
    s = linear_sched
    model = gaussian_eps_model(s)
    x_T = _x_T((2000, 2), seed=5)
    variances = []
    for steps in (10, 50, 1000):
        tr = d.sample_ddim(model, s, x_T, steps=steps, eta=0.0)
        ab = s.alpha_bar[tr.ts]
        factor = torch.prod((ab[:-1] * ab[1:]).sqrt() + ((1 - ab[:-1]) * (1 - ab[1:])).sqrt())
        torch.testing.assert_close(tr.x, factor * x_T, rtol=1e-12, atol=1e-12)
        variances.append(factor.item() ** 2)
    assert variances[0] < variances[1] < variances[2] and variances[2] > 0.99


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("steps", [1, 2, 3, 10, 99, 250, 999, 1000])
def test_no_nan_or_inf_for_any_steps_and_eta(name, dtype, steps):
    s = d.Schedule(SCHEDULES[name](1000))
    model = wiggly_eps_model(s)
    x_T = _x_T((8, 2), dtype=dtype)
    for eta in (0.0, 0.37, 1.0):
        for spacing in ("leading", "trailing", "linspace"):
            tr = d.sample_ddim(model, s, x_T, steps=steps, eta=eta, spacing=spacing,
                               generator=torch.Generator().manual_seed(0), record=False)
            assert tr.x.dtype == dtype and bool(torch.isfinite(tr.x).all()), (eta, spacing)
    for variance in ("beta_tilde", "beta"):
        tr = d.sample_ddpm(model, s, x_T, variance=variance, generator=torch.Generator().manual_seed(0), record=False)
        assert bool(torch.isfinite(tr.x).all())


def test_clip_x0_keeps_estimates_in_range(linear_sched):
    s = linear_sched
    model = lambda x, t: -3 * torch.ones_like(x)  # pushes x0_hat far outside [-1, 1]
    x_T = _x_T()
    for tr in (d.sample_ddim(model, s, x_T, steps=10, clip_x0=(-1, 1)),
               d.sample_ddpm(model, s, x_T, clip_x0=(-1, 1), generator=torch.Generator().manual_seed(0))):
        assert tr.x0_hats.abs().max().item() <= 1.0
    unclipped = d.sample_ddim(model, s, x_T, steps=10)
    assert unclipped.x0_hats.abs().max().item() > 1.0


def test_record_false_keeps_only_ends(linear_sched):
    s = linear_sched
    tr = d.sample_ddim(wiggly_eps_model(s), s, _x_T(), steps=10, record=False)
    full = d.sample_ddim(wiggly_eps_model(s), s, _x_T(), steps=10)
    assert tr.xs.shape[0] == 2 and tr.nfe == 10
    torch.testing.assert_close(tr.x, full.x, rtol=0, atol=0)


def test_eta_above_one_allowed_only_where_sigma_fits(linear_sched):
    s = linear_sched
    model = wiggly_eps_model(s)
    tr = d.sample_ddim(model, s, _x_T(), steps=1000, eta=1.001, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(tr.x).all())
    with pytest.raises(ValueError, match="largest eta allowed"):
        d.sample_ddim(model, s, _x_T(), steps=10, eta=3.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=-0.1), r"eta must be in \[0, inf\]"),
    (dict(eta=float("nan")), "eta must be in"),
    (dict(steps=0), r"steps must be in 1..1000"),
    (dict(steps=1001), r"steps must be in 1..1000"),
    (dict(steps=2.5), "steps must be an integer"),
    (dict(spacing="uniform"), "spacing must be one of 'leading', 'trailing', 'linspace'"),
    (dict(clip_x0=(1, -1)), "lo < hi"),
    (dict(noises=[torch.zeros(3, 2)], eta=0.5), r"noises\[0\] has shape"),
    (dict(noises=[], generator=torch.Generator()), "either noises= or generator="),
])
def test_bad_ddim_arguments_rejected(kwargs, match, linear_sched):
    with pytest.raises(ValueError, match=match):
        d.sample_ddim(wiggly_eps_model(linear_sched), linear_sched, _x_T(), **kwargs)


def test_bad_start_and_model_rejected(linear_sched):
    s = linear_sched
    x = _x_T()
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x_T contains 1 NaN"):
        d.sample_ddim(wiggly_eps_model(s), s, x)
    with pytest.raises(ValueError, match="variance must be one of 'beta_tilde', 'beta'"):
        d.sample_ddpm(wiggly_eps_model(s), s, _x_T(), variance="learned")
    with pytest.raises(ValueError, match="eps_model returned"):
        d.sample_ddpm(lambda x, t: x[:, :1], s, _x_T())


def test_model_receives_long_times_of_batch_shape(linear_sched):
    seen = []

    def model(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    d.sample_ddim(model, linear_sched, _x_T(), steps=5, spacing="trailing")
    assert all(t.dtype == torch.long and t.shape == (16,) for t in seen)
    assert [int(t[0]) for t in seen] == [1000, 800, 600, 400, 200]
