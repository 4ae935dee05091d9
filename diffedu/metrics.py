"""Sample-quality metrics: sliced Wasserstein distance (2-D / low-dimensional), the Fréchet distance,
a digits "FID" in a small classifier's feature space, the recognisable-digit rate, and NFE sweeps.

The digits Fréchet distance is NOT Inception FID: it uses the penultimate features of the small
CNN that `diffedu.assets.load_classifier()` ships, so its numbers are comparable only with other
numbers computed the same way in this course, never with FID values in papers.

Imports: torch, numpy, scipy, diffedu io (assets, checkpoint, data, sampling), diffedu.models; layer apps.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from scipy import linalg

from . import assets
from ._checks import check_int, check_number
from .checkpoint import load_classifier_file
from .data import digits, mnist, toy_2d
from .models.classifier import DigitClassifier
from .sampling import generate


def _as_2d(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    return x.double()


def sliced_wasserstein(a, b, n_projections: int = 256, generator: torch.Generator | None = None) -> float:
    """SW_2(a, b) = (E_theta W_2^2(<theta, a>, <theta, b>))^(1/2), theta uniform on the unit sphere.

    a (N, D) and b (M, D) are samples; each 1-D W_2 is computed exactly from sorted projections
    (by quantile interpolation on a common grid when N != M), the expectation over theta by
    `n_projections` random directions drawn with `generator`.  Two finite samples of the *same*
    distribution still score > 0: see `sliced_wasserstein_floor` for that noise floor.
    """
    a, b = _as_2d(a, "a"), _as_2d(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    n_projections = check_int(n_projections, "n_projections", lo=1)
    theta = torch.randn(a.shape[1], n_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    pa, pb = (a @ theta).sort(dim=0).values, (b @ theta).sort(dim=0).values
    if len(pa) != len(pb):
        q = (torch.arange(max(len(pa), len(pb)), dtype=torch.float64) + 0.5) / max(len(pa), len(pb))
        pa, pb = torch.quantile(pa, q, dim=0), torch.quantile(pb, q, dim=0)
    return ((pa - pb) ** 2).mean().sqrt().item()


def sliced_wasserstein_floor(sample_fn, n: int, repeats: int = 5, n_projections: int = 256,
                             seed: int = 0) -> tuple[float, float]:
    """(mean, std) of SW between two independent n-point samples of the same distribution.

    `sample_fn(n, generator)` draws exact samples (e.g. `GaussianMixture.sample`, or fresh points
    of a toy set).  A model whose SW to the data is within this floor is indistinguishable from
    the data at sample size n; the floor shrinks roughly like n^(-1/2).
    """
    repeats = check_int(repeats, "repeats", lo=1)
    g = torch.Generator().manual_seed(seed)
    vals = [sliced_wasserstein(sample_fn(n, g), sample_fn(n, g), n_projections, g) for _ in range(repeats)]
    return float(np.mean(vals)), float(np.std(vals))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet distance of two Gaussians.  [FID, Heusel et al. 2017]

    The same arithmetic as pytorch-fid's `calculate_frechet_distance`: scipy's sqrtm of S1 S2;
    if that is not finite (a singular product), eps is added to both diagonals and it is
    recomputed; an imaginary part from round-off is dropped when the diagonal's imaginary
    parts are within 1e-3 of 0, else it is an error.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different lengths: {mu1.shape} and {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"covariances must both be ({len(mu1)}, {len(mu1)}), got {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # pytorch-fid calls sqrtm(disp=False), which does not warn on singular input
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of (N, D) features, float64, covariance with N - 1 (as np.cov, pytorch-fid)."""
    f = np.asarray(torch.as_tensor(features).detach().cpu().double())
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2, got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid_from_features(f1, f2) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))


# ---------------------------------------------------------------------------------------------
# Digits: the course's offline "FID" and recognisable-digit rate, with the shipped classifier.

RECOGNISABLE_THRESHOLD = 0.9


@torch.no_grad()
def digit_features_and_probs(images: torch.Tensor, classifier, batch: int = 512):
    """(features (N, D), class probabilities (N, 10)) of digits (N, 1, S, S) in [-1, 1] (clamped)."""
    feats, probs = [], []
    for x in images.float().clamp(-1, 1).split(batch):
        f = classifier.features(x)
        feats.append(f)
        probs.append(torch.softmax(classifier.head(f), dim=1))
    return torch.cat(feats), torch.cat(probs)


def recognisable_rate(images: torch.Tensor, classifier, threshold: float = RECOGNISABLE_THRESHOLD) -> float:
    """Fraction of images that the classifier assigns to one digit class with probability > threshold.

    The analogue of the homework's face-detection rate: a blurry or hybrid sample gets a flat
    class distribution and does not count.  Real held-out digits score about 0.97 at 0.9.
    """
    check_number(threshold, "threshold", lo=0, hi=1)
    _, p = digit_features_and_probs(images, classifier)
    return (p.max(dim=1).values > threshold).double().mean().item()


