"""The forward-process explorer (notebook 01's slider): x_t is q(x_t | x_0) of the chosen schedule and t with
the seed's noise, x0_hat is the network's estimate at the nearest noise level, bad settings are named, and
the controls drive it."""
import pytest
import torch

import diffedu as d
from diffedu.trained import Trained
from diffedu.widgets import ForwardExplorer
from standins import tiny_conditional_unet


def images(n=4):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


def network():
    return Trained(tiny_conditional_unet(), "eps", d.Schedule(d.linear_betas(100)), shape=[1, 8, 8])


@pytest.mark.parametrize("schedule", ["linear", "cosine", "sigmoid"])
def test_x_t_is_q_sample_of_the_schedule_with_the_seeds_noise(schedule):
    ex = ForwardExplorer(images(), T=200)
    ex.set(schedule=schedule, t=120, seed=3)
    sched = ex.scheds[schedule]
    eps = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    ab = sched.alpha_bar[120].float()
    torch.testing.assert_close(ex.x_t, ab.sqrt() * images() + (1 - ab).sqrt() * eps)
    assert ex.alpha_bar() == pytest.approx(float(sched.alpha_bar[120]))
    assert f"{schedule}, t = 120" in ex.fig._suptitle.get_text() and ex.png()[:8] == b"\x89PNG\r\n\x1a\n"
    ex.set(t=0)
    torch.testing.assert_close(ex.x_t, images())                # t = 0 is the data itself


def test_x0_hat_inverts_the_networks_eps_at_the_nearest_noise_level():
    trained = network()
    ex = ForwardExplorer(images(), trained, t=40)
    ex.set()
    null_eps = trained.eps_model(trained.sched)
    with torch.no_grad():                                        # linear: the network's own schedule, t' = t
        eps_hat = null_eps(ex.x_t, torch.full((4,), 40))
    ab = trained.sched.alpha_bar[40].float()
    assert ex.t_net == 40
    torch.testing.assert_close(ex.x0_hat, (ex.x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt(), rtol=1e-4, atol=1e-4)
    ex.set(schedule="cosine")                                    # another schedule: the nearest alpha_bar
    gap = (trained.sched.alpha_bar[1:] - ex.alpha_bar()).abs()
    assert ex.t_net == int(gap.argmin()) + 1 and ex.t_net != 40
    assert f"t' = {ex.t_net}" in ex.fig._suptitle.get_text()


@pytest.mark.parametrize("change, match", [
    (dict(t=201), r"t must be"), (dict(t=-1), r"t must be"), (dict(schedule="quadratic"), r"schedule must be one of"),
    (dict(eta=0.5), r"unknown setting"), (dict(seed=-2), r"seed must be"),
])
def test_bad_settings_are_named_and_change_nothing(change, match):
    ex = ForwardExplorer(images(), T=200)
    before = dict(ex.settings)
    with pytest.raises(ValueError, match=match):
        ex.set(**change)
    assert ex.settings == before


def test_bad_images_and_a_T_that_is_not_the_networks_are_refused():
    with pytest.raises(ValueError, match=r"images must be a tensor \(n, C, H, W\)"):
        ForwardExplorer(torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"trained with T = 100"):
        ForwardExplorer(images(), network(), T=1000)


def test_the_controls_drive_the_explorer():
    ex = ForwardExplorer(images(), network(), t=10)
    box = ex.widget()
    first = box.children[2].value
    ex.controls["t"].value = 90
    assert ex.settings["t"] == 90 and box.children[2].value != first and box.children[2].value[:4] == b"\x89PNG"
    ex.controls["schedule"].value = "sigmoid"
    assert ex.settings["schedule"] == "sigmoid" and "sigmoid, t = 90" in ex.fig._suptitle.get_text()
    assert list(ex.controls) == ["schedule", "t", "seed"]
