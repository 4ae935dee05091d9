"""Metrics: the Fréchet distance against closed forms and the standard formula; SW and its noise floor."""
import numpy as np
import pytest
import torch
from scipy import linalg

import diffedu
from diffedu import metrics
from diffedu.metrics import (fid_from_features, frechet_distance, gaussian_stats, sliced_wasserstein,
                             sliced_wasserstein_floor)


def random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def reference_frechet(mu1, s1, mu2, s2):
    """The same quantity by another route: tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2), via eigh."""
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def test_identical_gaussians_have_distance_zero():
    rng = np.random.default_rng(0)
    mu, s = rng.standard_normal(16), random_spd(16, rng)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8


def test_diagonal_gaussians_closed_form():
    """Diagonal covariances a, b: FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2."""
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_one_dimensional_is_the_wasserstein_distance_of_normals():
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[1.0]]) == pytest.approx(9 + (2 - 1) ** 2)


def test_agrees_with_the_standard_formula_on_random_features():
    rng = np.random.default_rng(2)
    f1 = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))
    f2 = rng.standard_normal((400, 12)) * 1.5 + 0.3
    mu1, s1 = f1.mean(0), np.cov(f1, rowvar=False)
    mu2, s2 = f2.mean(0), np.cov(f2, rowvar=False)
    assert fid_from_features(torch.tensor(f1), torch.tensor(f2)) == pytest.approx(reference_frechet(mu1, s1, mu2, s2),
                                                                                 rel=1e-8)
    m, s = gaussian_stats(torch.tensor(f1))
    assert np.allclose(m, mu1) and np.allclose(s, s1)


def test_singular_product_gets_the_eps_offset(monkeypatch):
    """As pytorch-fid: a non-finite sqrtm is retried with eps on both diagonals, with a warning."""
    calls = []
    real_sqrtm = linalg.sqrtm

    def flaky(m):
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(metrics.linalg, "sqrtm", flaky)
    s = np.diag([1.0, 0.0])
    with pytest.warns(UserWarning, match="adding 1e-06 to diagonal"):
        d = frechet_distance([0, 0], s, [0, 0], s)
    assert np.allclose(calls[1], (s + 1e-6 * np.eye(2)) @ (s + 1e-6 * np.eye(2)))
    assert abs(d) < 1e-5


def test_imaginary_round_off_is_dropped_but_a_real_imaginary_part_is_an_error(monkeypatch):
    s = np.eye(3)
    monkeypatch.setattr(metrics.linalg, "sqrtm", lambda m: np.eye(3) + 1e-9j)
    assert frechet_distance(np.zeros(3), s, np.zeros(3), s) == pytest.approx(0.0, abs=1e-12)
    monkeypatch.setattr(metrics.linalg, "sqrtm", lambda m: np.eye(3) + 0.5j)
    with pytest.raises(ValueError, match="Imaginary component"):
        frechet_distance(np.zeros(3), s, np.zeros(3), s)


def test_frechet_shape_errors():
    with pytest.raises(ValueError, match="different lengths"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        fid_from_features(torch.zeros(1, 3), torch.zeros(5, 3))


def test_sliced_wasserstein_of_a_shift_is_its_length_over_sqrt_d():
    """Shifting a sample by v shifts every projection by <theta, v>: SW^2 = E <theta, v>^2 = |v|^2 / D."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1000, 2, generator=g)
    v = torch.tensor([3.0, 4.0])
    assert sliced_wasserstein(a, a) == 0
    sw = sliced_wasserstein(a, a + v, n_projections=4000, generator=g)
    assert sw == pytest.approx(5 / 2**0.5, rel=0.02)


def test_sliced_wasserstein_unequal_sizes_and_errors():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 2, generator=g), torch.randn(700, 2, generator=g)
    assert 0 < sliced_wasserstein(a, b, generator=g) < 0.2
    with pytest.raises(ValueError, match="same dimension"):
        sliced_wasserstein(a, torch.randn(5, 3))


def test_sw_noise_floor_shrinks_with_more_exact_samples():
    mix = diffedu.GaussianMixture.eight_gaussians()
    small, _ = sliced_wasserstein_floor(mix.sample, 200, repeats=4)
    large, _ = sliced_wasserstein_floor(mix.sample, 3200, repeats=4)
    assert large < small / 2.5           # ~ n^(-1/2): a 16x larger sample, a ~4x lower floor
    # a biased sample stands out above the floor
    shrunk = sliced_wasserstein(mix.sample(3200, torch.Generator().manual_seed(5)) * 0.8,
                                mix.sample(3200, torch.Generator().manual_seed(6)))
    assert shrunk > 2 * large


def test_recognisable_rate_and_digits_fid_with_a_quickly_trained_classifier():
    from diffedu.data import digits
    from diffedu.models.classifier import train_classifier

    torch.set_num_threads(1)
    x, y = digits(8)
    clf, acc = train_classifier(x, y, steps=300, seed=0)
    assert acc > 0.85
    noise = torch.rand(300, 1, 8, 8) * 2 - 1
    assert metrics.recognisable_rate(x[:300], clf, threshold=0.5) > metrics.recognisable_rate(noise, clf, threshold=0.5)
    real_vs_real = metrics.digits_fid(x[::2], clf, reference=x[1::2])
    assert real_vs_real < metrics.digits_fid(noise, clf, reference=x) / 5
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert real_vs_real < metrics.digits_fid(blurred[::2], clf, reference=x[1::2])
