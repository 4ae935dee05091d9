"""Nothing silent (issue 13, the numeric part): a non-finite state, bad noises, unsupported dtypes and
out-of-range numbers are errors that name the argument, the step and the time or sigma."""
import math

import pytest
import torch

import diffedu as d
from diffedu._checks import check_number
from diffedu.precond import denoiser_from_eps
from diffedu.trajectory import NonFiniteState

MIX = d.GaussianMixture.eight_gaussians()
SCHED = d.Schedule(d.linear_betas(100))
EPS = MIX.eps_model(SCHED)
TS = d.ddim_timesteps(100, 10)
NAN, INF = float("nan"), float("inf")


def _x(n=16, seed=0, dtype=torch.float64):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _gen():
    return torch.Generator().manual_seed(1)


def bad_on_call(model, call=3, value=NAN):
    """The model, except that its `call`-th output is multiplied by value (NaN or inf)."""
    calls = [0]

    def wrapped(x, t):
        calls[0] += 1
        out = model(x, t)
        return out * value if calls[0] == call else out

    return wrapped


# sampler name -> (run(model, record), model's name in the message, step of the 3rd call, its time)
SAMPLERS = {
    "ddpm": (lambda m, r: d.sample_ddpm(m, SCHED, _x(), generator=_gen(), record=r), "eps_model", 2, "t = 98"),
    "ddim": (lambda m, r: d.sample_ddim(m, SCHED, _x(), steps=10, record=r), "eps_model", 2, "t = 71"),
    "ddim eta=1": (lambda m, r: d.sample_ddim(m, SCHED, _x(), steps=10, eta=1.0, generator=_gen(), record=r),
                   "eps_model", 2, "t = 71"),
    "ddim inversion": (lambda m, r: d.ddim_invert(m, SCHED, _x(), steps=10, record=r), "eps_model", 2, "t = 11"),
    "estimate-correct": (lambda m, r: d.sample_estimate_correct(d.x0_model_from_eps(m, SCHED), d.GaussianForward(SCHED),
                                                                TS, _x(), "marginal", generator=_gen(), record=r),
                         "x0_model", 2, "t = 71"),
    # Heun: step 0 makes calls 1 and 2, so the 3rd call is step 1's first
    "edm heun": (lambda m, r: d.sample_edm(m, d.karras_sigmas(10), 80 * _x(), "heun", record=r), "denoiser", 1,
                 "sigma = 42.4152"),
    "edm euler": (lambda m, r: d.sample_edm(m, d.karras_sigmas(10), 80 * _x(), "euler", record=r), "denoiser", 2,
                  "sigma = 21.1087"),
    "pf-ode vp": (lambda m, r: d.sample_pf_ode(m, d.VP(), torch.linspace(1, 1e-3, 11), _x(), "euler", record=r),
                  "denoiser", 2, "t = 0.8002"),
}


def _model(name):
    return EPS if SAMPLERS[name][1] == "eps_model" or name == "estimate-correct" else MIX.denoiser


@pytest.mark.parametrize("value", [NAN, INF])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_model_that_goes_non_finite_is_named_with_its_step_and_time(name, value):
    run, model, step, time = SAMPLERS[name]
    with pytest.raises(ValueError) as e:
        run(bad_on_call(_model(name), 3, value), True)
    msg = str(e.value)
    assert isinstance(e.value, NonFiniteState)
    assert msg.startswith(f"{model} gave NaN or inf at step {step} of ") and time in msg, msg
    assert e.value.step == step and len(e.value.trajectory) >= step
    # the same sampler with a healthy model raises nothing and is finite
    assert torch.isfinite(run(_model(name), True).xs).all()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_record_false_also_refuses_a_non_finite_sample(name):
    run, model, _, _ = SAMPLERS[name]
    with pytest.raises(NonFiniteState, match=f"the sample is not finite.*{model}.*record=True") as e:
        run(bad_on_call(_model(name)), False)
    assert e.value.step is None


def test_heun_second_evaluation_is_named():
    with pytest.raises(NonFiniteState, match=r"denoiser gave NaN or inf at step 0 of 10 in its second evaluation, "
                                             r"the Heun correction at sigma = 42\.4152") as e:
        d.sample_edm(bad_on_call(MIX.denoiser, 2), d.karras_sigmas(10), 80 * _x())
    assert e.value.step == 0 and e.value.time == 80.0


def test_an_update_that_overflows_is_named_as_the_update():
    # a finite but huge x0_hat: the state overflows float32 in the update, not in the model's output
    x = _x(dtype=torch.float32)
    with pytest.raises(NonFiniteState, match=r"the update at step 0 of 1 \(sigma = 0\.001 -> 0\).*x0_hat there was "
                                             r"finite.*float32") as e:
        d.sample_edm(lambda x, s: torch.full_like(x, -3e38), [1e-3, 0.0], x, "euler")
    assert e.value.step == 0 and e.value.time == 1e-3