def digits_fid(images: torch.Tensor, classifier=None, reference: torch.Tensor | None = None) -> float:
    """Fréchet distance between `images` and the 1797 real digits in the classifier's feature space.

    NOT Inception FID; comparable only within this course (same classifier, same resolution).
    """
    if classifier is None:
        classifier = assets.load_classifier()
    if reference is None:
        reference = digits(classifier.config["image_size"])[0]
    f, _ = digit_features_and_probs(images, classifier)
    f_ref, _ = digit_features_and_probs(reference, classifier)
    return fid_from_features(f, f_ref)


def mnist_fid(images: torch.Tensor, classifier=None, reference: torch.Tensor | None = None) -> float:
    """Fréchet distance between `images` (N, 1, 28, 28) and MNIST's 1,000 test digits in the shipped MNIST
    classifier's feature space (`assets.load_mnist_classifier()`).

    NOT Inception FID; comparable only within this course.  Real train digits against the test digits
    give the floor (`benchmarks/results/mnist_table.md`, first row).
    """
    if classifier is None:
        classifier = assets.load_mnist_classifier()
    if reference is None:
        reference = mnist("test")[0]
    f, _ = digit_features_and_probs(images, classifier)
    f_ref, _ = digit_features_and_probs(reference, classifier)
    return fid_from_features(f, f_ref)


def class_accuracy(images: torch.Tensor, labels, classifier) -> float:
    """Share of `images` the classifier assigns to the asked-for class (`labels`: an int or (N,) int64)."""
    return _accuracy(digit_features_and_probs(images, classifier)[1], labels)


def _accuracy(probs: torch.Tensor, labels) -> float:
    """Share of rows of `probs` (N, 10) whose most likely class is `labels` (an int or (N,))."""
    want = torch.as_tensor(labels, device=probs.device)
    if want.dim() == 0:
        want = want.expand(len(probs))
    if want.shape != (len(probs),):
        raise ValueError(f"labels must be an int or have shape ({len(probs)},), got {tuple(want.shape)}")
    return (probs.argmax(1) == want).double().mean().item()


def evaluate_sampler(trained, sampler: str = "ddim", steps=(10, 20, 50), eta: float | None = None, n: int = 1000,
                     seed: int = 0, classifier=None, reference: torch.Tensor | None = None, labels=None,
                     guidance: float = 0.0) -> list[dict]:
    """Quality and wall time against NFE: one row per entry of `steps`, same seed for each.

    Digits models (images of one channel): fid (in the classifier's feature space, see
    `digits_fid`) and recognisable (`recognisable_rate`).  2-D models: sw, the sliced Wasserstein
    distance to `reference` (default: fresh points of the training set, seed + 1).  Each row also
    has sampler, steps, eta (None for samplers without one), nfe, seconds (sampling wall time here).
    A class-conditional model takes `labels` and `guidance` (see `diffedu.sampling.generate`); with
    labels, image rows also have accuracy (`class_accuracy`: the classifier reads the asked-for class).
    """
    images = len(trained.shape) == 3
    if images:
        if classifier is None:   # 28x28: MNIST's classifier; else the 8x8 digits' one
            classifier = assets.load_mnist_classifier() if trained.shape[-1] == 28 else assets.load_classifier()
        elif not isinstance(classifier, DigitClassifier):
            classifier = load_classifier_file(classifier)
        size = classifier.config["image_size"]
        ref = reference if reference is not None else (mnist("test")[0] if size == 28 else digits(size)[0])
        f_ref, _ = digit_features_and_probs(ref, classifier)
    else:
        ref = reference if reference is not None else toy_2d(trained.meta.get("data", "mixture"), n=n, seed=seed + 1)
    rows = []
    for k in steps:
        g = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        traj = generate(trained, n, sampler=sampler, steps=k, eta=eta, generator=g, labels=labels, guidance=guidance)
        seconds = time.perf_counter() - t0
        x = traj.x.cpu()
        row = dict(sampler=sampler, steps=int(k), eta=None if eta is None else float(eta), nfe=int(traj.nfe))
        if images:
            f, p = digit_features_and_probs(x, classifier)
            row.update(fid=fid_from_features(f, f_ref),
                       recognisable=(p.max(1).values > RECOGNISABLE_THRESHOLD).double().mean().item())
            if labels is not None:
                row["accuracy"] = _accuracy(p, labels)
        else:
            row.update(sw=sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(seed)))
        row["seconds"] = seconds
        rows.append(row)
    return rows
