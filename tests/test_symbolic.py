"""diffedu.symbolic: every numeric coefficient function against its derivation (symbolically and in
float64), the derivations' checked identities, a mutation test, and the learner-facing checker."""
import ast
import dataclasses
import inspect
import textwrap

import pytest
import sympy as sp

import diffedu.forward as F
import diffedu.param as Q
import diffedu.posterior as P
import diffedu.schedules as SCH
from diffedu import symbolic as S
from diffedu.symbolic import ddim as sym_ddim
from diffedu.symbolic import forward as sym_forward
from diffedu.symbolic import guidance as sym_guidance
from diffedu.symbolic import param as sym_param
from diffedu.symbolic import posterior as sym_posterior
from diffedu.symbolic import precond as sym_precond
from diffedu.symbolic import registry
from diffedu.symbolic import steps as sym_steps
from diffedu.symbolic import unified as sym_unified
from diffedu.symbolic.ddim import marginal_of_step

s = S.symbols()
ab, abp = s.alpha_bar_t, s.alpha_bar_prev


# ---- the registry: each pair both ways, coverage, mutations ---------------------------------------

@pytest.mark.parametrize("pair", S.PAIRS, ids=lambda p: p.name.removeprefix("diffedu."))
def test_pair_holds_symbolically_and_in_float64(pair):
    assert S.verify(pair) == []


def test_every_public_function_of_the_numeric_modules_is_paired_or_waived():
    missing = S.missing_pairs()
    assert not missing, ("public functions with neither a pair nor a waiver (declare one next to its derivation "
                         f"in diffedu/symbolic/): {missing}")


def test_registry_has_no_stale_or_duplicate_entries():
    public = {f for m in S.NUMERIC_MODULES for f in registry.public_functions(m)}
    paired = [p.name for p in S.PAIRS]
    assert len(paired) == len(set(paired)), "a function is paired twice"
    assert set(paired) <= public and set(S.WAIVERS) <= public, "an entry names a function that does not exist"
    assert not set(paired) & set(S.WAIVERS), "a function is both paired and waived"


def test_registry_tables_are_built_once_and_read_only():
    assert isinstance(S.PAIRS, tuple) and isinstance(S.NUMERIC_MODULES, tuple)
    assert S.PAIRS is registry.PAIRS and S.WAIVERS is registry.WAIVERS
    with pytest.raises(TypeError):
        S.WAIVERS["diffedu.forward.q_sample"] = "overwritten"
    # the registry holds exactly what the derivation modules declare, in their order
    declared = [p for m in (sym_forward, sym_posterior, sym_ddim, sym_param, sym_precond, sym_steps, sym_unified,
                            sym_guidance)
                for p in m.PAIRS]
    assert list(S.PAIRS) == declared


def test_pair_name_is_the_numeric_function_unless_given():
    pair = next(p for p in S.PAIRS if p.numeric is SCH.ve_sigma)
    assert pair.name == "diffedu.schedules.ve_sigma"
    assert S.Pair(SCH.ve_sigma, pair.derived, pair.args, name="diffedu.somewhere.else").name == "diffedu.somewhere.else"
    assert dataclasses.replace(pair, numeric=lambda a: a).name == pair.name  # a mutant keeps the name it stands for


def _is_sign(node) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))


def _signs(fn) -> int:
    """How many + or - the source of fn holds."""
    return sum(_is_sign(node) for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))))


