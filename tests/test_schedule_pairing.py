"""Schedule's tables against the derived expressions, and a mutation test: every + or - in the
`Schedule` class and in the coefficient functions it calls (ve_sigma, snr, beta_from_alpha_bar
of diffedu.schedules; posterior_variance of diffedu.posterior), flipped one at a time, must make
that check fail.  [DDPM eq. 4, 7, EDM Tab. 1, VDM eq. 3, iDDPM eq. 17]

The check lambdifies the sympy results of `diffedu.symbolic` (noise_levels, ddpm_posterior) and
evaluates them at the schedule's own alpha_bar; the betas are checked against each schedule's
definition written out here with numpy, through the derived beta_t(alpha_bar_t, alpha_bar_{t-1}).
"""
import ast
import functools
import inspect
import types

import numpy as np
import pytest
import sympy as sp

import diffedu.posterior as P
import diffedu.schedules as SCH
from diffedu import symbolic as S
from diffedu.symbolic._core import alpha_bar_prev, alpha_bar_t, rel_err

T = 1000
MAX_BETA = 0.999  # the schedules' default clip


@functools.cache
def derived() -> dict:
    """The derived expressions as numpy functions of alpha_bar_t (and alpha_bar_prev)."""
    noise = S.noise_levels().result
    post = S.ddpm_posterior().result

    def fn(expr, *syms):
        return sp.lambdify(syms, S.canonical(expr), "numpy")

    return {
        "sigma": fn(noise["sigma"], alpha_bar_t),
        "snr": fn(noise["snr"], alpha_bar_t),
        "beta": fn(noise["beta"], alpha_bar_t, alpha_bar_prev),
        "alpha": fn(noise["alpha"], alpha_bar_t, alpha_bar_prev),
        "posterior_variance": fn(post["beta_tilde"], alpha_bar_t, alpha_bar_prev),
    }


def _betas_of(alpha_bar: np.ndarray) -> np.ndarray:
    """beta_t = derived beta(alpha_bar_t, alpha_bar_{t-1}), clipped as the schedules clip.  [iDDPM eq. 17]"""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(derived()["beta"](alpha_bar[1:], alpha_bar[:-1]), MAX_BETA)


def _reference_betas(kind: str, n: int) -> np.ndarray:
    """Each schedule's definition with the paper's defaults, in numpy."""
    if kind == "linear":  # [DDPM §4]
        return np.linspace(1e-4, 0.02, n)
    u = np.arange(n + 1) / n
    if kind == "cosine":  # [iDDPM eq. 17], s = 0.008
        f = np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2
        return _betas_of(f / f[0])
    # [Jabri Fig. 8], start = -3, end = 3, tau = 1
    v_start, v_end, v_u = (1 / (1 + np.exp(-z)) for z in (-3.0, 3.0, -3.0 + 6.0 * u))
    g = (v_end - v_u) / (v_end - v_start)
    return _betas_of(g / g[0])


KINDS = ("linear", "cosine", "sigmoid")


def schedule_problems(mod, kind: str, n: int = T) -> list[str]:
    """Where the Schedule of `mod` (diffedu.schedules, or a mutant of it) for the `kind` betas departs
    from the derivations (empty when it agrees).  A mutant that raises is reported too."""
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _problems(mod, kind, n)
    except Exception as err:  # a mutant may break anything
        return [f"{kind}: raised {err!r}"]


def _problems(mod, kind, n):
    betas = getattr(mod, f"{kind}_betas")(n)
    sched = mod.Schedule(betas)
    tab = {name: getattr(sched, name).numpy() for name in sched._FIELDS}
    ab, problems = tab["alpha_bar"], []

    def compare(what, got, want, rtol):
        err = rel_err(want, got)
        if err.shape != (n,) or (err > rtol).any():
            j = int(np.argmax(err))
            problems.append(f"{kind} {what}: relative error {err[j]:.3g} > {rtol:g} at t = {j + 1}")

    compare("betas vs the schedule's definition", betas.numpy(), _reference_betas(kind, n), 1e-9)
    at_zero = {name: float(tab[name][0]) for name in sched._FIELDS}
    if at_zero != dict(beta=0.0, alpha=1.0, alpha_bar=1.0, sigma=0.0, snr=float("inf"), posterior_variance=0.0):
        problems.append(f"{kind}: the tables at t = 0 are {at_zero}")
    f = derived()
    compare("beta vs the input betas", tab["beta"][1:], betas.numpy(), 0.0)
    # alpha_bar_t = alpha_t alpha_bar_{t-1}: beta_t recovered from alpha_bar (~1e-12 relative for beta ~ 1e-4)
    compare("beta vs derived beta(alpha_bar)", tab["beta"][1:], f["beta"](ab[1:], ab[:-1]), 1e-9)
    compare("alpha vs derived alpha(alpha_bar)", tab["alpha"][1:], f["alpha"](ab[1:], ab[:-1]), 1e-12)
    compare("sigma vs derived sigma(alpha_bar)", tab["sigma"][1:], f["sigma"](ab[1:]), 1e-12)
    compare("snr vs derived snr(alpha_bar)", tab["snr"][1:], f["snr"](ab[1:]), 1e-12)
    compare("posterior_variance vs derived beta_tilde(alpha_bar)", tab["posterior_variance"][1:],
            f["posterior_variance"](ab[1:], ab[:-1]), 1e-12)
    return problems


