"""diffedu: the companion package of an interactive course on diffusion models.

Every coefficient function cites the equation it implements (see REFERENCES.md) and is paired
with its sympy derivation in `diffedu.symbolic`.
"""
from .forward import q_mean_var, q_mean_var_coefs, q_sample
from .losses import l_simple, vlb_weights
from .param import (eps_from_score, eps_from_v, eps_from_x0, score_from_eps, v_from_eps, x0_from_eps,
                    x0_from_score, x0_from_v)
from .posterior import (ddim_mean_coefs, ddim_sigma, ddim_step_coefs, posterior_mean_coefs,
                        posterior_mean_eps_coefs, posterior_variance, vlb_weight)
from .samplers import ddim_step, ddim_timesteps, ddpm_sigmas, ddpm_step, sample_ddim, sample_ddpm
from .schedules import Schedule, cosine_betas, linear_betas, sigmoid_betas
from .trajectory import NoiseStream, Trajectory

__version__ = "0.1.0"

__all__ = [
    "Schedule", "linear_betas", "cosine_betas", "sigmoid_betas",
    "q_sample", "q_mean_var", "q_mean_var_coefs",
    "posterior_mean_coefs", "posterior_variance", "posterior_mean_eps_coefs", "vlb_weight",
    "ddim_sigma", "ddim_mean_coefs", "ddim_step_coefs",
    "x0_from_eps", "eps_from_x0", "v_from_eps", "x0_from_v", "eps_from_v", "score_from_eps",
    "eps_from_score", "x0_from_score",
    "l_simple", "vlb_weights",
    "Trajectory", "NoiseStream",
    "sample_ddpm", "sample_ddim", "ddpm_step", "ddim_step", "ddpm_sigmas", "ddim_timesteps",
]
