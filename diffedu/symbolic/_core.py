"""Canonical symbols, the Derivation record and the zero test shared by `diffedu.symbolic`.

Symbol names are the code's names (`alpha_bar_t`, `alpha_bar_prev`, ...) so a learner can type
them; `LATEX` maps them to the papers' notation for display.  `sigma` is the standard deviation
of one reverse step (DDPM's sigma_t, DDIM's sigma_t(eta)), not the VE noise level `sched.sigma`.
Imports: numpy, sympy (IPython, optional, inside `Derivation.show`).
"""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import sympy as sp

_pos = dict(positive=True)
alpha_bar_t = sp.Symbol("alpha_bar_t", **_pos)
alpha_bar_prev = sp.Symbol("alpha_bar_prev", **_pos)  # alpha_bar_{t-1}, or of any earlier time
alpha_t = sp.Symbol("alpha_t", **_pos)
beta_t = sp.Symbol("beta_t", **_pos)
sigma = sp.Symbol("sigma", nonnegative=True)
eta = sp.Symbol("eta", nonnegative=True)
x_t, x_0, x_prev, eps, eps_theta, z, v, score = sp.symbols("x_t x_0 x_prev eps eps_theta z v score", real=True)

SYMBOLS = dict(alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_prev, alpha_t=alpha_t, beta_t=beta_t,
               sigma=sigma, eta=eta, x_t=x_t, x_0=x_0, x_prev=x_prev, eps=eps, eps_theta=eps_theta, z=z,
               v=v, score=score)

LATEX = {alpha_bar_t: r"\bar\alpha_t", alpha_bar_prev: r"\bar\alpha_{t-1}", alpha_t: r"\alpha_t",
         beta_t: r"\beta_t", sigma: r"\sigma_t", eta: r"\eta", x_t: "x_t", x_0: "x_0", x_prev: "x_{t-1}",
         eps: r"\epsilon", eps_theta: r"\epsilon_\theta", z: "z", v: "v", score: r"\nabla\log q(x_t)"}


def symbols() -> types.SimpleNamespace:
    """The canonical sympy symbols learners use with `check` (alpha_bar_prev = alpha_bar_{t-1})."""
    return types.SimpleNamespace(**SYMBOLS)


def canonical(expr) -> sp.Expr:
    """Rename look-alike symbols to the canonical ones, then beta_t -> 1 - alpha_t and
    alpha_t -> alpha_bar_t / alpha_bar_prev, so every expression is in alpha_bar_t, alpha_bar_prev."""
    expr = sp.sympify(expr)
    if isinstance(expr, sp.Equality):
        expr = expr.rhs
    rename = {s: SYMBOLS[s.name] for s in expr.free_symbols if s.name in SYMBOLS and s is not SYMBOLS[s.name]}
    expr = expr.xreplace(rename)
    return expr.subs(beta_t, 1 - alpha_t).subs(alpha_t, alpha_bar_t / alpha_bar_prev)


# 0 < alpha_bar_t < alpha_bar_prev < 1 and 0 < sigma^2 < 1 - alpha_bar_prev, written with positive
# gaps p, q, r so that every radicand factors into positive symbols and sqrt splits.
_p, _q, _r = sp.symbols("p q r", positive=True)
STRUCTURE = {alpha_bar_prev: 1 / (1 + _p), alpha_bar_t: 1 / (1 + _p + _q),
             sigma: sp.sqrt(_p * _r / ((1 + _p) * (1 + _r)))}


def _factor_radicands(expr):
    """sqrt(1 - 1/(1+p)) -> sqrt(p)/sqrt(1+p), log(1 - 1/(1+p)) -> log(p) - log(1+p): factor every
    radicand and log argument into positive factors so that sympy splits them."""
    expr = expr.replace(lambda e: e.is_Pow and e.exp.is_Rational and not e.exp.is_Integer,
                        lambda e: sp.Pow(sp.factor(sp.cancel(e.base)), e.exp))
    return expr.replace(lambda e: isinstance(e, sp.log),
                        lambda e: sp.expand_log(sp.log(sp.factor(sp.cancel(e.args[0]))), force=True))


_REDUCERS = (("cancel", sp.cancel), ("radsimp+expand", lambda e: sp.expand(sp.radsimp(e))),
             ("powsimp+sqrtdenest", lambda e: sp.cancel(sp.sqrtdenest(sp.powsimp(e)))),
             ("factor", sp.factor))


def is_zero(expr) -> bool:
    """True when expr (canonicalised) reduces to 0 for 0 < alpha_bar_t < alpha_bar_prev < 1.

    Cheap reducers only, in order: cancel (rational functions), radsimp + expand (radicals in
    denominators), powsimp + sqrtdenest, factor.  False means "not shown", not "nonzero".
    """
    e = _factor_radicands(canonical(expr).subs(STRUCTURE))
    for _, reduce in _REDUCERS:
        e = reduce(e)
        if e == 0:
            return True
    return False


