"""Whole trajectories against diffusers' DDPMScheduler and DDIMScheduler (an implementation
nobody here wrote): same model, same injected noise, float64, agreement to 1e-6.

diffusers keeps betas and alpha_bar in float32; we overwrite them with our float64 tensors
(indexed by diffusers' timestep k = paper time - 1) so the comparison is of the update rules,
not of float32 rounding.  clip_sample is off (diffusers turns it on by default).
"""
import numpy as np
import pytest
import torch

import diffedu as d
from standins import wiggly_eps_model

import diffusers.schedulers.scheduling_ddpm as ddpm_module
from diffusers import DDIMScheduler, DDPMScheduler

T = 1000
SHAPE = (6, 3, 4, 4)


@pytest.fixture(scope="module")
def sched():
    return d.Schedule(d.linear_betas(T))


def _upcast(scheduler, sched):
    scheduler.betas = sched.beta[1:].clone()
    scheduler.alphas = sched.alpha[1:].clone()
    scheduler.alphas_cumprod = sched.alpha_bar[1:].clone()
    scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


def _start_and_noises(n):
    g = torch.Generator().manual_seed(123)
    x_T = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    return x_T, [torch.randn(SHAPE, generator=g, dtype=torch.float64) for _ in range(n)]


@pytest.mark.parametrize("variance_type, variance", [("fixed_small", "beta_tilde"), ("fixed_large", "beta")])
def test_ddpm_matches_diffusers(sched, variance_type, variance, monkeypatch):
    model = wiggly_eps_model(sched)
    x_T, noises = _start_and_noises(T - 1)
    ours = d.sample_ddpm(model, sched, x_T, variance=variance, noises=noises)

    sch = _upcast(DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                variance_type=variance_type), sched)
    queue = list(noises)
    monkeypatch.setattr(ddpm_module, "randn_tensor", lambda shape, **kw: queue.pop(0))
    x = x_T
    theirs = [x]
    for k in sch.timesteps:
        eps = model(x, torch.full((SHAPE[0],), int(k) + 1))
        x = sch.step(eps, int(k), x).prev_sample
        theirs.append(x)
    assert not queue  # diffusers drew exactly the T - 1 noises we gave ours
    torch.testing.assert_close(ours.xs, torch.stack(theirs), rtol=1e-6, atol=1e-6)


def _diffusers_ddim(sched, model, x_T, noises, steps, eta, spacing):
    sch = _upcast(DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                set_alpha_to_one=True, steps_offset=0, timestep_spacing=spacing), sched)
    sch.set_timesteps(steps)
    x, out = x_T, [x_T]
    zeros = torch.zeros(SHAPE, dtype=torch.float64)
    for i, k in enumerate(sch.timesteps):
        eps = model(x, torch.full((SHAPE[0],), int(k) + 1))
        # diffusers draws noise at the last step too and scales it by sigma = 0; we give it zeros there
        z = noises[i] if i < steps - 1 else zeros
        x = sch.step(eps, int(k), x, eta=eta, variance_noise=z if eta > 0 else None).prev_sample
        out.append(x)
    return torch.stack(out), sch.timesteps


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("steps", [10, 50, 1000])
def test_ddim_matches_diffusers(sched, eta, spacing, steps):
    model = wiggly_eps_model(sched)
    x_T, noises = _start_and_noises(steps)
    ours = d.sample_ddim(model, sched, x_T, steps=steps, eta=eta, spacing=spacing, noises=noises)
    theirs, timesteps = _diffusers_ddim(sched, model, x_T, noises, steps, eta, spacing)
    assert ours.ts[:-1].tolist() == (timesteps + 1).tolist()
    torch.testing.assert_close(ours.xs, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_grids_match_diffusers_timesteps_for_every_step_count(spacing):
    sch = DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=0)
    broken = []
    for steps in range(1, T + 1):
        sch.set_timesteps(steps)
        theirs = (sch.timesteps + 1).tolist()
        if len(theirs) != steps:
            # float round-off in np.arange leaves an extra timestep -1 (paper time 0) for some
            # trailing grids (e.g. steps = 61); diffedu keeps exactly `steps` times >= 1
            assert spacing == "trailing" and theirs[-1] == 0 and len(theirs) == steps + 1, steps
            broken.append(steps)
            theirs = theirs[:steps]
        assert d.ddim_timesteps(T, steps, spacing)[:-1].tolist() == theirs, steps
    assert spacing == "trailing" or not broken, broken  # 62 of 1000 trailing grids, measured


