"""The explorers, driven from Python: each control changes the figure data the way it should."""
import dataclasses
import math

import numpy as np
import pytest
import torch

import diffedu as d
from diffedu import assets
from diffedu.samplers import registry
from diffedu.widgets import SAMPLERS, Compare, Explorer2D, ImageExplorer
from standins import wiggly_eps_model

N = 400  # points: enough for the per-mode Fréchet distance to resolve discretisation error


@pytest.fixture
def ex():
    return Explorer2D(n=N, n_paths=16)


@pytest.fixture
def img():
    sched = d.Schedule(d.linear_betas(1000))
    return ImageExplorer(wiggly_eps_model(sched), sched, shape=(1, 8, 8), n=4, n_strip=2, n_times=5)


def test_eta_zero_is_reproducible_with_fixed_noise(ex):
    ex.set(sampler="DDIM", eta=0.0, steps=20, seed=3)
    first = ex.last.traj.xs.clone()
    other = Explorer2D(n=N, n_paths=16)
    other.set(sampler="DDIM", eta=0.0, steps=20, seed=3)
    assert torch.equal(other.last.traj.xs, first)
    ex.cache.clear()
    ex.set(seed=4)
    ex.set(seed=3)                           # recomputed, not cached
    assert ex.stats["sampled"] == 3 and torch.equal(ex.last.traj.xs, first)
    # with eta > 0 too: the seed fixes every per-step noise
    ex.set(eta=0.5)
    stochastic = ex.last.traj.x.clone()
    ex.cache.clear()
    ex.set(eta=0.5)
    assert torch.equal(ex.last.traj.x, stochastic)


def test_eta_moves_only_eta_x_T_and_noises_fixed(ex):
    ex.set(sampler="DDIM", eta=0.0, steps=20, seed=1)
    r0 = ex.last
    ex.set(eta=0.7)
    r1 = ex.last
    assert torch.equal(r0.traj.xs[0], r1.traj.xs[0])
    assert torch.equal(r0.x_T, r1.x_T)
    assert not torch.allclose(r0.traj.x, r1.traj.x)
    # the scatter of the final cloud is the new sample
    np.testing.assert_allclose(ex._cloud.get_offsets(), r1.traj.x.numpy(), rtol=1e-6)


def test_seed_changes_x_T(ex):
    ex.set(seed=1)
    x1 = ex.last.x_T.clone()
    ex.set(seed=2)
    assert not torch.allclose(x1, ex.last.x_T)
    assert ex.last.x_T.shape == (N, 2)


def test_noise_is_fixed_until_the_seed_changes(ex, monkeypatch):
    """x_T and the per-step noises handed to the sampler stay the same tensors (a prefix of one
    sequence) across eta and steps moves; only the seed draws new ones."""
    calls = []
    ddim = registry.SAMPLERS["ddim"]

    def spy(target, x_T, steps, *, noises=None, **kw):
        calls.append((x_T, noises))
        return ddim.draw(target, x_T, steps, noises=noises, **kw)

    monkeypatch.setitem(registry.SAMPLERS, "ddim", dataclasses.replace(ddim, draw=spy))
    ex.set(sampler="DDIM", eta=0.3, steps=20, seed=1)
    ex.set(eta=0.8)
    ex.set(steps=50)
    ex.set(steps=10)
    (z0, n0), *moves = calls
    assert len(n0) == 20
    for z, noises in moves:
        assert z is z0                                       # the very same x_T
        k = min(len(noises), len(n0))
        assert all(a is b for a, b in zip(noises[:k], n0[:k]))
    assert len(calls[2][1]) == 50 and all(a is b for a, b in zip(calls[2][1][:20], n0))
    ex.set(seed=2)
    z2, n2 = calls[-1]
    assert not torch.allclose(z2, z0) and not torch.allclose(n2[0], n0[0])
    ex.set(seed=1, eta=0.55)                                 # back to seed 1: its noise again
    assert torch.equal(calls[-1][0], z0) and torch.equal(calls[-1][1][0], n0[0])