def tidy(expr):
    """sqrt((a - 1)/(b - 1)) -> sqrt(1 - a)/sqrt(1 - b): factor each radicand, flip the sign of every
    factor that is negative at a valid point (0 < alpha_bar_t < alpha_bar_prev < 1, see sample_points),
    and split the root.  Equal to expr wherever those factors keep their sign."""
    point = {s: float(v[0]) for s, v in sample_points(expr.free_symbols, 1, seed=7).items()}

    def split(e):
        sign, parts = 1, []
        for f in sp.Mul.make_args(sp.factor(e.base)):
            b, ex = f.as_base_exp()
            if ex.is_integer and float(b.subs(point)) < 0:
                b, sign = -b, sign * (-1) ** ex
            parts.append((b, ex))
        return e if sign != 1 else sp.Mul(*[sp.Pow(b, ex * e.exp) for b, ex in parts])

    return expr.replace(lambda e: e.is_Pow and e.exp.is_Rational and not e.exp.is_Integer, split)


def sample_points(syms, n: int, seed: int = 0) -> dict:
    """n random float64 values for each symbol: 0.05 < ab_prev < 0.95, ab_t = ab_prev * U(0.05, 0.95),
    sigma = U(0.05, 0.9) sqrt(1 - ab_prev), eta ~ U(0, 1), other positive symbols ~ U(0.1, 2), the rest ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    abp = rng.uniform(0.05, 0.95, n)
    abt = abp * rng.uniform(0.05, 0.95, n)
    base = {alpha_bar_prev: abp, alpha_bar_t: abt, alpha_t: abt / abp, beta_t: 1 - abt / abp,
            sigma: rng.uniform(0.05, 0.9, n) * np.sqrt(1 - abp), eta: rng.uniform(0, 1, n)}
    out = {}
    for s in sorted(syms, key=str):
        if s in base:
            out[s] = base[s]
        elif s.is_positive:
            out[s] = rng.uniform(0.1, 2.0, n)
        else:
            out[s] = rng.standard_normal(n)
    return out


def evaluate(expr, point: dict) -> np.ndarray:
    """expr at the points (dict symbol -> array) through sympy.lambdify with numpy, as float64."""
    syms = sorted(point, key=str)
    f = sp.lambdify(syms, expr, "numpy")
    n = len(next(iter(point.values())))
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(f(*[point[s] for s in syms]), dtype=np.float64), (n,))


def rel_err(a, b) -> np.ndarray:
    """|a - b| / max(|a|, |b|), 0 where both are 0, inf where either is not finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(all="ignore"):
        err = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
    err = np.where((a == b), 0.0, err)
    return np.where(np.isfinite(a) & np.isfinite(b), err, np.inf)


# LaTeX for symbols by *name*, so a symbol made anywhere (sp.Symbol("eps_hat")) renders as the papers
# write it.  A derivation's own `names` override these; `LATEX` (by symbol) covers the canonical ones.
NAME_LATEX = {
    "alpha_bar": r"\bar\alpha", "alpha_bar_t": r"\bar\alpha_t", "alpha_bar_prev": r"\bar\alpha_{t-1}",
    "alpha_bar_s": r"\bar\alpha_s", "alpha_bar_next": r"\bar\alpha_{\mathrm{next}}",
    "eps": r"\epsilon", "eps_hat": r"\hat\epsilon", "e_hat": r"\hat\epsilon", "eps_theta": r"\epsilon_\theta",
    "x0_hat": r"\hat x_0", "x_prev": r"x_{\mathrm{prev}}", "x_next": r"x_{\mathrm{next}}",
    "y_next": r"y_{\mathrm{next}}", "y_prev": r"y_{\mathrm{prev}}", "D_hat": r"\hat D",
    "sigma_next": r"\sigma_{\mathrm{next}}", "sigma_data": r"\sigma_{\mathrm{data}}", "sigma_tilde": r"\tilde\sigma",
    "sigma_n": r"\sigma", "sigma_p": r"\sigma", "sigma_level": r"\sigma", "beta_tilde": r"\tilde\beta_t",
    "beta_tilde_t": r"\tilde\beta_t", "mu_tilde": r"\tilde\mu_t", "mu_tilde_t": r"\tilde\mu_t",
    "mu_theta": r"\mu_\theta", "beta_min": r"\beta_{\min}", "beta_max": r"\beta_{\max}",
    "eta_max": r"\eta_{\max}", "c_skip": r"c_{\mathrm{skip}}", "c_out": r"c_{\mathrm{out}}", "c_in": r"c_{\mathrm{in}}",
    "c_noise": r"c_{\mathrm{noise}}", "Var": r"\operatorname{Var}", "E": r"\mathbb{E}", "KL": r"\mathrm{KL}",
    "L_simple": r"L_{\mathrm{simple}}", "SNR": r"\mathrm{SNR}", "SNR_t": r"\mathrm{SNR}_t", "score": r"\nabla\log q(x_t)",
    "V_prev": r"V_{t-1}", "V_t": r"V_t", "delta": r"\delta", "lambda": r"\lambda", "p_data": r"p_{\mathrm{data}}",
}


