"""diffedu: the companion package of an interactive course on diffusion models.

Every coefficient function cites the equation it implements (see REFERENCES.md) and is paired
with its sympy derivation in `diffedu.symbolic`.

Imports: every layer below it (the public names at top level); nothing imports it back.
"""
from ._version import __version__
from .interop import from_diffusers
from .forward import q_mean_var, q_mean_var_coefs, q_sample
from .losses import l_simple, vlb_weights
from .param import (eps_from_score, eps_from_v, eps_from_x0, score_from_eps, v_from_eps, x0_from_eps,
                    x0_from_score, x0_from_v)
from .posterior import (ddim_mean_coefs, ddim_sigma, ddim_step_coefs, posterior_mean_coefs,
                        posterior_mean_eps_coefs, posterior_variance, vlb_weight)
from .models.analytic import GaussianMixture
from .models.mlp import MLP
from .models.unet import UNet
from .precond import Denoiser, c_noise, denoiser_from_eps, edm_loss, edm_scalings, eps_from_denoiser
from .processes import EDM, VE, VP, FlowMatching, Process
from .samplers import (Blur, Degradation, GaussianForward, Mask, ddim_invert, ddim_step, ddim_timesteps, ddpm_sigmas, ddpm_step,
                       karras_sigmas, sample_ddim, sample_ddpm, sample_edm, sample_estimate_correct, sample_pf_ode,
                       sigma_tilde_for_eta, x0_loss, x0_model_from_eps)
from .schedules import Schedule, cosine_betas, linear_betas, sigmoid_betas
from .trajectory import NoiseStream, Trajectory


__all__ = [
    "Schedule", "linear_betas", "cosine_betas", "sigmoid_betas",
    "from_diffusers",
    "q_sample", "q_mean_var", "q_mean_var_coefs",
    "posterior_mean_coefs", "posterior_variance", "posterior_mean_eps_coefs", "vlb_weight",
    "ddim_sigma", "ddim_mean_coefs", "ddim_step_coefs",
    "x0_from_eps", "eps_from_x0", "v_from_eps", "x0_from_v", "eps_from_v", "score_from_eps",
    "eps_from_score", "x0_from_score",
    "l_simple", "vlb_weights",
    "Trajectory", "NoiseStream",
    "sample_ddpm", "sample_ddim", "ddim_invert", "ddpm_step", "ddim_step", "ddpm_sigmas", "ddim_timesteps",
    "GaussianMixture",
    "MLP", "UNet",
    "Process", "VP", "VE", "EDM", "FlowMatching",
    "edm_scalings", "c_noise", "Denoiser", "edm_loss", "denoiser_from_eps", "eps_from_denoiser",
    "karras_sigmas", "sample_edm", "sample_pf_ode",
    "sample_estimate_correct", "GaussianForward", "Degradation", "Blur", "Mask", "sigma_tilde_for_eta",
    "x0_model_from_eps", "x0_loss",
]
