"""Exercises a learner answers in a notebook, and checkers that say where an answer differs.

An `Exercise` has a kind ("symbolic", "code" or "numeric"), a prompt, `check(answer)` and
`solution()`.  `check` never raises on a wrong answer: it returns a `Feedback`, falsy unless the
answer is right, whose message says *where* the answer differs (the symbol values and the two
values there; the input shapes and the first tensor entry that disagrees; how far off a number is)
and a hint.  `check(None)` is the placeholder every notebook starts with: "not attempted yet".

Imports: dataclasses, inspect, math, textwrap, typing, numpy, sympy, torch, diffedu.symbolic (the
symbolic checker and its LaTeX).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import textwrap
from typing import Any, Callable

import numpy as np
import sympy as sp
import torch

from ..symbolic._core import evaluate, latex
from ..symbolic.check import REFERENCE
from ..symbolic.check import check as check_expression

KINDS = ("symbolic", "code", "numeric")


@dataclasses.dataclass(frozen=True)
class Feedback:
    """What `Exercise.check` says: truthy only when right; `message` says where, `hint` what to look at."""
    exercise: str
    ok: bool
    message: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = f"{'right' if self.ok else 'not yet'}: {self.exercise}: {self.message}"
        return head if self.ok or not self.hint else f"{head}\n  hint: {self.hint}"

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        text = f"{'✅' if self.ok else '❌'} **{self.exercise}**: {self.message}"
        return text if self.ok or not self.hint else f"{text}  \n*Hint:* {self.hint}"


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: `check(answer)` -> Feedback, `solution()` -> the reference answer.

    id        "NN.name", NN the notebook's number
    kind      "symbolic" (a sympy expression), "code" (a function), "numeric" (a number)
    prompt    what to do, as the notebook states it
    compare   (answer, reference) -> (ok, message): the kind's checker
    reference () -> the reference answer (a sympy expression, a function, a number), built when asked
    hint      shown with a wrong answer
    """
    id: str
    kind: str
    prompt: str
    compare: Callable[[Any, Any], tuple[bool, str]] = dataclasses.field(repr=False)
    reference: Callable[[], Any] = dataclasses.field(repr=False)
    hint: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {self.kind!r}")
        nn, _, name = self.id.partition(".")
        if not (len(nn) == 2 and nn.isdigit() and name):
            raise ValueError(f"an exercise id is 'NN.name' with NN the notebook's number, got {self.id!r}")

    @property
    def notebook(self) -> int:
        return int(self.id[:2])

    def solution(self):
        """The reference answer: a sympy expression, a number, or (code exercises) a function."""
        return self.reference()

    def reveal(self) -> str:
        """The reference answer as Markdown: LaTeX for an expression, the number, or a function's source."""
        ref = self.solution()
        if isinstance(ref, sp.Basic):
            return f"**{self.id}**, the reference: $${latex(ref)}$$"
        if callable(ref):
            return f"**{self.id}**, the reference:\n\n```python\n{textwrap.dedent(inspect.getsource(ref))}```"
        return f"**{self.id}**, the reference: {float(ref):.6g}"

    def _repr_markdown_(self) -> str:
        return f"**Exercise {self.id}** ({self.kind}): {self.prompt}"

    def check(self, answer) -> Feedback:
        """Is `answer` right?  Never raises: a wrong, malformed or crashing answer is a falsy Feedback."""
        if answer is None:
            return Feedback(self.id, False, f"not attempted yet: {self.prompt}", self.hint)
        try:
            ok, message = self.compare(answer, self.solution())
        except Exception as err:          # the learner's answer may do anything; say what happened
            ok, message = False, f"checking your answer raised {type(err).__name__}: {err}"
        return Feedback(self.id, bool(ok), message, "" if ok else self.hint)


# ----------------------------------------------------------------------------- the three checkers

def symbolic(name: str) -> Callable[[Any, Any], tuple[bool, str]]:
    """Compare a sympy expression with `diffedu.symbolic.check`'s derived quantity `name` (values at
    random valid points, then sympy's simplification); the message names a point where they differ."""
    def compare(answer, reference) -> tuple[bool, str]:
        if not isinstance(answer, (sp.Basic, int, float)):
            return False, (f"expected a sympy expression in the symbols of diffedu.symbolic.symbols(), "
                           f"got {type(answer).__name__}")
        result = check_expression(name, answer)
        return result.ok, result.message
    return compare


def expression(ranges: dict[str, tuple[float, float]] | None = None, n: int = 40, seed: int = 0,
               rtol: float = 1e-9) -> Callable[[Any, Any], tuple[bool, str]]:
    """Compare a sympy expression with a reference expression: symbols are matched by *name* (a learner's
    `sp.Symbol("t")` is the reference's t whatever its assumptions), then both are evaluated at n random
    points (each symbol uniform in `ranges[name]`, default (0.1, 2)) and the difference simplified."""
    ranges = ranges or {}

    def compare(answer, reference) -> tuple[bool, str]:
        if not isinstance(answer, (sp.Basic, int, float)):
            return False, f"expected a sympy expression, got {type(answer).__name__}"
        answer, reference = sp.sympify(answer), sp.sympify(reference)
        by_name = {str(x): x for x in reference.free_symbols}
        extra = sorted(str(x) for x in answer.free_symbols if str(x) not in by_name)
        if extra:
            return False, (f"your expression uses {', '.join(extra)}; the answer is in "
                           f"{', '.join(sorted(by_name)) or 'no symbols'}")
        answer = answer.xreplace({x: by_name[str(x)] for x in answer.free_symbols})
        rng = np.random.default_rng(seed)
        syms = sorted(reference.free_symbols, key=str)
        points = {x: rng.uniform(*ranges.get(str(x), (0.1, 2.0)), n) for x in syms} or {sp.Dummy(): np.zeros(n)}
        a, b = evaluate(answer, points), evaluate(reference, points)
        bad = ~(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)) + 1e-12)
        if bad.any():
            i = int(np.argmax(bad))
            at = ", ".join(f"{x} = {v[i]:.6g}" for x, v in points.items())
            return False, f"At {at}: yours = {a[i]:.10g}, the reference = {b[i]:.10g}"
        return True, f"equal to the reference at {n} random points"
    return compare


