"""The guidance explorer: the same noise for every w (w = 0 is the conditional model), the classifier's
reading in the title, bad settings named, and the controls drive it."""
import pytest
import torch

import diffedu as d
from diffedu.trained import Trained
from diffedu.widgets import GuidanceExplorer
from standins import tiny_conditional_unet


def conditional(seed=0):
    return Trained(tiny_conditional_unet(seed), "eps", d.Schedule(d.linear_betas(100)), shape=[1, 8, 8])


class Reader(torch.nn.Module):
    """A stand-in classifier: the class is the sign pattern of the mean pixel (enough to be read)."""

    def forward(self, x):
        m = x.mean((1, 2, 3))
        return torch.stack([-m, m, 0 * m], 1)


def test_w_changes_only_the_guidance_and_w_0_is_the_conditional_model():
    trained = conditional()
    ex = GuidanceExplorer(trained, Reader(), n=6, steps=5)
    ex.set(label=1, guidance=0.0)
    at0 = ex.x.clone()
    plain = trained.sample(6, "ddim", steps=5, labels=1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(at0, plain, rtol=1e-4, atol=1e-4)   # the explorer samples on 1 thread: round-off only
    ex.set(guidance=3.0)
    assert not torch.allclose(ex.x, at0)
    ex.set(guidance=0.0)
    assert torch.equal(ex.x, at0)                          # same seed, same noise: w alone moved it
    assert "class 1, w = 0" in ex.fig._suptitle.get_text() and "the classifier reads" in ex.fig._suptitle.get_text()
    assert 0 <= ex.accuracy() <= 1 and ex.png()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("change, match", [
    (dict(label=3), r"label must be"), (dict(guidance=-1.0), r"guidance must be"),
    (dict(steps=0), r"steps must be"), (dict(eta=0.5), r"unknown setting"),
])
def test_bad_settings_are_named_and_change_nothing(change, match):
    ex = GuidanceExplorer(conditional(), n=4, steps=3)
    before = dict(ex.settings)
    with pytest.raises(ValueError, match=match):
        ex.set(**change)
    assert ex.settings == before


def test_an_unconditional_model_is_refused():
    torch.manual_seed(0)
    plain = Trained(d.UNet(1, 8, (1, 2), attention=False), "eps", d.Schedule(d.linear_betas(100)), shape=[1, 8, 8])
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        GuidanceExplorer(plain)


def test_the_controls_drive_the_explorer():
    ex = GuidanceExplorer(conditional(), Reader(), n=4, steps=3)
    box = ex.widget()
    row = box.children[0].children
    row[1].value = 2.0                                     # the w slider
    assert ex.settings["guidance"] == 2.0 and box.children[2].value[:4] == b"\x89PNG"
    row[0].value = 2                                       # the class menu
    assert ex.settings["label"] == 2
    assert list(ex.controls) == ["label", "guidance", "steps", "seed"] and ex.controls["guidance"] is row[1]