def test_each_control_changes_the_figure_data(ex):
    """eta moves the cloud, not the starts; steps changes the path length; sampler and seed show in
    the figure; the title shows the current values."""
    ex.set(sampler="DDIM", eta=0.0, steps=10, seed=0)
    starts, cloud = ex._starts.get_offsets().copy(), ex._cloud.get_offsets().copy()
    assert "eta=0.00" in ex.fig._suptitle.get_text() and "steps=10" in ex.fig._suptitle.get_text()
    ex.set(eta=1.0)
    np.testing.assert_array_equal(ex._starts.get_offsets(), starts)
    assert not np.allclose(ex._cloud.get_offsets(), cloud)
    assert "eta=1.00" in ex.fig._suptitle.get_text()
    ex.set(steps=20)
    assert {len(seg) for seg in ex._paths.get_segments()} == {21}
    assert "steps=20" in ex.fig._suptitle.get_text()
    np.testing.assert_array_equal(ex._starts.get_offsets(), starts)
    ex.set(seed=9)
    assert not np.allclose(ex._starts.get_offsets(), starts)
    assert "seed=9" in ex.fig._suptitle.get_text()
    ex.set(sampler="EDM Euler")
    assert "EDM Euler" in ex.fig._suptitle.get_text() and "eta unused" in ex.fig._suptitle.get_text()
    np.testing.assert_allclose(ex._cloud.get_offsets(), ex.last.traj.x.numpy(), rtol=1e-6)


def test_same_noise_across_samplers(ex):
    """DDIM with eta = 1 on all T steps is DDPM, noise for noise; "partial" with sigma_tilde(eta) is DDIM(eta)."""
    small = Explorer2D(n=64, n_paths=4)
    small.set(sampler="DDPM", seed=5)
    ddpm = small.last.traj.x
    small.set(sampler="DDIM", eta=1.0, steps=1000)
    torch.testing.assert_close(small.last.traj.x, ddpm, rtol=1e-4, atol=1e-4)
    ex.set(sampler="DDIM", eta=0.4, steps=20, seed=2)
    x_ddim = ex.last.traj.x
    ex.set(sampler="EC partial")
    torch.testing.assert_close(ex.last.traj.x, x_ddim, rtol=1e-4, atol=1e-4)


def test_more_steps_lower_the_error_on_the_exact_mixture(ex):
    for sampler in ("DDIM", "EDM Heun", "EC deterministic"):
        errs = []
        for k in (2, 10, 100):
            ex.set(sampler=sampler, eta=0.0, steps=k, seed=0)
            errs.append(ex.last.metrics["per_mode_frechet"])
        assert errs[0] > errs[1] > errs[2], (sampler, errs)
        assert errs[2] < 10 * ex.floor["per_mode_frechet"] + 1e-3, (sampler, errs, ex.floor)
    ex.set(sampler="DDIM", steps=1)
    sw_1 = ex.last.metrics["sliced_wasserstein"]
    ex.set(steps=100)
    assert sw_1 > 2 * ex.last.metrics["sliced_wasserstein"]


def test_steps_and_sampler_change_the_trajectory_length(ex):
    ex.set(sampler="DDIM", steps=10)
    assert len(ex.last.traj) == 10 and ex.last.traj.nfe == 10
    assert len(ex._paths.get_segments()[0]) == 11
    ex.set(sampler="EDM Heun")
    assert ex.last.traj.nfe == 19
    ex.set(sampler="DDPM", steps=5)          # DDPM always takes all T steps
    assert len(ex.last.traj) == 1000
    assert "DDPM" in ex.fig._suptitle.get_text()