def derived(name: str) -> Callable[[], Any]:
    """The reference of a symbolic exercise: `diffedu.symbolic.check`'s derived quantity `name`."""
    if name not in REFERENCE:
        raise ValueError(f"unknown derived quantity {name!r}; allowed: {', '.join(sorted(REFERENCE))}")
    return REFERENCE[name][0]


def numeric(rtol: float = 1e-3, atol: float = 0.0, unit: str = "") -> Callable[[Any, Any], tuple[bool, str]]:
    """Compare a number with the reference within rtol (relative) or atol; says how far off and which way."""
    def compare(answer, reference) -> tuple[bool, str]:
        if isinstance(answer, bool) or not isinstance(answer, (int, float, np.number, torch.Tensor, sp.Number)):
            return False, f"expected a number, got {type(answer).__name__}"
        if isinstance(answer, torch.Tensor) and answer.numel() != 1:
            return False, f"expected one number, got a tensor of shape {tuple(answer.shape)}"
        yours, ref = float(answer), float(reference)
        if not math.isfinite(yours):
            return False, f"your number is {yours}, not a finite value"
        if abs(yours - ref) <= max(atol, rtol * abs(ref)):
            return True, f"{yours:.6g}{unit} (the reference is {ref:.6g}{unit})"
        way = "too large" if yours > ref else "too small"
        rel = f", {abs(yours - ref) / abs(ref):.1%} {way}" if ref else f", {way}"
        return False, f"{yours:.6g}{unit} is off by {abs(yours - ref):.3g}{rel}"
    return compare


def code(make_inputs: Callable[[torch.Generator], dict], trials: int = 3, rtol: float = 1e-6, atol: float = 1e-8,
         seed: int = 0) -> Callable[[Any, Any], tuple[bool, str]]:
    """Call the learner's function and the reference on the same inputs (`make_inputs(generator)`, a dict of
    keyword arguments, `trials` times with a fixed seed) and compare the outputs.  The message names the
    trial's input shapes and the first entry that disagrees; an exception or a wrong shape is reported too."""
    def compare(answer, reference) -> tuple[bool, str]:
        if not callable(answer):
            return False, f"expected a function, got {type(answer).__name__}"
        g = torch.Generator().manual_seed(seed)
        for trial in range(trials):
            inputs = make_inputs(g)
            shapes = ", ".join(f"{k} {_describe(v)}" for k, v in inputs.items())
            try:
                yours = answer(**_copy(inputs))
            except Exception as err:
                return False, f"your function raised {type(err).__name__}: {err} (inputs: {shapes})"
            if yours is None:
                return False, "not attempted yet: your function returns None (write its body)"
            expected = reference(**_copy(inputs))
            ok, where = _same(yours, expected, rtol, atol)
            if not ok:
                return False, f"{where} (trial {trial + 1} of {trials}; inputs: {shapes})"
        return True, f"agrees with the reference on {trials} random inputs"
    return compare


def _copy(inputs: dict) -> dict:
    """Fresh copies of the tensors, so that an answer that writes into its inputs cannot change the reference's."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _describe(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"shape {tuple(v.shape)}" if v.dim() else f"= {v.item():.4g}"
    return f"= {v!r}" if isinstance(v, (int, float, str)) else f"({type(v).__name__})"


def _same(yours, expected, rtol: float, atol: float) -> tuple[bool, str]:
    """(equal?, where not): tensors entry by entry (the first disagreeing index), tuples item by item, numbers."""
    if isinstance(expected, tuple):
        if not isinstance(yours, (tuple, list)) or len(yours) != len(expected):
            return False, f"expected a tuple of {len(expected)} values, got {type(yours).__name__}"
        for i, (a, b) in enumerate(zip(yours, expected)):
            ok, where = _same(a, b, rtol, atol)
            if not ok:
                return False, f"item {i} of the returned tuple: {where}"
        return True, ""
    if isinstance(expected, torch.Tensor):
        if not isinstance(yours, torch.Tensor):
            return False, f"expected a tensor of shape {tuple(expected.shape)}, got {type(yours).__name__}"
        if yours.shape != expected.shape:
            return False, f"your result has shape {tuple(yours.shape)}, the reference {tuple(expected.shape)}"
        a, b = yours.double(), expected.double()
        bad = ~torch.isclose(a, b, rtol=rtol, atol=atol)
        if bad.any():
            i = np.unravel_index(int(bad.flatten().nonzero()[0]), tuple(b.shape)) if b.dim() else ()
            idx = tuple(int(k) for k in i)
            return False, (f"{int(bad.sum())} of {b.numel()} entries differ; the first at index {list(idx)}: "
                           f"yours {a[idx].item():.6g}, the reference {b[idx].item():.6g}")
        return True, ""
    ok, message = numeric(rtol, atol)(yours, expected)
    return ok, ("" if ok else message)
