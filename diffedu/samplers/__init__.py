"""Samplers: pure step functions, one loop (diffedu.trajectory.run) that records a Trajectory, and
the registry SAMPLERS that names them for the command line, the explorers and the benchmarks.

Imports: torch, numpy, diffedu core maths (schedules, forward, posterior, param, processes, precond),
diffedu.trajectory and _checks/_ops; nothing from models, io or apps.
"""
from .ddim import ddim_invert, ddim_step, ddim_timesteps, sample_ddim
from .ddpm import ddpm_sigmas, ddpm_step, sample_ddpm
from .edm import euler_step, heun_step, karras_sigmas, sample_edm, sample_pf_ode, slope
from .estimate_correct import (Blur, Degradation, GaussianForward, Mask, sample_estimate_correct,
                               sigma_tilde_for_eta, x0_loss, x0_model_from_eps)
from .registry import SAMPLERS, Param, SamplerSpec, Target

__all__ = ["ddim_invert", "ddim_step", "ddim_timesteps", "sample_ddim", "ddpm_sigmas", "ddpm_step", "sample_ddpm",
           "karras_sigmas", "sample_edm", "sample_pf_ode", "slope", "euler_step", "heun_step",
           "sample_estimate_correct", "GaussianForward", "Degradation", "Blur", "Mask",
           "sigma_tilde_for_eta", "x0_model_from_eps", "x0_loss", "SAMPLERS", "SamplerSpec", "Param", "Target"]