def _flip_sign(fn, k: int = 0):
    """A copy of fn (its module untouched) whose k-th + or - in source order (outer before inner) is flipped."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))

    class Flip(ast.NodeTransformer):
        seen = 0

        def visit_BinOp(self, node):
            if _is_sign(node):
                if self.seen == k:
                    node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
                self.seen += 1
            return self.generic_visit(node)

    flip = Flip()
    tree = ast.fix_missing_locations(flip.visit(tree))
    assert flip.seen > k, f"{fn.__name__} has only {flip.seen} + or -"
    namespace = dict(fn.__globals__)
    exec(compile(tree, f"<mutant of {fn.__name__}, sign {k}>", "exec"), namespace)
    return namespace[fn.__name__]


SIGN_SITES = [(pair, k) for pair in S.PAIRS for k in range(_signs(pair.numeric))]


def test_every_paired_function_has_a_sign_to_flip():
    assert {pair.name for pair, _ in SIGN_SITES} == {pair.name for pair in S.PAIRS}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # a mutant's sqrt of a negative
@pytest.mark.parametrize("pair, k", SIGN_SITES, ids=lambda x: x.name.removeprefix("diffedu.") if isinstance(x, S.Pair)
                         else f"sign{x}")
def test_a_sign_error_in_any_coefficient_function_is_caught(pair, k):
    # every + and -, not only the first: a flip at any 1 - alpha_bar site must fail
    mutant = dataclasses.replace(pair, numeric=_flip_sign(pair.numeric, k))
    problems = S.verify(mutant, n=50)
    assert any("does not reduce to 0" in p for p in problems), problems
    assert any("float64 (numpy)" in p for p in problems) and any("float64 (torch)" in p for p in problems), problems


def test_flipped_k_in_ddim_mean_coefs_is_caught():
    pair = next(p for p in S.PAIRS if p.numeric is P.ddim_mean_coefs)

    def flipped(alpha_bar, alpha_bar_prev, sigma):
        k, m = P.ddim_mean_coefs(alpha_bar, alpha_bar_prev, sigma)
        return -k, m

    problems = S.verify(dataclasses.replace(pair, numeric=flipped), n=50)
    assert problems and all(" k " in p for p in problems), problems


def test_posterior_variance_with_one_plus_is_caught():
    pair = next(p for p in S.PAIRS if p.numeric is P.posterior_variance)

    def wrong(alpha_bar, alpha_bar_prev):
        return (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 + alpha_bar / alpha_bar_prev)

    assert len(S.verify(dataclasses.replace(pair, numeric=wrong), n=50)) == 3  # symbolic, numpy, torch


# ---- the derivations' checked identities ----------------------------------------------------------

@pytest.mark.parametrize("derivation", S.DERIVATIONS.values(), ids=lambda d: d.__name__)
def test_derivation_identities_hold(derivation):
    d = derivation()
    assert d.identities and d.verify() == []
    assert d.steps and "$$" in d._repr_markdown_()


def test_identity_check_can_fail():
    assert not S.is_zero(sp.sqrt(ab) - ab)
    d = S.Derivation("a false claim")
    d.identity("sqrt(ab) = ab", sp.sqrt(ab), ab)
    assert d.verify() and "sqrt(ab) = ab" in d.verify()[0]


def test_merging_gaussians():
    r = S.merge_gaussians().result
    a, b = sp.symbols("a b", positive=True)
    assert r["merge_rule"] == a**2 + b**2
    assert sp.expand(r["merged_variance"] - (1 - s.alpha_t * abp)) == 0
    assert (r["mean_coef"], r["variance"]) == (sp.sqrt(ab), 1 - ab)
    e1, e2 = sp.symbols("e1 e2", real=True)
    assert S.gaussian_moments(3 + a * e1 - b * e2, [e1, e2]) == (3, a**2 + b**2)
    with pytest.raises(ValueError):
        S.gaussian_moments(e1 * e2, [e1, e2])


def test_noise_levels():
    r = S.noise_levels().result
    assert S.is_zero(r["sigma"] - sp.sqrt((1 - ab) / ab)) and S.is_zero(r["snr"] - ab / (1 - ab))
    assert S.is_zero(r["beta"] - s.beta_t) and S.is_zero(r["alpha"] - s.alpha_t)  # canonical: beta_t = 1 - ab/abp
    assert S.is_zero(SCH.ve_sigma(ab) ** 2 * SCH.snr(ab) - 1)


def test_eta_one_is_the_ddpm_posterior():
    sigma1 = P.ddim_sigma(ab, abp, 1)
    assert S.is_zero(sigma1**2 - P.posterior_variance(ab, abp))
    k, m = P.ddim_mean_coefs(ab, abp, sigma1)
    coef_x0, coef_xt = P.posterior_mean_coefs(ab, abp)
    assert S.is_zero(k - coef_x0) and S.is_zero(m - coef_xt)
    r = S.ddim_coefficients().result
    assert S.is_zero(r["sigma_eta"].subs(s.eta, 1) ** 2 - S.ddpm_posterior().result["beta_tilde"])


def test_eta_zero_is_deterministic():
    assert P.ddim_sigma(ab, abp, 0) == 0
    update = S.ddim_coefficients().result["update"].subs(s.sigma, 0)
    assert s.z not in update.free_symbols
    x0_hat = Q.x0_from_eps(s.x_t, s.eps, ab)
    assert S.is_zero(update - (sp.sqrt(abp) * x0_hat + sp.sqrt(1 - abp) * s.eps))


def test_marginal_is_preserved_for_any_sigma_and_any_earlier_time():
    # the package's own k, m with sigma a free symbol; ab_t < ab_prev unrelated to any alpha_t
    k, m = P.ddim_mean_coefs(ab, abp, s.sigma)
    mean_coef, var = marginal_of_step(k, m, s.sigma, ab)
    assert S.is_zero(mean_coef - sp.sqrt(abp)) and S.is_zero(var - (1 - abp))
    assert sp.diff(var, s.sigma) == 0 and var.subs(s.sigma, 0) == 1 - abp
    used = S.open_questions().result["used_symbols"]
    assert not {s.alpha_t, s.beta_t} & set(used)


# ---- check(): right, equivalent, wrong, unknown ---------------------------------------------------

def _numeric_answers():
    """Each checker name, answered with the package's numeric functions called on symbols."""
    c0, ct = P.posterior_mean_coefs(ab, abp)
    a, b = P.posterior_mean_eps_coefs(ab, abp)
    k, m = P.ddim_mean_coefs(ab, abp, s.sigma)
    cx, ce = P.ddim_step_coefs(ab, abp, s.sigma)
    mean_coef, var = F.q_mean_var_coefs(ab)
    v_ = Q.v_from_eps(s.x_t, s.eps, ab)
    return {
        "q_mean": mean_coef * s.x_0, "q_mean_coef": mean_coef, "q_variance": var,
        "posterior_mean": c0 * s.x_0 + ct * s.x_t, "posterior_mean_coef_x0": c0, "posterior_mean_coef_xt": ct,
        "posterior_variance": P.posterior_variance(ab, abp), "posterior_mean_eps": a * s.x_t - b * s.eps,
        "vlb_weight": P.vlb_weight(ab, abp, s.sigma**2), "ddim_sigma": P.ddim_sigma(ab, abp, s.eta),
        "ddim_k": k, "ddim_m": m, "ddim_mean": k * s.x_0 + m * s.x_t,
        "ddim_update": cx * Q.x0_from_eps(s.x_t, s.eps, ab) + ce * s.eps + s.sigma * s.z,
        "x0_from_eps": Q.x0_from_eps(s.x_t, s.eps, ab), "eps_from_x0": Q.eps_from_x0(s.x_t, s.x_0, ab),
        "v": v_, "v_from_eps": v_, "x0_from_v": Q.x0_from_v(s.x_t, s.v, ab), "eps_from_v": Q.eps_from_v(s.x_t, s.v, ab),
        "score": Q.score_from_eps(s.eps, ab), "score_from_eps": Q.score_from_eps(s.eps, ab),
        "eps_from_score": Q.eps_from_score(s.score, ab), "x0_from_score": Q.x0_from_score(s.x_t, s.score, ab),
    }


