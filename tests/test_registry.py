"""The sampler registry: one table that the command line, `generate`, `evaluate` and the explorers read."""
import dataclasses

import pytest
import torch

import diffedu as d
from diffedu.__main__ import build_parser
from diffedu.samplers import SAMPLERS, Target
from diffedu.samplers.registry import get
from diffedu.sampling import generate, nfe_of
from diffedu.trained import Trained

MIX = d.GaussianMixture.eight_gaussians()
SCHED = d.Schedule(d.linear_betas(1000))
TARGET = Target.from_eps(MIX.eps_model(SCHED), SCHED, MIX.denoiser)


def x_T(n=64, seed=0):
    return torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_the_course_samplers_are_registered():
    assert {"ddpm", "ddim", "edm-euler", "edm-heun", "ec-marginal", "ec-deterministic", "ec-partial"} <= set(SAMPLERS)
    for name, spec in SAMPLERS.items():
        assert spec.name == name and spec.doc and "[" in spec.doc, f"{name}: its doc line cites no equation"
        assert spec.needs in ("eps", "x0", "denoiser") and spec.grid in ("every t", "ddim", "karras")
        assert get(spec.title) is spec and get(name) is spec


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_nfe_is_what_the_sampler_does(name):
    spec = SAMPLERS[name]
    for steps in ((3, 7) if spec.uses_steps else (1,)):
        traj = spec(TARGET, x_T(8), steps, generator=torch.Generator().manual_seed(1), record=False)
        assert traj.nfe == spec.nfe(steps, SCHED.T) == nfe_of(name, steps, SCHED.T)
        assert torch.isfinite(traj.x).all()


def test_each_spec_is_the_package_sampler_it_names():
    z = x_T()
    ddim = SAMPLERS["ddim"](TARGET, z, 20, eta=0.0, spacing="trailing")
    torch.testing.assert_close(ddim.xs, d.sample_ddim(TARGET.eps_model, SCHED, z, 20, spacing="trailing").xs,
                               rtol=0, atol=0)
    noises = [torch.randn_like(z) for _ in range(SCHED.T)]
    ddpm = SAMPLERS["ddpm"](TARGET, z, noises=noises, record=False)
    assert torch.equal(ddpm.x, d.sample_ddpm(TARGET.eps_model, SCHED, z, noises=noises, record=False).x)
    sigmas = d.karras_sigmas(10, float(SCHED.sigma[1]), float(SCHED.sigma[-1]))
    heun = SAMPLERS["edm-heun"](TARGET, z, 10)
    assert torch.equal(heun.xs, d.sample_edm(MIX.denoiser, sigmas, sigmas[0].item() * z, "heun").xs)
    # estimate-then-correct, deterministic, is DDIM eta = 0 on the same grid
    ec = SAMPLERS["ec-deterministic"](TARGET, z, 20, spacing="trailing")
    torch.testing.assert_close(ec.x, ddim.x, rtol=1e-10, atol=1e-10)


def test_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="sampler must be one of.*'ddim'"):
        get("dddim")
    with pytest.raises(ValueError, match=r"'edm-heun' takes rho besides steps; got eta"):
        SAMPLERS["edm-heun"].settings(10, 1000, eta=0.5)
    with pytest.raises(ValueError, match=r"steps must be in 1\.\.1000, got 5000"):
        SAMPLERS["ddim"].settings(5000, 1000)
    with pytest.raises(ValueError, match=r"eta must be in \[0\.0, inf\], got -0\.1"):
        SAMPLERS["ddim"].settings(10, 1000, eta=-0.1)
    with pytest.raises(ValueError, match="spacing must be one of"):
        SAMPLERS["ddim"].settings(10, 1000, spacing="even")
    assert SAMPLERS["ddpm"].settings(5000, 1000) == (1000, {"variance": "beta_tilde"})
    assert SAMPLERS["ddim"].settings(10, 1000) == (10, {"eta": 0.0, "spacing": "leading"})


def _trained_mlp():
    torch.manual_seed(0)
    return Trained(d.MLP(hidden=16, depth=1).eval(), "eps", SCHED, shape=[2])


def test_generate_reads_the_registry_and_refuses_what_a_sampler_does_not_take():
    trained = _trained_mlp()
    for name, spec in SAMPLERS.items():
        traj = generate(trained, 4, name, steps=3, generator=torch.Generator().manual_seed(0))
        assert traj.nfe == spec.nfe(3, SCHED.T) and traj.x.shape == (4, 2)
    with pytest.raises(ValueError, match="'edm-euler' takes rho"):
        generate(trained, 4, "edm-euler", steps=3, eta=1.0)
    with pytest.raises(ValueError, match="steps must be in 1..1000"):
        generate(trained, 4, "ddim", steps=1001)


def test_a_new_sampler_is_one_entry(monkeypatch):
    """Registering a spec makes it a --sampler choice and a name generate() runs, with nothing else to edit."""
    base = SAMPLERS["ddim"]
    mine = dataclasses.replace(base, name="ddim-trailing", title="DDIM trailing",
                               doc="DDIM on the trailing grid  [DDIM eq. 12]",
                               params={"eta": base.params["eta"],
                                       "spacing": dataclasses.replace(base.params["spacing"], default="trailing")})
    monkeypatch.setitem(SAMPLERS, "ddim-trailing", mine)
    args = build_parser().parse_args(["sample", "--ckpt", "x.pt", "--sampler", "ddim-trailing", "--out", "g.png"])
    assert args.sampler == "ddim-trailing"
    trained = _trained_mlp()
    a = generate(trained, 4, "ddim-trailing", steps=5).x
    b = generate(trained, 4, "ddim", steps=5, spacing="trailing").x
    assert torch.equal(a, b)


def test_cli_sampler_choices_are_the_registry_keys():
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("sample", "evaluate"):
        action = next(a for a in subs[command]._actions if a.dest == "sampler")
        assert list(action.choices) == list(SAMPLERS)
