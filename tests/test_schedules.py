import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import diffedu as d
from standins import SCHEDULES


@pytest.mark.parametrize("name", SCHEDULES)
def test_betas_are_float64_of_length_T_in_unit_interval(name):
    betas = SCHEDULES[name](1000)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert bool(((betas > 0) & (betas < 1)).all())


def test_linear_betas_endpoints():
    betas = d.linear_betas(1000, 1e-4, 0.02)
    assert betas[0].item() == pytest.approx(1e-4, rel=1e-15)
    assert betas[-1].item() == pytest.approx(0.02, rel=1e-15)


def test_cosine_betas_match_iddpm_formula_pointwise():
    # iDDPM eq. 17 computed independently with math.cos, one t at a time.
    T, s = 50, 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    expected = [min(1 - f(t) / f(t - 1), 0.999) for t in range(1, T + 1)]
    assert d.cosine_betas(T).tolist() == pytest.approx(expected, rel=1e-12)


def test_sigmoid_betas_match_formula_and_are_clipped():
    T, start, end, tau = 40, -3.0, 3.0, 1.0
    sig = lambda z: 1 / (1 + math.exp(-z))
    g = lambda u: (sig(end / tau) - sig((start + u * (end - start)) / tau)) / (sig(end / tau) - sig(start / tau))
    ab = [g(t / T) / g(0) for t in range(T + 1)]
    expected = [min(1 - ab[t] / ab[t - 1], 0.999) for t in range(1, T + 1)]
    got = d.sigmoid_betas(T, start, end, tau)
    assert got.tolist() == pytest.approx(expected, rel=1e-12)
    assert got[-1].item() == 0.999  # alpha_bar reaches 0 at t = T, so beta_T is clipped


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(SCHEDULES)), T=st.integers(1, 2000))
def test_alpha_bar_decreasing_from_one(name, T):
    s = d.Schedule(SCHEDULES[name](T))
    assert s.T == T
    for field in ("beta", "alpha", "alpha_bar", "sigma", "snr", "posterior_variance"):
        assert getattr(s, field).shape == (T + 1,)
    assert s.alpha_bar[0].item() == 1.0 and s.sigma[0].item() == 0.0
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all())
    assert bool((s.alpha_bar[1:] > 0).all())


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(SCHEDULES)), T=st.integers(2, 2000))
def test_posterior_variance_between_zero_and_beta(name, T):
    s = d.Schedule(SCHEDULES[name](T))
    pv, beta = s.posterior_variance, s.beta
    assert pv[1].item() == 0.0  # beta_tilde_1 = 0: alpha_bar_0 = 1
    assert bool((pv[2:] > 0).all()) and bool((pv[1:] <= beta[1:]).all())


def test_sigma_and_snr_are_consistent():
    s = d.Schedule(d.linear_betas(1000))
    torch.testing.assert_close(s.snr[1:], 1 / s.sigma[1:] ** 2, rtol=1e-12, atol=0)
    torch.testing.assert_close(s.alpha_bar[1:], 1 / (1 + s.sigma[1:] ** 2), rtol=1e-12, atol=0)


def test_schedule_dtype_and_to():
    s = d.Schedule(d.linear_betas(10), dtype=torch.float32)
    assert s.alpha_bar.dtype == torch.float32
    s64 = s.to(dtype=torch.float64)
    assert s64.alpha_bar.dtype == torch.float64 and s64.T == 10


@pytest.mark.parametrize("betas, match", [
    (torch.tensor([0.1, 0.0, 0.2], dtype=torch.float64), r"betas\[1\] \(paper time t=2\)"),
    (torch.tensor([0.1, 1.0]), r"\(0, 1\)"),
    (torch.tensor([0.1, float("nan")]), r"\(0, 1\)"),
    (torch.tensor([[0.1]]), "1-D"),
    (torch.tensor([1, 2]), "floating point"),
])
def test_bad_betas_rejected(betas, match):
    with pytest.raises(ValueError, match=match):
        d.Schedule(betas)


@pytest.mark.parametrize("call, match", [
    (lambda: d.linear_betas(0), "T must be in"),
    (lambda: d.linear_betas(10, beta_end=1.5), "beta_end"),
    (lambda: d.cosine_betas(10, s=-1), "s must be"),
    (lambda: d.sigmoid_betas(10, start=3, end=-3), "start < end"),
    (lambda: d.sigmoid_betas(10, tau=0), "tau"),
])
def test_bad_schedule_arguments_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()