def test_finite_runs_are_unchanged_by_the_check():
    """The check reads the final state only: the samples of a healthy run are exactly the loop's."""
    x = _x()
    traj = d.sample_ddim(EPS, SCHED, x, steps=10)
    y = x
    for i, (t, t_prev) in enumerate(zip(TS[:-1].tolist(), TS[1:].tolist())):
        y, _ = d.ddim_step(y, EPS(y, torch.full((16,), t)), SCHED.alpha_bar[t].item(), SCHED.alpha_bar[t_prev].item())
        assert torch.equal(traj.xs[i + 1], y)


# ---- noises= ------------------------------------------------------------------------------------

def test_non_finite_noise_is_named_by_index():
    noises = [torch.randn(16, 2, dtype=torch.float64) for _ in range(99)]
    noises[5][3, 1] = NAN
    with pytest.raises(ValueError, match=r"noises\[5\] contains 1 NaN and 0 inf"):
        d.sample_ddpm(EPS, SCHED, _x(), noises=noises)
    stacked = torch.stack(noises)
    stacked[5, 3, 1] = 1.0
    stacked[7, 0, 0] = -INF
    with pytest.raises(ValueError, match=r"noises\[7\] contains 0 NaN and 1 inf"):
        d.sample_ddim(EPS, SCHED, _x(), steps=10, eta=1.0, noises=stacked)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_noise_dtype_must_be_real_floating_point(dtype):
    noises = [torch.zeros(16, 2, dtype=torch.float64) for _ in range(10)]
    noises[2] = noises[2].to(dtype)
    with pytest.raises(ValueError, match=rf"noises\[2\] has dtype {str(dtype)[6:]}; samplers take real floating"):
        d.sample_estimate_correct(d.x0_model_from_eps(EPS, SCHED), d.GaussianForward(SCHED), TS, _x(), "marginal",
                                  noises=noises)


def test_noise_check_keeps_results():
    noises = [torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(k)) for k in range(10)]
    a = d.sample_ddim(EPS, SCHED, _x(), steps=10, eta=1.0, noises=noises)
    b = d.sample_ddim(EPS, SCHED, _x(), steps=10, eta=1.0, noises=torch.stack(noises))
    assert torch.equal(a.xs, b.xs)


# ---- dtypes -------------------------------------------------------------------------------------

HALF_RUNS = {
    "ddpm": lambda x: d.sample_ddpm(EPS, SCHED, x, generator=_gen()),
    "ddim": lambda x: d.sample_ddim(EPS, SCHED, x, steps=10),
    "ddim inversion": lambda x: d.ddim_invert(EPS, SCHED, x, steps=10),
    "estimate-correct": lambda x: d.sample_estimate_correct(d.x0_model_from_eps(EPS, SCHED), d.GaussianForward(SCHED),
                                                            TS, x, "deterministic"),
    "edm heun": lambda x: d.sample_edm(MIX.denoiser, d.karras_sigmas(10), 80 * x),
    "edm on the eps-model": lambda x: d.sample_edm(denoiser_from_eps(EPS, SCHED),
                                                   d.karras_sigmas(10, SCHED.sigma[1].item(), SCHED.sigma[-1].item()),
                                                   SCHED.sigma[-1].item() * x),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(HALF_RUNS))
def test_half_precision_starts_work_and_stay_in_their_dtype(name, dtype):
    x = _x(64, dtype=torch.float32)
    ref = HALF_RUNS[name](x)
    half = HALF_RUNS[name](x.to(dtype))
    assert half.xs.dtype == dtype and half.x0_hats.dtype == dtype
    assert torch.isfinite(half.xs).all() and torch.isfinite(half.x0_hats).all()
    # half precision, so only roughly the float32 path (the deterministic samplers)
    if name != "ddpm":
        err = (half.x.float() - ref.x).abs().median()
        assert err < (0.02 if dtype == torch.float16 else 0.1), err


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_integer_bool_complex_starts_are_refused_by_name(dtype):
    x = torch.zeros(4, 2).to(dtype)
    with pytest.raises(ValueError, match=rf"x_T has dtype {str(dtype)[6:]}; samplers take .*float16, bfloat16"):
        d.sample_ddim(EPS, SCHED, x, steps=5)
    with pytest.raises(ValueError, match=r"x0 has dtype"):
        d.ddim_invert(EPS, SCHED, x, steps=5)
    with pytest.raises(ValueError, match=r"^x has dtype"):
        d.sample_edm(MIX.denoiser, d.karras_sigmas(5), x)


