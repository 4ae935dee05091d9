"""The training explorer (notebook 05's slider over a run): a snapshot's samples are DDIM from the seed's x_T
with that snapshot's weights, the same noise for every snapshot, cached; the loss curve's marker and the title
follow the step; the caller's model is left alone; bad snapshots, losses and settings are named."""
import copy

import pytest
import torch

import diffedu as d
from diffedu.losses import l_simple
from diffedu.samplers.ddim import sample_ddim
from diffedu.widgets import TrainingExplorer

SHAPE = (1, 8, 8)


def tiny_unet():
    torch.manual_seed(0)
    return d.UNet(in_channels=1, base_channels=8, channel_mults=(1,), num_res_blocks=1, attention=False)


@pytest.fixture(scope="module")
def run():
    """A real, tiny run: 20 Adam steps of L_simple on 8x8 digits, T = 50, snapshots at 0, 10, 20."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net, sched = tiny_unet(), d.Schedule(d.linear_betas(50))
        x = d.data.digits(size=8)[0]
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        g = torch.Generator().manual_seed(0)
        snapshots, losses = {0: copy.deepcopy(net.state_dict())}, []
        for step in range(1, 21):
            loss = l_simple(net, sched, x[torch.randint(len(x), (16,), generator=g)], generator=g)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step % 10 == 0:
                snapshots[step] = copy.deepcopy(net.state_dict())
    finally:
        torch.set_num_threads(n)
    return dict(snapshots=snapshots, losses=losses, sched=sched, model=net)


def explorer(run, **kw):
    return TrainingExplorer(run["snapshots"], run["losses"], run["sched"], model=run["model"], shape=SHAPE,
                            **{"n": 4, "sample_steps": 5, **kw})


def test_samples_are_ddim_of_the_snapshot_from_the_seeds_noise(run, one_thread):
    ex = explorer(run, seed=3)
    ex.set(step=10)
    net = tiny_unet().eval()
    net.load_state_dict(run["snapshots"][10])
    x_T = torch.randn((4, *SHAPE), generator=torch.Generator().manual_seed(3))
    assert torch.equal(ex.start(3), x_T)
    with torch.no_grad():
        direct = sample_ddim(net, run["sched"], x_T, 5, eta=0.0, record=False).x
    assert ex.samples.shape == (4, *SHAPE)
    torch.testing.assert_close(ex.samples, direct, rtol=1e-5, atol=1e-5)


def test_snapshots_differ_from_the_same_noise_and_the_cache_agrees_with_recomputing(run, one_thread):
    ex = explorer(run)
    ex.set(step=10, seed=1)
    at10 = ex.samples.clone()
    assert not ex.cached
    ex.set(step=20)
    assert not torch.allclose(ex.samples, at10)              # other weights, same x_T: other samples
    ex.set(seed=2)
    assert not torch.allclose(ex.samples, ex.cache[(20, 1)])  # other noise
    ex.set(step=10, seed=1)
    assert ex.cached and torch.equal(ex.samples, at10)       # back: from the cache
    ex.cache.clear()
    ex.set()
    assert not ex.cached and torch.equal(ex.samples, at10)   # recomputed after other snapshots were loaded: the same


def test_the_callers_model_and_snapshots_are_left_alone(run):
    before = copy.deepcopy(run["model"].state_dict())
    snap0 = copy.deepcopy(run["snapshots"][0])
    ex = explorer(run)
    ex.set(step=0)
    ex.set(step=10)
    assert ex.net is not run["model"]
    for k, v in run["model"].state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(torch.equal(run["snapshots"][0][k], v) for k, v in snap0.items())


def test_the_marker_and_the_title_follow_the_step(run):
    ex = explorer(run)
    fig = ex.set(step=10)
    ax = fig.axes[0]
    marks = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [10, 10]]
    assert len(marks) == 1                                   # the vertical marker
    dots = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [10]]
    assert ex.window(10) == (1, 19)                          # 20 steps centred on 10, cut at step 1
    mean10 = sum(run["losses"][:19]) / 19
    assert len(dots) == 1 and dots[0].get_ydata()[0] == pytest.approx(mean10)
    title = fig._suptitle.get_text()
    assert f"step 10 of 20: loss {run['losses'][9]:.4g}" in title and f"mean over steps 1..19: {mean10:.4g}" in title
    assert ax.get_xlim()[0] < 0 and ax.get_xlim()[1] > 20     # a marker at 0 or at the last step stays visible
    assert ax.get_yscale() == "log"
    raw = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 20]
    assert len(raw) == 2 and list(raw[0].get_ydata()) == pytest.approx(run["losses"])  # raw and running mean
    ex.set(step=0)
    ax = fig.axes[0]                                         # redrawn: the marker at 0, no dot (no loss yet)
    assert len([ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0, 0]]) == 1
    assert not [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 1]
    assert "step 0 of 20: the initial weights" in fig._suptitle.get_text()
    assert ex.loss_at(0) is None and ex.loss_at(20)[0] == pytest.approx(run["losses"][19])


@pytest.mark.parametrize("smooth, windows", [(4, {1: (1, 2), 10: (8, 11), 20: (18, 20)}),
                                              (5, {1: (1, 3), 10: (8, 12), 19: (17, 20)}), (1, {7: (7, 7)})])
def test_running_mean_is_the_mean_over_a_centred_window(run, smooth, windows):
    ex = explorer(run, smooth=smooth)
    L = torch.tensor(run["losses"], dtype=torch.float64)
    assert all(ex.window(s) == w for s, w in windows.items())
    expect = torch.stack([L[ex.window(s)[0] - 1:ex.window(s)[1]].mean() for s in range(1, 21)])
    torch.testing.assert_close(ex.running_mean(), expect)
    assert all(b - a + 1 == smooth for a, b in map(ex.window, range(smooth, 21 - smooth)))


@pytest.mark.parametrize("change, match", [
    (dict(step=15), r"step must be one of the snapshot steps 0, 10, 20; got 15"),
    (dict(step=-1), r"step must be in >= 0"), (dict(seed=-1), r"seed must be"),
    (dict(eta=0.5), r"unknown setting\(s\) \['eta'\]; the training explorer has step, seed"),
])
def test_bad_settings_are_named_and_change_nothing(run, change, match):
    ex = explorer(run, step=10)
    ex.set()
    before, fig = dict(ex.settings), ex.fig
    with pytest.raises(ValueError, match=match):
        ex.set(**change)
    assert ex.settings == before and ex.fig is fig


def test_bad_inputs_are_refused(run):
    sched, model = run["sched"], run["model"]
    snaps, losses = run["snapshots"], run["losses"]

    def make(snapshots=snaps, losses=losses, **kw):
        return TrainingExplorer(snapshots, losses, sched, model=model, shape=SHAPE, **kw)

    with pytest.raises(ValueError, match="snapshots must be a non-empty dict"):
        make({})
    with pytest.raises(ValueError, match=r"snapshot step must be in >= 0, got -5"):
        make({-5: snaps[0]})
    with pytest.raises(ValueError, match=r"snapshot step must be an integer"):
        make({"10": snaps[10]})
    with pytest.raises(ValueError, match=r"snapshot step 30 is past the last recorded loss \(losses has 20 steps\)"):
        make({30: snaps[20]})
    with pytest.raises(ValueError, match=r"the loss of training step 8 \(losses\[7\]\) is nan"):
        make(losses=run["losses"][:7] + [float("nan")] + run["losses"][8:])
    with pytest.raises(ValueError, match=r"losses must be a non-empty 1-D"):
        make(losses=torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r"step must be one of the snapshot steps 0, 10, 20; got 5"):
        make(step=5)
    live = model.state_dict()                                   # no copy: every snapshot the live weights
    with pytest.raises(ValueError, match=r"snapshots 0 and 10 share their tensors"):
        make({0: live, 10: live})
    with pytest.raises(ValueError, match=r"snapshot 10 is an nn.Module"):
        make({10: model})
    with pytest.raises(ValueError, match=r"snapshot 0 does not load into model"):
        make({0: d.UNet(in_channels=1, base_channels=16, channel_mults=(1,), attention=False).state_dict()})
    with pytest.raises(ValueError, match=r"shape must be \(C, H, W\)"):
        TrainingExplorer(snaps, losses, sched, model=model, shape=(8, 8))


def test_losses_as_a_tensor_and_the_default_step_is_the_last(run):
    ex = TrainingExplorer(run["snapshots"], torch.tensor(run["losses"]), run["sched"], model=run["model"],
                          shape=SHAPE, n=2, sample_steps=2)
    assert ex.settings == dict(step=20, seed=0)


def test_the_controls_drive_the_explorer(run):
    ex = explorer(run, step=0)
    box = ex.widget()
    slider = ex.controls["step"]
    assert type(box).__name__ == "VBox" and slider.description == "step" and list(slider.options) == [0, 10, 20]
    assert not slider.continuous_update
    first = ex.png()
    slider.value = 20
    assert ex.settings["step"] == 20 and ex.png() != first and box.children[2].value[:4] == b"\x89PNG"
    ex.controls["seed"].value = 5
    assert ex.settings == dict(step=20, seed=5) and (20, 5) in ex.cache
    assert list(ex.controls) == ["step", "seed"]
