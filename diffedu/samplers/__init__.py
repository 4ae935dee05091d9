"""Samplers: pure step functions and one loop (diffedu.trajectory.run) that records a Trajectory."""
from .ddim import ddim_step, ddim_timesteps, sample_ddim
from .ddpm import ddpm_sigmas, ddpm_step, sample_ddpm

__all__ = ["ddim_step", "ddim_timesteps", "sample_ddim", "ddpm_sigmas", "ddpm_step", "sample_ddpm"]