# ---- (a) the tables are the derived expressions ------------------------------------------------------

@pytest.mark.parametrize("n", [1, 10, T])
@pytest.mark.parametrize("kind", KINDS)
def test_schedule_tables_equal_the_derived_expressions(kind, n):
    assert schedule_problems(SCH, kind, n) == []


def test_the_check_reports_a_wrong_table():
    class Wrong(SCH.Schedule):
        def __init__(self, betas):
            super().__init__(betas)
            self.snr = self.snr * (1 + 1e-9)

    assert schedule_problems(types.SimpleNamespace(linear_betas=SCH.linear_betas, Schedule=Wrong), "linear")


# ---- (b) every sign flipped -------------------------------------------------------------------------

SCHEDULE_OWNERS = {"Schedule", "ve_sigma", "snr", "beta_from_alpha_bar"}  # the class and the functions it calls
POSTERIOR_OWNERS = {"posterior_variance"}  # diffedu.posterior's, which Schedule calls too


def _in_messages(node) -> set:
    """ids of the nodes inside f-strings (error messages), where a + or - is not a formula."""
    return {id(inner) for js in ast.walk(node) if isinstance(js, ast.JoinedStr) for inner in ast.walk(js)}


def sign_sites(module, owners) -> list[tuple[str, int, int]]:
    """(owner, line, column) of every + or - BinOp in the named top-level classes and functions of module."""
    sites = []
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in owners:
            skip = _in_messages(node)
            sites += [(node.name, op.lineno, op.col_offset) for op in ast.walk(node)
                      if isinstance(op, ast.BinOp) and isinstance(op.op, (ast.Add, ast.Sub)) and id(op) not in skip]
    return sites


def mutant(module, line: int, col: int) -> types.SimpleNamespace:
    """The module's source with the one + or - at (line, col) flipped, run in a fresh namespace."""
    tree = ast.parse(inspect.getsource(module))
    op = next(n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and (n.lineno, n.col_offset) == (line, col))
    op.op = ast.Sub() if isinstance(op.op, ast.Add) else ast.Add()
    namespace = {"__name__": f"{module.__name__}_mutant", "__package__": module.__package__}
    exec(compile(tree, f"<mutant of {module.__name__}, line {line}>", "exec"), namespace)
    return types.SimpleNamespace(**namespace)


SCHEDULE_SITES = sign_sites(SCH, SCHEDULE_OWNERS)
POSTERIOR_SITES = sign_sites(P, POSTERIOR_OWNERS)


def test_there_are_signs_to_flip():
    assert {owner for owner, _, _ in SCHEDULE_SITES} == SCHEDULE_OWNERS
    assert {owner for owner, _, _ in POSTERIOR_SITES} == POSTERIOR_OWNERS


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a mutant's sqrt of a negative, or 0/0
@pytest.mark.parametrize("owner, line, col", SCHEDULE_SITES, ids=str)
def test_a_sign_flipped_in_schedules_is_caught(owner, line, col):
    mod = mutant(SCH, line, col)
    problems = {kind: schedule_problems(mod, kind) for kind in KINDS}
    assert any(problems.values()), f"flipping the sign at schedules.py:{line}:{col} ({owner}) passes the check"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("owner, line, col", POSTERIOR_SITES, ids=str)
def test_a_sign_flipped_in_posterior_variance_is_caught(owner, line, col, monkeypatch):
    monkeypatch.setattr(SCH, owner, getattr(mutant(P, line, col), owner))  # the Schedule calls the mutant
    problems = {kind: schedule_problems(SCH, kind) for kind in KINDS}
    assert any(problems.values()), f"flipping the sign at posterior.py:{line}:{col} ({owner}) passes the check"
