"""EDM's preconditioning, derived: c_in from unit input variance, c_skip and c_out by minimising
the effective target's variance, and the loss weight.  [EDM App. B.6, Tab. 1]

PAIRS holds diffedu.precond's edm_scalings and edm_loss_weight against the derivation; WAIVERS
names its other public functions.  Imports: functools, numpy, sympy, diffedu.precond, ._core, .pairing.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from .. import precond as PC
from ._core import Derivation
from .pairing import Pair, log_uniform

sigma_n, sigma_data, c_skip, c_out, c_in = sp.symbols("sigma_n sigma_data c_skip c_out c_in", positive=True)


def _edm_preconditioning(var_y=sigma_data**2) -> Derivation:
    """The builder; var_y is Var y (a wrong input, e.g. sigma_data instead of sigma_data^2, fails EDM Tab. 1)."""
    V_x, V_F, lam = sp.symbols("V_x V_F lambda", positive=True)
    d = Derivation("EDM preconditioning from first principles  [EDM App. B.6]",
                   names={V_x: r"\operatorname{Var}[x]", V_F: r"\operatorname{Var}[F_{\mathrm{target}}]"})
    var_x = var_y + sigma_n**2
    d.step("x = y + n with independent y (variance sigma_data^2) and n ~ N(0, sigma^2)", sp.Eq(V_x, var_x))
    c_in_sol = [s for s in sp.solve(sp.Eq(c_in**2 * var_x, 1), c_in) if s.is_positive][0]
    d.step("c_in: require Var(c_in x) = 1", sp.Eq(c_in, c_in_sol))
    # D = c_skip (y + n) + c_out F  =>  F's training target is (y - c_skip (y + n)) / c_out
    target_var = ((1 - c_skip) ** 2 * var_y + c_skip**2 * sigma_n**2) / c_out**2
    d.step("The network's effective target F_target = (y - c_skip (y + n)) / c_out has variance", sp.Eq(V_F, target_var))
    c_out_sq = sp.solve(sp.Eq(target_var, 1), c_out**2)[0]
    d.step("c_out^2: require unit target variance", sp.Eq(c_out**2, c_out_sq))
    c_skip_sol = sp.solve(sp.diff(c_out_sq, c_skip), c_skip)[0]
    d.step("c_skip: minimise c_out^2 (the error amplification) by setting its derivative to 0", sp.Eq(c_skip, c_skip_sol))
    d.identity("it is a minimum: the second derivative is positive",
               sp.diff(c_out_sq, c_skip, 2).is_positive, True)
    c_out_sol = sp.sqrt(sp.factor(c_out_sq.subs(c_skip, c_skip_sol)))
    d.step("c_out at that c_skip", sp.Eq(c_out, c_out_sol))
    weight = sp.factor(1 / c_out_sol**2)
    d.step("lambda(sigma) = 1 / c_out^2 makes the loss weight lambda c_out^2 = 1 at every sigma", sp.Eq(lam, weight))
    table = {c_in: 1 / sp.sqrt(sigma_n**2 + sigma_data**2), c_skip: sigma_data**2 / (sigma_n**2 + sigma_data**2),
             c_out: sigma_n * sigma_data / sp.sqrt(sigma_n**2 + sigma_data**2),
             lam: (sigma_n**2 + sigma_data**2) / (sigma_n * sigma_data) ** 2}  # [EDM Tab. 1], as printed
    for sym, derived in ((c_in, c_in_sol), (c_skip, c_skip_sol), (c_out, c_out_sol), (lam, weight)):
        d.identity(f"{sym} is EDM Table 1's", derived, table[sym])
    d.conclude("The scalings that give unit-variance input and target with the least error amplification  [EDM Tab. 1]",
               sp.Tuple(*(sp.Eq(sym, v) for sym, v in ((c_in, c_in_sol), (c_skip, c_skip_sol), (c_out, c_out_sol),
                                                       (lam, weight)))))
    d.result.update(c_in=c_in_sol, c_skip=c_skip_sol, c_out=c_out_sol, weight=weight)
    return d


@functools.lru_cache(maxsize=None)
def edm_preconditioning() -> Derivation:
    """Derive c_in, c_skip, c_out, lambda for D = c_skip x + c_out F(c_in x) with x = y + n, Var y = sigma_data^2.

    result: c_in, c_skip, c_out, weight (in sigma_n, sigma_data).  [EDM App. B.6, Tab. 1]
    """
    return _edm_preconditioning()


def points(n: int, seed: int) -> dict:
    """Noise levels across EDM's range: sigma in [0.002, 80] (log-uniform), sigma_data in [0.1, 2]."""
    rng = np.random.default_rng(seed)
    return {sigma_n: log_uniform(rng, 0.002, 80, n), sigma_data: rng.uniform(0.1, 2, n)}


PAIRS = (
    Pair(PC.edm_scalings, lambda: tuple(edm_preconditioning().result[k] for k in ("c_skip", "c_out", "c_in")),
         (sigma_n, sigma_data), ("c_skip", "c_out", "c_in"), "[EDM App. B.6]", points),
    Pair(PC.edm_loss_weight, lambda: edm_preconditioning().result["weight"], (sigma_n, sigma_data),
         ref="[EDM Tab. 1]", points=points),
)

WAIVERS = {
    "diffedu.precond.c_noise": "EDM's empirical noise label ln(sigma)/4 [EDM Tab. 1]: a choice, not a consequence",
    "diffedu.precond.edm_loss": "a Monte Carlo objective over a network, not a closed form",
    "diffedu.precond.denoiser_from_eps": "adapter: x_t = x sqrt(alpha_bar), D = x - sigma eps; tested in tests/test_edm.py",
    "diffedu.precond.eps_from_denoiser": "adapter, the inverse of denoiser_from_eps; tested in tests/test_mixture.py",
}
