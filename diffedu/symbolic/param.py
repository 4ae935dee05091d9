"""Derivation 4: eps, x_0, v and the score in terms of one another, by solving the defining
equations.  [DDPM eq. 4, Salimans & Ho §4, Song eq. 9]

Here alpha_bar_t plays the role of `alpha_bar` in diffedu.param (any single time).  PAIRS holds
every conversion of diffedu.param against its solution here.
Imports: sympy, diffedu.param, ._core, .pairing, .posterior.
"""
from __future__ import annotations

import functools

import sympy as sp

from .. import param as Q
from ._core import SYMBOLS, Derivation, alpha_bar_t, eps, score, v, x_0, x_t
from .pairing import Pair
from .posterior import log_normal


def _display(expr):
    """One fraction over the common root, its numerator collected in x_t, x_0, eps, v and the score:
    (x_t - sqrt(1 - ab) eps) / sqrt(ab) rather than a sum of two fractions (display only)."""
    num, den = sp.fraction(sp.together(expr))
    num = sp.collect(sp.expand(num), [x_t, x_0, eps, v, score])
    if den == 1 or not num.is_Add:
        return expr
    return sp.Mul(num, sp.Pow(den, -1), evaluate=False)


@functools.lru_cache(maxsize=None)
def parameterisations() -> Derivation:
    """Solve x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps, v = sqrt(ab) eps - sqrt(1 - ab) x_0 and
    score = -eps / sqrt(1 - ab) (derived from Tweedie) for each quantity in terms of another."""
    ab = alpha_bar_t
    d = Derivation("eps <-> x_0 <-> v <-> score  [DDPM eq. 4, Salimans & Ho §4, Song eq. 9]")
    forward = sp.Eq(x_t, sp.sqrt(ab) * x_0 + sp.sqrt(1 - ab) * eps)
    d.step("Forward process  [DDPM eq. 4]", forward)
    velocity = sp.Eq(v, sp.sqrt(ab) * eps - sp.sqrt(1 - ab) * x_0)
    d.step("Velocity  [Salimans & Ho §4]", velocity)

    # Tweedie: grad log q(x_t) = E[grad_{x_t} log q(x_t | x_0) | x_t]; the conditional score is linear
    # in eps, so the marginal score is the same expression with eps replaced by E[eps | x_t].
    cond_score = sp.diff(log_normal(x_t, sp.sqrt(ab) * x_0, 1 - ab), x_t)
    s_c = sp.Symbol("s_c")
    d.names[s_c] = r"\nabla\log q(x_t \mid x_0)"
    d.step(r"Conditional score $\nabla_{x_t}\log q(x_t \mid x_0)$ of the Gaussian [DDPM eq. 4]",
           sp.Eq(s_c, _display(cond_score)))
    cond_score_eps = sp.simplify(cond_score.subs(x_t, forward.rhs))
    d.step(r"At $x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$ it is linear in $\epsilon$; "
           r"Tweedie: the score is its mean given $x_t$, so $\epsilon$ becomes $\mathbb{E}[\epsilon \mid x_t]$, which "
           "is what an eps-network predicts  [Song eq. 9]", sp.Eq(score, cond_score_eps))
    tweedie = sp.Eq(score, cond_score_eps)

    def solve(eqs, unknowns, target):
        return sp.solve(eqs, unknowns, dict=True)[0][target]

    r = dict(
        x0_from_eps=solve([forward], [x_0], x_0),
        eps_from_x0=solve([forward], [eps], eps),
        v_from_eps=solve([forward, velocity], [v, x_0], v),
        x0_from_v=sp.expand(solve([forward, velocity], [x_0, eps], x_0)),
        eps_from_v=sp.expand(solve([forward, velocity], [x_0, eps], eps)),
        score_from_eps=solve([tweedie], [score], score),
        eps_from_score=solve([tweedie], [eps], eps),
        x0_from_score=solve([forward, tweedie], [x_0, eps], x_0),
    )
    shown = dict(x0="$x_0$", eps=r"$\epsilon$", v="$v$", score=r"the score $\nabla\log q(x_t)$")
    for name, expr in r.items():
        target, source = name.split("_from_")
        d.step(f"Solve for {shown[target]} given {shown[source]}",
               sp.Eq(SYMBOLS[target.replace("x0", "x_0")], _display(expr)))
    d.identity("Round trip eps -> x_0 -> eps", r["eps_from_x0"].subs(x_0, r["x0_from_eps"]), eps)
    d.identity("Round trip v -> (x_0, eps) -> v",
               r["v_from_eps"].subs(eps, r["eps_from_v"]), v)
    d.identity("x_0 from the score equals x_0 from eps at eps = eps_from_score",
               r["x0_from_eps"].subs(eps, r["eps_from_score"]), r["x0_from_score"])
    d.identity("v^2 + x_t^2 = x_0^2 + eps^2 (a rotation by the angle with cos = sqrt(ab))",
               (velocity.rhs**2 + forward.rhs**2).expand(), (x_0**2 + eps**2))
    d.conclude(r"Given $x_t$, each of $x_0$, $v$ and the score is an affine function of $\epsilon$ (and back): an "
               r"eps-network's $\hat\epsilon$ in place of $\epsilon$ gives all of them",
               sp.Tuple(*(sp.Eq(SYMBOLS[t], _display(r[k])) for t, k in
                          (("x_0", "x0_from_eps"), ("v", "v_from_eps"), ("score", "score_from_eps"),
                           ("x_0", "x0_from_score")))))
    d.result.update(r, v=r["v_from_eps"], score=r["score_from_eps"], tweedie_score=cond_score_eps)
    return d


def _par(key):
    return parameterisations().result[key]


_ab = alpha_bar_t

PAIRS = (
    Pair(Q.x0_from_eps, lambda: _par("x0_from_eps"), (x_t, eps, _ab), ref="[DDPM eq. 15]"),
    Pair(Q.eps_from_x0, lambda: _par("eps_from_x0"), (x_t, x_0, _ab), ref="[DDPM eq. 4]"),
    Pair(Q.v_from_eps, lambda: _par("v_from_eps"), (x_t, eps, _ab), ref="[Salimans & Ho §4]"),
    Pair(Q.x0_from_v, lambda: _par("x0_from_v"), (x_t, v, _ab), ref="[Salimans & Ho §4]"),
    Pair(Q.eps_from_v, lambda: _par("eps_from_v"), (x_t, v, _ab), ref="[Salimans & Ho §4]"),
    Pair(Q.score_from_eps, lambda: _par("score_from_eps"), (eps, _ab), ref="[Song eq. 9]"),
    Pair(Q.eps_from_score, lambda: _par("eps_from_score"), (score, _ab), ref="[Song eq. 9]"),
    Pair(Q.x0_from_score, lambda: _par("x0_from_score"), (x_t, score, _ab), ref="[Tweedie]"),
)

WAIVERS: dict[str, str] = {}
