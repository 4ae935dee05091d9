"""One registry pairing each public numeric coefficient function with its derivation.

To add a pair: append `Pair(numeric=<function>, derived=lambda: <sympy expr or tuple>, args=(<sympy
exprs the function is called with>), labels=(...), ref="[PAPER eq. N]")` to PAIRS, and the module
name to NUMERIC_MODULES if it is new.  A public function of those modules that is not a
coefficient function goes on WAIVERS with the reason.  `verify(pair)` is what the tests run.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable

import numpy as np
import sympy as sp
import torch

from .. import forward as F
from .. import param as Q
from .. import posterior as P
from ._core import alpha_bar_prev, alpha_bar_t, canonical, eps, eta, evaluate, is_zero, rel_err, sample_points, sigma
from ._core import score, v, x_0, x_t
from .ddim import ddim_coefficients
from .forward import merge_gaussians
from .param import parameterisations
from .posterior import ddpm_posterior, vlb_term


@dataclasses.dataclass(frozen=True)
class Pair:
    """numeric(*args) must equal derived() (element-wise for tuples) for 0 < ab_t < ab_prev < 1."""
    numeric: Callable
    derived: Callable[[], Any]
    args: tuple
    labels: tuple = ()
    ref: str = ""
    points: Callable[[int, int], dict] | None = None  # (n, seed) -> {symbol: array}; default sample_points
    rtol: float | None = None  # a looser float tolerance where the reference itself loses digits (say why)

    @property
    def name(self) -> str:
        return f"{self.numeric.__module__}.{self.numeric.__qualname__}"


NUMERIC_MODULES = ["diffedu.forward", "diffedu.posterior", "diffedu.param", "diffedu.losses"]

WAIVERS = {
    "diffedu.forward.q_mean_var": "takes a Schedule and x0; its arithmetic is q_mean_var_coefs (paired)",
    "diffedu.forward.q_sample": "draws x_t from q_mean_var; no coefficient of its own",
    "diffedu.losses.l_simple": "a Monte Carlo objective over a network, not a closed form",
    "diffedu.losses.vlb_weights": "vlb_weight (paired) evaluated along a Schedule",
}

ab, abp = alpha_bar_t, alpha_bar_prev


def _post(key):
    return ddpm_posterior().result[key]


def _ddim(key):
    return ddim_coefficients().result[key]


def _par(key):
    return parameterisations().result[key]


PAIRS = [
    Pair(F.q_mean_var_coefs, lambda: (merge_gaussians().result["mean_coef"], merge_gaussians().result["variance"]),
         (ab,), ("mean_coef", "variance"), "[DDPM eq. 4]"),
    Pair(P.posterior_mean_coefs, lambda: (_post("coef_x0"), _post("coef_xt")), (ab, abp), ("coef_x0", "coef_xt"),
         "[DDPM eq. 7]"),
    Pair(P.posterior_variance, lambda: _post("beta_tilde"), (ab, abp), ref="[DDPM eq. 7]"),
    Pair(P.posterior_mean_eps_coefs, lambda: (_post("eps_coef_xt"), _post("eps_coef_eps")), (ab, abp),
         ("coef_xt", "coef_eps"), "[DDPM eq. 11]"),
    Pair(P.vlb_weight, lambda: vlb_term().result["weight"], (ab, abp, sigma**2), ref="[DDPM eq. 12]"),
    Pair(P.ddim_sigma, lambda: _ddim("sigma_eta"), (ab, abp, eta), ref="[DDIM eq. 16]"),
    Pair(P.ddim_mean_coefs, lambda: (_ddim("k"), _ddim("m")), (ab, abp, sigma), ("k", "m"), "[DDIM eq. 7]"),
    Pair(P.ddim_step_coefs, lambda: (_ddim("coef_x0"), _ddim("coef_eps")), (ab, abp, sigma), ("coef_x0", "coef_eps"),
         "[DDIM eq. 12]"),
    Pair(Q.x0_from_eps, lambda: _par("x0_from_eps"), (x_t, eps, ab), ref="[DDPM eq. 15]"),
    Pair(Q.eps_from_x0, lambda: _par("eps_from_x0"), (x_t, x_0, ab), ref="[DDPM eq. 4]"),
    Pair(Q.v_from_eps, lambda: _par("v_from_eps"), (x_t, eps, ab), ref="[Salimans & Ho §4]"),
    Pair(Q.x0_from_v, lambda: _par("x0_from_v"), (x_t, v, ab), ref="[Salimans & Ho §4]"),
    Pair(Q.eps_from_v, lambda: _par("eps_from_v"), (x_t, v, ab), ref="[Salimans & Ho §4]"),
    Pair(Q.score_from_eps, lambda: _par("score_from_eps"), (eps, ab), ref="[Song eq. 9]"),
    Pair(Q.eps_from_score, lambda: _par("eps_from_score"), (score, ab), ref="[Song eq. 9]"),
    Pair(Q.x0_from_score, lambda: _par("x0_from_score"), (x_t, score, ab), ref="[Tweedie]"),
]


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def verify(pair: Pair, n: int = 200, rtol: float = 1e-12, seed: int = 0) -> list[str]:
    """Problems with a pair (empty when it holds): (a) derived - numeric(symbols) must reduce to 0;
    (b) lambdify(derived) must match numeric on float64 numpy arrays and torch tensors (relative rtol)."""
    rtol = pair.rtol or rtol
    derived = [canonical(d) for d in _tuple(pair.derived())]
    symbolic = _tuple(pair.numeric(*pair.args))
    labels = pair.labels or tuple(f"[{i}]" for i in range(len(derived)))
    if len(derived) != len(symbolic):
        return [f"{pair.name}: derived has {len(derived)} outputs, numeric {len(symbolic)}"]
    syms = set().union(*(sp_expr.free_symbols for sp_expr in (*derived, *pair.args)))
    pts = pair.points(n, seed) if pair.points else sample_points(syms, n, seed)
    arrays = [evaluate(a, pts) for a in pair.args]
    outs = {"numpy": _tuple(pair.numeric(*arrays)),
            "torch": _tuple(pair.numeric(*[torch.from_numpy(a.copy()) for a in arrays]))}
    problems = []
    for i, (d, s) in enumerate(zip(derived, symbolic)):
        where = f"{pair.name} {labels[i]} {pair.ref}".rstrip()
        if not is_zero(d - s):
            problems.append(f"{where}: derived - numeric(symbols) does not reduce to 0\n"
                            f"    derived: {d}\n    numeric: {s}")
        ref = evaluate(d, pts)
        for backend, out in outs.items():
            got = np.broadcast_to(np.asarray(out[i], dtype=np.float64), ref.shape)
            err = rel_err(ref, got)
            j = int(np.argmax(err))
            if err[j] > rtol:
                at = ", ".join(f"{s_}={vals[j]:.6g}" for s_, vals in pts.items())
                problems.append(f"{where}: float64 ({backend}) relative error {err[j]:.3g} > {rtol:g} at {at}: "
                                f"derived {ref[j]:.17g}, numeric {got[j]:.17g} ({int((err > rtol).sum())}/{n} points)")
    return problems


def public_functions(module_name: str) -> list[str]:
    """Qualified names of the public functions defined in a module."""
    mod = importlib.import_module(module_name)
    return [f"{module_name}.{name}" for name, fn in inspect.getmembers(mod, inspect.isfunction)
            if fn.__module__ == module_name and not name.startswith("_")]


def missing_pairs() -> list[str]:
    """Public functions of NUMERIC_MODULES with neither a pair nor a waiver."""
    paired = {p.name for p in PAIRS}
    return [f for m in NUMERIC_MODULES for f in public_functions(m) if f not in paired and f not in WAIVERS]


# ---- EDM and the unified view: preconditioning, PF-ODE steps, estimate-then-correct ------------------
from .. import precond as PC  # noqa: E402
from ..samplers import edm as SE  # noqa: E402
from ..samplers import estimate_correct as EC  # noqa: E402
from . import precond as sym_precond  # noqa: E402
from . import processes as sym_proc  # noqa: E402
from . import unified as sym_unified  # noqa: E402

NUMERIC_MODULES += ["diffedu.precond", "diffedu.samplers.edm", "diffedu.samplers.estimate_correct"]

WAIVERS.update({
    "diffedu.precond.c_noise": "EDM's empirical noise label ln(sigma)/4 [EDM Tab. 1]: a choice, not a consequence",
    "diffedu.precond.edm_loss": "a Monte Carlo objective over a network, not a closed form",
    "diffedu.precond.denoiser_from_eps": "adapter: x_t = x sqrt(alpha_bar), D = x - sigma eps; tested in tests/test_edm.py",
    "diffedu.precond.eps_from_denoiser": "adapter, the inverse of denoiser_from_eps; tested in tests/test_mixture.py",
    "diffedu.samplers.edm.karras_sigmas": "a chosen grid [EDM eq. 5]; tested against diffusers in tests/peers",
    "diffedu.samplers.edm.check_sigmas": "input validation",
    "diffedu.samplers.edm.churn_gamma": "EDM's heuristic gamma_i [EDM Alg. 2 l. 4], a choice, not derived",
    "diffedu.samplers.edm.sample_edm": "the loop over euler_step (written out, tested equal bit for bit) / heun_step (paired)",
    "diffedu.samplers.edm.sample_pf_ode": "the loop over Process.ode_coefs (paired in METHOD_PAIRS)",
    "diffedu.samplers.estimate_correct.sample_estimate_correct": "the loop over partial_noise (paired) and F",
    "diffedu.samplers.estimate_correct.sigma_tilde_for_eta": "ddim_sigma and sigma_tilde_from_ddim_sigma (both paired) along a grid",
    "diffedu.samplers.estimate_correct.x0_model_from_eps": "adapter around param.x0_from_eps (paired)",
    "diffedu.samplers.estimate_correct.x0_loss": "a Monte Carlo objective over a network, not a closed form",
})

sig_n, sig_next_n, x_e, D_n, D_next, d_in = sp.symbols("sigma_i sigma_i1 x_e D_i D_i1 d_i",
                                                           real=True)
_sd = sym_precond.sigma_data


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _points_noise(n, seed):
    """Noise levels across EDM's range: sigma in [0.002, 80], sigma_data in [0.1, 2], states ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    s1 = _log_uniform(rng, 0.002, 80, n)
    return {sym_precond.sigma_n: s1, _sd: rng.uniform(0.1, 2, n), sig_n: s1.copy(), sig_next_n: s1 * rng.uniform(0.05, 0.95, n),
            x_e: rng.standard_normal(n), D_n: rng.standard_normal(n), D_next: rng.standard_normal(n),
            d_in: rng.standard_normal(n), sym_proc.x: rng.standard_normal(n)}


