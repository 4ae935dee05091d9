"""The EDM and unified-view derivations, and the Process methods paired with them."""
import pytest

import diffedu as d
from diffedu.samplers import edm as SE
from diffedu.symbolic import precond as sym_precond
from diffedu.symbolic import processes as sym_proc
from diffedu.symbolic import registry as R
from diffedu.symbolic import steps as sym_steps
from diffedu.symbolic import unified as sym_unified

DERIVATIONS = [sym_proc.sde_from_s_sigma, sym_proc.s_sigma_from_sde, sym_proc.pf_ode, sym_proc.ddim_is_euler,
               sym_steps.ode_steps, sym_precond.edm_preconditioning, sym_unified.corrections_keep_the_marginal,
               sym_unified.gaussian_posterior_mean]


@pytest.mark.parametrize("derivation", DERIVATIONS, ids=lambda f: f.__name__)
def test_derivation_identities_hold(derivation):
    result = derivation()
    assert result.steps, "a derivation shows its steps"
    assert result.verify() == []


@pytest.mark.parametrize("pair", R.METHOD_PAIRS(), ids=lambda p: p.name.removeprefix("diffedu.processes."))
def test_process_methods_match_their_derivation(pair):
    assert R.verify(pair) == []


def test_every_process_method_is_paired():
    paired = {p.name for p in R.METHOD_PAIRS()}
    for cls in (d.VP, d.VE, d.EDM, d.FlowMatching):
        for method in ("s", "sigma", "s_dot", "sigma_dot", "f", "g", "ode_coefs", "sigma_inv"):
            assert f"diffedu.processes.{cls.__name__}.{method}" in paired


def test_process_pairs_are_declared_beside_their_derivations():
    assert R.METHOD_PAIRS() == R.PROCESS_PAIRS == sym_proc.METHOD_PAIRS
    assert not set(R.PROCESS_PAIRS) & set(R.PAIRS)


def test_the_edm_steps_are_paired_with_the_derived_slope_euler_and_trapezoid():
    paired = {p.numeric: p for p in R.PAIRS}
    for fn in (SE.slope, SE.euler_step, SE.heun_step):
        assert fn in paired and R.verify(paired[fn]) == []
    r = sym_steps.ode_steps().result
    # the slope is the derived a x - b D of EDM's process (s = 1, sigma = t), not a typed-in (x - D)/sigma
    a, b = (sym_proc.pf_ode().result[f"EDM.{k}"].subs(sym_proc.t, sym_steps.t_i) for k in ("a", "b"))
    assert r["slope"] == a * sym_steps.x - b * sym_steps.D


def test_a_sign_error_in_a_process_is_caught(monkeypatch):
    pair = next(p for p in R.METHOD_PAIRS() if p.name == "diffedu.processes.VP.sigma_dot")
    monkeypatch.setattr(d.VP, "sigma_dot", lambda self, t: -(self.beta_d * t + self.beta_min) / (2 * self.sigma(t)))
    problems = R.verify(pair)
    assert any("does not reduce to 0" in p for p in problems)
    assert any("float64" in p for p in problems)


def test_a_wrong_identity_is_reported():
    wrong = sym_unified.corrections_keep_the_marginal()
    bad = type(wrong)(wrong.title, identities=[("variance", wrong.identities[1][1], 1 + 0 * sym_unified.sigma_tilde)])
    assert bad.verify() != []