@pytest.mark.parametrize("spacing, steps", [("linspace", 10), ("trailing", 3), ("trailing", 30)])
def test_where_diffusers_jumps_off_its_own_grid(sched, spacing, steps):
    """diffusers' DDIM step always goes from k to k - T // n.  For these grids that is not the
    next grid time, so its trajectory leaves the grid; ours goes to the next grid time (each
    step checked against DDIM eq. 7 in test_samplers.py).  Both agree up to diffusers' first
    off-grid jump, and that jump is exactly our ddim_step aimed at diffusers' landing time."""
    model = wiggly_eps_model(sched)
    x_T, noises = _start_and_noises(steps)
    ours = d.sample_ddim(model, sched, x_T, steps=steps, eta=0.0, spacing=spacing)
    theirs, timesteps = _diffusers_ddim(sched, model, x_T, noises, steps, 0.0, spacing)
    paper = (timesteps + 1).tolist() + [0]
    jumps = [a - b for a, b in zip(paper[:-1], paper[1:])]
    j = next(i for i, jump in enumerate(jumps[:-1]) if jump != T // steps)  # first off-grid jump
    torch.testing.assert_close(ours.xs[: j + 1], theirs[: j + 1], rtol=1e-6, atol=1e-6)
    t, x = paper[j], ours.xs[j]
    eps = model(x, torch.full((SHAPE[0],), t))
    landed, _ = d.ddim_step(x, eps, sched.alpha_bar[t].item(), sched.alpha_bar[t - T // steps].item(), eta=0.0)
    torch.testing.assert_close(theirs[j + 1], landed, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(ours.xs[j + 1], theirs[j + 1], rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# linspace spacing.  diffedu's `spacing="linspace"` is diffusers' `timestep_spacing="linspace"`
# (same grid for every step count: test_grids_match_diffusers_timesteps_for_every_step_count).
# diffusers' DDIMScheduler.step always reads alpha_bar at k - T // n for the previous time, which
# is not the next linspace grid time unless n = T (see test_where_diffusers_jumps_off_its_own_grid).
# So whole linspace trajectories are compared three ways, none of which changes diffusers' update
# rule:
#   1. eta = 1 against diffusers' DDPMScheduler(timestep_spacing="linspace"), which steps to the
#      next grid time itself (`previous_timestep`), untouched: DDPM's posterior over a skipped
#      step is DDIM with eta = 1 [DDIM eq. 16];
#   2. eta = 0, 0.5, 1 against DDIMScheduler.step whose alpha_bar table has, in the one slot it
#      reads for "previous" (k - T // n), the alpha_bar of the next grid time;
#   3. diffusers' own off-grid linspace trajectory, untouched, against diffedu's pure ddim_step
#      taken between the times diffusers actually uses (k + 1 -> k + 1 - T // n in paper time).

LINSPACE_STEPS = [10, 50, 1000]


def _ddim_linspace_on_grid(sched, model, x_T, noises, steps, eta):
    """diffusers' DDIMScheduler.step, each step aimed at the next linspace grid time."""
    sch = _upcast(DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                set_alpha_to_one=True, steps_offset=0, timestep_spacing="linspace"), sched)
    sch.set_timesteps(steps)
    table = sch.alphas_cumprod
    ks = sch.timesteps.tolist()
    x, out = x_T, [x_T]
    zeros = torch.zeros(SHAPE, dtype=torch.float64)
    for i, k in enumerate(ks):
        eps = model(x, torch.full((SHAPE[0],), k + 1))
        slot = k - T // steps  # where diffusers reads alpha_bar_prev
        if i < steps - 1:
            assert slot >= 0 and slot != k
            sch.alphas_cumprod = table.clone()
            sch.alphas_cumprod[slot] = table[ks[i + 1]]
        else:
            assert slot < 0  # the last step reads final_alpha_cumprod = alpha_bar_0 = 1, as ours
        z = noises[i] if i < steps - 1 else zeros
        x = sch.step(eps, k, x, eta=eta, variance_noise=z if eta > 0 else None).prev_sample
        out.append(x)
    sch.alphas_cumprod = table
    return torch.stack(out), sch.timesteps


@pytest.mark.parametrize("steps", LINSPACE_STEPS)
def test_ddim_linspace_eta1_matches_diffusers_ddpm_scheduler(sched, steps, monkeypatch):
    model = wiggly_eps_model(sched)
    x_T, noises = _start_and_noises(steps - 1)
    ours = d.sample_ddim(model, sched, x_T, steps=steps, eta=1.0, spacing="linspace", noises=noises)
    sch = _upcast(DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                variance_type="fixed_small", timestep_spacing="linspace"), sched)
    sch.set_timesteps(steps)
    assert ours.ts[:-1].tolist() == (sch.timesteps + 1).tolist()
    queue = list(noises)
    monkeypatch.setattr(ddpm_module, "randn_tensor", lambda shape, **kw: queue.pop(0))
    x, theirs = x_T, [x_T]
    for k in sch.timesteps:
        eps = model(x, torch.full((SHAPE[0],), int(k) + 1))
        x = sch.step(eps, int(k), x).prev_sample
        theirs.append(x)
    assert not queue  # one noise per step but the last, as ours
    torch.testing.assert_close(ours.xs, torch.stack(theirs), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("steps", LINSPACE_STEPS)
def test_ddim_linspace_matches_diffusers_ddim_update_on_the_grid(sched, eta, steps):
    model = wiggly_eps_model(sched)
    x_T, noises = _start_and_noises(steps)
    ours = d.sample_ddim(model, sched, x_T, steps=steps, eta=eta, spacing="linspace", noises=noises)
    theirs, timesteps = _ddim_linspace_on_grid(sched, model, x_T, noises, steps, eta)
    assert ours.ts[:-1].tolist() == (timesteps + 1).tolist()
    torch.testing.assert_close(ours.xs, theirs, rtol=1e-6, atol=1e-6)
    if steps == T:  # every jump is T // n = 1: diffusers' own path, nothing re-aimed
        plain, _ = _diffusers_ddim(sched, model, x_T, noises, steps, eta, "linspace")
        torch.testing.assert_close(ours.xs, plain, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("steps", [10, 50])
def test_diffusers_linspace_path_is_ddim_step_between_its_times(sched, eta, steps):
    model = wiggly_eps_model(sched)
    x_T, noises = _start_and_noises(steps)
    theirs, timesteps = _diffusers_ddim(sched, model, x_T, noises, steps, eta, "linspace")
    x, ours = x_T, [x_T]
    for i, k in enumerate(timesteps.tolist()):
        t, t_prev = k + 1, max(k + 1 - T // steps, 0)
        eps = model(x, torch.full((SHAPE[0],), t))
        noisy = eta > 0 and i < steps - 1
        x, _ = d.ddim_step(x, eps, sched.alpha_bar[t].item(), sched.alpha_bar[t_prev].item(), eta,
                           noises[i] if noisy else None)
        ours.append(x)
    torch.testing.assert_close(torch.stack(ours), theirs, rtol=1e-6, atol=1e-6)
