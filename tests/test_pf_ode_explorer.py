"""The PF-ODE explorer (notebook 04's slider): its samples are `sample_edm` on the Karras grid from the seed's
noise, its error to the accurate ODE solution behaves like a solver's error, its field is (D - x) / sigma of
the exact mixture, churn is reproducible, bad settings are named, and the controls drive it."""
import math

import pytest
import torch

from diffedu.models.analytic import GaussianMixture
from diffedu.samplers.edm import karras_sigmas, sample_edm
from diffedu.widgets import PFODEExplorer

pytestmark = pytest.mark.usefixtures("one_thread")     # tiny tensors: threads only cost
SMALL = dict(n=200, n_paths=10, dpi=30)            # small and quick to draw


@pytest.fixture(scope="module")
def ex():
    return PFODEExplorer(**SMALL)


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_samples_are_sample_edm_on_the_karras_grid_from_the_seeds_noise(ex, solver):
    ex.set(solver=solver, steps=12, rho=5.0, s_churn=0.0, seed=3)
    mix = GaussianMixture.eight_gaussians()
    sigmas = karras_sigmas(12, 0.002, 80.0, 5.0)
    g = torch.Generator().manual_seed(3)
    x = sigmas[0] * torch.randn(200, 2, generator=g, dtype=torch.float64)
    direct = sample_edm(mix.denoiser, sigmas, x, solver, s_churn=0.0, generator=g)
    torch.testing.assert_close(ex.sigmas, sigmas)
    torch.testing.assert_close(ex.traj.xs, direct.xs)
    torch.testing.assert_close(ex.traj.x, direct.x)
    assert ex.metrics["nfe"] == ex.traj.nfe == (12 if solver == "euler" else 2 * 12 - 1)
    assert ex.metrics["per_mode_frechet"] == pytest.approx(float(mix.per_mode_frechet(direct.x)))
    text = ex.fig._suptitle.get_text()
    assert f"{solver}, 12 steps, rho = 5" in text and f"NFE = {ex.traj.nfe}" in text and "discretisation" in text


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_nfe_is_steps_for_euler_and_2_steps_minus_1_for_heun(ex, solver):
    for steps in (1, 3, 7):
        ex.set(solver=solver, steps=steps, s_churn=0.0)
        assert ex.metrics["nfe"] == (steps if solver == "euler" else 2 * steps - 1)


def test_distance_to_the_ode_solution_shrinks_with_steps_and_faster_for_heun(ex):
    dist = {}
    for solver in ("euler", "heun"):
        for steps in (5, 18, 40):
            ex.set(solver=solver, steps=steps, rho=7.0, s_churn=0.0, seed=0)
            dist[solver, steps] = ex.metrics["distance_to_ode"]
    ref = ex.reference(0)                                            # the accurate solve, by hand
    sigmas = karras_sigmas(256, 0.002, 80.0, 7.0)
    x = 80.0 * torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(ref, sample_edm(GaussianMixture.eight_gaussians().denoiser, sigmas, x, "heun").x)
    assert dist["heun", 40] == pytest.approx(float((ex.traj.x - ref).norm(dim=1).mean()))     # the last one set
    for solver in ("euler", "heun"):
        assert dist[solver, 5] > dist[solver, 18] > dist[solver, 40], dist
    # Heun is second order: ahead of Euler once the steps are not too coarse, and further ahead with more steps
    assert dist["heun", 18] < dist["euler", 18] and dist["heun", 40] < dist["euler", 40], dist
    assert dist["heun", 40] / dist["heun", 18] < dist["euler", 40] / dist["euler", 18], dist
    assert dist["heun", 40] < 0.01 and ex.metrics["per_mode_frechet"] < 10 * ex.floor + 0.01


def test_the_reference_is_the_same_noise_so_heun_at_256_steps_is_at_distance_zero(ex):
    ex.set(solver="heun", steps=200, rho=7.0, s_churn=0.0, seed=1)
    close = ex.metrics["distance_to_ode"]
    ex.set(seed=2)                                                   # another seed: another reference, still close
    assert close < 1e-3 and ex.metrics["distance_to_ode"] < 1e-3
    assert not torch.equal(ex.reference(1), ex.reference(2))