def latex(expr, names: dict | None = None) -> str:
    """LaTeX with the papers' symbols: NAME_LATEX by symbol name, then LATEX, then `names` (by symbol)."""
    expr = sp.sympify(expr)
    by_name = {s: NAME_LATEX[s.name] for s in getattr(expr, "free_symbols", ()) if s.name in NAME_LATEX}
    return sp.latex(expr, symbol_names={**by_name, **LATEX, **(names or {})})


def _boxed(expr, names) -> str:
    """\\boxed{...} around an equation; a tuple of results is boxed one by one."""
    if isinstance(expr, (sp.Tuple, tuple, list)):
        return r",\quad ".join(_boxed(e, names) for e in expr)
    return r"\boxed{" + latex(expr, names) + "}"


@dataclasses.dataclass
class Derivation:
    """A derivation: the (explanation, expression) steps, checked identities, and its conclusion.

    `identities` holds (explanation, lhs, rhs); `verify()` lists those that fail: sympy
    expressions are compared with `is_zero(lhs - rhs)`, anything else (sets, booleans) with ==.
    `conclusions` holds (sentence, expression): what the derivation proves, shown boxed at the end.
    """
    title: str
    steps: list = dataclasses.field(default_factory=list)
    result: dict = dataclasses.field(default_factory=dict)
    identities: list = dataclasses.field(default_factory=list)
    names: dict = dataclasses.field(default_factory=dict)
    conclusions: list = dataclasses.field(default_factory=list)
    _verdicts: tuple = dataclasses.field(default=(), repr=False, compare=False)

    def step(self, text: str, expr) -> None:
        self.steps.append((text, expr))

    def identity(self, text: str, lhs, rhs) -> None:
        self.identities.append((text, lhs, rhs))

    def conclude(self, text: str, expr) -> None:
        """Record what the derivation proves: a sentence and the displayed result (an Eq, or a tuple of them)."""
        self.conclusions.append((text, expr))

    def checks(self) -> list[tuple[str, bool]]:
        """(explanation, holds) for each identity, computed once per set of identities."""
        key = tuple(map(id, self.identities))
        if not self._verdicts or self._verdicts[0] != key:
            verdicts = []
            for text, lhs, rhs in self.identities:
                if isinstance(lhs, sp.Expr) and isinstance(rhs, sp.Expr):
                    verdicts.append((text, is_zero(lhs - rhs)))
                else:
                    verdicts.append((text, bool(lhs == rhs)))
            self._verdicts = (key, verdicts)
        return list(self._verdicts[1])

    def verify(self) -> list[str]:
        """Explanations of the identities that do not hold (empty when all hold)."""
        return [f"{text}: {lhs} != {rhs}" for (text, ok), (_, lhs, rhs) in zip(self.checks(), self.identities)
                if not ok]

    def _verdict_lines(self) -> list[str]:
        return [f"- {'✓' if ok else '✗'} {text}: **{'verified' if ok else 'FAILS'}**" for text, ok in self.checks()]

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.title}**", ""]
        for i, (text, expr) in enumerate(self.steps, 1):
            lines += [f"{i}. {text}", "", f"$$ {latex(expr, self.names)} $$", ""]
        if self.identities:
            lines += ["**Checked**", "", *self._verdict_lines(), ""]
        for text, expr in self.conclusions:
            lines += [f"**Conclusion.** {text}", "", f"$$ {_boxed(expr, self.names)} $$", ""]
        return "\n".join(lines)

    def show(self) -> None:
        """Display the steps (one Math block each), every checked identity with its verdict, and the
        conclusion, boxed."""
        from IPython.display import Markdown, Math, display

        display(Markdown(f"**{self.title}**"))
        for i, (text, expr) in enumerate(self.steps, 1):
            display(Markdown(f"{i}. {text}"))
            display(Math(latex(expr, self.names)))
        if self.identities:
            display(Markdown("\n".join(["**Checked**", "", *self._verdict_lines()])))
        for text, expr in self.conclusions:
            display(Markdown(f"**Conclusion.** {text}"))
            display(Math(_boxed(expr, self.names)))

    def __str__(self) -> str:
        lines = [self.title] + [f"  {t}: {e}" for t, e in self.steps]
        lines += [f"  [{'verified' if ok else 'FAILS'}] {t}" for t, ok in self.checks()]
        return "\n".join(lines + [f"  => {t}: {e}" for t, e in self.conclusions])
