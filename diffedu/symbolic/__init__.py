"""diffedu.symbolic: every closed form of the course derived with sympy, and paired with the function
that runs.  Nothing is derived at import; each derivation runs once on first use (lru_cache).

    >>> from diffedu import symbolic as S
    >>> s = S.symbols()
    >>> bool(S.check("posterior_variance", (1 - s.alpha_bar_prev) / (1 - s.alpha_bar_t) * s.beta_t))
    True

`DERIVATIONS` maps each derivation's name to the function returning it (each returns a `Derivation`: `.result`,
`.steps`, `.verify()`, `.show()` with its boxed conclusion and verdicts), by module:
1. forward     `merge_gaussians`, `noise_levels`: q(x_t | x_0), then sigma_t, SNR_t, beta_t  [DDPM eq. 4, VDM eq. 3]
2. posterior   `ddpm_posterior`, `gaussian_kl`, `vlb_term`: mu_tilde, beta_tilde, eps-form, L_{t-1} weight
               [DDPM eq. 6-7, 11-12]
3. ddim        `ddim_coefficients`, `open_questions`: k, m, the DDIM update, sigma(eta)  [DDIM eq. 7, 12, 16]
4. param       `parameterisations`: eps <-> x_0 <-> v <-> score
5. processes   s(t), sigma(t) <-> f, g; the PF-ODE; DDIM = Euler  [EDM eq. 4, 28, 34]
   precond     EDM's c_skip, c_out, c_in and loss weight  [EDM App. B.6]
   steps       Euler, Heun and the EDM slope  [EDM Alg. 1]
   unified     estimate-then-correct keeps the marginal; noise reuse; the training objective  [UDM eq. 4-13]
   elbo        the ELBO as L_T + sum L_{t-1} + L_0, the two optimal reverse variances  [DDPM eq. 5, §3.2]
   score       p_t as a convolution, Tweedie's formula, the denoiser's minimiser  [EDM eq. 2-3, 10]
   fokker_planck  the Gaussian density solves Fokker-Planck; the PF-ODE keeps it  [Song eq. 13, EDM eq. 4]
   guidance    classifier-free guidance from Bayes: the implicit classifier  [CFG eq. 6]
6. check       `check(name, expr)`, the learner-facing checker

Pairing: each derivation module declares `PAIRS` and `WAIVERS` beside its derivations (`Pair`,
`verify` live in .pairing); `registry` collects them into PAIRS (functions), WAIVERS and
NUMERIC_MODULES, and `registry.METHOD_PAIRS()` holds the methods of diffedu.processes.
`verify(pair)` is what the tests run; `missing_pairs()` lists public functions with neither.
Imports: sympy, numpy, torch, the diffedu modules it pairs, and its own submodules.
"""
from ._core import Derivation, canonical, is_zero, latex, symbols, tidy
from .check import REFERENCE, CheckResult, check
from .ddim import ddim_coefficients, open_questions
from .forward import gaussian_moments, merge_gaussians, noise_levels
from .param import parameterisations
from .posterior import ddpm_posterior, gaussian_kl, vlb_term
from .registry import NUMERIC_MODULES, PAIRS, WAIVERS, Pair, missing_pairs, verify

from . import ddim as _ddim
from . import elbo as _elbo
from . import fokker_planck as _fokker_planck
from . import guidance as _guidance
from . import precond as _precond
from . import processes as _processes
from . import score as _score
from . import steps as _steps
from . import unified as _unified

# every derivation in the package, by name (each value returns its Derivation; nothing runs at import)
DERIVATIONS = {f.__name__: f for f in (
    merge_gaussians, noise_levels,                                            # forward
    ddpm_posterior, gaussian_kl, vlb_term, _elbo.elbo_decomposition,          # posterior, elbo
    ddim_coefficients, open_questions, _ddim.ddim_marginals_only,             # ddim
    parameterisations,                                                        # param
    _unified.corrections_keep_the_marginal, _unified.gaussian_posterior_mean,  # unified
    _unified.udm_noise_reuse, _unified.udm_training_objective,
    _score.p_t_convolution, _score.tweedie, _score.denoiser_minimiser,        # score
    _fokker_planck.pf_ode_fokker_planck,                                      # fokker_planck
    _processes.sde_from_s_sigma, _processes.s_sigma_from_sde, _processes.pf_ode, _processes.ddim_is_euler,
    _steps.ode_steps, _precond.edm_preconditioning,                           # processes, steps, precond
    _guidance.classifier_free_guidance,                                       # guidance
)}

__all__ = [
    "symbols", "latex", "check", "CheckResult", "REFERENCE", "Derivation", "canonical", "is_zero", "tidy",
    "merge_gaussians", "noise_levels", "gaussian_moments", "ddpm_posterior", "gaussian_kl", "vlb_term",
    "ddim_coefficients", "open_questions", "parameterisations", "DERIVATIONS",
    "Pair", "PAIRS", "NUMERIC_MODULES", "WAIVERS", "verify", "missing_pairs",
]