def test_rho_moves_the_grid_but_not_its_ends(ex):
    grids = {}
    for rho in (1.0, 3.0, 7.0):
        ex.set(steps=10, rho=rho, s_churn=0.0)
        grids[rho] = ex.sigmas.clone()
        assert len(ex.sigmas) == 11 and ex.sigmas[-1] == 0
        assert ex.sigmas[0].item() == pytest.approx(80.0) and ex.sigmas[-2].item() == pytest.approx(0.002)
    assert not torch.allclose(grids[1.0], grids[7.0]) and not torch.allclose(grids[3.0], grids[7.0])
    assert grids[7.0][5] < grids[1.0][5]                             # larger rho: more steps at small sigma
    line = ex.fig.axes[1].lines[0]                                   # the grid panel plots the levels > 0
    torch.testing.assert_close(torch.as_tensor(line.get_ydata()), ex.sigmas[:-1])


@pytest.mark.parametrize("sigma", [0.05, 1.0, 20.0])
def test_the_field_is_d_minus_x_over_sigma_of_the_mixture_and_the_figure_draws_it(ex, sigma):
    ex.set(sigma=sigma)
    X, Y, U, V = ex.field(sigma)
    assert X.shape == (15, 15)
    x = torch.stack([X.reshape(-1), Y.reshape(-1)], 1)
    mix = GaussianMixture.eight_gaussians()
    want = (mix.denoiser(x, sigma) - x) / sigma
    torch.testing.assert_close(torch.stack([U.reshape(-1), V.reshape(-1)], 1), want)
    torch.testing.assert_close(want, sigma * mix.score(x, sigma))    # = sigma * score [EDM eq. 3]
    assert X.max() >= 3.5 and X.max() >= 2.5 * sigma                 # the grid covers where x lies at sigma
    quiver = next(c for c in ex.fig.axes[0].collections if hasattr(c, "U"))
    drawn = torch.stack([torch.as_tensor(quiver.U).reshape(-1), torch.as_tensor(quiver.V).reshape(-1)], 1).double()
    size = want.norm(dim=1, keepdim=True)
    keep = size[:, 0] > 1e-9
    torch.testing.assert_close(drawn[keep], (want / size)[keep], rtol=1e-5, atol=1e-6)   # same directions


def test_the_field_points_toward_the_data():
    ex = PFODEExplorer(**SMALL)
    X, Y, U, V = ex.field(0.3)
    x = torch.stack([X.reshape(-1), Y.reshape(-1)], 1)
    far = x.norm(dim=1) > 3.0                                        # outside the ring of modes: inward
    assert bool(((torch.stack([U.reshape(-1), V.reshape(-1)], 1) * x).sum(1)[far] < 0).all())


def test_the_level_nearest_sigma_is_marked(ex):
    ex.set(steps=18, rho=7.0, sigma=1.0)
    i = ex.level()
    logs = ex.sigmas[:-1].log()
    assert all(abs(logs[i]) <= abs(v) for v in logs)                 # log sigma nearest log 1 = 0
    assert f"sigma_{i} = " in ex.fig.axes[0].get_title()


def test_churn_changes_the_samples_reproducibly(ex):
    ex.set(solver="heun", steps=18, rho=7.0, s_churn=0.0, seed=5)
    ode = ex.traj.x.clone()
    ex.set(s_churn=10.0)
    first, d_churn = ex.traj.x.clone(), ex.metrics["distance_to_ode"]
    assert not torch.allclose(first, ode)
    assert ex.traj.xs[0].equal(ex.start(5)[0])                       # the same start; only the churn noise differs
    ex.set(s_churn=0.0)
    ex.set(s_churn=10.0)
    assert torch.equal(ex.traj.x, first) and ex.metrics["distance_to_ode"] == d_churn
    other = PFODEExplorer(**SMALL, solver="heun", steps=18, s_churn=10.0, seed=5)
    other.set()
    assert torch.equal(other.traj.x, first)                          # a fresh explorer: the same figure
    g = torch.Generator().manual_seed(5)                             # the churn noise continues the seed's generator
    x = 80.0 * torch.randn(200, 2, generator=g, dtype=torch.float64)
    direct = sample_edm(GaussianMixture.eight_gaussians().denoiser, karras_sigmas(18), x, "heun", s_churn=10.0,
                        generator=g)
    torch.testing.assert_close(first, direct.x)
    assert "churn" in ex.fig._suptitle.get_text() and "discretisation" not in ex.fig._suptitle.get_text()
    ex.set(seed=6)
    assert not torch.allclose(ex.traj.x, first)