def test_every_checker_name_accepts_the_numeric_code():
    answers = _numeric_answers()
    assert set(answers) == set(S.REFERENCE)
    for name, expr in answers.items():
        result = S.check(name, expr)
        assert result and result.ok, result


@pytest.mark.parametrize("name, answer", [
    ("posterior_variance", lambda: (1 - abp) / (1 - ab) * s.beta_t),
    ("posterior_variance", lambda: (1 - abp) * (abp - ab) / (abp * (1 - ab))),
    ("posterior_mean_coef_xt", lambda: sp.sqrt(s.alpha_t) * (1 - abp) / (1 - ab)),
    ("posterior_mean_coef_x0", lambda: sp.sqrt(abp) * s.beta_t / (1 - s.alpha_t * abp)),
    ("posterior_mean_eps", lambda: (s.x_t - s.beta_t / sp.sqrt(1 - ab) * s.eps) / sp.sqrt(s.alpha_t)),
    ("vlb_weight", lambda: s.beta_t**2 / (2 * s.sigma**2 * s.alpha_t * (1 - ab))),
    ("ddim_sigma", lambda: s.eta * sp.sqrt((1 - abp) / (1 - ab) * s.beta_t)),
    ("ddim_update", lambda: sp.sqrt(abp) * (s.x_t - sp.sqrt(1 - ab) * s.eps) / sp.sqrt(ab)
        + sp.sqrt(1 - abp - s.sigma**2) * s.eps + s.sigma * s.z),
    ("x0_from_score", lambda: (s.x_t + (1 - ab) * s.score) / sp.sqrt(ab)),
])
def test_check_accepts_equivalent_forms(name, answer):
    assert S.check(name, answer()), S.check(name, answer())


def test_check_accepts_the_learners_own_symbols():
    alpha_bar_t, alpha_bar_prev, beta_t = sp.symbols("alpha_bar_t alpha_bar_prev beta_t")  # no assumptions
    assert S.check("posterior_variance", (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t)


def test_check_reports_where_a_wrong_answer_differs():
    wrong = (1 - abp) / (1 - ab) * (1 + ab / abp)
    result = S.check("posterior_variance", wrong)
    assert not result and not result.ok
    assert set(result.point) == {"alpha_bar_t", "alpha_bar_prev"}
    at = {ab: result.point["alpha_bar_t"], abp: result.point["alpha_bar_prev"]}
    assert result.yours == pytest.approx(float(wrong.subs(at)))
    assert result.derived == pytest.approx(float(P.posterior_variance(*at.values())))
    assert "yours =" in str(result) and "derived =" in str(result) and "not equal" in str(result)
    assert result._repr_markdown_().startswith("❌")


def test_check_names_symbols_the_answer_does_not_use():
    definition = sp.sqrt(ab) * s.eps - sp.sqrt(1 - ab) * s.x_0  # v in x_0 and eps; the checker wants x_t and eps
    result = S.check("v", definition)
    assert not result and "does not depend on x_0" in result.message


def test_check_rejects_unknown_names():
    with pytest.raises(ValueError, match="posterior_variance"):
        S.check("posterior_varience", ab)


def test_symbols_are_the_canonical_ones():
    assert s.alpha_bar_t.is_positive and s.x_t.is_real and s.sigma.is_nonnegative
    assert S.canonical(s.beta_t) == 1 - ab / abp