def test_edm_paths_are_drawn_in_ddpm_coordinates(ex):
    ex.set(sampler="EDM Euler", steps=10, seed=0)
    res = ex.last
    sigma0 = res.traj.ts[0].item()
    assert res.traj.xs[0].abs().max() > 20                      # VE start: sigma_max z
    torch.testing.assert_close(res.display_xs[0], res.x_T * sigma0 / math.sqrt(1 + sigma0**2))
    seg = np.stack(ex._paths.get_segments())
    np.testing.assert_allclose(seg[:, 0], res.display_xs[0, :16].numpy(), rtol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (dict(eta=-0.1), "eta must be in"), (dict(eta=1.5), "eta must be in"), (dict(eta=float("nan")), "eta"),
    (dict(eta="big"), "eta must be a number"), (dict(steps=0), "steps must be in 1..1000"),
    (dict(steps=1001), "steps must be in 1..1000"), (dict(steps=2.5), "steps must be an integer"),
    (dict(sampler="DDPM2"), "sampler must be one of"), (dict(seed=-1), "seed"), (dict(etta=0.1), "unknown setting"),
])
def test_bad_values_are_rejected_and_change_nothing(ex, bad, match):
    ex.set(eta=0.2, steps=10)
    before, sampled = dict(ex.settings), ex.stats["sampled"]
    with pytest.raises(ValueError, match=match):
        ex.set(**bad)
    assert ex.settings == before and ex.stats["sampled"] == sampled


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="2-D"):
        Explorer2D(d.GaussianMixture([[0.0, 0.0, 0.0]], 1.0))
    with pytest.raises(ValueError, match="GaussianMixture or an eps-model"):
        Explorer2D(data=3)
    with pytest.raises(ValueError, match="eta must be in"):
        Explorer2D(eta=2)
    sched = d.Schedule(d.linear_betas(1000))
    with pytest.raises(ValueError, match="shape must be"):
        ImageExplorer(wiggly_eps_model(sched), sched, shape=(2, 8, 8))


def test_cache_hit_does_not_resample(ex, monkeypatch):
    ex.set(sampler="DDIM", eta=0.3, steps=20, seed=0)
    first = ex.last
    ex.set(eta=0.6)
    monkeypatch.setattr(ex, "sample", lambda *a, **k: pytest.fail("resampled a cached setting"))
    ex.set(eta=0.3)
    assert ex.last is first and ex.stats == {"sampled": 2, "hits": 1}
    np.testing.assert_allclose(ex._cloud.get_offsets(), first.traj.x.numpy(), rtol=1e-6)
    # settings a sampler ignores share its cache entry
    monkeypatch.undo()
    ex.set(sampler="EDM Euler", eta=0.0)
    monkeypatch.setattr(ex, "sample", lambda *a, **k: pytest.fail("eta does not enter EDM Euler"))
    ex.set(eta=0.9)


def test_every_sampler_runs_and_draws(ex):
    for s in SAMPLERS:
        fig = ex.set(sampler=s, eta=0.5, steps=5)
        fig.canvas.draw()
        assert s in fig._suptitle.get_text()
        assert torch.isfinite(ex.last.traj.x).all()
    assert ex.png()[:4] == b"\x89PNG"


