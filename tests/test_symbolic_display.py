"""What a learner sees: every derivation ends in its boxed conclusion, shows each checked identity with
its verdict, and renders as the papers write it (no code names leaking into the LaTeX)."""
import dataclasses
import re

import pytest
import sympy as sp
from sympy.core.function import AppliedUndef

from diffedu import symbolic as S
from diffedu.symbolic._core import LATEX, NAME_LATEX, latex

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
         "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"}
# a name sympy renders as the papers do: one letter or a Greek letter, optionally _ and a 1-2 character subscript
SIMPLE = re.compile(rf"^(?:[A-Za-z]|{'|'.join(sorted(GREEK))})(?:_[A-Za-z0-9]{{1,2}})?$")
LEAKS = ("_{bar", "_{hat", "{hat}", "{bar}", "nabla_{", "\\operatorname{log}", "\\left(\\left(", "\\left((",
         "\\left(\\left(", "tilde}", " log ", "_{2 ", "\\mathtt")


def _shown(d):
    """Every expression a derivation displays, with the sentence it belongs to."""
    yield from d.steps
    yield from d.conclusions


@pytest.mark.parametrize("name", sorted(S.DERIVATIONS))
def test_every_derivation_ends_in_a_boxed_conclusion(name):
    d = S.DERIVATIONS[name]()
    assert d.conclusions, f"{name}: no conclusion (call d.conclude(sentence, Eq(...)) at the end)"
    md = d._repr_markdown_()
    assert md.rstrip().endswith("$$") and "\\boxed{" in md.split("**Conclusion.**")[-1]


@pytest.mark.parametrize("name", sorted(S.DERIVATIONS))
def test_every_checked_identity_is_shown_with_its_verdict(name):
    d = S.DERIVATIONS[name]()
    md = d._repr_markdown_()
    assert d.identities, f"{name} checks nothing"
    for text, _, _ in d.identities:
        assert f"{text}: **verified**" in md


@pytest.mark.parametrize("name", sorted(S.DERIVATIONS))
def test_displayed_maths_uses_the_papers_symbols(name):
    d = S.DERIVATIONS[name]()
    for text, expr in _shown(d):
        expr = sp.sympify(expr)
        shown = latex(expr, d.names)
        leaks = [p for p in LEAKS if p in shown]
        assert not leaks, f"{name}, step {text!r}: {leaks} in {shown}"
        mapped = {s.name for s in {*LATEX, *d.names}} | set(NAME_LATEX)
        raw = sorted(s.name for s in expr.free_symbols if not SIMPLE.match(s.name) and s.name not in mapped)
        assert not raw, f"{name}, step {text!r}: symbols {raw} have no LaTeX (add them to NAME_LATEX or d.names)"
        funcs = sorted({f.func.__name__ for f in expr.atoms(AppliedUndef)} - {n for n in GREEK} )
        bad = [f for f in funcs if not SIMPLE.match(f)]
        assert not bad, f"{name}, step {text!r}: functions {bad} render as \\operatorname; use a one-letter name"


def test_a_broken_identity_is_shown_as_failing_and_reported():
    d = dataclasses.replace(S.merge_gaussians(), identities=list(S.merge_gaussians().identities))
    text, lhs, rhs = d.identities[-1]
    d.identities[-1] = (text, lhs, rhs + 1)
    assert d.verify() == [f"{text}: {lhs} != {rhs + 1}"]
    assert f"{text}: **FAILS**" in d._repr_markdown_()
    assert S.merge_gaussians().verify() == []  # the cached original is untouched


def test_verdicts_are_recomputed_when_an_identity_is_replaced():
    d = S.Derivation("t")
    x = sp.Symbol("x")
    d.identity("x = x", x, x)
    assert d.verify() == []
    d.identities[0] = ("x = x + 1", x, x + 1)
    assert d.verify() == ["x = x + 1: x != x + 1"]


def test_latex_maps_code_names_to_the_papers_symbols():
    eps_hat, ab = sp.symbols("eps_hat alpha_bar")
    assert latex(eps_hat * sp.sqrt(1 - ab)) == r"\hat\epsilon \sqrt{1 - \bar\alpha}"
