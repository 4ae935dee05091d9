"""EDM Euler/Heun against diffusers' EulerDiscreteScheduler and HeunDiscreteScheduler with Karras sigmas.

Same denoiser, same noise, float64, whole trajectories to 1e-6.  Differences handled here:
- diffusers computes its Karras sigmas in float32 from its training schedule's extremes (Heun has no
  sigma_min/sigma_max option); we take its sigmas, upcast them to float64, and give ours the same grid.
- diffusers scales the model input by 1/sqrt(sigma^2 + 1); with prediction_type="sample" the test's
  model returns D(x, sigma) of the unscaled state, so both sides evaluate the same denoiser.
- diffusers' EulerDiscreteScheduler.step casts the state to float32 ("upcast") before every update,
  so its float64 trajectories carry float32 rounding, which the mixture's flow amplifies near the
  boundary between two modes (3e-6 after 50 steps).  So each Euler update is compared from the same
  state at 1e-6, and whole Euler trajectories at 1e-5.
- with churn, diffusers' Euler evaluates the model before adding the churn noise, while EDM
  Algorithm 2 (and diffedu) evaluates it after; so churn is compared only where both agree (s_churn=0).
"""
import pytest
import torch

import diffedu as d
from diffusers import EulerDiscreteScheduler, HeunDiscreteScheduler

MIX = d.GaussianMixture.eight_gaussians()


def _diffusers_sampler(scheduler_cls, steps):
    sch = scheduler_cls(num_train_timesteps=1000, beta_schedule="linear", use_karras_sigmas=True,
                        prediction_type="sample")
    sch.set_timesteps(steps)
    sch.sigmas = sch.sigmas.to(torch.float64)
    return sch


def _run_diffusers(sch, x):
    xs = [x]
    for t in sch.timesteps:
        sch.scale_model_input(x, t)  # what a network would see: x / sqrt(sigma^2 + 1)
        sigma = sch.sigmas[sch.step_index].item()
        D = MIX.denoiser(x, sigma)  # the denoiser of the unscaled x, as in EDM
        x = sch.step(D, t, x).prev_sample
        xs.append(x)
    return xs


@pytest.mark.parametrize("steps", [5, 18, 50])
def test_euler_karras_matches_diffusers(steps):
    sch = _diffusers_sampler(EulerDiscreteScheduler, steps)
    x = torch.randn(512, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sch.sigmas[0]
    theirs = _run_diffusers(sch, x)
    ours = d.sample_edm(MIX.denoiser, sch.sigmas, x, method="euler")
    assert ours.nfe == steps
    torch.testing.assert_close(ours.xs, torch.stack(theirs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [5, 50])
def test_each_euler_update_matches_diffusers(steps):
    sch = _diffusers_sampler(EulerDiscreteScheduler, steps)
    x = torch.randn(512, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sch.sigmas[0]
    ours = d.sample_edm(MIX.denoiser, sch.sigmas, x, method="euler")
    for i, t in enumerate(sch.timesteps):
        sch.scale_model_input(ours.xs[i], t)
        theirs = sch.step(MIX.denoiser(ours.xs[i], sch.sigmas[i].item()), t, ours.xs[i]).prev_sample
        torch.testing.assert_close(ours.xs[i + 1], theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("steps", [5, 18, 50])
def test_heun_karras_matches_diffusers(steps):
    sch = _diffusers_sampler(HeunDiscreteScheduler, steps)
    # Heun's scheduler interleaves sigmas for its two stages; the grid of states is every other one
    grid = torch.cat([sch.sigmas[:1], sch.sigmas[1::2]])
    x = torch.randn(512, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * grid[0]
    theirs = _run_diffusers(sch, x)
    ours = d.sample_edm(MIX.denoiser, grid, x, method="heun")
    assert ours.nfe == len(sch.timesteps) == 2 * steps - 1
    # diffusers records the intermediate Euler prediction as a state; keep the states after each full step
    full = [theirs[0]] + theirs[2::2] + ([theirs[-1]] if len(theirs) % 2 == 0 else [])
    torch.testing.assert_close(ours.xs, torch.stack(full), rtol=1e-6, atol=1e-6)


def test_karras_sigmas_match_diffusers_formula():
    sch = EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="linear", use_karras_sigmas=True)
    sch.set_timesteps(25)
    lo, hi = sch.sigmas[-2].item(), sch.sigmas[0].item()
    ours = d.karras_sigmas(25, sigma_min=lo, sigma_max=hi)
    torch.testing.assert_close(ours.float(), sch.sigmas, rtol=1e-5, atol=1e-6)