def test_half_precision_schedule_tables_are_refused_where_betas_do_not_survive():
    with pytest.raises(ValueError, match=r"rounds to 1 in float16.*beta_1 must be > 0\.000244 for dtype=float16"):
        d.Schedule(d.linear_betas(1000), dtype=torch.float16)
    with pytest.raises(ValueError, match=r"rounds to 1 in float16"):
        SCHED.to(dtype=torch.float16)
    with pytest.raises(ValueError, match=r"dtype must be a real floating-point"):
        d.Schedule(d.linear_betas(10), dtype=torch.int64)


# ---- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: d.karras_sigmas(5, sigma_max=INF), r"sigma_max must be a finite number in \[0\.002, inf\), got inf"),
    (lambda: d.karras_sigmas(5, sigma_min=NAN), r"sigma_min must be a finite number"),
    (lambda: d.karras_sigmas(5, rho=INF), r"rho must be a finite number"),
    (lambda: d.karras_sigmas(5, sigma_min=1.0, sigma_max=1.0), r"sigma_max must be > sigma_min"),
    (lambda: d.karras_sigmas(5, rho=1e300), r"not a finite, strictly decreasing grid"),
    (lambda: d.cosine_betas(10, s=INF), r"s must be a finite number in \(0, inf\), got inf"),
    (lambda: d.cosine_betas(10, s=NAN), r"s must be a finite number"),
    (lambda: d.sigmoid_betas(10, tau=INF), r"tau must be a finite number"),
    (lambda: d.sigmoid_betas(10, start=NAN), r"start must be a finite number"),
    (lambda: d.sigmoid_betas(10, start=-INF), r"start must be a finite number"),
    (lambda: d.sigmoid_betas(10, end=INF), r"end must be a finite number"),
    (lambda: d.sigmoid_betas(1000, tau=1e-4), r"sigmoid_betas\(T=1000.*tau=0\.0001\) gives beta_1 = 0\.0"),
    (lambda: d.Schedule(torch.tensor([1e-20, 0.02], dtype=torch.float64)),
     r"betas\[0\] \(paper time t=1\) is 1e-20.*beta_1 must be > 5\.55e-17 for dtype=float64"),
    (lambda: d.Schedule(torch.tensor([1e-10, 0.02], dtype=torch.float64), dtype=torch.float32),
     r"beta_1 must be > 2\.98e-08 for dtype=float32"),
    (lambda: d.Schedule(torch.full((2000,), 0.9, dtype=torch.float64)), r"underflows to 0 in float64 at t=324"),
])
def test_schedule_and_grid_arguments_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_smallest_allowed_beta_gives_finite_tables():
    s = d.Schedule(torch.tensor([6e-17, 0.02], dtype=torch.float64))
    for name in s._FIELDS:
        assert torch.isfinite(getattr(s, name)[1:]).all(), name


@pytest.mark.parametrize("kwargs, match", [
    ({"s_noise": INF}, r"s_noise must be a finite number"),
    ({"s_noise": -1}, r"s_noise must be"),
    ({"s_tmin": NAN}, r"s_tmin must be a finite number"),
    ({"s_tmin": 2.0, "s_tmax": 1.0}, r"s_tmax must be in \[2\.0, inf\], got 1\.0"),
    ({"s_tmax": NAN}, r"s_tmax must be in"),
    ({"s_churn": NAN}, r"s_churn must be in"),
])
def test_sample_edm_churn_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        d.sample_edm(MIX.denoiser, d.karras_sigmas(5), 80 * _x(), **{"s_churn": 1.0, **kwargs})


@pytest.mark.parametrize("sigma", [-1.0, NAN, INF, torch.tensor([0.5, -1.0] * 8, dtype=torch.float64)])
def test_mixture_refuses_a_negative_or_non_finite_sigma(sigma):
    for f in (MIX.denoiser, MIX.score, MIX.log_prob, MIX.responsibilities):
        with pytest.raises(ValueError, match=r"sigma must be finite and >= 0"):
            f(_x(), sigma)