def _points_unified(n, seed):
    """0 < alpha_bar_prev < 1, 0 < sigma_tilde < 1, noises ~ N(0, 1)."""
    pts = sample_points({alpha_bar_prev, sigma}, n, seed)
    rng = np.random.default_rng(seed + 1)
    pts.update({sym_unified.sigma_tilde: rng.uniform(0.01, 0.99, n), sym_unified.e: rng.standard_normal(n),
                sym_unified.z: rng.standard_normal(n)})
    return pts


def _ode_step(key_sigma, x_, D_):
    """The EDM-family PF-ODE slope a x - b D at noise level key_sigma (t = sigma when s = 1)."""
    a = sym_proc.pf_ode().result["EDM.a"].subs(sym_proc.t, key_sigma)
    b = sym_proc.pf_ode().result["EDM.b"].subs(sym_proc.t, key_sigma)
    return a * x_ - b * D_


PAIRS += [
    Pair(PC.edm_scalings, lambda: tuple(sym_precond.edm_preconditioning().result[k] for k in ("c_skip", "c_out", "c_in")),
         (sym_precond.sigma_n, _sd), ("c_skip", "c_out", "c_in"), "[EDM App. B.6]", _points_noise),
    Pair(PC.edm_loss_weight, lambda: sym_precond.edm_preconditioning().result["weight"], (sym_precond.sigma_n, _sd),
         ref="[EDM Tab. 1]", points=_points_noise),
    # Euler: x + (sigma_next - sigma) * slope, the slope from the derived PF-ODE of s = 1, sigma = t
    Pair(SE.euler_step, lambda: sym_proc.x + (sig_next_n - sig_n) * _ode_step(sig_n, sym_proc.x, D_n),
         (sym_proc.x, D_n, sig_n, sig_next_n), ref="[EDM Alg. 1 l. 5]", points=_points_noise),
    # Heun: the trapezoid rule with the slope d at the start and the derived slope at the Euler prediction
    Pair(SE.heun_step, lambda: sym_proc.x + (sig_next_n - sig_n) * (d_in + _ode_step(sig_next_n, x_e, D_next)) / 2,
         (sym_proc.x, d_in, x_e, D_next, sig_n, sig_next_n), ref="[EDM Alg. 1 l. 9-11]", points=_points_noise),
    Pair(EC.ddim_sigma_from_sigma_tilde, lambda: sym_unified.corrections_keep_the_marginal().result["sigma"],
         (alpha_bar_prev, sym_unified.sigma_tilde), ref="[UDM eq. 13]", points=_points_unified),
    Pair(EC.sigma_tilde_from_ddim_sigma, lambda: sym_unified.corrections_keep_the_marginal().result["sigma_tilde"],
         (alpha_bar_prev, sigma), ref="[UDM eq. 13]", points=_points_unified),
    Pair(EC.partial_noise, lambda: sym_unified.corrections_keep_the_marginal().result["noise"],
         (sym_unified.e, sym_unified.z, sym_unified.sigma_tilde), ref="[UDM eq. 13]", points=_points_unified),
]


