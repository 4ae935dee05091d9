"""The EDM and unified-view derivations, and the Process methods paired with them."""
import pytest

import diffedu as d
from diffedu.symbolic import precond as sym_precond
from diffedu.symbolic import processes as sym_proc
from diffedu.symbolic import registry as R
from diffedu.symbolic import unified as sym_unified

DERIVATIONS = [sym_proc.sde_from_s_sigma, sym_proc.s_sigma_from_sde, sym_proc.pf_ode, sym_proc.ddim_is_euler,
               sym_precond.edm_preconditioning, sym_unified.corrections_keep_the_marginal,
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