@pytest.mark.parametrize("call, match", [
    (lambda x: d.ddim_step(x, x, 0.5, 0.9, eta=-0.1), r"eta must be a finite number in \[0, inf\), got -0\.1"),
    (lambda x: d.ddim_step(x, x, 0.5, 0.9, eta=NAN), r"eta must be a finite number"),
    (lambda x: d.ddim_step(x, x, 0.5, 0.9, eta=INF), r"eta must be a finite number"),
    (lambda x: d.ddim_step(x, x, 0.5, 0.9, eta=1.0), r"eta=1\.0 gives this step sigma = .* pass noise="),
    (lambda x: d.ddim_step(x, x, 0.5, 0.9, eta=50.0, noise=x), r"sigma\^2 = .* > 1 - alpha_bar_prev = 0\.1.*largest eta"),
    (lambda x: d.ddim_step(x, x, 0.0, 0.9), r"alpha_bar must be in \(0, 1\], got 0\.0"),
    (lambda x: d.ddim_step(x, x, 0.5, 1.5), r"alpha_bar_prev must be in \(0, 1\], got 1\.5"),
    (lambda x: d.ddpm_step(x, x, 0.5, 0.9, sigma=-0.1), r"sigma must be a finite number in \[0, inf\), got -0\.1"),
    (lambda x: d.ddpm_step(x, x, 0.5, 0.9, sigma=NAN), r"sigma must be a finite number"),
    (lambda x: d.ddpm_step(x, x, 0.5, 0.9, sigma=0.1), r"sigma = 0\.1 > 0: pass noise="),
    (lambda x: d.ddpm_step(x, x, 1.0, 1.0), r"alpha_bar must be in \(0, 1\), got 1\.0"),
])
def test_public_steps_check_their_numbers(call, match):
    with pytest.raises(ValueError, match=match):
        call(_x())


def test_public_steps_still_take_tensors_and_keep_their_results():
    x = _x()
    ab = torch.full((16, 1), 0.5, dtype=torch.float64)
    a, _ = d.ddim_step(x, x, ab, 0.9)
    b, _ = d.ddim_step(x, x, 0.5, 0.9)
    torch.testing.assert_close(a, b, rtol=1e-15, atol=0)


def test_ddim_step_takes_per_sample_alpha_bars_for_both_times():
    """Per-sample alpha_bar_t and alpha_bar_prev tensors (each sample at its own time), eta = 0 and eta > 0."""
    x, z = _x(), _x() * 0.5
    ab, ab_prev = torch.linspace(0.2, 0.6, 16, dtype=torch.float64)[:, None], torch.linspace(0.7, 0.95, 16, dtype=torch.float64)[:, None]
    for eta, noise in ((0.0, None), (1.0, z)):
        batch, _ = d.ddim_step(x, x, ab, ab_prev, eta, noise)
        for i in (0, 7, 15):
            one, _ = d.ddim_step(x[i:i + 1], x[i:i + 1], ab[i].item(), ab_prev[i].item(), eta, None if noise is None else z[i:i + 1])
            torch.testing.assert_close(batch[i:i + 1], one, rtol=1e-12, atol=1e-12)


def test_adapters_check_the_eps_models_output_shape():
    bad = lambda x, t: x[:, :1]  # noqa: E731
    with pytest.raises(ValueError, match=r"eps_model returned \(16, 1\); it must return a tensor of the input's shape"):
        d.x0_model_from_eps(bad, SCHED)(_x(), torch.full((16,), 5))
    with pytest.raises(ValueError, match=r"eps_model returned \(16, 1\)"):
        denoiser_from_eps(bad, SCHED)(_x(), 1.0)
    with pytest.raises(ValueError, match=r"sigma must be in \(0, inf\], got -1"):
        denoiser_from_eps(EPS, SCHED)(_x(), -1)


def test_check_number_finite_option():
    assert check_number(math.inf, "s_tmax", lo=0) == math.inf  # inf is meaningful there: the default keeps it
    with pytest.raises(ValueError, match=r"a must be a finite number in \[0, inf\), got inf"):
        check_number(math.inf, "a", lo=0, finite=True)
    with pytest.raises(ValueError, match=r"a must be a finite number in \(-inf, inf\), got -inf"):
        check_number(-math.inf, "a", finite=True)
    with pytest.raises(ValueError, match=r"a must be in \[0, 1\], got nan"):
        check_number(NAN, "a", lo=0, hi=1)


@pytest.mark.parametrize("call, match", [
    (lambda: d.precond.edm_loss(MIX.denoiser, _x(), P_std=NAN), r"P_std must be a finite number"),
    (lambda: d.precond.edm_loss(MIX.denoiser, _x(), P_mean=INF), r"P_mean must be a finite number"),
    (lambda: d.precond.edm_loss(MIX.denoiser, _x(), sigma_data=0), r"sigma_data must be a finite number in \(0, inf\)"),
    (lambda: d.precond.Denoiser(torch.nn.Identity(), sigma_data=INF), r"sigma_data must be a finite number"),
    (lambda: d.Blur(8, std_max=INF), r"std_max must be a finite number"),
    (lambda: d.sigma_tilde_for_eta(SCHED, TS, -1.0), r"eta must be a finite number in \[0, inf\), got -1\.0"),
    (lambda: d.sample_ddim(EPS, SCHED, _x(), steps=5, eta=INF), r"eta=inf makes sigma\^2 > 1 - alpha_bar_prev.*largest eta"),
])
def test_other_numbers_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()
