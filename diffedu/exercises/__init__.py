"""The course's exercises: `EXERCISES["NN.name"]` is an `Exercise` of notebook NN.

    from diffedu.exercises import EXERCISES
    ex = EXERCISES["01.q_sample"]
    ex.prompt                       # what to do
    ex.check(my_q_sample)           # a Feedback: truthy when right, else where it differs and a hint
    ex.check(None)                  # "not attempted yet"
    ex.solution()                   # the reference: a sympy expression, a number or a function

Imports: ._core and the notebooks' modules beside it.
"""
from __future__ import annotations

from . import nb01, nb02, nb03, nb04, nb05, nb06
from ._core import KINDS, Exercise, Feedback

EXERCISES: dict[str, Exercise] = {ex.id: ex for module in (nb01, nb02, nb03, nb04, nb05, nb06) for ex in module.EXERCISES}

__all__ = ["EXERCISES", "KINDS", "Exercise", "Feedback"]
