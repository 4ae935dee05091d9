"""diffedu.symbolic: every DDPM and DDIM closed form derived with sympy, paired with the function
that runs.  Nothing is derived at import; each derivation runs once on first use (lru_cache).

    >>> from diffedu import symbolic as S
    >>> s = S.symbols()
    >>> bool(S.check("posterior_variance", (1 - s.alpha_bar_prev) / (1 - s.alpha_bar_t) * s.beta_t))
    True

Derivations (each returns a `Derivation`: `.result`, `.steps`, `.verify()`, `.show()`):
1. `merge_gaussians`    q(x_t | x_0) from the one-step chain  [DDPM eq. 4]
2. `ddpm_posterior`, `gaussian_kl`, `vlb_term`  mu_tilde, beta_tilde, eps-form, L_{t-1} weight  [DDPM eq. 6-7, 11-12]
3. `ddim_coefficients`, `open_questions`  k, m, the DDIM update, sigma(eta)  [DDIM eq. 7, 12, 16]
4. `parameterisations`  eps <-> x_0 <-> v <-> score
5. `check(name, expr)`  the learner-facing checker
"""
from ._core import Derivation, canonical, is_zero, symbols, tidy
from .check import REFERENCE, CheckResult, check
from .ddim import ddim_coefficients, open_questions
from .forward import gaussian_moments, merge_gaussians
from .param import parameterisations
from .posterior import ddpm_posterior, gaussian_kl, vlb_term
from .registry import NUMERIC_MODULES, PAIRS, WAIVERS, Pair, missing_pairs, verify

DERIVATIONS = (merge_gaussians, ddpm_posterior, gaussian_kl, vlb_term, ddim_coefficients, open_questions,
               parameterisations)

__all__ = [
    "symbols", "check", "CheckResult", "REFERENCE", "Derivation", "canonical", "is_zero", "tidy",
    "merge_gaussians", "gaussian_moments", "ddpm_posterior", "gaussian_kl", "vlb_term",
    "ddim_coefficients", "open_questions", "parameterisations", "DERIVATIONS",
    "Pair", "PAIRS", "NUMERIC_MODULES", "WAIVERS", "verify", "missing_pairs",
]
