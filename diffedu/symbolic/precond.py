"""EDM's preconditioning, derived: c_in from unit input variance, c_skip and c_out by minimising
the effective target's variance, and the loss weight.  [EDM App. B.6, Tab. 1]"""
from __future__ import annotations

import functools

import sympy as sp

from ._core import Derivation

sigma_n, sigma_data, c_skip, c_out, c_in = sp.symbols("sigma_n sigma_data c_skip c_out c_in", positive=True)


@functools.lru_cache(maxsize=None)
def edm_preconditioning() -> Derivation:
    """Derive c_in, c_skip, c_out, lambda for D = c_skip x + c_out F(c_in x) with x = y + n, Var y = sigma_data^2."""
    d = Derivation("EDM preconditioning from first principles  [EDM App. B.6]")
    d.names = {sigma_n: r"\sigma", sigma_data: r"\sigma_{data}"}
    var_x = sigma_data**2 + sigma_n**2
    d.step("x = y + n with independent y (variance sigma_data^2) and n ~ N(0, sigma^2): Var x", var_x)
    c_in_sol = [s for s in sp.solve(sp.Eq(c_in**2 * var_x, 1), c_in) if s.is_positive][0]
    d.step("c_in: require Var(c_in x) = 1", sp.Eq(c_in, c_in_sol))
    # D = c_skip (y + n) + c_out F  =>  F's training target is (y - c_skip (y + n)) / c_out
    target_var = ((1 - c_skip) ** 2 * sigma_data**2 + c_skip**2 * sigma_n**2) / c_out**2
    d.step("The network's effective target F_target = (y - c_skip (y + n)) / c_out has variance", target_var)
    c_out_sq = sp.solve(sp.Eq(target_var, 1), c_out**2)[0]
    d.step("c_out^2: require unit target variance", sp.Eq(c_out**2, c_out_sq))
    c_skip_sol = sp.solve(sp.diff(c_out_sq, c_skip), c_skip)[0]
    d.step("c_skip: minimise c_out^2 (the error amplification) by setting its derivative to 0", sp.Eq(c_skip, c_skip_sol))
    d.identity("it is a minimum: the second derivative is positive",
               sp.diff(c_out_sq, c_skip, 2).is_positive, True)
    c_out_sol = sp.sqrt(sp.factor(c_out_sq.subs(c_skip, c_skip_sol)))
    d.step("c_out at that c_skip", sp.Eq(c_out, c_out_sol))
    weight = 1 / c_out_sol**2
    d.step("lambda(sigma) = 1 / c_out^2 makes the loss weight lambda c_out^2 = 1 at every sigma", weight)
    d.result.update(c_in=c_in_sol, c_skip=c_skip_sol, c_out=c_out_sol, weight=sp.factor(weight))
    return d
