"""Cosine and sigmoid betas against a peer implementation and the published pseudo-code.

cosine   diffusers' beta_schedule="squaredcos_cap_v2" (its `betas_for_alpha_bar`, the function of
         the iDDPM authors' code): alpha_bar(t) = cos^2((t/T + s)/(1 + s) pi/2) with s = 0.008,
         beta_t = min(1 - alpha_bar(t/T)/alpha_bar((t-1)/T), 0.999).  [iDDPM eq. 17]
         diffusers returns float32, so the agreement is to float32 rounding (the float64 values are
         checked against eq. 17 to 1e-12 in tests/test_schedules.py).
sigmoid  diffedu implements the sigmoid schedule of Jabri et al. (RIN, Fig. 8 / Alg. 3, also
         Chen 2023 "On the Importance of Noise Scheduling", Alg. 1), coded below from that
         pseudo-code with numpy, including its clip_min = 1e-9 on alpha_bar, and discretised
         as iDDPM does.  diffusers' beta_schedule="sigmoid" is a different schedule (GeoDiff's
         sigmoid of a linspace of betas), so it is not the peer here.
"""
import numpy as np
import pytest
import torch

import diffedu as d
from diffusers import DDPMScheduler


@pytest.mark.parametrize("T", [50, 1000, 4000])
def test_cosine_betas_match_diffusers_squaredcos_cap_v2(T):
    theirs = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2").betas
    assert theirs.dtype == torch.float32
    ours = d.cosine_betas(T)  # s = 0.008, max_beta = 0.999: the paper's values are the defaults
    torch.testing.assert_close(ours, theirs.double(), rtol=2.4e-7, atol=0)  # <= 2 float32 ulps
    assert ours[-1].item() == 0.999 and theirs[-1].item() == np.float32(0.999)  # the clip is hit at t = T


def _sigmoid_gamma(t, start=-3, end=3, tau=1.0, clip_min=1e-9):
    """A gamma function based on the sigmoid function (Jabri et al. 2022 / Chen 2023, Alg. 1), verbatim."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    v_start = sigmoid(start / tau)
    v_end = sigmoid(end / tau)
    output = sigmoid((t * (end - start) + start) / tau)
    output = (v_end - output) / (v_end - v_start)
    return np.clip(output, clip_min, 1.0)


@pytest.mark.parametrize("T", [40, 1000])
@pytest.mark.parametrize("start, end, tau", [(-3, 3, 1.0), (0, 3, 0.3), (-3, 3, 1.1), (0, 3, 0.7)])
def test_sigmoid_betas_match_published_pseudocode(T, start, end, tau):
    alpha_bar = _sigmoid_gamma(np.arange(T + 1) / T, start, end, tau)
    expected = np.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], 0.999)
    ours = d.sigmoid_betas(T, start, end, tau).numpy()
    np.testing.assert_allclose(ours[:-1], expected[:-1], rtol=1e-12, atol=0)
    np.testing.assert_allclose(d.Schedule(torch.from_numpy(ours)).alpha_bar[:-1].numpy(), alpha_bar[:-1],
                               rtol=1e-10, atol=1e-15)
    # The last step: the pseudo-code clips alpha_bar at 1e-9, diffedu lets alpha_bar_T reach 0 and
    # clips beta_T at 0.999.  They differ only when alpha_bar_{T-1} < 1e-6 (e.g. tau = 0.3), and
    # then by less than 1e-3 in beta_T: both steps leave at most 1e-9 of the signal's variance.
    if alpha_bar[-2] * (1 - 0.999) >= 1e-9:
        assert ours[-1] == expected[-1] == 0.999
    else:
        assert ours[-1] == 0.999 and 0.998 < expected[-1] < 0.999
    # without that clip_min the pseudo-code gives diffedu's betas at every step
    unclipped = _sigmoid_gamma(np.arange(T + 1) / T, start, end, tau, clip_min=0.0)
    np.testing.assert_allclose(ours, np.minimum(1 - unclipped[1:] / unclipped[:-1], 0.999), rtol=1e-12, atol=0)


def test_diffusers_sigmoid_is_a_different_schedule():
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_schedule="sigmoid").betas.double()
    geodiff = torch.sigmoid(torch.linspace(-6, 6, 1000, dtype=torch.float64)) * (0.02 - 1e-4) + 1e-4
    torch.testing.assert_close(theirs, geodiff, rtol=1e-6, atol=1e-9)
    assert not torch.allclose(theirs, d.sigmoid_betas(1000), rtol=0.1)