def test_image_explorer_strip_and_grid(img):
    img.set(sampler="DDIM", eta=0.0, steps=20, seed=0)
    strip0, grid0 = img._strip.get_array().copy(), img._grid.get_array().copy()
    res = img.last
    assert res.traj.xs.shape == (21, 4, 1, 8, 8)
    assert img.columns(res) == [0, 5, 10, 15, 20]
    # top-left tile of the strip is x_T of sample 1, the final grid holds the samples in [-1, 1]
    np.testing.assert_allclose(strip0[:8, :8], res.x_T[0, 0].clamp(-1, 1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(grid0[:8, :8], res.traj.x[0, 0].clamp(-1, 1).numpy(), rtol=1e-6)
    img.set(eta=1.0)
    assert torch.equal(img.last.x_T, res.x_T)
    assert not np.allclose(img._grid.get_array(), grid0)
    np.testing.assert_allclose(img._strip.get_array()[:8, :8], strip0[:8, :8])     # same x_T column
    for s in SAMPLERS:
        img.set(sampler=s, steps=2).canvas.draw()
    img.set(seed=1)
    assert not torch.equal(img.last.x_T, res.x_T)


def test_widget_controls_drive_the_explorer(ex):
    import ipywidgets as W

    ui = ex.widget()
    c, image, status = ex.ui.controls, ex.ui.image, ex.ui.status
    # tests/browser/test_lab.py finds the sliders by these descriptions: keep them
    assert isinstance(c["eta"], W.FloatSlider) and c["eta"].description == "eta" and c["eta"].step == 0.1
    assert isinstance(c["steps"], W.SelectionSlider) and c["steps"].description == "steps"
    png0 = image.value
    c["eta"].value = 0.5
    assert ex.settings["eta"] == 0.5 and image.value != png0 and "eta=0.50" in status.value
    c["eta"].value = 0.0
    assert image.value == png0 and "(cached)" in status.value
    c["eta"].value = 0.5
    c["steps"].value = 5
    assert ex.last.traj.nfe == 5 and "steps=5" in status.value
    c["sampler"].value = "DDPM"
    assert c["eta"].disabled and c["steps"].disabled
    png1 = image.value
    ex.set(sampler="DDIM", steps=37)                 # the Python API moves the controls, image and status too
    assert c["steps"].value == 37 and c["sampler"].value == "DDIM" and not c["eta"].disabled
    assert "steps=37" in status.value and "DDIM" in status.value and image.value != png1
    assert image.value == ex.png()
    assert ex.widget() is ui


def test_a_bad_value_from_a_control_goes_to_the_status_line(ex):
    ex.widget()
    c, status = ex.ui.controls, ex.ui.status
    c["seed"].max = 2**41
    c["seed"].value = 2**41                          # past what an explorer accepts
    assert "seed must be in" in status.value and ex.settings["seed"] == 0 and c["seed"].value == 0


def test_compare_shares_the_noise():
    cmp = Compare(Explorer2D(n=200, n_paths=8), left=dict(eta=0.0, steps=10), right=dict(eta=1.0, steps=10))
    fa, fb = cmp.set(seed=7)
    a, b = cmp.last
    assert fa is not fb
    assert torch.equal(a.x_T, b.x_T) and not torch.allclose(a.traj.x, b.traj.x)
    cmp.set(right=dict(eta=0.0))
    assert torch.equal(cmp.last[1].traj.x, a.traj.x)                 # same setting: the shared cache
    with pytest.raises(ValueError, match="shared"):
        cmp.set(left=dict(seed=1))
    with pytest.raises(ValueError, match="eta"):
        cmp.set(seed=8, right=dict(eta=3))
    assert cmp.a.settings["seed"] == 7                               # nothing changed
    cmp.widget()
    cmp.set(seed=3, left=dict(steps=5))                              # the Python API updates both panels' UIs
    assert "steps=5" in cmp.a.ui.status.value and "seed=3" in cmp.b.ui.status.value
    assert cmp.a.ui.controls["steps"].value == 5


@pytest.mark.parametrize("name", ["mnist", "digits"])
def test_image_explorer_on_the_shipped_unet(name):
    """The real UNets (diffedu/shipped/mnist_unet.safetensors, diffedu/shipped/digits_unet.safetensors, hash-checked against
    diffedu/shipped/manifest.json).  Never skipped: a missing or damaged asset fails here with the loader's message
    naming the file.  The MNIST one is class-conditional; the explorer samples its null class."""
    im = ImageExplorer.from_assets(name, n=4, n_strip=2, steps=10)
    shipped = list(getattr(assets, f"load_{name}_unet")().shape)
    assert list(im.shape[1:]) == shipped and im.sched.T == 1000
    im.set(sampler="DDIM", eta=0.0, seed=0)
    first = im.last
    assert first.traj.x.shape == (4, *shipped) and torch.isfinite(first.traj.x).all()
    assert first.traj.x.abs().max() < 3                 # samples near the digits' [-1, 1], not noise
    im.set(eta=1.0)
    assert torch.equal(im.last.x_T, first.x_T) and not torch.allclose(im.last.traj.x, first.traj.x)
    im.cache.clear()
    im.set(eta=0.0)
    assert torch.equal(im.last.traj.x, first.traj.x)    # eta = 0 with fixed noise: the same digits again
    im.set(sampler="EDM Heun", steps=5).canvas.draw()
    assert torch.isfinite(im.last.traj.x).all()


def test_image_explorer_default_is_mnist_and_names_are_checked():
    assert list(ImageExplorer.from_assets(n=2, steps=2).shape[1:]) == [1, 28, 28]
    with pytest.raises(ValueError, match="name must be one of 'mnist', 'digits'"):
        ImageExplorer.from_assets("faces")


def test_explorer2d_on_the_shipped_mlp():
    """The real 2-D MLP (diffedu/shipped/mixture_mlp.safetensors): never skipped, like the UNet above."""
    ex = Explorer2D.from_assets(n=200, steps=20)
    ex.set()
    assert ex.last.metrics["per_mode_frechet"] < 0.5
    ex.set(sampler="EDM Heun")
    assert torch.isfinite(ex.last.traj.x).all()


# -- the widgets as a thin view of the sampler registry -------------------------------------------

def test_the_menu_is_the_registry(ex):
    titles = tuple(spec.title for spec in registry.SAMPLERS.values())
    assert SAMPLERS == titles
    ex.widget()
    assert tuple(ex.ui.controls["sampler"].options) == titles


def test_controls_apply_exactly_where_the_spec_takes_them(ex):
    """eta is enabled only for a spec with an "eta" parameter, steps only for one that uses_steps; a
    key sets the menu to its title."""
    ex.widget()
    c = ex.ui.controls
    seen = set()
    for spec in registry.SAMPLERS.values():
        ex.set(sampler=spec.name, steps=2)
        assert c["sampler"].value == spec.title == ex.settings["sampler"]
        assert c["eta"].disabled == ("eta" not in spec.params), spec.name
        assert c["steps"].disabled == (not spec.uses_steps), spec.name
        seen.add(c["eta"].disabled)
    assert seen == {True, False}                 # both cases occur


@pytest.mark.parametrize("name", list(registry.SAMPLERS))
def test_a_key_and_its_title_share_one_cache_entry(name):
    ex = Explorer2D(n=64, n_paths=4)
    spec = registry.SAMPLERS[name]
    ex.set(sampler=name, steps=3, seed=1)
    assert ex.settings["sampler"] == spec.title and spec.title in ex.fig._suptitle.get_text()
    first = ex.last
    ex.set(sampler=spec.title)
    assert ex.last is first and len(ex.cache) == 1 and ex.stats == {"sampled": 1, "hits": 1}
    ex.set(sampler=name)
    assert ex.last is first and ex.stats == {"sampled": 1, "hits": 2}


def test_ddpm_ignores_steps_in_the_cache_key(ex):
    ex.set(sampler="DDPM", steps=5, seed=0)
    ex.set(steps=50, eta=0.9)
    assert ex.stats == {"sampled": 1, "hits": 1} and ex.last.key.steps == 1000


def test_grids_come_from_the_target(ex):
    """The DDIM-grid samplers get the explorers' trailing spacing; EDM's Karras grid spans the
    target's sigma range, the schedule's sigma_1..sigma_T (as `python -m diffedu sample`)."""
    sched = ex.sched
    for name in ("ddim", "ec-marginal"):
        ex.set(sampler=name, steps=10)
        assert dict(ex.last.key.params)["spacing"] == "trailing" and int(ex.last.traj.ts[0]) == sched.T
    ex.set(sampler="edm-euler", steps=10)
    ts = ex.last.traj.ts
    assert (ex.target.sigma_min, ex.target.sigma_max) == (float(sched.sigma[1]), float(sched.sigma[-1]))
    assert ts[0].item() == pytest.approx(float(sched.sigma[-1])) and ts[-2].item() == pytest.approx(float(sched.sigma[1]))


def test_twin_shares_model_noise_and_cache_not_the_view(ex):
    ex.set(eta=0.0, steps=10)
    ex.widget()
    t = ex.twin(eta=0.5)
    assert type(t) is Explorer2D and t.target is ex.target and t.noise is ex.noise and t.cache is ex.cache
    assert t.settings == dict(ex.settings, eta=0.5) and t.fig is None and t.ui is None and t.last is None
    assert ex.settings["eta"] == 0.0                              # the original is unchanged
    t.set(eta=0.0)
    assert t.last is ex.last and t.stats == {"sampled": 0, "hits": 1}
    with pytest.raises(ValueError, match="eta must be in"):
        ex.twin(eta=2)


class PublicOnly:
    """An explorer seen through its public attributes only: reaching a private name fails the test."""

    def __init__(self, explorer):
        self.__dict__["_PublicOnly__ex"] = explorer

    def __getattr__(self, name):
        if name.startswith("_"):
            pytest.fail(f"Compare reached the private name {name!r} of an explorer")
        value = getattr(self.__ex, name)
        return (lambda **s: PublicOnly(value(**s))) if name == "twin" else value

    def __setattr__(self, name, value):
        pytest.fail(f"Compare assigned {name!r} of an explorer")


def test_compare_uses_only_public_methods():
    cmp = Compare(PublicOnly(Explorer2D(n=100, n_paths=4)), left=dict(eta=0.0, steps=5))
    fa, fb = cmp.set(seed=2)
    a, b = cmp.last
    assert fa is not fb and torch.equal(a.x_T, b.x_T)
    assert dict(a.key.params)["eta"] == 0.0 and dict(b.key.params)["eta"] == 1.0    # right: eta = 1 by default
    with pytest.raises(ValueError, match="eta"):
        cmp.set(left=dict(eta=0.5), right=dict(eta=3))
    assert cmp.a.settings["eta"] == 0.0
    cmp.widget()
    cmp.set(seed=4)
    assert "seed=4" in cmp.b.ui.status.value


def test_no_widget_module_reaches_into_another_s_private_names():
    """Read from the source: `x._name` only on self/cls, and no `from .m import _name`."""
    import ast
    from pathlib import Path

    import diffedu.widgets

    bad = []
    for path in Path(diffedu.widgets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    bad.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                bad += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_a_sampler_menu_of_its_own_is_offered_and_enforced():
    """samplers= narrows the menu (notebook 03 offers the three corrections only): the dropdown lists exactly
    those titles, a sampler outside it is refused by name, and a twin keeps the menu."""
    ex = Explorer2D(n=64, n_paths=4, steps=5, sampler="ec-partial",
                    samplers=["ec-marginal", "ec-deterministic", "EC partial"])
    assert ex.menu == ("EC marginal", "EC deterministic", "EC partial")
    assert tuple(ex.widget().children[0].children[0].options) == ex.menu
    before = dict(ex.settings)
    with pytest.raises(ValueError, match="sampler must be one of this explorer's"):
        ex.set(sampler="DDIM")
    assert ex.settings == before
    assert ex.twin(eta=0.5).menu == ex.menu
    with pytest.raises(ValueError, match="sampler must be one of"):
        Explorer2D(n=64, samplers=["euler-maruyama"])
    assert Explorer2D(n=64, n_paths=4).menu == SAMPLERS
