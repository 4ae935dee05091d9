"""Data whose every denoiser is known exactly: an isotropic Gaussian mixture.

With x_0 ~ sum_k w_k N(mu_k, s_k^2 I) and x = x_0 + sigma eps, each component stays Gaussian:
x | k ~ N(mu_k, (s_k^2 + sigma^2) I), so the posterior over components (the responsibilities
r_k(x)) and the posterior mean E[x_0 | x] are closed forms.  The exact denoiser lets the course
measure samplers with no training noise in the way.  [EDM eq. 3; Tweedie's formula]

Imports: math, torch, _checks, precond.  Layer models.
"""
from __future__ import annotations

import math

import torch

from .._checks import HALF_DTYPES, check_finite, check_int
from ..precond import eps_from_denoiser


class GaussianMixture:
    """sum_k w_k N(mu_k, s_k^2 I) in D dimensions: exact samples, densities, scores and denoisers.

    means   (K, D) component means mu_k
    stds    (K,) or a float: isotropic standard deviations s_k > 0
    weights (K,) or None (uniform): positive, normalised here
    Points x may be float16 / bfloat16: the closed forms are then computed in float32 and returned
    in x's dtype.  Every sigma must be finite and >= 0.
    """

    def __init__(self, means, stds, weights=None, dtype=torch.float64):
        means = torch.as_tensor(means, dtype=dtype)
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        K = means.shape[0]
        stds = torch.as_tensor(stds, dtype=dtype).expand(K).clone() if torch.as_tensor(stds).dim() == 0 \
            else torch.as_tensor(stds, dtype=dtype)
        weights = torch.full((K,), 1.0 / K, dtype=dtype) if weights is None else torch.as_tensor(weights, dtype=dtype)
        if stds.shape != (K,) or weights.shape != (K,):
            raise ValueError(f"stds and weights must have shape ({K},), got {tuple(stds.shape)} and {tuple(weights.shape)}")
        for name, v in (("means", means), ("stds", stds), ("weights", weights)):
            check_finite(v, name)
        if not bool((stds > 0).all()):
            raise ValueError(f"stds must be > 0, got {stds.tolist()}")
        if not bool((weights > 0).all()):
            raise ValueError(f"weights must be > 0, got {weights.tolist()}")
        self.means, self.stds, self.weights = means, stds, weights / weights.sum()
        self.K, self.D = means.shape

    @classmethod
    def eight_gaussians(cls, radius: float = 2.0, std: float = 0.1):
        """Eight equal components on a circle of the given radius: the course's 2-D data set."""
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return cls(radius * torch.stack([angles.cos(), angles.sin()], 1), std)

    @classmethod
    def two_gaussians_1d(cls, mean: float = 1.0, std: float = 0.3):
        """N(-mean, std^2) and N(+mean, std^2) on a line: the smallest example with two modes."""
        return cls([[-mean], [mean]], std)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, D={self.D})"

    @staticmethod
    def _work(x: torch.Tensor) -> torch.Tensor:
        """x in the dtype the closed forms are computed in: float32 for float16 / bfloat16 (whose
        squared distances overflow or lose every digit), else x's own."""
        return x.float() if x.dtype in HALF_DTYPES else x

    def _like(self, x: torch.Tensor):
        return (self.means.to(x.device, x.dtype), self.stds.to(x.device, x.dtype),
                self.weights.to(x.device, x.dtype))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples, shape (n, D)."""
        n = check_int(n, "n", lo=1)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.D, generator=generator, dtype=self.means.dtype)
        return self.means[k] + self.stds[k, None] * z

    def _log_joint(self, x: torch.Tensor, sigma):
        """log w_k + log N(x; mu_k, (s_k^2 + sigma^2) I) for every k, shape (N, K); and the variances.

        sigma: a number or one per point (N,), finite and >= 0 (one host sync to check a tensor).
        """
        if x.dim() != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (N, {self.D}), got {tuple(x.shape)}")
        mu, s, w = self._like(x)
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.numel():
            lo, hi = torch.stack(torch.aminmax(sigma.detach())).tolist()  # one host sync
            if not (lo >= 0 and math.isfinite(hi)):
                raise ValueError(f"sigma must be finite and >= 0, got {sigma.tolist() if sigma.numel() <= 8 else sigma}")
        sigma = sigma.reshape(-1, 1) if sigma.dim() else sigma        # (N, 1) or scalar
        var = s**2 + sigma**2                                          # (N, K) or (K,)
        d2 = ((x[:, None, :] - mu[None]) ** 2).sum(-1)                 # (N, K); cdist loses digits
        log_n = -0.5 * d2 / var - 0.5 * self.D * torch.log(2 * math.pi * var)
        return torch.log(w) + log_n, var

    def log_prob(self, x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        """log p_sigma(x), the density of x_0 + sigma eps (sigma = 0: the data density), shape (N,)."""
        return torch.logsumexp(self._log_joint(self._work(x), sigma)[0], dim=1).to(x.dtype)

    def responsibilities(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """r_k(x) = P(component k | x_0 + sigma eps = x), shape (N, K)."""
        return torch.softmax(self._log_joint(self._work(x), sigma)[0], dim=1).to(x.dtype)

    def denoiser(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """D(x, sigma) = E[x_0 | x_0 + sigma eps = x] = sum_k r_k (mu_k + s_k^2/(s_k^2 + sigma^2)(x - mu_k)).  [EDM eq. 2-3]"""
        dtype, x = x.dtype, self._work(x)
        log_joint, var = self._log_joint(x, sigma)
        r = torch.softmax(log_joint, dim=1)
        mu, s, _ = self._like(x)
        shrink = s**2 / var                                            # (N, K) or (K,)
        # sum_k r_k mu_k (1 - shrink_k) + x sum_k r_k shrink_k
        return ((r * (1 - shrink)) @ mu + (r * shrink).sum(1, keepdim=True) * x).to(dtype)

    def posterior_sample(self, x: torch.Tensor, sigma, generator: torch.Generator | None = None) -> torch.Tensor:
        """One exact draw x_0 ~ p(x_0 | x_0 + sigma eps = x) per row: a component k ~ r_k(x), then
        N(mu_k + s_k^2/(s_k^2 + sigma^2)(x - mu_k), s_k^2 sigma^2/(s_k^2 + sigma^2) I).  [UDM eq. 3; Bayes per component]

        Its mean over draws is `denoiser(x, sigma)`; sigma = 0 returns x.  Randomness comes from
        `generator` only (on x's device), drawn in x's working dtype.
        """
        dtype, x = x.dtype, self._work(x)
        log_joint, var = self._log_joint(x, sigma)
        k = torch.multinomial(torch.softmax(log_joint, dim=1), 1, generator=generator).squeeze(1)   # (N,)
        mu, s, _ = self._like(x)
        var_k = var[k] if var.dim() == 1 else var.gather(1, k[:, None]).squeeze(1)                # (N,)
        shrink = (s[k] ** 2 / var_k)[:, None]
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return (mu[k] + shrink * (x - mu[k]) + (s[k, None] ** 2 * (1 - shrink)).sqrt() * z).to(dtype)

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2 = sum_k r_k (mu_k - x)/(s_k^2 + sigma^2).  [EDM eq. 3]"""
        dtype, x = x.dtype, self._work(x)
        log_joint, var = self._log_joint(x, sigma)
        r = torch.softmax(log_joint, dim=1)
        mu, _, _ = self._like(x)
        w = r / var                                                    # (N, K)
        return (w @ mu - w.sum(1, keepdim=True) * x).to(dtype)

    def per_mode_frechet(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over components of the Fréchet distance between the samples nearest (in responsibility)
        to component k and N(mu_k, s_k^2 I); a mode with fewer than D + 1 samples scores inf.

        For N(m, C) against N(mu, s^2 I) the Fréchet distance is |m - mu|^2 + tr C + D s^2 - 2 s tr C^(1/2).
        Unlike the sliced Wasserstein distance it is not dominated by how many samples land in each
        mode, so it separates samplers that place points well from ones that blur them.
        """
        k = self.responsibilities(x, 0.0).argmax(1)
        out = []
        for j in range(self.K):
            xj = x[k == j]
            if len(xj) <= self.D:
                out.append(torch.tensor(float("inf"), dtype=x.dtype))
                continue
            m, C = xj.mean(0), torch.cov(xj.T).reshape(self.D, self.D)
            s = self.stds[j].to(x.dtype)
            root_eigs = torch.linalg.eigvalsh(C).clamp(min=0).sqrt()
            out.append(((m - self.means[j].to(x.dtype)) ** 2).sum() + C.trace() + self.D * s**2 - 2 * s * root_eigs.sum())
        return torch.stack(out).mean()

    def eps_model(self, sched):
        """The exact eps-prediction E[eps | x_t] on a discrete DDPM schedule: eps_model(x_t, t).

        x_t = sqrt(alpha_bar_t)(x_0 + sigma_t eps) with sigma_t = sqrt((1 - alpha_bar_t)/alpha_bar_t),
        so E[eps | x_t] = (x - D(x, sigma_t)) / sigma_t with x = x_t / sqrt(alpha_bar_t).
        """
        return eps_from_denoiser(self.denoiser, sched)