@pytest.mark.parametrize("change, match", [
    (dict(steps=0), r"steps must be in 1\.\.200"), (dict(steps=2.5), r"steps must be an integer"),
    (dict(rho=-1), r"rho must be"), (dict(rho=0), r"rho must be"), (dict(s_churn=-1), r"s_churn must be"),
    (dict(s_churn=math.inf), r"s_churn must be"), (dict(solver="rk4"), r"solver must be one of 'euler', 'heun'"),
    (dict(sigma=0), r"sigma must be in \[0\.002, 80\.0\]"), (dict(sigma=100), r"sigma must be"),
    (dict(seed=-1), r"seed must be"), (dict(eta=0.5), r"unknown setting.*'eta'.*solver, steps, rho, s_churn, sigma, seed"),
])
def test_bad_settings_are_named_and_change_nothing(ex, change, match):
    if ex.traj is None:
        ex.set()
    before, traj, title = dict(ex.settings), ex.traj, ex.fig._suptitle.get_text()
    with pytest.raises(ValueError, match=match):
        ex.set(**change)
    with pytest.raises(ValueError, match=match):
        ex.validate(**change)
    assert ex.settings == before and ex.traj is traj and ex.fig._suptitle.get_text() == title


def test_validate_returns_the_checked_settings_and_changes_nothing(ex):
    ex.set(steps=18, rho=7.0)
    before = dict(ex.settings)
    out = ex.validate(steps=30, rho=2)
    assert out == {**before, "steps": 30, "rho": 2.0} and isinstance(out["rho"], float)
    assert ex.settings == before


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match=r"mixture must be a 2-D GaussianMixture"):
        PFODEExplorer(GaussianMixture.two_gaussians_1d())
    with pytest.raises(ValueError, match=r"sigma_max must be"):
        PFODEExplorer(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match=r"steps must be"):
        PFODEExplorer(steps=0)


def test_floor_is_the_per_mode_frechet_of_exact_samples(ex):
    assert 0 < ex.floor < 0.05
    assert "exact samples" in ex.fig.axes[2].get_title()


def test_the_controls_drive_the_explorer():
    W = pytest.importorskip("ipywidgets")
    ex = PFODEExplorer(**SMALL)
    box = ex.widget()
    assert isinstance(box, W.VBox)
    sliders = {c.description: c for c in box.children[0].children}
    assert {"solver", "steps", "rho", "S_churn", "sigma", "seed"} <= set(sliders)
    assert isinstance(sliders["steps"], W.IntSlider) and isinstance(sliders["rho"], W.FloatSlider)
    assert isinstance(sliders["S_churn"], W.FloatSlider) and isinstance(sliders["sigma"], W.FloatLogSlider)
    assert all(not sliders[k].continuous_update for k in ("steps", "rho", "S_churn", "sigma"))
    image = box.children[2]
    first = image.value
    ex.controls["steps"].value = 10
    assert ex.settings["steps"] == 10 and len(ex.sigmas) == 11 and image.value != first
    assert image.value[:4] == b"\x89PNG"
    ex.controls["s_churn"].value = 5.0
    assert ex.settings["s_churn"] == 5.0 and "S_churn = 5" in ex.fig._suptitle.get_text()
    ex.controls["sigma"].value = 10.0
    assert ex.settings["sigma"] == pytest.approx(10.0)
    ex.controls["solver"].value = "euler"
    assert ex.settings["solver"] == "euler" and ex.metrics["nfe"] == 10
