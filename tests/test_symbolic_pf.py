"""The EDM derivations of notebook 04 can fail: each is rebuilt with one wrong input (the EDM notes'
sigma = int g^2/s^2, a dropped chain-rule factor, a flipped slope, a truncated Taylor series, a wrong
Var y) and `verify()` must report it; DDIM = Euler is also checked on the package's own steps."""
import numpy as np
import pytest
import sympy as sp
import torch

import diffedu as d
from diffedu.samplers import edm as SE
from diffedu.samplers.ddim import ddim_step
from diffedu.symbolic import precond as sym_precond
from diffedu.symbolic import processes as sym_proc
from diffedu.symbolic import steps as sym_steps
from diffedu.symbolic._core import alpha_bar_prev, alpha_bar_t, evaluate, latex, x_t

RIGHT = [sym_proc.sde_from_s_sigma, sym_proc.s_sigma_from_sde, sym_proc.pf_ode, sym_proc.ddim_is_euler,
         sym_steps.ode_steps, sym_precond.edm_preconditioning]


@pytest.mark.parametrize("derivation", RIGHT, ids=lambda f: f.__name__)
def test_the_right_derivation_holds_and_concludes(derivation):
    dv = derivation()
    assert dv.verify() == []
    assert dv.conclusions and dv.identities


def test_the_notes_sigma_equals_int_g2_over_s2_contradicts_the_marginal_variance():
    # [EDM notes §1.1] write sigma(t) = int g^2/s^2; with it, V = s^2 sigma^2 no longer solves V' = 2 f V + g^2
    wrong = sym_proc._sde_from_s_sigma(variance_power=1).verify()
    assert any(w.startswith("the variance s^2 sigma^2 solves V' = 2 f V + g^2") for w in wrong)
    assert not any(w.startswith("the mean s x_0 solves") for w in wrong)  # f does not depend on it
    assert any(w.startswith("VP: f = -beta(t)/2") for w in wrong)  # nor is VP then Song's VP SDE


def test_the_notes_sigma_form_fails_for_every_family_and_sigma_squared_holds():
    wrong = sym_proc._s_sigma_from_sde(variance_power=1).verify()
    failed = sorted(w.split(":")[0] for w in wrong)
    assert failed == sorted(sym_proc.FAMILIES)
    assert all("int g^2/s^2 = sigma^1" in w for w in wrong)
    assert sym_proc.s_sigma_from_sde().result["EDM.sigma2"] == sym_proc.t**2  # EDM: int 2t dt = t^2 = sigma^2


def test_the_package_processes_integrate_to_sigma_squared_not_sigma():
    t, r = sym_proc.t, sym_proc.r
    for proc in (d.VE(), d.EDM(), d.FlowMatching()):
        integral = sp.integrate(sp.simplify(proc.g(r) ** 2 / proc.s(r) ** 2), (r, 0, t))
        assert sp.simplify(integral - proc.sigma(t) ** 2) == 0
        assert sp.simplify(integral - proc.sigma(t)) != 0


def test_a_dropped_chain_rule_factor_is_caught():
    wrong = sym_proc._pf_ode(chain_rule=False).verify()
    assert len(wrong) == 1 and "as EDM prints them" in wrong[0]


def test_a_flipped_slope_breaks_ddim_equals_euler():
    wrong = sym_proc._ddim_is_euler(slope=lambda y, D, sigma: (D - y) / sigma).verify()
    assert len(wrong) == 1 and wrong[0].startswith("DDIM's x_prev = one Euler step")
    # a slope missing its 1/sigma fails too
    assert sym_proc._ddim_is_euler(slope=lambda y, D, sigma: y - D).verify() != []


def test_ddim_is_euler_on_the_package_steps_at_random_points():
    """ddim_step (eta = 0) / sqrt(alpha_bar_prev) = euler_step of the sampler's slope in (y, sigma), float64,
    and both equal the derivation's y_prev and euler."""
    rng = np.random.default_rng(3)
    n = 200
    ab_prev = rng.uniform(0.05, 0.99, n)
    ab = ab_prev * rng.uniform(0.05, 0.95, n)
    xt, e = rng.standard_normal(n), rng.standard_normal(n)
    steps = [ddim_step(torch.tensor([xt[i]]), torch.tensor([e[i]]), float(ab[i]), float(ab_prev[i])) for i in range(n)]
    x_prev, x0_hat = (torch.cat(parts) for parts in zip(*steps))
    sigma, sigma_next = np.sqrt((1 - ab) / ab), np.sqrt((1 - ab_prev) / ab_prev)
    y = xt / np.sqrt(ab)
    euler = SE.euler_step(y, SE.slope(y, x0_hat.numpy(), sigma), sigma, sigma_next)
    np.testing.assert_allclose(x_prev.numpy() / np.sqrt(ab_prev), euler, rtol=1e-11, atol=1e-11)
    res = sym_proc.ddim_is_euler().result
    eps_hat = next(s for s in res["y_prev"].free_symbols if s.name == "eps_hat")
    point = {x_t: xt, eps_hat: e, alpha_bar_t: ab, alpha_bar_prev: ab_prev}
    for key in ("y_prev", "euler"):
        np.testing.assert_allclose(evaluate(res[key], point), euler, rtol=1e-11, atol=1e-11)


def test_the_ddim_conclusion_is_the_two_line_equality():
    dv = sym_proc.ddim_is_euler()
    shown = latex(dv.conclusions[-1][1], dv.names)
    assert shown == (r"\frac{x_{t-1}}{\sqrt{\bar\alpha_{t-1}}} = y + \left(\sigma_{\mathrm{next}} - \sigma\right) \hat\epsilon"
                     r" = y + \left(\sigma_{\mathrm{next}} - \sigma\right) \frac{y - \hat x_0}{\sigma}")
    steps = [latex(e, dv.names) for _, e in dv.steps]
    assert r"\hat x_0 = y - \sigma \hat\epsilon" in steps


def test_a_truncated_euler_step_is_caught():
    wrong = sym_steps._ode_steps(euler_order=0).verify()
    assert any(w.startswith("Euler misses a quadratic") for w in wrong)


def test_a_wrong_data_variance_is_caught():
    wrong = sym_precond._edm_preconditioning(var_y=sym_precond.sigma_data).verify()
    assert {w.split(" is ")[0] for w in wrong} == {"c_in", "c_skip", "c_out", "lambda"}


def test_display_helpers_keep_the_order_given():
    a, b, c = sp.symbols("a b c")
    assert latex(sym_proc.Seq(b, -a, c)) == "b - a + c"
    assert latex(sym_proc.Paren(c, -b)) == r"\left(c - b\right)"
    assert latex(sym_proc.Chain(a, sym_proc.Frac(b, c))) == r"a = \frac{b}{c}"
