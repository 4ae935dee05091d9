"""The Fréchet distance against torchmetrics' FID (an implementation nobody here wrote), on random features.

Two levels, each in float64 and agreeing to 1e-6 relative:
- the formula: `torchmetrics.image.fid._compute_fid(mu1, S1, mu2, S2)`, which computes
  tr (S1 S2)^(1/2) as the sum of square roots of the eigenvalues of S1 S2, against
  `diffedu.metrics.frechet_distance`, which takes scipy's matrix square root (pytorch-fid's
  arithmetic): two different algorithms for the same trace [FID, Heusel et al. 2017];
- the whole metric: `FrechetInceptionDistance(feature=<identity>)` accumulating the features'
  mean and covariance itself, against `diffedu.metrics.fid_from_features`.
Dimensions 1 to 256, well-conditioned and near-singular covariances (low rank, low rank plus a
1e-9 ridge, fewer samples than dimensions).

Why torchmetrics and not pytorch-fid / clean-fid / torch-fidelity: those three import torchvision
at module level, and the only torchvision for torch 2.13 on the package index is a CUDA build,
which fails to import against the CPU torch ("operator torchvision::nms does not exist").
torchmetrics needs only torch, numpy, packaging and lightning-utilities.
"""
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

import diffedu as d
from diffedu.metrics import fid_from_features, frechet_distance

RTOL = 1e-6


def _cov(rng, D, rank, ridge=0.0, scale=1.0):
    A = rng.standard_normal((D, rank)) * scale
    return A @ A.T / rank + ridge * np.eye(D)


def _theirs(mu1, S1, mu2, S2):
    return _compute_fid(*(torch.as_tensor(a, dtype=torch.float64) for a in (mu1, S1, mu2, S2))).item()


def _ours(mu1, S1, mu2, S2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's note that a singular product's sqrtm may be inexact
        return frechet_distance(mu1, S1, mu2, S2)


CASES = {
    # name: (rank of S1 as a function of D, ridge)
    "well-conditioned": (lambda D: 4 * D, 0.0),
    "low rank": (lambda D: max(1, D // 4), 0.0),
    "low rank + 1e-9 ridge": (lambda D: max(1, D // 4), 1e-9),
    "rank one": (lambda D: 1, 0.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("D", [1, 2, 8, 64, 256])
def test_frechet_formula_matches_torchmetrics(D, case):
    rank, ridge = CASES[case]
    rng = np.random.default_rng(D)
    mu1, mu2 = rng.standard_normal(D), 0.5 * rng.standard_normal(D)
    S1 = _cov(rng, D, rank(D), ridge)
    S2 = _cov(rng, D, rank(D), ridge, scale=1.5)
    ours, theirs = _ours(mu1, S1, mu2, S2), _theirs(mu1, S1, mu2, S2)
    assert ours == pytest.approx(theirs, rel=RTOL)


@pytest.mark.parametrize("D", [2, 16, 128])
def test_same_gaussian_scores_zero_in_both(D):
    rng = np.random.default_rng(7)
    mu, S = rng.standard_normal(D), _cov(rng, D, 2 * D)
    scale = np.trace(S)
    assert abs(_ours(mu, S, mu, S)) < RTOL * scale
    assert abs(_theirs(mu, S, mu, S)) < RTOL * scale


class Identity(nn.Module):
    """A "feature extractor" that hands torchmetrics the features themselves."""

    def __init__(self, D):
        super().__init__()
        self.num_features = D

    def forward(self, x):
        return x


def _features(g, N, D, rank=None, noise=0.0, shift=0.0):
    if rank is None:
        f = torch.randn(N, D, generator=g, dtype=torch.float64) @ torch.randn(D, D, generator=g, dtype=torch.float64)
    else:  # on a rank-dimensional subspace, plus a little isotropic noise
        f = torch.randn(N, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, D, generator=g, dtype=torch.float64)
        f = f + noise * torch.randn(N, D, generator=g, dtype=torch.float64)
    return f + shift


@pytest.mark.parametrize("N, D, rank, noise", [
    (2000, 8, None, 0.0),
    (2000, 64, None, 0.0),
    (1000, 32, 3, 1e-6),   # near-singular covariances
    (40, 64, None, 0.0),   # fewer samples than dimensions: singular covariances
])
def test_whole_fid_matches_torchmetrics_metric(N, D, rank, noise):
    g = torch.Generator().manual_seed(N + D)
    real = _features(g, N, D, rank, noise)
    fake = _features(g, N + 7, D, rank, noise, shift=0.3)
    metric = FrechetInceptionDistance(feature=Identity(D))
    metric.update(real, real=True)
    for chunk in fake.split(17):  # torchmetrics accumulates batch by batch
        metric.update(chunk, real=False)
    theirs = metric.compute().item()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fid_from_features(fake, real)
    assert ours == pytest.approx(theirs, rel=RTOL)


def test_mixture_per_mode_frechet_matches_torchmetrics_mode_by_mode():
    """benchmarks/quality_vs_nfe.py scores samples with GaussianMixture.per_mode_frechet, a closed
    form for N(m, C) against N(mu_k, s_k^2 I); it is torchmetrics' FID of each mode, averaged."""
    mix = d.GaussianMixture.eight_gaussians()
    g = torch.Generator().manual_seed(0)
    x = mix.sample(4000, g) * 1.05 + 0.02 * torch.randn(4000, 2, generator=g, dtype=torch.float64)
    k = mix.responsibilities(x, 0.0).argmax(1)
    per_mode = []
    for j in range(mix.K):
        xj = x[k == j]
        s2 = (mix.stds[j] ** 2).item()
        per_mode.append(_theirs(xj.mean(0), torch.cov(xj.T), mix.means[j], s2 * torch.eye(mix.D, dtype=torch.float64)))
    assert mix.per_mode_frechet(x).item() == pytest.approx(float(np.mean(per_mode)), rel=RTOL)
