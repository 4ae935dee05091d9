"""DDIM inversion: encode x_0 to noise with the deterministic update run upwards, and decode it back."""
import pytest
import torch

import diffedu as d

MIX = d.GaussianMixture.eight_gaussians()
SCHED = d.Schedule(d.linear_betas(1000))


def test_round_trip_error_shrinks_with_steps():
    x0 = MIX.sample(500, torch.Generator().manual_seed(0))
    errs = []
    for n in (10, 50, 200, 1000):
        enc = d.ddim_invert(MIX.eps_model(SCHED), SCHED, x0, steps=n)
        assert enc.nfe == n and enc.ts[0] == 0 and enc.ts[-1] == d.ddim_timesteps(1000, n)[0]
        dec = d.sample_ddim(MIX.eps_model(SCHED), SCHED, enc.x, steps=n)
        errs.append((dec.x - x0).norm(dim=1).mean().item())
    assert all(a > b for a, b in zip(errs, errs[1:]))
    assert errs[-1] < 0.005


def test_encoded_noise_is_roughly_standard_normal():
    x0 = MIX.sample(4000, torch.Generator().manual_seed(1))
    z = d.ddim_invert(MIX.eps_model(SCHED), SCHED, x0, steps=200).x
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.1


def test_first_step_leaves_x0_as_the_estimate():
    x0 = MIX.sample(10, torch.Generator().manual_seed(2))
    enc = d.ddim_invert(MIX.eps_model(SCHED), SCHED, x0, steps=5)
    torch.testing.assert_close(enc.x0_hats[0], x0)
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        d.ddim_invert(MIX.eps_model(SCHED), SCHED, x0, steps=0)