# ---- methods of the Process classes: s, sigma, their derivatives, f, g, the PF-ODE, sigma_inv ----------
def _points_process(name):
    def points(n, seed):
        rng = np.random.default_rng(seed)
        lo, hi = {"VP": (1e-3, 1.0), "VE": (1e-3, 100.0), "EDM": (1e-3, 80.0), "FlowMatching": (0.01, 0.99)}[name]
        bmin = rng.uniform(0.05, 1.0, n)
        return {sym_proc.t: _log_uniform(rng, lo, hi, n) if name != "FlowMatching" else rng.uniform(lo, hi, n),
                sym_proc.beta_min: bmin, sym_proc.beta_max: bmin + rng.uniform(1.0, 30.0, n)}
    return points


def _method_pairs() -> list:
    """Pairs for every method of every Process, called as numeric(t, beta_min, beta_max): the process is
    built with those constants (VP uses them; VE, EDM, FlowMatching have none that enter these methods)."""
    from .. import processes as PR

    t, bmin, bmax = sym_proc.t, sym_proc.beta_min, sym_proc.beta_max
    sigma_sym = sp.Symbol("sigma_level", positive=True)
    make = {"VP": PR.VP, "VE": lambda a, b: PR.VE(), "EDM": lambda a, b: PR.EDM(), "FlowMatching": lambda a, b: PR.FlowMatching()}
    sde, ode = sym_proc.sde_from_s_sigma, sym_proc.pf_ode
    pairs = []
    for name, build in make.items():
        s_fam, sigma_fam = sym_proc.FAMILIES[name]
        pts = _points_process(name)
        derived = {
            "s": lambda s_fam=s_fam: s_fam, "sigma": lambda sigma_fam=sigma_fam: sigma_fam,
            "s_dot": lambda s_fam=s_fam: sp.diff(s_fam, t), "sigma_dot": lambda sigma_fam=sigma_fam: sp.diff(sigma_fam, t),
            "f": lambda name=name: sde().result[f"{name}.f"], "g": lambda name=name: sde().result[f"{name}.g"],
            "ode_coefs": lambda name=name: (ode().result[f"{name}.a"], ode().result[f"{name}.b"]),
        }
        for method, fn in derived.items():
            def numeric(t_, b0, b1, build=build, method=method):
                return getattr(build(b0, b1), method)(t_)
            numeric.__qualname__ = f"{name}.{method}"
            numeric.__module__ = "diffedu.processes"
            # VP's a = sigma'/sigma + s'/s cancels to ~1e-5 at t -> 1: both sides lose ~5 digits there
            rtol = 1e-9 if (name, method) == ("VP", "ode_coefs") else None
            pairs.append(Pair(numeric, fn, (t, bmin, bmax), ref="[EDM Tab. 1, eq. 4, 28, 34]", points=pts, rtol=rtol))

        def inverse(sigma_fam=sigma_fam):
            roots = sp.solve(sp.Eq(sigma_fam, sigma_sym), t)
            at = {sigma_sym: 1.0, bmin: 0.1, bmax: 20.0}
            return next(r for r in roots if float(r.subs(at)) > 0)  # time is positive

        def numeric_inv(s_, b0, b1, build=build):
            return build(b0, b1).sigma_inv(s_)
        numeric_inv.__qualname__ = f"{name}.sigma_inv"
        numeric_inv.__module__ = "diffedu.processes"
        pairs.append(Pair(numeric_inv, inverse, (sigma_sym, bmin, bmax), ref="[solve sigma(t) = sigma for t]",
                          points=_inverse_points(build, sigma_sym, pts)))
    return pairs


def _inverse_points(build, sigma_sym, pts):
    """The process's own t points mapped through sigma(t), so sigma_inv is tested where it is used."""
    def points(n, seed):
        p = pts(n, seed)
        p[sigma_sym] = np.asarray(build(p[sym_proc.beta_min], p[sym_proc.beta_max]).sigma(p[sym_proc.t]), dtype=np.float64) * np.ones(n)
        return p
    return points


METHOD_PAIRS = _method_pairs
